#include "attnrec/train/checkpoint_policy.hpp"

#include <filesystem>

#include "attnrec/io/checkpoint.hpp"
#include "attnrec/util/files.hpp"

namespace attnrec {

namespace fs = std::filesystem;

CheckpointPolicy::CheckpointPolicy(const Config& config, RunDir run)
    : config_(config), run_(std::move(run)) {}

void CheckpointPolicy::save(const std::string& path, const std::string& kind, Recommender& model,
                            torch::optim::Optimizer& optimizer, const TrainState& state,
                            const nlohmann::json& metrics) const {
  CheckpointContents c;
  c.distributed = distributed_;
  c.train_data_sha256 = train_data_sha256_;
  c.kind = kind;
  c.config = &config_;
  c.train_state = state;
  c.metrics = metrics;
  c.items_vocab = run_.items_vocab();
  c.users_vocab = run_.users_vocab();
  c.optimizer = &optimizer;
  c.rng = true;
  save_checkpoint(path, model, c);
}

void CheckpointPolicy::save_periodic(Recommender& model, torch::optim::Optimizer& optimizer,
                                     const TrainState& state) const {
  if (!writes_) return;
  const std::string path = run_.periodic(state.global_step);
  save(path, "periodic", model, optimizer, state, nlohmann::json::object());
  // The pointer moves only once the checkpoint is complete and in place.
  write_file_atomic(run_.latest_pointer(), fs::path(path).filename().string() + "\n");
  const auto periodic = run_.periodic_checkpoints();
  const auto keep = static_cast<std::size_t>(config_.checkpoint.keep_last);
  for (std::size_t i = 0; i + keep < periodic.size(); ++i) {
    if (periodic[i] != path) fs::remove(periodic[i]);
  }
}

void CheckpointPolicy::save_best(Recommender& model, torch::optim::Optimizer& optimizer,
                                 const TrainState& state, const nlohmann::json& metrics) const {
  if (!writes_) return;
  save(run_.best(), "best", model, optimizer, state, metrics);
}

void CheckpointPolicy::save_final(Recommender& model, torch::optim::Optimizer& optimizer,
                                  const TrainState& state) const {
  if (!writes_) return;
  save(run_.final_model(), "final", model, optimizer, state, nlohmann::json::object());
}

std::optional<TrainState> CheckpointPolicy::at_epoch_end(const TrainState& state) const {
  if (!config_.checkpoint.every_epoch || state.stopped_early) return std::nullopt;
  TrainState next = state;
  ++next.epoch;
  next.step_in_epoch = 0;
  return next;
}

}  // namespace attnrec

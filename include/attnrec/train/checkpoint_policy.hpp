#pragma once
/// \file Which checkpoints a run writes, and how they are named and pruned: periodic
/// step-NNNNNNNNN.pt (every checkpoint.every_steps steps and/or at the end of every epoch) with
/// the `latest` pointer and the newest checkpoint.keep_last kept; best.pt on a better
/// validation score; final.pt at the end.

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <optional>

#include "attnrec/config/config.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

class CheckpointPolicy {
 public:
  /// The vocabulary files must already be in `run`.
  CheckpointPolicy(const Config& config, RunDir run);
  /// step-N.pt of `state`, then the `latest` pointer (only once the file is complete), then
  /// pruning to checkpoint.keep_last periodic checkpoints.
  void save_periodic(Recommender& model, torch::optim::Optimizer& optimizer,
                     const TrainState& state) const;
  void save_best(Recommender& model, torch::optim::Optimizer& optimizer, const TrainState& state,
                 const nlohmann::json& metrics) const;
  void save_final(Recommender& model, torch::optim::Optimizer& optimizer,
                  const TrainState& state) const;
  /// The state to save at the end of a complete epoch: the start of the next epoch (so a
  /// resume continues there); nullopt when checkpoint.every_epoch is off or training stops.
  std::optional<TrainState> at_epoch_end(const TrainState& state) const;
  const RunDir& run() const { return run_; }
  /// Data-parallel training: `distributed` (world size, bucket plan) goes into every
  /// checkpoint's meta; `writes` false (ranks other than 0) writes no checkpoint at all.
  void set_distributed(nlohmann::json distributed, bool writes) {
    distributed_ = std::move(distributed);
    writes_ = writes;
  }
  /// samples_sha256() of the training data, recorded in every checkpoint (checked on resume).
  void set_train_data_sha256(std::string sha256) { train_data_sha256_ = std::move(sha256); }

 private:
  void save(const std::string& path, const std::string& kind, Recommender& model,
            torch::optim::Optimizer& optimizer, const TrainState& state,
            const nlohmann::json& metrics) const;

  const Config& config_;
  RunDir run_;
  nlohmann::json distributed_;
  std::string train_data_sha256_;
  bool writes_ = true;
};

}  // namespace attnrec

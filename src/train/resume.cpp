#include "attnrec/train/resume.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <filesystem>

#include "attnrec/config/fields.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

std::pair<std::string, RunDir> resume_target(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw CheckpointError(path + ": no such run directory or checkpoint");
  if (fs::is_directory(path, ec)) {
    const RunDir run{path};
    const std::string checkpoint = run.latest();
    if (checkpoint.empty() || !fs::exists(checkpoint, ec)) {
      throw CheckpointError(path +
                            ": no checkpoint to resume from (checkpoints/latest is "
                            "missing: the run stopped before its first checkpoint; start it "
                            "again with --overwrite)");
    }
    return {checkpoint, run};
  }
  const auto run = run_of_checkpoint(path);
  if (!run) {
    throw CheckpointError(path +
                          ": not in the checkpoints/ directory of a run; resume needs the "
                          "whole run directory (pass RUN_DIR or RUN_DIR/checkpoints/FILE)");
  }
  return {path, *run};
}

Config resumed_config(const CheckpointMeta& meta, const std::vector<std::string>& overrides) {
  Config config = meta.config;
  apply_overrides(config, overrides);
  validate_config(config);
  std::vector<std::string> refused, allowed;
  for (const auto& f : config_fields()) {
    if (!f.training) continue;
    const auto va = field_value(f, meta.config);
    const auto vb = field_value(f, config);
    if (va == vb) continue;
    const std::string line = fmt::format("{} ({} -> {})", f.pointer(), va.dump(), vb.dump());
    (f.resumable ? allowed : refused).push_back(line);
  }
  if (!refused.empty()) {
    throw ConfigError(
        "--resume: these options differ from the checkpoint's and cannot change "
        "in a resumed run: " +
        join(refused, ", ") + " (options that may change: " + join(resumable_fields(), ", ") + ")");
  }
  for (const auto& line : allowed) spdlog::info("resume override: {}", line);
  return config;
}

void check_same_vocabularies(const std::string& checkpoint, const CheckpointMeta& meta,
                             const std::string& train_file, const Vocab& items,
                             const Vocab& users) {
  const auto stored_items = load_referenced_vocab(checkpoint, meta, "items");
  const auto stored_users = load_referenced_vocab(checkpoint, meta, "users");
  if (items.to_text() != stored_items.to_text() || users.to_text() != stored_users.to_text()) {
    throw DataError(train_file + ": the training data changed since " + checkpoint +
                    " was written (its vocabulary differs); resuming would not continue the "
                    "same run");
  }
}

void check_same_training_data(const std::string& checkpoint, const CheckpointMeta& meta,
                              const std::string& train_file, const std::string& samples_sha256) {
  if (meta.train_data_sha256.empty()) return;  // written before the fingerprint was recorded
  if (samples_sha256 == meta.train_data_sha256) return;
  throw DataError(train_file + ": the training data changed since " + checkpoint +
                  " was written (the SHA-256 of its samples differs: a line was added, removed, "
                  "reordered or edited); resuming would not continue the same run: restore the "
                  "file, or start a new run on the new data");
}

TrainState restore_training(const std::string& checkpoint, const CheckpointMeta& meta,
                            const Config& config, std::int64_t batches_per_epoch,
                            std::int64_t metrics_rows_present, Recommender& model,
                            torch::optim::Adam& optimizer) {
  TrainState state = meta.train_state;
  if (state.step_in_epoch > batches_per_epoch) {
    throw CheckpointError(fmt::format(
        "{}: train_state.step_in_epoch {} is beyond the {} batches of an epoch of this run; the "
        "checkpoint does not belong to this training data and batch size",
        checkpoint, state.step_in_epoch, batches_per_epoch));
  }
  if (state.epoch > config.train.epochs) {
    throw ConfigError(fmt::format(
        "--resume: /train/epochs: {} is below the {} epochs the checkpoint {} has already "
        "trained; set it to at least {}",
        config.train.epochs, state.epoch, checkpoint, state.epoch));
  }
  if (state.metrics_rows > metrics_rows_present) {
    throw CheckpointError(fmt::format(
        "{}: the checkpoint follows {} rows of metrics.jsonl, which holds {}; the metrics file "
        "was changed or belongs to another run",
        checkpoint, state.metrics_rows, metrics_rows_present));
  }
  check_parameter_shapes(checkpoint, meta, model);
  load_checkpoint_state(checkpoint, model, &optimizer, /*restore_rng=*/true);
  // Patience may be changed on resume; the best score and its counter carry over.
  auto es = state.early_stopping.to_json();
  es["patience"] = config.train.early_stopping.patience;
  state.early_stopping = EarlyStopping::from_json(es);
  return state;
}

}  // namespace attnrec

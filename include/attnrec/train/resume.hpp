#pragma once
/// \file Resuming a run: which checkpoint, the config (stored + the overrides the option table
/// declares resumable), the vocabularies, and the restored model, optimizer, generators and
/// position. Nothing here writes anything: a resume that fails leaves the run as it was.

#include <torch/torch.h>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// The checkpoint `path` names (a run directory: its latest checkpoint) and its run directory.
std::pair<std::string, RunDir> resume_target(const std::string& path);

/// The stored config with `overrides` applied. Options not declared resumable may not change
/// (a ConfigError listing them and the ones that may); the changes are logged.
Config resumed_config(const CheckpointMeta& meta, const std::vector<std::string>& overrides);

/// The vocabularies rebuilt from the training file must be the checkpoint's, else the data
/// changed and a resume would not continue the same run (DataError naming `train_file`).
void check_same_vocabularies(const std::string& checkpoint, const CheckpointMeta& meta,
                             const std::string& train_file, const Vocab& items, const Vocab& users);

/// The training samples (`samples_sha256`, samples_sha256() of the file just read) must be the
/// ones the checkpoint was trained on (its train_data_sha256; checkpoints without one are not
/// checked): an edited, reordered or replaced training file is a DataError naming
/// `train_file`, even when its vocabulary is unchanged.
void check_same_training_data(const std::string& checkpoint, const CheckpointMeta& meta,
                              const std::string& train_file, const std::string& samples_sha256);

/// Restores `model`, `optimizer`, the generators and the train state from `checkpoint` (whose
/// verified header is `meta`). The checkpoint's position must fit the run of `config`
/// (`batches_per_epoch` batches per epoch, train.epochs) and `metrics_rows_present` (the rows
/// in metrics.jsonl); a CheckpointError or ConfigError otherwise. The early-stopping patience
/// comes from `config` (it may change on resume).
TrainState restore_training(const std::string& checkpoint, const CheckpointMeta& meta,
                            const Config& config, std::int64_t batches_per_epoch,
                            std::int64_t metrics_rows_present, Recommender& model,
                            torch::optim::Adam& optimizer);

}  // namespace attnrec

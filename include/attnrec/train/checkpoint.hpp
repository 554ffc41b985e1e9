#pragma once
/// \file Checkpoint files and loading a trained model for evaluate/predict.
///
/// A checkpoint is one file (LibTorch archive) holding the model weights, optionally the
/// optimizer state, and a JSON header ("meta") with the format version, attnrec version, the
/// resolved config, the train state, metrics at save time, and the vocabulary files it needs
/// (path relative to the checkpoint and SHA-256). It is written to a temporary file and renamed
/// into place, so a reader never sees a half-written checkpoint.

#include <nlohmann/json.hpp>
#include <string>
#include <torch/torch.h>

#include "attnrec/config/config.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Version of the checkpoint layout; bumped on incompatible changes.
constexpr std::int64_t kCheckpointFormatVersion = 1;

/// Writes `model` (and `optimizer` when not null) with `meta` to `path` atomically. The
/// format version and attnrec version are added to `meta`.
void save_checkpoint(const std::string& path, Recommender& model,
                     torch::optim::Optimizer* optimizer, nlohmann::json meta);

/// The JSON header of a checkpoint, without building the model.
nlohmann::json read_checkpoint_meta(const std::string& path);

/// Loads weights (and optimizer state when `optimizer` is not null) saved by save_checkpoint.
void load_checkpoint_weights(const std::string& path, Recommender& model,
                             torch::optim::Optimizer* optimizer);

/// The "vocab" entry of a checkpoint's meta for a vocabulary file at `vocab_path`, referenced
/// relative to the directory of the checkpoint at `checkpoint_path`.
nlohmann::json vocab_reference(const std::string& checkpoint_path, const std::string& vocab_path);

/// A model ready to score data.
struct LoadedModel {
  std::string checkpoint_path;
  nlohmann::json meta;
  Config config;
  Vocab items;
  Vocab users;
  Recommender model{nullptr};
};

/// A checkpoint file, or a run directory (meaning its best model, else its final model).
std::string resolve_checkpoint_path(const std::string& path);

/// Rebuilds the model from the config and vocabularies stored with the checkpoint and loads
/// its weights onto `device`. Missing or changed vocabulary files and unreadable checkpoints
/// are CheckpointErrors.
LoadedModel load_model(const std::string& path, const torch::Device& device);

}  // namespace attnrec

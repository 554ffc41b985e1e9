#pragma once
/// \file Checkpoint files and loading a trained model for evaluate/predict/resume.
///
/// Layout of a checkpoint file (format 1):
///   line 1   "ATTNREC-CHECKPOINT <format>"
///   line 2   "<meta bytes> <payload bytes> <SHA-256 of meta + payload>"
///   meta     JSON: attnrec version, kind, resolved config, train state, metrics, the
///            vocabulary files it needs (path relative to the checkpoint + SHA-256),
///            weights_sha256, optimizer_sha256 and parameter shapes
///   payload  a LibTorch archive: "model", "optimizer" (Adam moments and step counts) and
///            "rng_cpu" (/"rng_cuda"), the generator states
/// The header can be read (`attnrec inspect`) without building the model. Files are written
/// to a temporary name in the same directory, fsynced and renamed into place, so a reader (or a
/// resume after a crash) sees either the previous complete checkpoint or the new one.

#include <nlohmann/json.hpp>
#include <string>
#include <torch/torch.h>

#include "attnrec/config/config.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Version of the checkpoint layout; bumped on incompatible changes.
constexpr std::int64_t kCheckpointFormatVersion = 1;

/// What save_checkpoint() stores besides the model.
struct CheckpointContents {
  nlohmann::json meta;                          ///< config, train_state, metrics, vocab, kind
  torch::optim::Optimizer* optimizer = nullptr;  ///< saved when not null
  bool rng = false;                              ///< save the torch generator states
};

/// Writes a checkpoint of `model` atomically. Adds format/attnrec versions, weights_sha256 and
/// parameter shapes to the meta. Throws IoError (previous file untouched) when writing fails.
void save_checkpoint(const std::string& path, Recommender& model,
                     const CheckpointContents& contents);

/// The verified JSON header of a checkpoint (format and checksum checked), without building
/// the model.
nlohmann::json read_checkpoint_meta(const std::string& path);

/// Loads weights, and the optimizer state / generator states when asked. The checksum is
/// verified first.
void load_checkpoint_state(const std::string& path, Recommender& model,
                           torch::optim::Optimizer* optimizer, bool restore_rng);

/// SHA-256 over every parameter (sorted by name: name, dtype, shape, bytes).
std::string weights_sha256(Recommender& model);

/// SHA-256 over the Adam state (step, first and second moments) of every parameter, in
/// registration order.
std::string optimizer_sha256(Recommender& model, torch::optim::Optimizer& optimizer);

/// The "vocab" entry of a checkpoint's meta for a vocabulary file at `vocab_path`, referenced
/// relative to the directory of the checkpoint at `checkpoint_path`.
nlohmann::json vocab_reference(const std::string& checkpoint_path, const std::string& vocab_path);

/// Loads the vocabulary a checkpoint's meta references (`which`: "items" or "users"); a
/// missing or modified file is a CheckpointError.
Vocab load_referenced_vocab(const std::string& checkpoint_path, const nlohmann::json& meta,
                            const std::string& which);

/// A model ready to score data.
struct LoadedModel {
  std::string checkpoint_path;
  nlohmann::json meta;
  Config config;
  Vocab items;
  Vocab users;
  Recommender model{nullptr};
};

/// A checkpoint file, or a run directory: for scoring its best model, else its final model,
/// else its latest checkpoint.
std::string resolve_checkpoint_path(const std::string& path);

/// Rebuilds the model from the config and vocabularies stored with the checkpoint and loads
/// its weights onto `device`.
LoadedModel load_model(const std::string& path, const torch::Device& device);

}  // namespace attnrec

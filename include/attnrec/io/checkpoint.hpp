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
///
/// Nothing in a checkpoint is trusted before it is checked: the sizes on line 2 against the
/// file's size (before anything is allocated), the checksum, every meta field's type and range
/// (CheckpointMeta::from_json), the stored config (the same validation as a config file), and
/// every tensor's shape against the model the config builds, before and after loading.

#include <torch/torch.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Version of the checkpoint layout; bumped on incompatible changes.
constexpr std::int64_t kCheckpointFormatVersion = 1;

/// A vocabulary file a checkpoint needs: path relative to the checkpoint's directory, SHA-256.
struct VocabReference {
  std::string file;
  std::string sha256;
};

/// The typed, validated header of a checkpoint.
struct CheckpointMeta {
  std::string kind;  ///< periodic, best or final
  std::int64_t format_version = kCheckpointFormatVersion;
  std::string attnrec_version;
  std::string libtorch_version;  ///< the LibTorch that wrote it ("" before this field existed)
  Config config;
  TrainState train_state;
  std::int64_t category_vocab = 0;  ///< categories incl. reserved ids (0: no category feature)
  nlohmann::json metrics = nlohmann::json::object();  ///< validation metrics (best checkpoints)
  VocabReference items, users;
  std::string weights_sha256, optimizer_sha256;
  /// samples_sha256() of the training file ("" in checkpoints written before it was recorded).
  std::string train_data_sha256;
  std::map<std::string, std::vector<std::int64_t>> parameter_shapes;
  std::int64_t parameters = 0;
  /// Data-parallel training: {"world_size": N, "bucket_plan": [...], ...} (null: one process).
  nlohmann::json distributed;
  /// The number of processes that trained it (1 when `distributed` is null).
  int world_size() const;

  /// The meta as stored (written by save_checkpoint; shown by `inspect --json`).
  nlohmann::json to_json() const;
  /// Parses and checks every field; a CheckpointError naming `path` and the field otherwise.
  static CheckpointMeta from_json(const nlohmann::json& j, const std::string& path);
};

/// What save_checkpoint() stores besides the model.
struct CheckpointContents {
  std::string kind;  ///< periodic, best or final
  const Config* config = nullptr;
  TrainState train_state;
  nlohmann::json metrics = nlohmann::json::object();
  std::string items_vocab, users_vocab;          ///< vocabulary files referenced
  torch::optim::Optimizer* optimizer = nullptr;  ///< saved when not null
  bool rng = false;                              ///< save the torch generator states
  nlohmann::json distributed;     ///< data-parallel training's description (null: one process)
  std::string train_data_sha256;  ///< samples_sha256() of the training file
};

/// Writes a checkpoint of `model` atomically. Throws IoError (previous file untouched) when
/// writing fails.
void save_checkpoint(const std::string& path, Recommender& model,
                     const CheckpointContents& contents);

/// The verified header of a checkpoint (sizes, format, checksum and fields checked), without
/// building the model.
CheckpointMeta read_checkpoint_meta(const std::string& path);

/// Loads weights, and the optimizer state / generator states when asked. The checksum is
/// verified first; every parameter and buffer must keep the shape and type `model` has (a
/// CheckpointError naming the tensor otherwise), and so must the optimizer's moments.
void load_checkpoint_state(const std::string& path, Recommender& model,
                           torch::optim::Optimizer* optimizer, bool restore_rng);

/// Checks that `model` (built from meta.config) has exactly the parameters meta lists, with
/// the same shapes; a CheckpointError naming the first difference otherwise.
void check_parameter_shapes(const std::string& path, const CheckpointMeta& meta,
                            Recommender& model);

/// SHA-256 over every parameter (sorted by name: name, dtype, shape, bytes).
std::string weights_sha256(Recommender& model);

/// SHA-256 over the Adam state (step, first and second moments) of every parameter, in
/// registration order.
std::string optimizer_sha256(Recommender& model, torch::optim::Optimizer& optimizer);

/// Loads the vocabulary a checkpoint's meta references (`which`: "items" or "users"); a
/// missing or modified file is a CheckpointError.
Vocab load_referenced_vocab(const std::string& checkpoint_path, const CheckpointMeta& meta,
                            const std::string& which);

/// A model ready to score data.
struct LoadedModel {
  std::string checkpoint_path;
  CheckpointMeta meta;
  Config config;
  Vocab items;
  Vocab users;
  Recommender model{nullptr};
};

/// Rebuilds the model from the config and vocabularies stored with the checkpoint and loads
/// its weights onto `device`.
LoadedModel load_model(const std::string& path, const torch::Device& device);

}  // namespace attnrec

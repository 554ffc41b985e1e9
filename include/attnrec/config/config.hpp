#pragma once
/// \file Plain configuration structs. They hold values only: names, defaults, ranges and help
/// text live in the single field table (`attnrec/config/fields.hpp`), which is also what fills
/// these structs from JSON. Modules never see these structs directly; a factory turns them into
/// LibTorch-style `XxxOptions`.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnrec/config/choices.hpp"

namespace attnrec {

/// Input files and how they are read (section `data`).
struct DataConfig {
  std::string train;
  std::string valid;
  std::string test;
  std::string valid_candidates;  ///< frozen ranking candidates of the validation positives
  std::vector<std::string>
      columns;  ///< Column roles in file order: label, user, item, history, ignore.
  HeaderMode header = HeaderMode::automatic;
  std::string history_separator;
  std::int64_t max_history = 0;
  std::int64_t min_count = 0;
  std::int64_t max_vocab = 0;
  BadLinePolicy on_bad_line = BadLinePolicy::error;
  bool shuffle = false;
  std::int64_t prefetch_batches = 0;
  std::string item_categories;  ///< `item<TAB>category` file (preprocess writes one)
};

struct EmbeddingConfig {
  std::int64_t dim = 0;
  bool user = false;
  bool share_candidate = false;
  bool category = false;
  std::int64_t category_dim = 0;
  double dropout = 0.0;
  double init_std = 0.0;  ///< >0: every embedding table starts N(0, init_std^2)
};

struct EncoderConfig {
  EncoderKind type = EncoderKind::lstm;
  std::int64_t hidden = 0;
  std::int64_t layers = 0;
  bool bidirectional = false;
  double dropout = 0.0;
  // transformer only
  std::int64_t heads = 0;
  std::int64_t ff_size = 0;
  ActivationKind activation = ActivationKind::relu;
  TransformerNorm norm = TransformerNorm::pre;
  double attention_dropout = 0.0;
  bool causal = true;
  PositionalKind positional = PositionalKind::learned;
  bool scale_input = false;
};

struct AttentionConfig {
  std::string type;  ///< a name from attention_variants()
  QueryKind query = QueryKind::target;
  std::int64_t heads = 0;
  std::int64_t hidden = 0;
  PositionalKind positional = PositionalKind::none;
};

struct HeadConfig {
  HeadKind type = HeadKind::mlp;
  HeadInputs inputs = HeadInputs::all;
  std::vector<std::int64_t> hidden;
  ActivationKind activation = ActivationKind::relu;
  double dropout = 0.0;
  bool item_bias = false;
};

/// The network (section `model`).
struct ModelConfig {
  EmbeddingConfig embedding;
  EncoderConfig encoder;
  AttentionConfig attention;
  HeadConfig head;
};

/// Negatives drawn by the trainer (section `train.negatives`).
struct NegativesConfig {
  std::int64_t per_positive = 0;  ///< 0: train on the file's labelled samples as they are
  std::int64_t shared_pool = 0;   ///< >0: one pool of this many negatives per batch, shared
  NegativeDistribution sampling = NegativeDistribution::uniform;
  double exponent = 0.0;
  NegativeExclusion exclude = NegativeExclusion::train;
};

struct EarlyStoppingConfig {
  StopMetric metric = StopMetric::auc;
  RankingProtocol protocol = RankingProtocol::sampled;  ///< of hr@10, ndcg@10 and mrr
  std::int64_t patience = 0;
};

/// Data-parallel training over several processes (section `train.distributed`); read only
/// when the launcher starts more than one process (dist/world.hpp).
struct DistributedConfig {
  std::string init;            ///< env:// (TCPStore at MASTER_ADDR:MASTER_PORT) | file:///PATH
  double timeout_s = 0.0;      ///< bounds the rendezvous and every collective
  std::int64_t bucket_mb = 0;  ///< dense gradients per allreduce bucket, in MiB
  DistBackend backend = DistBackend::automatic;
};

/// The optimisation loop (section `train`).
struct TrainConfig {
  std::int64_t epochs = 0;
  std::int64_t batch_size = 0;
  double lr = 0.0;
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  double weight_decay = 0.0;
  LrSchedule schedule = LrSchedule::constant;
  std::int64_t warmup_steps = 0;
  double grad_clip = 0.0;
  std::int64_t seed = 0;
  std::string device;  ///< auto | cpu | cuda | cuda:N
  std::int64_t threads = 0;
  std::int64_t validate_every_steps = 0;
  std::int64_t log_every_steps = 0;
  bool tensorboard = false;
  NonFinitePolicy on_nonfinite = NonFinitePolicy::error;
  OptimizerKind optimizer = OptimizerKind::adam;
  Precision precision = Precision::fp32;
  bool deterministic = true;  ///< CUDA: deterministic kernels (runs and resumes repeat exactly)
  LossKind loss = LossKind::bce;
  double label_smoothing = 0.0;
  double gbce_t = 0.0;             ///< gbce's calibration t (0: plain BCE, 1: beta = alpha)
  std::int64_t softmax_block = 0;  ///< softmax: items per block
  bool next_item = false;          ///< train every position of a history on the next event
  NegativesConfig negatives;
  EarlyStoppingConfig early_stopping;
  DistributedConfig distributed;
};

/// Evaluation settings shared by validation and `attnrec evaluate` (section `eval`).
struct EvalConfig {
  std::int64_t batch_size = 0;
  double threshold = 0.0;
};

/// Checkpoint policy (section `checkpoint`).
struct CheckpointConfig {
  std::int64_t every_steps = 0;
  bool every_epoch = false;
  std::int64_t keep_last = 0;
};

/// A whole run.
/// `attnrec preprocess`: how a raw interaction log becomes sample files (section `preprocess`;
/// training ignores it). The command's flags are these options' names with dashes.
struct PreprocessConfig {
  LogFormat format = LogFormat::automatic;
  std::string delimiter;
  std::vector<std::string> columns;  ///< csv: ROLE=COLUMN pairs
  bool header = false;               ///< csv with index-only columns: skip the first line
  std::optional<double> min_rating;  ///< keep ratings >= this; unset: keep all
  std::vector<std::string> behaviors;
  DedupPolicy dedup = DedupPolicy::first;
  std::int64_t min_user_interactions = 0;
  std::int64_t min_item_interactions = 0;
  std::int64_t max_history = 0;
  std::int64_t min_history = 0;
  SplitProtocol split = SplitProtocol::leave_last_out;
  double valid_fraction = 0.0;
  double test_fraction = 0.0;
  std::int64_t negatives = 0;
  PreprocessSampling sampling = PreprocessSampling::uniform;
  std::int64_t ranking_negatives = 0;
  PreprocessSampling ranking_sampling = PreprocessSampling::uniform;
  std::int64_t seed = 0;
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  PreprocessConfig preprocess;
};

/// Size of the vectors the encoder hands to attention (hidden size, doubled when bidirectional;
/// the embedding size when there is no encoder). Several validation rules and the model factory
/// need it.
std::int64_t encoder_output_size(const ModelConfig& model);

/// Size of an item's representation: the item embedding, plus the category embedding when
/// model.embedding.category is on.
std::int64_t item_representation_size(const ModelConfig& model);

/// Whether the trainer draws negatives (per positive, or a shared pool per batch).
inline bool draws_negatives(const TrainConfig& t) {
  return t.negatives.per_positive > 0 || t.negatives.shared_pool > 0;
}

/// Whether the training file may hold positives only: the loss contrasts each positive with
/// drawn negatives or with the whole catalogue, never with the file's own negatives.
inline bool trains_on_positives(const TrainConfig& t) {
  return draws_negatives(t) || is_full_catalogue(t.loss);
}

/// True when `columns` contains `role`.
bool has_column(const DataConfig& data, const std::string& role);

}  // namespace attnrec

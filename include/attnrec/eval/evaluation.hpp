#pragma once
/// \file The evaluation and prediction use cases (`attnrec evaluate`, `attnrec predict`),
/// symmetrical to run_training(): a request in, metrics JSON (and files) out, a formatted
/// table for people. The command-line layer only maps flags to a request.
///
/// Scoring a file with a trained model:
/// - the model (architecture, vocabularies, weights) comes from the checkpoint; `overrides`
///   (`--set KEY=VALUE`) may change how the file is read and scored (sections `data`, `eval`,
///   and `train.device`/`train.threads` — every option `train --resume` may change), never the
///   model;
/// - the file's columns are its header's (any order, any superset of the roles the model
///   needs), or `data.columns` when it has none (the run's layout, or `--set data.columns=[...]`);
///   a missing role is an error naming it;
/// - every output is checked against every input and the run directory before anything is read.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/io/checkpoint.hpp"

namespace attnrec {

/// What a scoring command reads and how.
struct ScoringRequest {
  /// Checkpoint file or run directory (its best model).
  std::string checkpoint;
  /// The sample file to score.
  std::string data;
  /// `--set KEY=VALUE` overrides of the stored config (reading and scoring options only).
  std::vector<std::string> overrides;
};

/// The stored config with `overrides` applied, for scoring: only data.*, eval.*, train.device
/// and train.threads may change (a ConfigError naming the others); device and threads default
/// to auto and the physical cores, wherever the model was trained.
Config scoring_config(const Config& stored, const std::vector<std::string>& overrides);

/// A scored file, handed to EvaluationRequest::inspect.
struct ScoredFile {
  Recommender& model;
  const SampleSet& set;
  const Vocab& items;
  const std::vector<double>& probabilities;
  /// The popularity baseline's score of each sample (empty without popularity_baseline).
  const std::vector<double>& baseline;
  EvalOptions options;  ///< how the file was scored (device, batch size)
};

/// `attnrec evaluate`.
struct EvaluationRequest {
  ScoringRequest scoring;
  std::string output;       ///< metrics JSON (empty: none; "-": stdout)
  std::string predictions;  ///< per-sample scores TSV (empty: none)
  std::string oracle;       ///< `attnrec generate`'s oracle.json: attention on planted positions
  bool sampled_ranking = false;
  bool full_ranking = false;
  std::string candidates;    ///< sampled: default test_candidates.tsv beside the data
  std::string interactions;  ///< full: default interactions.tsv beside the data
  std::vector<std::int64_t> ks = {1, 5, 10, 20};
  std::int64_t ranking_batch = 2048;
  bool popularity_baseline = false;
  std::string train;     ///< baseline's training file (default: the run's data.train)
  std::string protocol;  ///< protocol.json (default: the one beside the data)
  /// Called once the file is scored (and the baseline), before anything is written: what
  /// `attnrec report` draws its curves and attention from.
  std::function<void(const ScoredFile&)> inspect;
};

/// Runs an evaluation; writes the requested files; returns the metrics JSON (what --output
/// holds: metrics, checkpoint, data, protocol, and the baseline, ranking and attention parts
/// when asked for).
nlohmann::json run_evaluation(const EvaluationRequest& request);

/// The tables `attnrec evaluate` prints for a run_evaluation() result.
std::string format_evaluation(const nlohmann::json& metrics);

/// `attnrec predict`: scores every line of `request.data` (a label column is optional) into
/// `output` (line, user, item, score). Returns the number of predictions.
std::int64_t run_prediction(const ScoringRequest& request, const std::string& output);

/// The column roles of `path` for a model trained with `model_data` (its data section), read
/// with the settings of `read`: the file's header when it has one, else read.columns (a file
/// with one field fewer is taken to lack the label when `label_optional`). Throws DataError
/// naming every role the model needs that the file lacks (`label` too when `need_label`).
std::vector<std::string> scoring_columns(const std::string& path, const Config& model,
                                         const DataConfig& read, bool need_label,
                                         bool label_optional);

/// The roles a model trained with `model` reads from a file: history, plus item and user when
/// it uses them.
std::vector<std::string> model_roles(const Config& model);

/// Reads `path` for scoring with a loaded model: its columns as scoring_columns() finds them
/// (into `columns` when given), read with `config`'s data settings and the model's vocabularies;
/// without `need_label` a file may have one class only.
SampleSet read_for_scoring(const std::string& path, const LoadedModel& loaded, const Config& config,
                           bool need_label, bool label_optional,
                           std::vector<std::string>* columns = nullptr);

/// A file beside `data` (same directory) named `name`, when it exists; else "".
std::string file_beside(const std::string& data, const std::string& name);

/// Positive samples per item id in `train` (all samples when it has no labels), read with the
/// model's vocabulary: the popularity baseline's scores. Padding and OOV get 0. With
/// `every_position` (a run trained with train.next_item on sequence windows) the history items
/// after the first count too: each is a training target there.
std::vector<double> popularity_counts(const SampleSet& train, std::int64_t item_vocab,
                                      bool every_position = false);

/// The "protocol" object of a metrics JSON: what the numbers mean (data hash, AUC/GAUC and tie
/// definitions, and the preprocess protocol's split/seed/negatives when `protocol_path` is set).
nlohmann::json describe_protocol(const std::string& data, const std::string& protocol_path);

/// Adds "beats_popularity" to `metrics` (model AUC above the baseline's); returns it.
bool compare_with_popularity(nlohmann::json& metrics);

}  // namespace attnrec

#pragma once
/// \file Ranking protocols for `attnrec evaluate --ranking`:
/// - `sampled`: each row of a frozen candidates file (written once by `attnrec preprocess`)
///   ranks its positive against its N negatives, so every model and epoch sees the same ones;
/// - `full`: each positive of the evaluated file ranks against every vocabulary item the user
///   has not interacted with (padding and OOV are never candidates).
/// Ranks are pessimistic on ties (see ranking.hpp). A model is scored history-once: the encoder
/// runs once per row, then the candidate-dependent part in chunks of `pairs_per_batch`.

#include <torch/torch.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnrec/data/dataset.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Rows to rank: one positive (`rows.items[r]`) with its user and history per row, plus either
/// frozen negatives (sampled) or the items to leave out (full).
struct RankingInput {
  std::string protocol;  ///< "sampled" | "full"
  SampleSet rows;
  std::vector<std::vector<std::int32_t>> negatives;  ///< sampled: vocabulary ids per row
  std::vector<std::vector<std::int32_t>> excluded;   ///< full: sorted ids per row
  std::int64_t item_vocab = 0;                       ///< full: candidates are 2..item_vocab-1
  std::int64_t oov_candidates = 0;  ///< sampled negatives unknown to the vocabulary
  std::int64_t oov_positives = 0;   ///< positives unknown to the vocabulary
};

/// Reads a candidates file (`user, item, history, time, negatives` with a header; negatives
/// comma-separated) with the model's vocabularies.
RankingInput read_candidates_file(const std::string& path, const ReaderOptions& reader,
                                  const Vocab& items, const Vocab& users);

/// Full ranking over the positives of `set`; each row excludes the items its user interacted
/// with according to `interactions` (a `user<TAB>item<TAB>time` log with a header, e.g. the
/// interactions.tsv of preprocess), or, when that is empty, the items of the user's histories
/// and positives in `set`.
RankingInput full_ranking_input(const SampleSet& set, const std::string& set_path,
                                const Vocab& items, const Vocab& users,
                                const std::string& interactions);

/// Full ranking over the positives of `set`; each row excludes the items its user (joined on
/// the user vocabulary id) interacted with in `training`: its histories and positive items.
/// The validation protocol of early stopping on full ranking (train.early_stopping.protocol).
RankingInput full_ranking_input(const SampleSet& set, const std::string& set_path,
                                const Vocab& items, const Vocab& users, const SampleSet& training);

/// Scores rows x candidates; returns [R, M] float32 or float64 on the CPU (a model's scores in
/// its own precision; evaluate_ranking() compares them in float64).
class RankingScorer {
 public:
  virtual ~RankingScorer() = default;
  /// Rows [begin, begin + count) of `set` against `candidates` ([count, M] int64, CPU).
  virtual torch::Tensor score(const SampleSet& set, std::int64_t begin, std::int64_t count,
                              const torch::Tensor& candidates) = 0;
  /// Rows [begin, begin + count) against every item id in [first, end): [count, end - first].
  /// By default score() with those ids as each row's candidates; a factorised model computes
  /// it as one matrix product (user states x item table).
  virtual torch::Tensor score_all(const SampleSet& set, std::int64_t begin, std::int64_t count,
                                  std::int64_t first, std::int64_t end);
  /// Rows per score_all() call that keep its work and memory moderate (`pairs`: the
  /// RankingOptions::pairs_per_batch of the evaluation).
  virtual std::int64_t rows_per_full_call(std::int64_t items, std::int64_t pairs) const;
};

/// The model, in inference mode on `device`. The model is in evaluation mode (no dropout) while
/// the scorer exists, and back in its earlier mode afterwards.
std::unique_ptr<RankingScorer> model_scorer(Recommender& model, torch::Device device,
                                            std::int64_t pairs_per_batch);
/// Item popularity: `counts[id]` (e.g. positive training samples per item).
std::unique_ptr<RankingScorer> popularity_scorer(std::vector<double> counts);

struct RankingOptions {
  std::vector<std::int64_t> ks = {1, 5, 10, 20};
  /// (row, candidate) pairs per model call. Default: 2048
  std::int64_t pairs_per_batch = 2048;
};

/// HR@K, NDCG@K, MRR, mean rank, rows, candidates per row.
nlohmann::json evaluate_ranking(RankingScorer& scorer, const RankingInput& input,
                                const RankingOptions& options);

}  // namespace attnrec

#pragma once
/// \file `attnrec recommend`: the K best items for each user, over the whole item vocabulary,
/// with the items the user has already interacted with left out.
///
/// Users come from a sample file (`--users`: one list per distinct user, from the history of
/// its last row) or from an interaction log (`--all`: every user of the log, the history being
/// the user's last data.max_history events by time). Items are scored block by block (a block of
/// users against every item: one matrix product for a factorised model, history-once scoring
/// otherwise, as `evaluate --ranking full`), and each user's list is written as soon as its block
/// is scored, so memory is bounded by the block, not by the number of users. With `--candidates`
/// only each user's listed items are ranked (one scoring call per user).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnrec/data/dataset.hpp"

namespace attnrec {

/// What `attnrec recommend` does.
struct RecommendRequest {
  /// Checkpoint file or run directory (its best model).
  std::string checkpoint;
  /// Sample file with a user and a history column: one list per distinct user.
  std::string users;
  /// Every user of the interaction log (`interactions`).
  bool all = false;
  /// `user<TAB>item[<TAB>time]` log with a header (preprocess's interactions.tsv): the users of
  /// --all, and more seen items to leave out. Default with --all: interactions.tsv beside the
  /// run's data.train.
  std::string interactions;
  /// `user<TAB>item` file with a header: rank only each user's listed items (users without a
  /// line get no list). Default: every item of the vocabulary.
  std::string candidates;
  /// List length. Default: 10
  std::int64_t k = 10;
  /// Leave out the items each user has interacted with (histories, positive items of the users
  /// file, the interaction log). Default: true
  bool exclude_seen = true;
  /// Output: "tsv" (user, rank, item, score) or "jsonl" (one object per user).
  std::string format = "tsv";
  std::string output;
  /// `--set` overrides of the stored config (data.*, eval.*, train.device, train.threads).
  std::vector<std::string> overrides;
};

/// One user's list, best first.
struct Recommendation {
  std::vector<std::int32_t> items;  ///< vocabulary ids
  std::vector<double> scores;
};

/// The `k` best of one row of scores (`scores[j]` is item id `first + j`, `count` of them),
/// leaving out the ids in `excluded` (sorted ascending; ids outside the row are ignored). Ties
/// go to the smaller id; a non-finite score ranks below every finite one. Fewer than `k` items
/// left: all of them.
Recommendation top_k(const double* scores, std::int64_t count, std::int32_t first,
                     const std::vector<std::int32_t>& excluded, std::int64_t k);
/// top_k() of float scores (the model's own precision: no conversion of whole score blocks).
Recommendation top_k(const float* scores, std::int64_t count, std::int32_t first,
                     const std::vector<std::int32_t>& excluded, std::int64_t k);

/// The `k` best of `ids` (vocabulary ids, `scores[j]` the score of ids[j]): ties go to the
/// smaller id, a non-finite score ranks below every finite one.
Recommendation top_k_of(const double* scores, const std::vector<std::int32_t>& ids, std::int64_t k);

/// Users to recommend for: one row each (user and history), their original ids, and the
/// sorted item ids each has interacted with.
struct RecommendUsers {
  SampleSet rows;
  std::vector<std::string> names;
  std::vector<std::vector<std::int32_t>> seen;
};

/// Reads the interaction log `path` (header `user`, `item`, optionally `time`): every user, its
/// last `max_history` events (by time, then line) as history, all its items as seen. Items and
/// users unknown to the vocabularies map to OOV (an unknown item stays in the history as OOV).
RecommendUsers users_from_log(const std::string& path, const Vocab& items, const Vocab& users,
                              std::int64_t max_history);

/// Candidate lists of a `user<TAB>item` file with a header (one candidate per line, any order):
/// for each of `names`, its listed items that the vocabulary knows, sorted and unique. Counts
/// the candidates unknown to the vocabulary (left out) and the lines of users not in `names`.
struct CandidateLists {
  std::vector<std::vector<std::int32_t>> items;  ///< by position in `names`
  std::int64_t unknown_items = 0;
  std::int64_t other_users = 0;
};
CandidateLists read_candidate_lists(const std::string& path, const std::vector<std::string>& names,
                                    const Vocab& items);

/// Runs the command; returns its summary (users, items, k, seconds, users and pairs per second,
/// output).
nlohmann::json run_recommend(const RecommendRequest& request);

}  // namespace attnrec

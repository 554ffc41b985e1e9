#pragma once
/// \file Where attention looks: the attention mass a model puts on given history positions
/// (e.g. the planted positions recorded by the synthetic generator), against the share those
/// positions would get from uniform attention.

#include <nlohmann/json.hpp>
#include <vector>

#include "attnrec/data/dataset.hpp"
#include "attnrec/eval/evaluator.hpp"

namespace attnrec {

struct AttentionMass {
  double planted_mass = 0;   ///< mean attention weight summed over the planted positions
  double uniform_share = 0;  ///< mean of |planted| / history length
  double ratio = 0;          ///< planted_mass / uniform_share (1 = no better than uniform)
  std::int64_t samples = 0;  ///< samples with planted positions making up at most half the history
};

/// `planted[i]` lists positions (0-based, oldest first, in the file's history) for sample i.
/// Only samples where the planted positions are at most half of the history count (otherwise
/// uniform attention already puts most mass there); samples whose history was truncated are
/// skipped (positions would not line up).
AttentionMass attention_mass(Recommender& model, const SampleSet& set,
                             const std::vector<std::vector<std::int64_t>>& planted,
                             const EvalOptions& options);

/// Reads `test_planted_positions` from a generator's oracle.json.
std::vector<std::vector<std::int64_t>> read_planted_positions(const std::string& oracle_path);

}  // namespace attnrec

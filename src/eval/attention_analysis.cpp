#include "attnrec/eval/attention_analysis.hpp"

#include <fmt/format.h>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

AttentionMass attention_mass(Recommender& model, const SampleSet& set,
                             const std::vector<std::vector<std::int64_t>>& planted,
                             const EvalOptions& options) {
  if (static_cast<std::int64_t>(planted.size()) != set.size()) {
    throw DataError(fmt::format("{}: {} samples but the oracle lists planted positions for {}",
                                set.source, set.size(), planted.size()));
  }
  double mass = 0, share = 0;
  std::int64_t counted = 0;
  score(model, set, options, [&](const Batch& batch, const RecommenderOutput& out) {
    const auto weights = out.attention.to(torch::kCPU).to(torch::kFloat64).contiguous();
    const auto index = batch.index.to(torch::kCPU);
    const std::int64_t t = weights.size(1);
    const auto* w = weights.data_ptr<double>();
    const auto* idx = index.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < weights.size(0); ++b) {
      const auto& positions = planted[static_cast<std::size_t>(idx[b])];
      const std::int64_t len = set.history_length(idx[b]);
      const auto n = static_cast<std::int64_t>(positions.size());
      // Informative samples only: with nothing planted there is nothing to find, and when
      // most positions are planted even uniform attention puts most mass there.
      if (n == 0 || 2 * n > len) continue;
      double m = 0;
      bool inside = true;
      for (const auto p : positions) {
        if (p >= len)
          inside = false;
        else
          m += w[b * t + p];
      }
      if (!inside) continue;  // truncated history: positions do not line up
      mass += m;
      share += static_cast<double>(n) / static_cast<double>(len);
      ++counted;
    }
  });
  AttentionMass r;
  r.samples = counted;
  if (counted > 0) {
    r.planted_mass = mass / static_cast<double>(counted);
    r.uniform_share = share / static_cast<double>(counted);
    r.ratio = r.planted_mass / r.uniform_share;
  }
  return r;
}

std::vector<std::vector<std::int64_t>> read_planted_positions(const std::string& oracle_path) {
  nlohmann::json oracle;
  try {
    oracle = nlohmann::json::parse(read_file(oracle_path));
    auto planted =
        oracle.at("test_planted_positions").get<std::vector<std::vector<std::int64_t>>>();
    // Positions index the attention weights: a negative one would read outside them.
    for (std::size_t i = 0; i < planted.size(); ++i) {
      for (std::size_t k = 0; k < planted[i].size(); ++k) {
        if (planted[i][k] < 0) {
          throw DataError(
              fmt::format("{}: /test_planted_positions/{}/{}: a history position "
                          "must be >= 0, got {}; regenerate the data with attnrec "
                          "generate",
                          oracle_path, i, k, planted[i][k]));
        }
      }
    }
    return planted;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(oracle_path + ": not a generator oracle (" + e.what() + ")");
  }
}

}  // namespace attnrec

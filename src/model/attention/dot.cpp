// Attention variants "dot" and "scaled_dot".
#include <cmath>

#include "attnrec/model/attention.hpp"

namespace attnrec {
namespace {

class DotAttention : public AttentionScorer {
 public:
  torch::Tensor scores(const AttentionInput& in) override {
    return dot_scores(in, in.keys, in.query);
  }
};

class ScaledDotAttention : public AttentionScorer {
 public:
  torch::Tensor scores(const AttentionInput& in) override {
    return dot_scores(in, in.keys, in.query) / std::sqrt(static_cast<double>(in.keys.size(2)));
  }
};

}  // namespace

std::unique_ptr<AttentionScorer> make_dot_attention() { return std::make_unique<DotAttention>(); }
std::unique_ptr<AttentionScorer> make_scaled_dot_attention() {
  return std::make_unique<ScaledDotAttention>();
}

}  // namespace attnrec

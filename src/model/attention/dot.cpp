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

ATTNREC_REGISTER_ATTENTION("dot", "score = q . h_t", DotAttention);
ATTNREC_REGISTER_ATTENTION("scaled_dot", "score = q . h_t / sqrt(d)", ScaledDotAttention);

}  // namespace attnrec

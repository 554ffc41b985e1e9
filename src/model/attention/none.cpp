// Attention variant "none": the masked mean of the encoder outputs (the pooling baseline).
#include "attnrec/model/attention.hpp"

namespace attnrec {
namespace {

class NoAttention : public AttentionScorer {
 public:
  bool uses_query() const override { return false; }
  torch::Tensor scores(const AttentionInput& in) override {
    return torch::zeros(in.row_mask.sizes(), in.keys.options());  // uniform over valid positions
  }
};

}  // namespace

std::unique_ptr<AttentionScorer> make_none_attention() { return std::make_unique<NoAttention>(); }

}  // namespace attnrec

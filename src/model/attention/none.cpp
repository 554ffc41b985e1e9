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

ATTNREC_REGISTER_ATTENTION("none",
                           "no attention: masked mean of the encoder outputs (the pooling "
                           "baseline)",
                           NoAttention);

}  // namespace attnrec

// Attention variant "last": the encoder output at the newest valid position (SASRec's user
// state). Weights are one-hot there; an all-padding history gets a zero context.
#include "attnrec/model/attention.hpp"

namespace attnrec {
namespace {

class LastPosition : public AttentionScorer {
 public:
  bool uses_query() const override { return false; }
  torch::Tensor scores(const AttentionInput& in) override {
    (void)in;
    TORCH_CHECK(false, "attention \"last\" has no scores");
  }
  AttentionOutput attend(const AttentionInput& in) override {
    // Right padding: the newest event sits at length - 1.
    const auto lengths = in.row_mask.sum(1);
    const auto last = (lengths - 1).clamp_min(0);
    auto weights = torch::zeros(in.row_mask.sizes(), in.keys.options());
    weights.scatter_(1, last.unsqueeze(1), 1.0);
    weights = weights * (lengths > 0).unsqueeze(1).to(weights.dtype());
    const auto keys = in.shared ? in.keys.expand({in.rows, -1, -1}) : in.keys;
    const auto context = torch::bmm(weights.unsqueeze(1), keys).squeeze(1);
    return {context, weights, {}};
  }
};

}  // namespace

std::unique_ptr<AttentionScorer> make_last_attention() { return std::make_unique<LastPosition>(); }

}  // namespace attnrec

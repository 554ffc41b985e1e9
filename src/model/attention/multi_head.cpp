// Attention variant "multi_head": scaled dot product in several heads, outputs concatenated.
#include <cmath>

#include "attnrec/model/attention.hpp"

namespace attnrec {
namespace {

class MultiHeadAttention : public AttentionScorer {
 public:
  void build(torch::nn::Module& m, const AttentionOptions& o) override {
    const std::int64_t d = o.dim();
    heads_ = o.heads();
    TORCH_CHECK(d % heads_ == 0, "multi_head attention: heads (", heads_, ") must divide dim (", d,
                ")");
    q_proj_ = m.register_module("q_proj", torch::nn::Linear(d, d));
    k_proj_ = m.register_module("k_proj", torch::nn::Linear(d, d));
    v_proj_ = m.register_module("v_proj", torch::nn::Linear(d, d));
    o_proj_ = m.register_module("o_proj", torch::nn::Linear(d, d));
  }
  torch::Tensor scores(const AttentionInput&) override {
    TORCH_CHECK(false, "multi_head attention pools its heads itself");
  }
  AttentionOutput attend(const AttentionInput& in) override {
    const std::int64_t dim = in.keys.size(2);
    const std::int64_t b = in.rows, kb = in.keys.size(0), t = in.keys.size(1), h = heads_;
    const std::int64_t dh = dim / h;
    const auto q = q_proj_(in.query).view({b, h, 1, dh});
    const auto k = k_proj_(in.keys).view({kb, t, h, dh}).transpose(1, 2);  // [B|1, H, T, dh]
    const auto v = v_proj_(in.keys).view({kb, t, h, dh}).transpose(1, 2);
    const auto s = torch::matmul(q, k.transpose(2, 3)).squeeze(2) / std::sqrt(double(dh));
    const auto w = masked_softmax(s.reshape({b * h, t}),
                                  in.row_mask.unsqueeze(1).expand({b, h, t}).reshape({b * h, t}))
                       .view({b, h, 1, t});
    const auto ctx = torch::matmul(w, v).view({b, dim});  // heads concatenated
    const auto per_head = w.view({b, h, t});
    return {o_proj_(ctx), per_head.mean(1), per_head};
  }
  PositionTerms position_terms(const AttentionInput& in, const torch::Tensor& weights) override {
    const std::int64_t b = in.keys.size(0), t = in.keys.size(1), dim = in.keys.size(2);
    const std::int64_t h = heads_, dh = dim / h;
    TORCH_CHECK(weights.dim() == 2 || (weights.dim() == 3 && weights.size(1) == h),
                "multi_head weights: expected [B, T] or [B, ", h, ", T], got ", weights.sizes());
    const auto w = weights.dim() == 2 ? weights.unsqueeze(1).expand({b, h, t}) : weights;
    const auto v = v_proj_(in.keys).view({b, t, h, dh});
    // Position t's part of the concatenated heads, through the output projection's weight.
    const auto part = (w.transpose(1, 2).unsqueeze(3) * v).reshape({b, t, dim});
    return {torch::matmul(part, o_proj_->weight.t()), o_proj_->bias};
  }

 private:
  std::int64_t heads_ = 1;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, o_proj_{nullptr};
};

}  // namespace

std::unique_ptr<AttentionScorer> make_multi_head_attention() {
  return std::make_unique<MultiHeadAttention>();
}

}  // namespace attnrec

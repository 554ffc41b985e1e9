// Attention variant "cosine".
#include "attnrec/model/attention.hpp"

namespace attnrec {
namespace {

class CosineAttention : public AttentionScorer {
 public:
  void build(torch::nn::Module&, const AttentionOptions& options) override {
    temperature_ = options.temperature();
  }
  torch::Tensor scores(const AttentionInput& in) override {
    // The eps keeps zero vectors (padding, an all-zero query) finite.
    const auto qn = in.query / in.query.norm(2, -1, true).clamp_min(1e-8);
    const auto kn = in.keys / in.keys.norm(2, -1, true).clamp_min(1e-8);
    return dot_scores(in, kn, qn) / temperature_;
  }

 private:
  double temperature_ = 0.1;
};

}  // namespace

std::unique_ptr<AttentionScorer> make_cosine_attention() {
  return std::make_unique<CosineAttention>();
}

}  // namespace attnrec

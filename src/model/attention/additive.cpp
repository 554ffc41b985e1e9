// Attention variant "additive" (Bahdanau): score = v . tanh(W_k h_t + W_q q). Its key
// projection is query-independent (computed once per history, or fused into the LSTM kernel),
// and inference on float32 CPU tensors runs one fused kernel per row.
#include <ATen/Parallel.h>

#include "../../kernels/attention_kernels.hpp"
#include "attnrec/model/attention.hpp"

namespace attnrec {
namespace {

/// x W^T without autograd, rows split across the intra-op threads: LibTorch hands a GEMM to
/// BLAS as one call, which runs on one thread here (attnrec keeps OpenBLAS single-threaded;
/// see util/device.cpp), so a [B*T, D] projection would leave the other cores idle.
torch::Tensor parallel_rows_linear(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto rows = x.reshape({-1, x.size(-1)}).contiguous();
  auto out = torch::empty({rows.size(0), weight.size(0)}, x.options());
  const auto w_t = weight.t();
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, rows.size(0), 512, [&](std::int64_t begin, std::int64_t end) {
    // Grad and inference mode are thread-local: the pool's threads take the caller's.
    c10::InferenceMode inference_mode(inference);
    torch::NoGradGuard no_grad;
    auto o = out.narrow(0, begin, end - begin);
    at::mm_out(o, rows.narrow(0, begin, end - begin), w_t);
  });
  auto shape = x.sizes().vec();
  shape.back() = weight.size(0);
  return out.view(shape);
}

bool fused_inference(const torch::Tensor& keys) {
  return !torch::GradMode::is_enabled() && keys.device().is_cpu() &&
         keys.scalar_type() == torch::kFloat32;
}

class AdditiveAttention : public AttentionScorer {
 public:
  void build(torch::nn::Module& m, const AttentionOptions& o) override {
    w_query_ = m.register_module("w_query", torch::nn::Linear(o.dim(), o.hidden()));
    w_key_ = m.register_module(
        "w_key", torch::nn::Linear(torch::nn::LinearOptions(o.dim(), o.hidden()).bias(false)));
    v_ = m.register_module("v",
                           torch::nn::Linear(torch::nn::LinearOptions(o.hidden(), 1).bias(false)));
  }
  torch::Tensor project_keys(const torch::Tensor& keys) override {
    if (fused_inference(keys)) return parallel_rows_linear(keys, w_key_->weight);  // no bias
    return w_key_(keys);
  }
  torch::Tensor key_weight() const override { return w_key_->weight; }  // w_key has no bias
  torch::Tensor scores(const AttentionInput& in) override {
    // [1 or B, T, A] + [B, 1, A] broadcasts in both cases.
    const auto keys = in.key_projection.defined() ? in.key_projection : w_key_(in.keys);
    return v_(torch::tanh(keys + w_query_(in.query).unsqueeze(1))).squeeze(2);
  }
  AttentionOutput attend(const AttentionInput& in) override {
    if (!in.shared && fused_inference(in.keys)) return inference(in);
    return pool(in, scores(in));
  }

 private:
  /// The same maths as scores() + pool() (tested equal), one fused pass per row.
  AttentionOutput inference(const AttentionInput& in) {
    const auto kp =
        (in.key_projection.defined() ? in.key_projection : project_keys(in.keys)).contiguous();
    const auto qp = w_query_(in.query).contiguous();
    const auto v = v_->weight.reshape({-1}).contiguous();
    const auto k = in.keys.contiguous();
    const auto m = in.mask.to(torch::kBool).contiguous();
    const std::int64_t rows = k.size(0), steps = k.size(1), d = k.size(2), a = kp.size(2);
    TORCH_CHECK(kp.size(0) == rows && kp.size(1) == steps, "attention key projection: expected [",
                rows, ", ", steps, ", ", a, "], got ", kp.sizes());
    auto weights = torch::empty({rows, steps}, k.options());
    auto context = torch::empty({rows, d}, k.options());
    const float *kp_data = kp.data_ptr<float>(), *qp_data = qp.data_ptr<float>();
    const float *v_data = v.data_ptr<float>(), *k_data = k.data_ptr<float>();
    const bool* m_data = m.data_ptr<bool>();
    float *w_data = weights.data_ptr<float>(), *c_data = context.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](std::int64_t begin, std::int64_t end) {
      kernels::additive_attention_forward(kp_data + begin * steps * a, qp_data + begin * a, v_data,
                                          k_data + begin * steps * d, m_data + begin * steps,
                                          w_data + begin * steps, c_data + begin * d, end - begin,
                                          steps, a, d);
    });
    return {context, weights};
  }

  torch::nn::Linear w_query_{nullptr}, w_key_{nullptr}, v_{nullptr};
};

}  // namespace

std::unique_ptr<AttentionScorer> make_additive_attention() {
  return std::make_unique<AdditiveAttention>();
}

}  // namespace attnrec

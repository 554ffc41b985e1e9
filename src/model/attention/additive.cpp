// Attention variant "additive" (Bahdanau): score = v . tanh(W_k h_t + W_q q). Its key
// projection is query-independent (computed once per history, or fused into the LSTM kernel),
// and inference on float32 CPU tensors runs one fused kernel per row.
#include <ATen/Parallel.h>

#include <vector>

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
    return scores_of(in.key_projection.defined() ? in.key_projection : w_key_(in.keys),
                     w_query_(in.query));
  }
  torch::Tensor prepare_query(const torch::Tensor& query) override { return w_query_(query); }
  torch::Tensor attend_prepared(const torch::Tensor& prepared, const torch::Tensor& keys,
                                const torch::Tensor& mask,
                                const torch::Tensor& key_projection) override {
    const auto kp = key_projection.defined() ? key_projection : project_keys(keys);
    if (fused_inference(keys)) return shared_inference(prepared, keys, mask, kp);
    const std::int64_t rows = prepared.size(0);
    const auto row_mask = mask.expand({rows, mask.size(1)});
    const AttentionInput in{prepared, keys, mask, row_mask, kp, rows > 1, rows};
    return pool(in, scores_of(kp, prepared)).context;
  }
  AttentionOutput attend(const AttentionInput& in) override {
    if (!in.shared && fused_inference(in.keys)) return inference(in);
    return pool(in, scores(in));
  }

 private:
  /// [rows, T] scores from key projections [1 or B, T, A] and query projections [B, A].
  torch::Tensor scores_of(const torch::Tensor& kp, const torch::Tensor& qp) {
    return v_(torch::tanh(kp + qp.unsqueeze(1))).squeeze(2);  // broadcasts in both cases
  }

  /// attend_prepared() on float32 CPU tensors: the valid positions gathered once, then one fused
  /// pass per query row, rows split across the intra-op threads.
  torch::Tensor shared_inference(const torch::Tensor& prepared, const torch::Tensor& keys,
                                 const torch::Tensor& mask, const torch::Tensor& kp) {
    const auto valid = mask[0].to(torch::kBool).nonzero().view({-1});
    const auto k = keys[0].index_select(0, valid).contiguous();
    const auto p = kp[0].index_select(0, valid).contiguous();
    const auto qp = prepared.contiguous();
    const auto v = v_->weight.reshape({-1}).contiguous();
    const std::int64_t rows = qp.size(0), steps = k.size(0), d = k.size(1), a = p.size(1);
    TORCH_CHECK(qp.size(1) == a, "prepared queries: expected [rows, ", a, "], got ", qp.sizes());
    auto context = torch::empty({rows, d}, k.options());
    const float *p_data = p.data_ptr<float>(), *q_data = qp.data_ptr<float>();
    const float *v_data = v.data_ptr<float>(), *k_data = k.data_ptr<float>();
    float* c_data = context.data_ptr<float>();
    at::parallel_for(0, rows, 64, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> scratch(static_cast<std::size_t>(steps));
      kernels::additive_attention_shared(p_data, q_data + begin * a, v_data, k_data, scratch.data(),
                                         c_data + begin * d, end - begin, steps, a, d);
    });
    return context;
  }

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
    return {context, weights, {}};
  }

  torch::nn::Linear w_query_{nullptr}, w_key_{nullptr}, v_{nullptr};
};

}  // namespace

std::unique_ptr<AttentionScorer> make_additive_attention() {
  return std::make_unique<AdditiveAttention>();
}

}  // namespace attnrec

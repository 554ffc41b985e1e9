#include "attnrec/model/attention.hpp"

#include <cmath>

#include <ATen/Parallel.h>

#include "../kernels/attention_kernels.hpp"
#include "attnrec/config/choices.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& mask) {
  // -inf at padding; rows without any valid position are zeroed before the softmax (giving a
  // uniform distribution) and multiplied by the mask afterwards (giving zeros), avoiding the
  // NaN of a softmax over only -inf.
  const auto any = mask.any(/*dim=*/1, /*keepdim=*/true);
  auto masked = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  masked = masked.masked_fill(any.logical_not(), 0.0);
  return torch::softmax(masked, /*dim=*/-1) * mask.to(scores.dtype());
}

AttentionImpl::AttentionImpl(AttentionOptions options_) : options(std::move(options_)) { reset(); }

void AttentionImpl::reset() {
  const auto& t = options.type();
  if (t == "dot")
    kind_ = Kind::dot;
  else if (t == "scaled_dot")
    kind_ = Kind::scaled_dot;
  else if (t == "additive")
    kind_ = Kind::additive;
  else if (t == "cosine")
    kind_ = Kind::cosine;
  else if (t == "multi_head")
    kind_ = Kind::multi_head;
  else if (t == "none")
    kind_ = Kind::none;
  else {
    TORCH_CHECK(false, "attention type: expected one of ",
                join(choice_names(attention_variants()), ", "), ", got \"", t, "\"");
  }
  const std::int64_t d = options.dim();
  TORCH_CHECK(d > 0, "attention dim: expected > 0, got ", d);
  if (kind_ == Kind::additive) {
    w_query_ = register_module("w_query", torch::nn::Linear(d, options.hidden()));
    w_key_ = register_module(
        "w_key", torch::nn::Linear(torch::nn::LinearOptions(d, options.hidden()).bias(false)));
    v_ = register_module(
        "v", torch::nn::Linear(torch::nn::LinearOptions(options.hidden(), 1).bias(false)));
  } else if (kind_ == Kind::multi_head) {
    TORCH_CHECK(d % options.heads() == 0, "multi_head attention: heads (", options.heads(),
                ") must divide dim (", d, ")");
    q_proj_ = register_module("q_proj", torch::nn::Linear(d, d));
    k_proj_ = register_module("k_proj", torch::nn::Linear(d, d));
    v_proj_ = register_module("v_proj", torch::nn::Linear(d, d));
    o_proj_ = register_module("o_proj", torch::nn::Linear(d, d));
  }
}

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

}  // namespace

torch::Tensor AttentionImpl::project_keys(const torch::Tensor& keys) {
  if (kind_ != Kind::additive) return torch::Tensor();
  if (!torch::GradMode::is_enabled() && keys.device().is_cpu() &&
      keys.scalar_type() == torch::kFloat32) {
    return parallel_rows_linear(keys, w_key_->weight);  // w_key has no bias
  }
  return w_key_(keys);
}

torch::Tensor AttentionImpl::key_weight() const {
  return kind_ == Kind::additive ? w_key_->weight : torch::Tensor();  // w_key has no bias
}

AttentionOutput AttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& keys,
                                       const torch::Tensor& mask,
                                       const torch::Tensor& key_projection) {
  TORCH_CHECK(keys.dim() == 3 && keys.size(2) == options.dim(), "attention keys: expected [B, T, ",
              options.dim(), "], got ", keys.sizes());
  TORCH_CHECK(mask.sizes() == keys.sizes().slice(0, 2), "attention mask: expected ",
              keys.sizes().slice(0, 2), ", got ", mask.sizes());
  // Shared keys: one history ([1, T, dim]) against many queries, broadcast instead of copied
  // (ranking scores one user's history against thousands of candidates).
  const bool shared = keys.size(0) == 1 && query.defined() && query.dim() == 2 && query.size(0) > 1;
  if (kind_ != Kind::none) {
    TORCH_CHECK(query.dim() == 2 && (shared || query.size(0) == keys.size(0)) &&
                    query.size(1) == options.dim(),
                "attention query: expected [", keys.size(0), ", ", options.dim(), "], got ",
                query.sizes());
  }
  const std::int64_t rows = shared ? query.size(0) : keys.size(0);
  const auto row_mask = shared ? mask.expand({rows, mask.size(1)}) : mask;
  const double d = static_cast<double>(options.dim());
  // [B, T] scores of query rows against keys: batched, or one shared key matrix.
  auto dot_scores = [&](const torch::Tensor& k, const torch::Tensor& q) {
    // Not bmm: LibTorch's CPU bmm runs one tiny GEMM per row (with a select and dispatch each);
    // a broadcast multiply and a sum are one parallel pass.
    return shared ? torch::matmul(q, k[0].t()) : (k * q.unsqueeze(1)).sum(2);
  };
  if (kind_ == Kind::additive && !shared && !torch::GradMode::is_enabled() &&
      keys.device().is_cpu() && keys.scalar_type() == torch::kFloat32) {
    return additive_inference(query, keys, mask, key_projection);
  }
  torch::Tensor scores;
  switch (kind_) {
    case Kind::none:
      scores = torch::zeros(row_mask.sizes(), keys.options());  // uniform over valid positions
      break;
    case Kind::dot:
      scores = dot_scores(keys, query);
      break;
    case Kind::scaled_dot:
      scores = dot_scores(keys, query) / std::sqrt(d);
      break;
    case Kind::cosine: {
      // The eps keeps zero vectors (padding, an all-zero query) finite.
      const auto qn = query / query.norm(2, -1, true).clamp_min(1e-8);
      const auto kn = keys / keys.norm(2, -1, true).clamp_min(1e-8);
      scores = dot_scores(kn, qn) / options.temperature();
      break;
    }
    case Kind::additive:
      // [1 or B, T, A] + [B, 1, A] broadcasts in both cases.
      scores = v_(torch::tanh((key_projection.defined() ? key_projection : w_key_(keys)) +
                              w_query_(query).unsqueeze(1)))
                   .squeeze(2);
      break;
    case Kind::multi_head: {
      const std::int64_t b = rows, kb = keys.size(0), t = keys.size(1), h = options.heads();
      const std::int64_t dh = options.dim() / h;
      const auto q = q_proj_(query).view({b, h, 1, dh});
      const auto k = k_proj_(keys).view({kb, t, h, dh}).transpose(1, 2);  // [B|1, H, T, dh]
      const auto v = v_proj_(keys).view({kb, t, h, dh}).transpose(1, 2);
      const auto s = torch::matmul(q, k.transpose(2, 3)).squeeze(2) / std::sqrt(double(dh));
      const auto w = masked_softmax(s.reshape({b * h, t}),
                                    row_mask.unsqueeze(1).expand({b, h, t}).reshape({b * h, t}))
                         .view({b, h, 1, t});
      const auto ctx = torch::matmul(w, v).view({b, options.dim()});  // heads concatenated
      return {o_proj_(ctx), w.view({b, h, t}).mean(1)};
    }
  }
  const auto weights = masked_softmax(scores, row_mask);
  if (shared) return {torch::matmul(weights, keys[0]), weights};
  return {(weights.unsqueeze(2) * keys).sum(1), weights};  // not bmm, as in dot_scores
}

}  // namespace attnrec

namespace attnrec {

AttentionOutput AttentionImpl::additive_inference(const torch::Tensor& query,
                                                  const torch::Tensor& keys,
                                                  const torch::Tensor& mask,
                                                  const torch::Tensor& key_projection) {
  // The same maths as the generic path (tested equal), one fused pass per row.
  const auto kp = (key_projection.defined() ? key_projection : project_keys(keys)).contiguous();
  const auto qp = w_query_(query).contiguous();
  const auto v = v_->weight.reshape({-1}).contiguous();
  const auto k = keys.contiguous();
  const auto m = mask.to(torch::kBool).contiguous();
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

}  // namespace attnrec

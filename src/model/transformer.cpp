#include "attnrec/model/transformer.hpp"

#include <cmath>

#include "attnrec/model/layers.hpp"

namespace attnrec {

namespace {

// A large finite negative instead of -inf: a row with no allowed key (a padded query of an
// empty history) then gets uniform weights instead of NaN, and allowed keys are unaffected
// (exp(-1e9) is exactly 0 in float32 and float64).
constexpr double kMaskedScore = -1e9;

}  // namespace

TransformerBlockImpl::TransformerBlockImpl(TransformerEncoderOptions options_)
    : options(std::move(options_)) {
  reset();
}

void TransformerBlockImpl::reset() {
  const std::int64_t d = options.dim();
  TORCH_CHECK(options.heads() >= 1 && d % options.heads() == 0, "transformer heads: expected a ",
              "divisor of dim ", d, ", got ", options.heads());
  const std::int64_t ff = options.ff_size() > 0 ? options.ff_size() : d;
  query_ = register_module("query", torch::nn::Linear(d, d));
  key_ = register_module("key", torch::nn::Linear(d, d));
  value_ = register_module("value", torch::nn::Linear(d, d));
  out_ = register_module("out", torch::nn::Linear(d, d));
  ff_in_ = register_module("ff_in", torch::nn::Linear(d, ff));
  ff_out_ = register_module("ff_out", torch::nn::Linear(ff, d));
  const auto norm = torch::nn::LayerNormOptions({d}).eps(options.norm_eps());
  norm_attention_ = register_module("norm_attention", torch::nn::LayerNorm(norm));
  norm_ff_ = register_module("norm_ff", torch::nn::LayerNorm(norm));
  dropout_ = register_module("dropout", torch::nn::Dropout(options.dropout()));
  attention_dropout_ =
      register_module("attention_dropout", torch::nn::Dropout(options.attention_dropout()));
}

torch::Tensor TransformerBlockImpl::attend(const torch::Tensor& query_input,
                                           const torch::Tensor& key_input,
                                           const torch::Tensor& allowed) {
  const std::int64_t b = query_input.size(0), t = query_input.size(1), d = options.dim();
  const std::int64_t h = options.heads(), dh = d / h;
  TORCH_CHECK(allowed.dim() == 3 && allowed.size(1) == t && allowed.size(2) == key_input.size(1),
              "transformer allowed keys: expected [B, ", t, ", ", key_input.size(1), "], got ",
              allowed.sizes());
  auto split_heads = [&](const torch::Tensor& x) {  // [B, T, d] -> [B, h, T, dh]
    return x.view({b, -1, h, dh}).transpose(1, 2);
  };
  const auto q = split_heads(query_(query_input));
  const auto k = split_heads(key_(key_input));
  const auto v = split_heads(value_(key_input));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(dh));
  scores = scores.masked_fill(allowed.logical_not().unsqueeze(1), kMaskedScore);
  const auto weights = attention_dropout_(torch::softmax(scores, -1));
  const auto context = torch::matmul(weights, v).transpose(1, 2).reshape({b, t, d});
  return out_(context);
}

torch::Tensor TransformerBlockImpl::feed_forward(const torch::Tensor& x) {
  return ff_out_(dropout_(activate(options.activation(), ff_in_(x))));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& allowed) {
  switch (options.norm()) {
    case TransformerNorm::pre: {
      const auto n = norm_attention_(x);
      const auto y = x + dropout_(attend(n, n, allowed));
      return y + dropout_(feed_forward(norm_ff_(y)));
    }
    case TransformerNorm::post: {
      const auto y = norm_attention_(x + dropout_(attend(x, x, allowed)));
      return norm_ff_(y + dropout_(feed_forward(y)));
    }
    case TransformerNorm::sasrec: {
      // Kang & McAuley's reference code: the normalised input is the query and the residual,
      // the raw input gives keys and values.
      const auto q = norm_attention_(x);
      const auto y = q + dropout_(attend(q, x, allowed));
      return y + dropout_(feed_forward(norm_ff_(y)));
    }
  }
  TORCH_CHECK(false, "transformer norm: unknown kind");
}

TransformerEncoderImpl::TransformerEncoderImpl(TransformerEncoderOptions options_)
    : options(std::move(options_)) {
  reset();
}

void TransformerEncoderImpl::reset() {
  TORCH_CHECK(options.layers() >= 1, "transformer layers: expected >= 1, got ", options.layers());
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t l = 0; l < options.layers(); ++l) blocks_->push_back(TransformerBlock(options));
  if (options.positional() == PositionalKind::learned) {
    positions_ =
        register_module("positions", torch::nn::Embedding(options.max_length(), options.dim()));
  } else if (options.positional() == PositionalKind::sinusoidal) {
    sinusoid_ = register_buffer("sinusoid", sinusoidal_table(options.max_length(), options.dim()));
  }
  if (options.norm() != TransformerNorm::post) {
    final_norm_ = register_module(
        "final_norm",
        torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim()}).eps(options.norm_eps())));
  }
  dropout_ = register_module("dropout", torch::nn::Dropout(options.dropout()));
}

torch::Tensor TransformerEncoderImpl::recency_positions(const torch::Tensor& mask,
                                                        const torch::Tensor& lengths) {
  const auto t = torch::arange(mask.size(1), lengths.options()).unsqueeze(0);
  return (lengths.unsqueeze(1) - 1 - t).clamp_min(0) * mask.to(torch::kInt64);
}

torch::Tensor TransformerEncoderImpl::allowed_keys(const torch::Tensor& mask) const {
  const std::int64_t t = mask.size(1);
  auto allowed = mask.unsqueeze(1).expand({mask.size(0), t, t});
  if (options.causal()) {
    const auto lower = torch::ones({t, t}, mask.options().dtype(torch::kBool)).tril();
    allowed = allowed.logical_and(lower.unsqueeze(0));
  }
  return allowed;
}

torch::Tensor TransformerEncoderImpl::forward(const torch::Tensor& inputs,
                                              const torch::Tensor& mask,
                                              const torch::Tensor& lengths) {
  TORCH_CHECK(inputs.dim() == 3 && inputs.size(2) == options.dim(),
              "transformer input: expected [B, T, ", options.dim(), "], got ", inputs.sizes());
  const std::int64_t t = inputs.size(1);
  TORCH_CHECK(t <= options.max_length(), "transformer: sequence length ", t, " exceeds max_length ",
              options.max_length());
  const auto valid = mask.unsqueeze(2).to(inputs.dtype());
  auto x = options.scale_input() ? inputs * std::sqrt(static_cast<double>(options.dim())) : inputs;
  if (positions_ || sinusoid_.defined()) {
    // Lengths live on the host (pinned by the loader for CUDA): a blocking copy here would make
    // the host wait for the device in every forward pass.
    const auto pos = recency_positions(mask, lengths.to(mask.device(), /*non_blocking=*/true));
    x = x + (positions_ ? positions_(pos) : sinusoid_.index_select(0, pos.flatten()).view_as(x));
  }
  x = dropout_(x) * valid;
  const auto allowed = allowed_keys(mask);
  for (const auto& block : *blocks_) x = block->as<TransformerBlock>()->forward(x, allowed) * valid;
  if (final_norm_) x = final_norm_(x) * valid;
  return x;
}

}  // namespace attnrec

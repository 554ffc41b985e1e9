#include "attnrec/model/attention.hpp"

#include <cmath>
#include <map>

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

torch::Tensor AttentionScorer::dot_scores(const AttentionInput& in, const torch::Tensor& keys,
                                          const torch::Tensor& query) {
  // Not bmm: LibTorch's CPU bmm runs one tiny GEMM per row (with a select and dispatch each);
  // a broadcast multiply and a sum are one parallel pass.
  return in.shared ? torch::matmul(query, keys[0].t()) : (keys * query.unsqueeze(1)).sum(2);
}

AttentionOutput AttentionScorer::pool(const AttentionInput& in, const torch::Tensor& scores) {
  const auto weights = masked_softmax(scores, in.row_mask);
  if (in.shared) return {torch::matmul(weights, in.keys[0]), weights, {}};
  return {(weights.unsqueeze(2) * in.keys).sum(1), weights, {}};  // not bmm, as in dot_scores
}

AttentionOutput AttentionScorer::attend(const AttentionInput& in) { return pool(in, scores(in)); }

torch::Tensor AttentionScorer::attend_prepared(const torch::Tensor& prepared,
                                               const torch::Tensor& keys, const torch::Tensor& mask,
                                               const torch::Tensor& key_projection) {
  const std::int64_t rows = prepared.size(0);
  const auto row_mask = mask.expand({rows, mask.size(1)});
  return attend({prepared, keys, mask, row_mask, key_projection, rows > 1, rows}).context;
}

PositionTerms AttentionScorer::position_terms(const AttentionInput& in,
                                              const torch::Tensor& weights) {
  TORCH_CHECK(weights.dim() == 2, "attention weights: expected [B, T] (one head), got ",
              weights.sizes());
  return {weights.unsqueeze(2) * in.keys, torch::Tensor()};
}

AttentionImpl::AttentionImpl(AttentionOptions options_) : options(std::move(options_)) { reset(); }

void AttentionImpl::reset() {
  const auto& registry = attention_registry();
  const auto it = registry.find(options.type());
  TORCH_CHECK(it != registry.end(), "attention type: expected one of ",
              join(choice_names(attention_variants()), ", "), ", got \"", options.type(), "\"");
  TORCH_CHECK(options.dim() > 0, "attention dim: expected > 0, got ", options.dim());
  scorer_ = it->second();
  scorer_->build(*this, options);
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
  if (scorer_->uses_query()) {
    TORCH_CHECK(query.dim() == 2 && (shared || query.size(0) == keys.size(0)) &&
                    query.size(1) == options.dim(),
                "attention query: expected [", keys.size(0), ", ", options.dim(), "], got ",
                query.sizes());
  }
  const std::int64_t rows = shared ? query.size(0) : keys.size(0);
  const auto row_mask = shared ? mask.expand({rows, mask.size(1)}) : mask;
  return scorer_->attend({query, keys, mask, row_mask, key_projection, shared, rows});
}

torch::Tensor AttentionImpl::attend_prepared(const torch::Tensor& prepared,
                                             const torch::Tensor& keys, const torch::Tensor& mask,
                                             const torch::Tensor& key_projection) {
  TORCH_CHECK(keys.dim() == 3 && keys.size(0) == 1 && keys.size(2) == options.dim(),
              "attend_prepared keys: expected [1, T, ", options.dim(), "], got ", keys.sizes());
  TORCH_CHECK(mask.sizes() == keys.sizes().slice(0, 2), "attend_prepared mask: expected ",
              keys.sizes().slice(0, 2), ", got ", mask.sizes());
  TORCH_CHECK(prepared.dim() == 2, "attend_prepared queries: expected [rows, *], got ",
              prepared.sizes());
  return scorer_->attend_prepared(prepared, keys, mask, key_projection);
}

PositionTerms AttentionImpl::position_terms(const torch::Tensor& keys, const torch::Tensor& mask,
                                            const torch::Tensor& weights) {
  TORCH_CHECK(keys.dim() == 3 && keys.size(2) == options.dim(), "attention keys: expected [B, T, ",
              options.dim(), "], got ", keys.sizes());
  TORCH_CHECK(weights.size(0) == keys.size(0) && weights.size(-1) == keys.size(1),
              "attention weights: expected [", keys.size(0), ", (heads,) ", keys.size(1), "], got ",
              weights.sizes());
  const torch::Tensor none;
  return scorer_->position_terms({none, keys, mask, mask, none, false, keys.size(0)}, weights);
}

}  // namespace attnrec

#pragma once
/// \file Masked attention over encoder outputs. One module, several scoring functions (see
/// the registry): dot, scaled_dot, additive, cosine, multi_head, none (masked mean).

#include <torch/torch.h>
#include <string>

namespace attnrec {

/// Options of AttentionImpl.
struct AttentionOptions {
  AttentionOptions(std::int64_t dim) : dim_(dim) {}  // NOLINT: LibTorch-style implicit options
  /// Size of the keys/values and the query.
  TORCH_ARG(std::int64_t, dim);
  /// Scoring function, a name from attention_variants(). Default: "additive"
  TORCH_ARG(std::string, type) = "additive";
  /// Heads of "multi_head"; must divide dim. Default: 4
  TORCH_ARG(std::int64_t, heads) = 4;
  /// Hidden size of the "additive" MLP. Default: 64
  TORCH_ARG(std::int64_t, hidden) = 64;
  /// Temperature dividing "cosine" scores. Default: 0.1
  TORCH_ARG(double, temperature) = 0.1;
};

/// Result of an attention pass.
struct AttentionOutput {
  torch::Tensor context;  ///< [B, dim]
  torch::Tensor weights;  ///< [B, T]; zero at padding, rows sum to 1 (0 for all-padding rows)
};

/// Softmax over the positions where `mask` is true. Rows with no valid position get all-zero
/// weights (not NaN), so their context vector is zero and gradients stay finite.
torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& mask);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(AttentionOptions options);
  void reset();
  /// query [B, dim], keys [B, T, dim], mask [B, T] bool. `key_projection`, when defined, is
  /// project_keys(keys) computed earlier (rows may be repeated), so that scoring one history
  /// against many candidates projects its keys once.
  AttentionOutput forward(const torch::Tensor& query, const torch::Tensor& keys,
                          const torch::Tensor& mask, const torch::Tensor& key_projection = {});
  /// The query-independent part of the scores (additive: W_k keys); undefined for the other
  /// types, whose key-side work is a cheap product.
  torch::Tensor project_keys(const torch::Tensor& keys);
  /// W_k [hidden, dim] such that project_keys(keys) = keys W_k^T (additive; else undefined),
  /// for encoders that can fuse the projection into their own kernel.
  torch::Tensor key_weight() const;

  AttentionOptions options;

 private:
  /// Additive attention without autograd on float32 CPU tensors: one fused kernel per row.
  AttentionOutput additive_inference(const torch::Tensor& query, const torch::Tensor& keys,
                                     const torch::Tensor& mask,
                                     const torch::Tensor& key_projection);

  enum class Kind { dot, scaled_dot, additive, cosine, multi_head, none };
  Kind kind_ = Kind::additive;
  torch::nn::Linear w_query_{nullptr}, w_key_{nullptr}, v_{nullptr};  // additive
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, o_proj_{nullptr};
};
TORCH_MODULE(Attention);

}  // namespace attnrec

#pragma once
/// \file Self-attention encoder (SASRec / BST / BERT4Rec style): positions, `layers` blocks of
/// multi-head self-attention and a position-wise feed-forward network with residual connections
/// and layer norm, causal or bidirectional, padding masked.

#include <torch/torch.h>

#include "attnrec/config/choices.hpp"

namespace attnrec {

/// Options of TransformerEncoderImpl.
struct TransformerEncoderOptions {
  TransformerEncoderOptions(std::int64_t dim) : dim_(dim) {}  // NOLINT: LibTorch-style options
  /// Model size: the input vectors' size, kept through every block.
  TORCH_ARG(std::int64_t, dim);
  /// Blocks. Default: 2
  TORCH_ARG(std::int64_t, layers) = 2;
  /// Attention heads; must divide dim. Default: 1
  TORCH_ARG(std::int64_t, heads) = 1;
  /// Hidden size of the feed-forward network (0: dim). Default: 0
  TORCH_ARG(std::int64_t, ff_size) = 0;
  /// Activation inside the feed-forward network. Default: relu
  TORCH_ARG(ActivationKind, activation) = ActivationKind::relu;
  /// Where layer norm sits (pre, post or sasrec; see TransformerNorm). Default: pre
  TORCH_ARG(TransformerNorm, norm) = TransformerNorm::pre;
  /// Dropout on the input (embeddings plus positions), inside the feed-forward network and on
  /// each residual branch. Default: 0.2
  TORCH_ARG(double, dropout) = 0.2;
  /// Dropout on the attention weights. Default: 0.2
  TORCH_ARG(double, attention_dropout) = 0.2;
  /// Position t attends to positions <= t only (SASRec); false: to every valid position
  /// (BERT4Rec, BST). Default: true
  TORCH_ARG(bool, causal) = true;
  /// Position encoding added to the input: learned, sinusoidal or none. Positions count back
  /// from the most recent event (0 = the newest), so the newest item always gets the same one,
  /// whatever the history's length. Default: learned
  TORCH_ARG(PositionalKind, positional) = PositionalKind::learned;
  /// Longest sequence (size of the learned position table). Default: 50
  TORCH_ARG(std::int64_t, max_length) = 50;
  /// Multiply the input by sqrt(dim) before adding positions (as SASRec does). Default: false
  TORCH_ARG(bool, scale_input) = false;
  /// Epsilon of every layer norm. Default: 1e-8
  TORCH_ARG(double, norm_eps) = 1e-8;
};

/// One block: multi-head self-attention, then the feed-forward network, each with a residual
/// connection and layer norm placed as `norm` says.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(TransformerEncoderOptions options);
  void reset();
  /// x [B, T, dim]; `allowed` [B, T, T] bool: query position i may attend to key position j.
  /// Rows with no allowed key get uniform weights (their outputs are padding, zeroed later).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed);
  /// The attention sub-layer alone: softmax(Q K^T / sqrt(d_head)) V, heads concatenated,
  /// projected. `query_input` gives Q, `key_input` K and V.
  torch::Tensor attend(const torch::Tensor& query_input, const torch::Tensor& key_input,
                       const torch::Tensor& allowed);

  TransformerEncoderOptions options;

 private:
  torch::Tensor feed_forward(const torch::Tensor& x);

  torch::nn::Linear query_{nullptr}, key_{nullptr}, value_{nullptr}, out_{nullptr};
  torch::nn::Linear ff_in_{nullptr}, ff_out_{nullptr};
  torch::nn::LayerNorm norm_attention_{nullptr}, norm_ff_{nullptr};
  torch::nn::Dropout dropout_{nullptr}, attention_dropout_{nullptr};
};
TORCH_MODULE(TransformerBlock);

/// The whole encoder over right-padded sequences. Padding never influences a valid position
/// (it is masked out of every key set), and outputs at padded positions are zero.
class TransformerEncoderImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderImpl(TransformerEncoderOptions options);
  void reset();
  /// inputs [B, T, dim], mask [B, T] bool (valid positions first), lengths [B] int64 ->
  /// [B, T, dim].
  torch::Tensor forward(const torch::Tensor& inputs, const torch::Tensor& mask,
                        const torch::Tensor& lengths);
  /// [B, T, T] bool: which key each query position may attend to.
  torch::Tensor allowed_keys(const torch::Tensor& mask) const;
  /// [B, T] int64: each position's distance from the newest event (0 at lengths - 1); padded
  /// positions get 0.
  static torch::Tensor recency_positions(const torch::Tensor& mask, const torch::Tensor& lengths);

  TransformerEncoderOptions options;

 private:
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::Embedding positions_{nullptr};
  torch::Tensor sinusoid_;                    // buffer [max_length, dim] for "sinusoidal"
  torch::nn::LayerNorm final_norm_{nullptr};  // pre and sasrec norms end with one
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(TransformerEncoder);

}  // namespace attnrec

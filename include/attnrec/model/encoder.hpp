#pragma once
/// \file The sequence encoder over history embeddings: LSTM, GRU, none, or transformer.

#include <torch/torch.h>

#include <string>
#include "attnrec/config/choices.hpp"
#include "attnrec/model/transformer.hpp"

namespace attnrec {

/// Options of SequenceEncoderImpl.
struct SequenceEncoderOptions {
  SequenceEncoderOptions(std::int64_t input_size)  // NOLINT: LibTorch-style implicit options
      : input_size_(input_size) {}
  /// Size of the input vectors (the item embedding size).
  TORCH_ARG(std::int64_t, input_size);
  /// "lstm", "gru" or "none". Default: "lstm"
  TORCH_ARG(EncoderKind, type) = EncoderKind::lstm;
  /// Hidden size per direction. Default: 64
  TORCH_ARG(std::int64_t, hidden_size) = 64;
  /// Stacked layers. Default: 1
  TORCH_ARG(std::int64_t, layers) = 1;
  /// Run both directions and concatenate. Default: false
  TORCH_ARG(bool, bidirectional) = false;
  /// Dropout between stacked layers. Default: 0
  TORCH_ARG(double, dropout) = 0.0;
  /// Run unidirectional LSTMs on float32 CPU inputs with fused_lstm() (same maths, one autograd
  /// node per layer, no work on padding); false always uses torch::nn::LSTM. Default: true
  TORCH_ARG(bool, fused) = true;
  /// The transformer's options (type transformer; its dim must equal input_size).
  TORCH_ARG(TransformerEncoderOptions, transformer) = TransformerEncoderOptions(64);
};

/// Encodes right-padded sequences. Padding never influences valid positions: a unidirectional
/// RNN reads left to right, so with right padding the valid outputs are computed before any pad
/// is seen; the bidirectional case packs the sequences. Outputs at padded positions are zero.
class SequenceEncoderImpl : public torch::nn::Module {
 public:
  explicit SequenceEncoderImpl(SequenceEncoderOptions options);
  void reset();
  /// inputs [B, T, input_size], mask [B, T] bool, lengths [B] int64 -> [B, T, output_size()].
  torch::Tensor forward(const torch::Tensor& inputs, const torch::Tensor& mask,
                        const torch::Tensor& lengths);
  std::int64_t output_size() const;

  /// True when the first layer can run from a per-item gate table (fused LSTM, one direction).
  bool supports_item_gates() const;
  /// The first layer's input gates of each row of `x` [N, input_size]: x W_ih^T + b_ih + b_hh.
  torch::Tensor input_gates(const torch::Tensor& x);
  /// Inference only: forward() for item ids [B, T] whose first-layer input gates are rows of
  /// `item_gates` (input_gates() of every item's representation). With `projection` W
  /// [a, output_size()], also returns output W^T [B, T, a] when it can compute it inside the
  /// recurrent kernel (one layer; see fused_lstm_items), else an undefined tensor.
  std::tuple<torch::Tensor, torch::Tensor> forward_items(const torch::Tensor& ids,
                                                         const torch::Tensor& lengths,
                                                         const torch::Tensor& item_gates,
                                                         const torch::Tensor& projection = {});

  SequenceEncoderOptions options;

 private:
  /// Fused LSTM layers [first, layers) over `x` (dropout between stacked layers in training).
  torch::Tensor fused_layers(torch::Tensor x, const torch::Tensor& lengths, std::int64_t first);

  torch::nn::LSTM lstm_{nullptr};
  torch::nn::GRU gru_{nullptr};
  TransformerEncoder transformer_{nullptr};
};
TORCH_MODULE(SequenceEncoder);

}  // namespace attnrec

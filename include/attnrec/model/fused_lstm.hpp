#pragma once
/// \file A fused CPU LSTM layer over right-padded sequences: the same maths as one layer of
/// torch::nn::LSTM (gate order input, forget, cell, output; two biases; zero initial state),
/// run as one autograd node with hand-written element-wise kernels and no work on padding.
///
/// Why: LibTorch's LSTM runs ~10 operators per time step forward and ~15 backward, each with
/// its own dispatch, allocation and autograd bookkeeping; at recommender sizes (batch 256,
/// hidden 64) that overhead, not arithmetic, dominates a training step. Here a step is one GEMM
/// (h_{t-1} W_hh^T, over the sequences still running) plus one vectorised loop; the input
/// projection, input gradient and weight gradients are a few large GEMMs over the packed valid
/// positions only (sequences sorted by length, as in pack_padded_sequence). The batch is split
/// into one part per intra-op thread, balanced by total length, and the parts run in parallel.

#include <torch/torch.h>

namespace attnrec {

/// True when fused_lstm() can run on `input`: a float32 tensor on the CPU. Everything else
/// (CUDA, other dtypes) should use torch::nn::LSTM, which dispatches to cuDNN on CUDA.
bool fused_lstm_supported(const torch::Tensor& input);

/// One unidirectional LSTM layer. `input` [B, T, E] float32 CPU, right-padded; `lengths` [B]
/// int64 on the CPU with values in [0, T]; `w_ih` [4H, E], `w_hh` [4H, H], `b_ih` and `b_hh`
/// [4H] as torch::nn::LSTM stores them. Returns [B, T, H]: the hidden states, zero at padded
/// positions (t >= lengths[b]). Differentiable with respect to input and all four parameters;
/// without autograd (NoGradGuard / InferenceMode, or nothing requires grad) it keeps no
/// per-step state and runs the input projection step by step, so memory is O(B T H).
torch::Tensor fused_lstm(const torch::Tensor& input, const torch::Tensor& lengths,
                         const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                         const torch::Tensor& b_ih, const torch::Tensor& b_hh);

/// Inference only (no autograd): the first LSTM layer of an item sequence from a per-item table
/// of input gates, item_gates[v] = x_v W_ih^T + b_ih + b_hh for the item's representation x_v
/// (see RecommenderImpl::cache_item_gates): the input GEMM of every step becomes a row copy.
/// `ids` [B, T] int64 CPU, right-padded; returns what fused_lstm() returns for those inputs.
///
/// With `projection` W [a, h] (the attention's key weights), also returns out W^T [B, T, a]
/// (zeros at padding), computed inside the recurrent kernel while each step's hidden states
/// are in cache; undefined when the kernel cannot (h not a multiple of 8 or a of 16), and the
/// caller projects as usual.
std::tuple<torch::Tensor, torch::Tensor> fused_lstm_items(const torch::Tensor& ids,
                                                          const torch::Tensor& lengths,
                                                          const torch::Tensor& item_gates,
                                                          const torch::Tensor& w_hh,
                                                          const torch::Tensor& projection = {});

}  // namespace attnrec

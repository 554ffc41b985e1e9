#pragma once
// Private to src/model: the element-wise part of one LSTM time step, on raw float rows.
// Kept free of LibTorch so that it compiles in seconds and vectorises (see lstm_kernels.cpp).

#include <cstdint>

namespace attnrec::kernels {

/// Forward of one step for `rows` rows of hidden size `h`. `gates` [rows, 4h] holds the
/// pre-activations in LibTorch's order (input, forget, cell, output) and is overwritten with
/// the activations (sigmoid, sigmoid, tanh, sigmoid). `c_prev` [rows, h] is the previous cell
/// state (nullptr at the first step, meaning zeros). Writes c [rows, h], h_out [rows, h] and,
/// tanh(c) [rows, h] into `tanh_c` (kept for the backward pass).
void lstm_step_forward(float* gates, const float* c_prev, float* c, float* tanh_c, float* h_out,
                       std::int64_t rows, std::int64_t h);

/// Backward of one step. Inputs: the activated `gates` [rows, 4h], `tanh_c` and `c_prev` (nullptr
/// = zeros) of the forward step, `grad_h` [rows, h] the gradient reaching h_t from the output
/// and `grad_h_next` [rows, h] the one coming back from step t + 1 (through W_hh).
/// `grad_c_next` [rows, h] holds dL/dc_t from step t + 1 on entry and dL/dc_{t-1} on return.
/// Writes `grad_gates` [rows, 4h]: the gradient of the pre-activations.
void lstm_step_backward(const float* gates, const float* tanh_c, const float* c_prev,
                        const float* grad_h, const float* grad_h_next, float* grad_c_next,
                        float* grad_gates, std::int64_t rows, std::int64_t h);

}  // namespace attnrec::kernels

namespace attnrec::kernels {

/// Floats per unit block of the recurrent kernel below: hidden units are processed eight at
/// a time (one 256-bit register per gate).
constexpr std::int64_t kRecurrentBlock = 8;

/// Lays W_hh [4h, h] out for `lstm_items_step`: per block of eight hidden units, per input
/// k, the four gates' eight weights side by side ([h / 8][h][4][8]). `h` must be a multiple of
/// kRecurrentBlock. `packed` holds 4 h^2 floats.
void pack_recurrent_weights(const float* w_hh, float* packed, std::int64_t h);

/// One step of an LSTM layer whose input part of the gates is already known per row (the
/// item-gate table), fused: gates = x[r] + h_prev[r] W_hh^T computed in registers, then the
/// cell update, without writing the gates anywhere. Sigmoid and tanh are a rational
/// approximation (within a few ulp of the exact functions; the training path's differ as much). Row
/// pointers: `x[r]` [4h] input gates (biases included), `h_prev[r]` [h] the previous hidden state
/// (`h_prev` nullptr at the first step, meaning zeros), `h_out[r]` [h] where the new hidden state
/// goes (it may be the padded output tensor). `c` [rows, h] holds the previous cell state and is
/// updated in place. `packed_w_hh` comes from pack_recurrent_weights; `h` is a multiple of
/// kRecurrentBlock.
///
/// With `packed_proj` (from pack_projection_weights), also writes the projection of the new
/// hidden states, proj_out[r] [a] = h_out[r] W^T (the attention's key projection), while they
/// are in cache.
void lstm_items_step(const float* packed_w_hh, const float* const* x, const float* const* h_prev,
                     float* c, float* const* h_out, std::int64_t rows, std::int64_t h,
                     const float* packed_proj = nullptr, float* const* proj_out = nullptr,
                     std::int64_t a = 0);

/// Outputs per block of the projection in lstm_items_step (two 256-bit registers).
constexpr std::int64_t kProjectionBlock = 16;

/// Lays a projection W [a, h] out for `lstm_items_step`: per block of sixteen outputs, per
/// input k, their sixteen weights ([a / 16][h][16]). `a` must be a multiple of
/// kProjectionBlock; `packed` holds a h floats.
void pack_projection_weights(const float* w, float* packed, std::int64_t a, std::int64_t h);

}  // namespace attnrec::kernels

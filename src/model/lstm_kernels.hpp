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

#include "lstm_kernels.hpp"

#include "../util/target_clones.hpp"
#include "activations.hpp"

// Why hand-written: LibTorch runs a time step's element-wise work as ~10 separate operators
// forward and ~15 backward, each a dispatch, an allocation and a pass over memory; at batch 256
// and hidden 64 those passes are a few microseconds of work each and the overhead dominates.
// Here one loop per step reads each gate once, vectorised (activations.hpp) for AVX2/FMA and
// for the baseline (ATTNREC_CLONES).

namespace attnrec::kernels {
namespace {

// One row; restrict-qualified parameters (not locals) so that GCC proves the gate slices
// disjoint and vectorises the loop.
template <bool kHasPrev>
inline __attribute__((always_inline)) void forward_row(
    float* __restrict gi, float* __restrict gf, float* __restrict gg, float* __restrict go,
    const float* __restrict cp, float* __restrict cr, float* __restrict tr,
    float* __restrict hr, std::int64_t h) {
  for (std::int64_t j = 0; j < h; ++j) {
    const float i = sigmoid(gi[j]);
    const float f = sigmoid(gf[j]);
    const float g = tanh_fast(gg[j]);
    const float o = sigmoid(go[j]);
    gi[j] = i;
    gf[j] = f;
    gg[j] = g;
    go[j] = o;
    const float cell = kHasPrev ? f * cp[j] + i * g : i * g;
    const float t = tanh_fast(cell);
    cr[j] = cell;
    tr[j] = t;
    hr[j] = o * t;
  }
}

template <bool kHasPrev>
inline __attribute__((always_inline)) void backward_row(
    const float* __restrict gi, const float* __restrict gf, const float* __restrict gg,
    const float* __restrict go, const float* __restrict tc, const float* __restrict cp,
    const float* __restrict dh_out, const float* __restrict dh_next,
    float* __restrict dc_next, float* __restrict di, float* __restrict df,
    float* __restrict dg, float* __restrict d_o, std::int64_t h) {
  for (std::int64_t j = 0; j < h; ++j) {
    const float dh = dh_out[j] + dh_next[j];
    const float i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tc[j];
    const float dc = dh * o * (1.0f - t * t) + dc_next[j];
    d_o[j] = dh * t * o * (1.0f - o);
    di[j] = dc * g * i * (1.0f - i);
    dg[j] = dc * i * (1.0f - g * g);
    df[j] = kHasPrev ? dc * cp[j] * f * (1.0f - f) : 0.0f;
    dc_next[j] = dc * f;
  }
}

template <bool kHasPrev>
inline __attribute__((always_inline)) void forward_rows(float* gates, const float* c_prev,
                                                        float* c, float* tanh_c, float* h_out,
                                                        std::int64_t rows, std::int64_t h) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* g = gates + r * 4 * h;
    forward_row<kHasPrev>(g, g + h, g + 2 * h, g + 3 * h, kHasPrev ? c_prev + r * h : nullptr,
                          c + r * h, tanh_c + r * h, h_out + r * h, h);
  }
}

template <bool kHasPrev>
inline __attribute__((always_inline)) void backward_rows(
    const float* gates, const float* tanh_c, const float* c_prev, const float* grad_h,
    const float* grad_h_next, float* grad_c_next, float* grad_gates, std::int64_t rows,
    std::int64_t h) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* g = gates + r * 4 * h;
    float* d = grad_gates + r * 4 * h;
    backward_row<kHasPrev>(g, g + h, g + 2 * h, g + 3 * h, tanh_c + r * h,
                           kHasPrev ? c_prev + r * h : nullptr, grad_h + r * h,
                           grad_h_next + r * h, grad_c_next + r * h, d, d + h, d + 2 * h,
                           d + 3 * h, h);
  }
}

}  // namespace

ATTNREC_CLONES
void lstm_step_forward(float* gates, const float* c_prev, float* c, float* tanh_c, float* h_out,
                       std::int64_t rows, std::int64_t h) {
  if (c_prev) {
    forward_rows<true>(gates, c_prev, c, tanh_c, h_out, rows, h);
  } else {
    forward_rows<false>(gates, c_prev, c, tanh_c, h_out, rows, h);
  }
}

ATTNREC_CLONES
void lstm_step_backward(const float* gates, const float* tanh_c, const float* c_prev,
                        const float* grad_h, const float* grad_h_next, float* grad_c_next,
                        float* grad_gates, std::int64_t rows, std::int64_t h) {
  if (c_prev) {
    backward_rows<true>(gates, tanh_c, c_prev, grad_h, grad_h_next, grad_c_next, grad_gates, rows,
                        h);
  } else {
    backward_rows<false>(gates, tanh_c, c_prev, grad_h, grad_h_next, grad_c_next, grad_gates,
                         rows, h);
  }
}

}  // namespace attnrec::kernels

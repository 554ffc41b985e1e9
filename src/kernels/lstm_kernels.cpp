#include "lstm_kernels.hpp"

#include <algorithm>

#include "activations.hpp"
#include "target_clones.hpp"

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
inline __attribute__((always_inline)) void forward_row(float* __restrict gi, float* __restrict gf,
                                                       float* __restrict gg, float* __restrict go,
                                                       const float* __restrict cp,
                                                       float* __restrict cr, float* __restrict tr,
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
    const float* __restrict dh_out, const float* __restrict dh_next, float* __restrict dc_next,
    float* __restrict di, float* __restrict df, float* __restrict dg, float* __restrict d_o,
    std::int64_t h) {
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
inline __attribute__((always_inline)) void forward_rows(float* gates, const float* c_prev, float* c,
                                                        float* tanh_c, float* h_out,
                                                        std::int64_t rows, std::int64_t h) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* g = gates + r * 4 * h;
    forward_row<kHasPrev>(g, g + h, g + 2 * h, g + 3 * h, kHasPrev ? c_prev + r * h : nullptr,
                          c + r * h, tanh_c + r * h, h_out + r * h, h);
  }
}

template <bool kHasPrev>
inline __attribute__((always_inline)) void backward_rows(const float* gates, const float* tanh_c,
                                                         const float* c_prev, const float* grad_h,
                                                         const float* grad_h_next,
                                                         float* grad_c_next, float* grad_gates,
                                                         std::int64_t rows, std::int64_t h) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* g = gates + r * 4 * h;
    float* d = grad_gates + r * 4 * h;
    backward_row<kHasPrev>(g, g + h, g + 2 * h, g + 3 * h, tanh_c + r * h,
                           kHasPrev ? c_prev + r * h : nullptr, grad_h + r * h, grad_h_next + r * h,
                           grad_c_next + r * h, d, d + h, d + 2 * h, d + 3 * h, h);
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
    backward_rows<false>(gates, tanh_c, c_prev, grad_h, grad_h_next, grad_c_next, grad_gates, rows,
                         h);
  }
}

}  // namespace attnrec::kernels

// The recurrent step of inference, fused. Scoring a file is dominated by h_{t-1} W_hh^T: with
// a BLAS GEMM per step the gates make a round trip through memory (GEMM writes 4h floats per
// row, the element-wise pass reads them back), the item-gate rows are first copied into the
// GEMM's output, and every call re-packs W_hh. Here a 2-row x 32-gate tile is accumulated in
// registers over k, the table row is added and the cell updated while the tile is still in
// registers; W_hh is packed once per batch.

// The helpers below pass 256-bit vectors by value; they are always inlined, so the baseline
// clone's different vector ABI (which GCC warns about) never applies.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace attnrec::kernels {
namespace {

// GCC vector extensions: one code path that becomes AVX2/FMA in the x86-64-v3 clone and pairs
// of SSE registers in the baseline clone.
typedef float V8 __attribute__((vector_size(32)));
typedef float V8Unaligned __attribute__((vector_size(32), aligned(4), may_alias));

inline __attribute__((always_inline)) V8 load8(const float* p) {
  return *reinterpret_cast<const V8Unaligned*>(p);
}
inline __attribute__((always_inline)) void store8(float* p, V8 v) {
  *reinterpret_cast<V8Unaligned*>(p) = v;
}
// A scalar in a vector operation is broadcast (vbroadcastss); `s - 0` is exact for every s, so
// GCC drops the subtraction. (A {s, s, ...} initializer compiled to eight inserts.)
inline __attribute__((always_inline)) V8 splat(float s) { return s - V8{}; }

// activations.hpp's rational tanh on clamped vectors, kept as numerator and denominator.
// Inference only: the training kernels above use activations.hpp's
// exp-based forms. Why a ratio: sigmoid(x) = (q + p) / 2q at x / 2 and tanh = p / q let the
// cell update put all its products over one denominator (two divisions per step instead of
// five), and the polynomials are all FMAs; the step is ~13% faster than with exp and division.
inline __attribute__((always_inline)) void tanh_ratio(V8 x, V8& p, V8& q) {
  x = x < splat(-9.0f) ? splat(-9.0f) : x;
  x = x > splat(9.0f) ? splat(9.0f) : x;
  tanh_rational_terms(x, p, q);
}

/// Input gates plus h_prev W_hh^T for rows r .. r + R - 1 and two of the four gates (`half` 0:
/// input and forget, 1: cell and output) of hidden units j0 .. j0 + 7, into acc. A half tile
/// keeps 2R accumulators, two weight vectors and a broadcast in the 16 AVX registers, so
/// each k costs 2 + R loads for 2R FMAs (a full 4-gate tile would need more registers than
/// there are and re-load the weights for every row).
template <int R, bool kPrev>
inline __attribute__((always_inline)) void half_tile(const float* panel, const float* const* x,
                                                     const float* const* h_prev, std::int64_t j0,
                                                     std::int64_t h, int half, V8 (&acc)[R][2]) {
  for (int r = 0; r < R; ++r) {
    acc[r][0] = load8(x[r] + (2 * half) * h + j0);
    acc[r][1] = load8(x[r] + (2 * half + 1) * h + j0);
  }
  if (!kPrev) return;
  const float* w = panel + 16 * half;
  for (std::int64_t k = 0; k < h; ++k, w += 32) {
    const V8 w0 = load8(w), w1 = load8(w + 8);
    for (int r = 0; r < R; ++r) {
      const float a = h_prev[r][k];
      acc[r][0] += a * w0;
      acc[r][1] += a * w1;
    }
  }
}

/// Rows r .. r + R - 1, hidden units j0 .. j0 + 7. `panel` is the unit block's packed W_hh.
template <int R, bool kPrev>
inline __attribute__((always_inline)) void items_tile(const float* panel, const float* const* x,
                                                      const float* const* h_prev, float* c,
                                                      float* const* h_out, std::int64_t j0,
                                                      std::int64_t h) {
  V8 if_gates[R][2], go_gates[R][2];
  half_tile<R, kPrev>(panel, x, h_prev, j0, h, 0, if_gates);
  half_tile<R, kPrev>(panel, x, h_prev, j0, h, 1, go_gates);
  for (int r = 0; r < R; ++r) {
    // Each activation as a ratio p / q of Eigen's rational tanh; the products of the cell
    // update are taken over one common denominator, so a step costs two divisions, not five.
    V8 pi, qi, pf, qf, pg, qg, po, qo;
    tanh_ratio(splat(0.5f) * if_gates[r][0], pi, qi);
    tanh_ratio(splat(0.5f) * if_gates[r][1], pf, qf);
    tanh_ratio(go_gates[r][0], pg, qg);
    tanh_ratio(splat(0.5f) * go_gates[r][1], po, qo);
    float* cr = c + r * h + j0;
    const V8 ig_num = (qi + pi) * pg;  // i g = (qi + pi) pg / (2 qi qg)
    const V8 ig_den = splat(2.0f) * qi * qg;
    const V8 cell = kPrev ? ((qf + pf) * load8(cr) * ig_den + splat(2.0f) * qf * ig_num) /
                                (splat(2.0f) * qf * ig_den)
                          : ig_num / ig_den;
    store8(cr, cell);
    V8 pc, qc;
    tanh_ratio(cell, pc, qc);
    store8(h_out[r] + j0, ((qo + po) * pc) / (splat(2.0f) * qo * qc));
  }
}

/// Rows r .. r + R - 1 of a projection of the new hidden states: out[r][o0 .. o0 + 15] =
/// h[r] W^T for sixteen outputs (`panel`: their packed weights, [h][16]). The same register
/// budget as half_tile.
template <int R>
inline __attribute__((always_inline)) void projection_tile(const float* panel,
                                                           const float* const* h_rows,
                                                           float* const* out, std::int64_t o0,
                                                           std::int64_t h) {
  V8 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = V8{};
  const float* w = panel;
  for (std::int64_t k = 0; k < h; ++k, w += kProjectionBlock) {
    const V8 w0 = load8(w), w1 = load8(w + 8);
    for (int r = 0; r < R; ++r) {
      const float a = h_rows[r][k];
      acc[r][0] += a * w0;
      acc[r][1] += a * w1;
    }
  }
  for (int r = 0; r < R; ++r) {
    store8(out[r] + o0, acc[r][0]);
    store8(out[r] + o0 + 8, acc[r][1]);
  }
}

template <bool kPrev>
inline __attribute__((always_inline)) void items_step(const float* packed, const float* const* x,
                                                      const float* const* h_prev, float* c,
                                                      float* const* h_out, std::int64_t rows,
                                                      std::int64_t h, const float* packed_proj,
                                                      float* const* proj_out, std::int64_t a) {
  // Blocks of rows small enough that their hidden states (A) and table rows stay in L1/L2
  // while all unit blocks' panels (8 KB each at h = 64) pass over them.
  constexpr std::int64_t kRows = 20;
  constexpr int kTile = 5;
  // Rows r .. re - 1 as tiles of kTile rows, then one of the remaining 1..5 (TILE(n) does n
  // rows and advances r; a lambda here would not inherit the clone's target and would run
  // the baseline code).
#define ATTNREC_ROW_TILES(TILE) \
  while (r + kTile <= re) {     \
    TILE(kTile);                \
  }                             \
  switch (re - r) {             \
    case 5:                     \
      TILE(5);                  \
      break;                    \
    case 4:                     \
      TILE(4);                  \
      break;                    \
    case 3:                     \
      TILE(3);                  \
      break;                    \
    case 2:                     \
      TILE(2);                  \
      break;                    \
    case 1:                     \
      TILE(1);                  \
      break;                    \
    default:                    \
      break;                    \
  }
  for (std::int64_t rb = 0; rb < rows; rb += kRows) {
    const std::int64_t re = std::min(rows, rb + kRows);
    for (std::int64_t j0 = 0; j0 < h; j0 += kRecurrentBlock) {
      const float* panel = packed + j0 * h * 4;
      std::int64_t r = rb;
      // The table rows are random rows of a large table, a cache miss each: every tile asks
      // for the slice it reads of the next block's rows, so the requests are spread over the
      // work and arrive a block ahead.
#define ATTNREC_ITEMS_TILE(n)                                                                    \
  items_tile<n, kPrev>(panel, x + r, kPrev ? h_prev + r : nullptr, c + r * h, h_out + r, j0, h); \
  for (std::int64_t next = r + kRows; next < std::min(rows, r + kRows + n); ++next) {            \
    for (std::int64_t q = 0; q < 4; ++q) __builtin_prefetch(x[next] + q * h + j0);               \
  }                                                                                              \
  r += n
      ATTNREC_ROW_TILES(ATTNREC_ITEMS_TILE);
#undef ATTNREC_ITEMS_TILE
    }
    // The block's new hidden states are still in L1: project them now rather than in a
    // separate pass over the [B, T, h] output.
    for (std::int64_t o0 = 0; packed_proj && o0 < a; o0 += kProjectionBlock) {
      const float* panel = packed_proj + o0 * h;
      std::int64_t r = rb;
#define ATTNREC_PROJECTION_TILE(n)                           \
  projection_tile<n>(panel, h_out + r, proj_out + r, o0, h); \
  r += n
      ATTNREC_ROW_TILES(ATTNREC_PROJECTION_TILE);
#undef ATTNREC_PROJECTION_TILE
    }
  }
#undef ATTNREC_ROW_TILES
}

}  // namespace

void pack_recurrent_weights(const float* w_hh, float* packed, std::int64_t h) {
  for (std::int64_t j0 = 0; j0 < h; j0 += kRecurrentBlock) {
    for (std::int64_t k = 0; k < h; ++k) {
      for (std::int64_t q = 0; q < 4; ++q) {
        for (std::int64_t l = 0; l < kRecurrentBlock; ++l) {
          *packed++ = w_hh[(q * h + j0 + l) * h + k];
        }
      }
    }
  }
}

void pack_projection_weights(const float* w, float* packed, std::int64_t a, std::int64_t h) {
  for (std::int64_t o0 = 0; o0 < a; o0 += kProjectionBlock) {
    for (std::int64_t k = 0; k < h; ++k) {
      for (std::int64_t l = 0; l < kProjectionBlock; ++l) *packed++ = w[(o0 + l) * h + k];
    }
  }
}

ATTNREC_CLONES
void lstm_items_step(const float* packed_w_hh, const float* const* x, const float* const* h_prev,
                     float* c, float* const* h_out, std::int64_t rows, std::int64_t h,
                     const float* packed_proj, float* const* proj_out, std::int64_t a) {
  if (h_prev) {
    items_step<true>(packed_w_hh, x, h_prev, c, h_out, rows, h, packed_proj, proj_out, a);
  } else {
    items_step<false>(packed_w_hh, x, nullptr, c, h_out, rows, h, packed_proj, proj_out, a);
  }
}

}  // namespace attnrec::kernels

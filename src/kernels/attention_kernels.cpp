#include "attention_kernels.hpp"

#include <cmath>
#include <cstring>

#include "activations.hpp"
#include "target_clones.hpp"

// Why hand-written: scoring with LibTorch runs add, tanh, a [*, a] x [a, 1] product, masking
// and softmax as separate passes over [rows, steps, a] tensors (tanh alone ~2 ns an element);
// here each position's score is one vectorised loop over a, and padding is skipped.

namespace attnrec::kernels {

namespace {

/// v . tanh(k + q) over a, in eight independent partial sums (vectorises without reassociation).
inline __attribute__((always_inline)) float additive_score(const float* k, const float* q,
                                                           const float* v, std::int64_t a) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t j = 0;
  for (; j + 8 <= a; j += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += v[j + l] * tanh_rational(k[j + l] + q[j + l]);
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < a; ++j) s += v[j] * tanh_rational(k[j] + q[j]);
  return s;
}

}  // namespace

ATTNREC_CLONES
void additive_attention_forward(const float* key_projection, const float* query_projection,
                                const float* v, const float* keys, const bool* mask, float* weights,
                                float* context, std::int64_t rows, std::int64_t steps,
                                std::int64_t a, std::int64_t d) {
  for (std::int64_t b = 0; b < rows; ++b) {
    const float* q = query_projection + b * a;
    const bool* m = mask + b * steps;
    float* w = weights + b * steps;
    float best = -INFINITY;
    bool any = false;
    for (std::int64_t t = 0; t < steps; ++t) {
      if (!m[t]) {
        w[t] = 0.0f;
        continue;
      }
      const float s = additive_score(key_projection + (b * steps + t) * a, q, v, a);
      w[t] = s;
      best = any && best >= s ? best : s;
      any = true;
    }
    float* c = context + b * d;
    std::memset(c, 0, static_cast<std::size_t>(d) * sizeof(float));
    if (!any) continue;
    float total = 0.0f;
    for (std::int64_t t = 0; t < steps; ++t) {
      if (!m[t]) continue;
      w[t] = std::exp(w[t] - best);
      total += w[t];
    }
    const float scale = 1.0f / total;
    for (std::int64_t t = 0; t < steps; ++t) {
      if (!m[t]) continue;
      w[t] *= scale;
      const float wt = w[t];
      const float* key = keys + (b * steps + t) * d;
      for (std::int64_t j = 0; j < d; ++j) c[j] += wt * key[j];
    }
  }
}

ATTNREC_CLONES
void additive_attention_shared(const float* key_projection, const float* query_projection,
                               const float* v, const float* keys, float* scratch, float* context,
                               std::int64_t rows, std::int64_t steps, std::int64_t a,
                               std::int64_t d) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* q = query_projection + r * a;
    float* c = context + r * d;
    std::memset(c, 0, static_cast<std::size_t>(d) * sizeof(float));
    if (steps == 0) continue;
    float best = -INFINITY;
    for (std::int64_t t = 0; t < steps; ++t) {
      scratch[t] = additive_score(key_projection + t * a, q, v, a);
      best = best >= scratch[t] ? best : scratch[t];
    }
    float total = 0.0f;
    for (std::int64_t t = 0; t < steps; ++t) {
      scratch[t] = std::exp(scratch[t] - best);
      total += scratch[t];
    }
    const float scale = 1.0f / total;
    for (std::int64_t t = 0; t < steps; ++t) {
      const float wt = scratch[t] * scale;
      const float* key = keys + t * d;
      for (std::int64_t j = 0; j < d; ++j) c[j] += wt * key[j];
    }
  }
}

}  // namespace attnrec::kernels

#pragma once
// Private to src/train: Adam's element-wise update in one pass over raw float arrays.

#include <cstdint>

namespace attnrec::kernels {

/// The scalars of one Adam step, as torch::optim::Adam computes them (in double, then used in
/// float arithmetic).
struct AdamScalars {
  float beta1 = 0.9f, beta2 = 0.999f;
  float one_minus_beta1 = 0.1f, one_minus_beta2 = 0.001f;
  float weight_decay = 0.0f;
  float sqrt_bias_correction2 = 1.0f;  ///< sqrt(1 - beta2^step)
  float eps = 1e-8f;
  float step_size = 1e-3f;             ///< lr / (1 - beta1^step)
};

/// For i in [0, n): g = grad + weight_decay * param; m = beta1 m + (1 - beta1) g;
/// v = beta2 v + (1 - beta2) g^2; param -= step_size * m / (sqrt(v) / sqrt_bc2 + eps).
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                 std::int64_t n, const AdamScalars& s);

}  // namespace attnrec::kernels

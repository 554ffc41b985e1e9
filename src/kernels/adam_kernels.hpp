#pragma once
// Private to src/train: Adam's element-wise update in one pass over raw float arrays.

#include <cmath>
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
  float step_size = 1e-3f;  ///< lr / (1 - beta1^step)
};

/// The scalars of Adam's step number `step` (1-based), computed as torch::optim::Adam does.
inline AdamScalars adam_scalars(double lr, double beta1, double beta2, double eps,
                                double weight_decay, double step) {
  AdamScalars s;
  s.beta1 = static_cast<float>(beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta1 = static_cast<float>(1.0 - beta1);
  s.one_minus_beta2 = static_cast<float>(1.0 - beta2);
  s.weight_decay = static_cast<float>(weight_decay);
  s.sqrt_bias_correction2 = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, step)));
  s.eps = static_cast<float>(eps);
  s.step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, step)));
  return s;
}

/// For i in [0, n): g = grad + weight_decay * param; m = beta1 m + (1 - beta1) g;
/// v = beta2 v + (1 - beta2) g^2; param -= step_size * m / (sqrt(v) / sqrt_bc2 + eps).
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, std::int64_t n,
                 const AdamScalars& s);

}  // namespace attnrec::kernels

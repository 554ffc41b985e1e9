#pragma once
// Private to src/model: branch-free sigmoid and tanh that GCC vectorises (inline, for the
// hand-written kernels). The exponential is a Cephes-style polynomial, about 1 ulp on the
// reduced range; sigmoid/tanh agree with LibTorch's to ~1e-7 absolute.

#include <cstdint>
#include <cstring>

namespace attnrec::kernels {

/// exp(x) for the activations only: x is clamped to [-80, 80], where sigmoid and tanh are
/// already saturated to float precision (and 1 / (1 + e^80) is still a normal float).
inline __attribute__((always_inline)) float exp_clamped(float x) {
  x = x < -80.0f ? -80.0f : x;
  x = x > 80.0f ? 80.0f : x;
  // Round x / ln 2 to the nearest integer by adding and subtracting 1.5 * 2^23 (exact in the
  // default rounding mode; the build does not use -ffast-math, which could fold it away).
  const float nf_raw = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // A NaN input stays NaN through r below; only the exponent must not convert NaN to int
  // (undefined behaviour, found by UBSan), so it takes 0 there (a blend, still vectorised).
  const float nf = nf_raw == nf_raw ? nf_raw : 0.0f;
  const int n = static_cast<int>(nf);
  // r = x - n ln 2 in two parts (Cody-Waite) so that the reduction stays exact.
  const float r = (x - nf * 0.693359375f) - nf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (n + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline __attribute__((always_inline)) float sigmoid(float x) {
  return 1.0f / (1.0f + exp_clamped(-x));
}

inline __attribute__((always_inline)) float tanh_fast(float x) {
  return 2.0f / (1.0f + exp_clamped(-2.0f * x)) - 1.0f;
}

/// Eigen's rational approximation of tanh, tanh(x) = p / q for x clamped to [-9, 9] (+-1
/// outside, in float): a couple of ulp, all FMAs and one division (no exponential), for the
/// inference kernels. `T` is float or a GCC float vector (scalar operands broadcast), so
/// lstm_kernels.cpp can keep p and q apart and share one division among several activations.
template <class T>
inline __attribute__((always_inline)) void tanh_rational_terms(T x, T& p, T& q) {
  const T x2 = x * x;
  p = -2.76076847742355e-16f * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  q = 1.19825839466702e-06f * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
}

inline __attribute__((always_inline)) float tanh_rational(float x) {
  x = x < -9.0f ? -9.0f : x;
  x = x > 9.0f ? 9.0f : x;
  float p, q;
  tanh_rational_terms(x, p, q);
  return p / q;
}

}  // namespace attnrec::kernels

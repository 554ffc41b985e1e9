#pragma once
// Shared pieces of the model tests: a finite-difference gradient check and the smallest
// factorised (SASRec-style) config.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec::test {

/// Whether a test of the multi-tensor Adam (FusedAdam's CUDA path) can run on this LibTorch's
/// CPU; if not, says why in a warning.
inline bool cpu_multi_tensor_adam_or_warn() {
  if (compat::kCpuMultiTensorAdam) return true;
  WARN("skipped: LibTorch " << compat::torch_version()
                            << " runs the multi-tensor Adam on CUDA only (the PyPI build, "
                               "LibTorch >= 2.4, runs this test on the CPU)");
  return false;
}

/// A small generated set on which an LSTM + additive attention learns where the answer is
/// planted within seconds (300 users, 320 items in 16 categories, histories of 5 to 20).
inline SyntheticOptions small_planted_data(std::int64_t test = 2000) {
  SyntheticOptions o;
  o.users = 300;
  o.items = 320;
  o.categories = 16;
  o.train = 8000;
  o.valid = 1000;
  o.test = test;
  o.min_history = 5;
  o.max_history = 20;
  return o;
}

/// Two labelled samples (histories of 2 and 3 items over a vocabulary of at least 7, candidates
/// 3 and 5), for one training step of a small model.
inline Batch two_sample_batch() {
  Batch batch;
  batch.history = torch::tensor({{2, 3, 0}, {4, 5, 6}}, torch::kInt64);
  batch.mask = batch.history.ne(0);
  batch.lengths = torch::tensor({2, 3}, torch::kInt64);
  batch.item = torch::tensor({3, 5}, torch::kInt64);
  batch.label = torch::tensor({1.0f, 0.0f});
  batch.index = torch::tensor({0, 1}, torch::kInt64);
  return batch;
}

/// Checks the gradients autograd left on each of `inputs` (float64, after objective().backward())
/// against central finite differences of `objective`.
inline void check_finite_differences(const std::function<torch::Tensor()>& objective,
                                     std::vector<torch::Tensor> inputs) {
  const double eps = 1e-6;
  for (auto& x : inputs) {
    const auto analytic = x.grad().defined() ? x.grad().clone() : torch::zeros_like(x);
    auto flat = x.detach().view({-1});
    for (std::int64_t i = 0; i < flat.numel(); ++i) {
      torch::NoGradGuard guard;
      const double orig = flat[i].item<double>();
      flat[i] = orig + eps;
      const double plus = objective().item<double>();
      flat[i] = orig - eps;
      const double minus = objective().item<double>();
      flat[i] = orig;
      const double numeric = (plus - minus) / (2 * eps);
      CHECK(analytic.view({-1})[i].item<double>() == Approx(numeric).margin(1e-6).epsilon(1e-5));
    }
  }
}

/// Embedding 8 -> 2 causal transformer blocks (2 heads) -> the newest position -> dot head with
/// an item bias: a model whose score factorises.
inline Config factorised_config() {
  Config c = default_config();
  c.model.embedding.dim = 8;
  c.model.encoder.type = EncoderKind::transformer;
  c.model.encoder.layers = 2;
  c.model.encoder.heads = 2;
  c.model.attention.type = "last";
  c.model.attention.query = QueryKind::self;
  c.model.head.type = HeadKind::dot;
  c.model.head.item_bias = true;
  return c;
}

}  // namespace attnrec::test

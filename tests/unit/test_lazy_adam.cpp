// LazyAdam against torch::optim::Adam and against the row-wise formula.
#include <catch2/catch.hpp>

#include "attnrec/train/lazy_adam.hpp"
#include "attnrec/util/torch_compat.hpp"
#include "model_support.hpp"

using namespace attnrec;
using namespace attnrec::test;

namespace {

/// Embedding (5 x 3, sparse or dense gradients) + a dense linear layer; loss over rows `ids`.
struct Tiny {
  torch::nn::Embedding emb{nullptr};
  torch::nn::Linear lin{nullptr};
  explicit Tiny(bool sparse) {
    torch::manual_seed(0);
    emb = torch::nn::Embedding(torch::nn::EmbeddingOptions(5, 3).sparse(sparse));
    lin = torch::nn::Linear(3, 1);
  }
  std::vector<torch::Tensor> params() { return {emb->weight, lin->weight, lin->bias}; }
  torch::Tensor loss(const std::vector<std::int64_t>& ids) {
    return lin(emb(torch::tensor(ids, torch::kInt64))).pow(2).sum();
  }
};

/// `steps` steps on rows `ids` for both (model, optimizer) pairs.
void step_both(Tiny& a, torch::optim::Optimizer& oa, Tiny& b, torch::optim::Optimizer& ob,
               const std::vector<std::int64_t>& ids, int steps) {
  for (int step = 0; step < steps; ++step) {
    oa.zero_grad();
    a.loss(ids).backward();
    oa.step();
    ob.zero_grad();
    b.loss(ids).backward();
    ob.step();
  }
}

}  // namespace

TEST_CASE("lazy adam: dense parameters follow torch::optim::Adam", "[optim]") {
  Tiny a(false), b(false);
  torch::optim::Adam ref(a.params(), torch::optim::AdamOptions(0.1));
  LazyAdam lazy(b.params(), torch::optim::AdamOptions(0.1));
  step_both(a, ref, b, lazy, {1, 2}, 3);
  // The dense update is FusedAdam's: torch's arithmetic up to FMA rounding.
  CHECK(torch::allclose(a.emb->weight, b.emb->weight, 1e-6, 1e-7));
  CHECK(torch::allclose(a.lin->weight, b.lin->weight, 1e-6, 1e-7));
  CHECK_FALSE(torch::equal(a.lin->weight, Tiny(false).lin->weight));  // it did move
}

TEST_CASE("lazy adam: the multi-tensor kernel (the CUDA path) takes the dense parameters",
          "[optim][fused]") {
  if (!cpu_multi_tensor_adam_or_warn()) return;
  Tiny a(true), b(true);
  LazyAdam ref(a.params(), torch::optim::AdamOptions(0.1).weight_decay(0.01));
  LazyAdam multi(b.params(), torch::optim::AdamOptions(0.1).weight_decay(0.01),
                 DenseAdamKernel::multi_tensor);
  step_both(a, ref, b, multi, {1, 2, 2}, 4);
  CHECK(ref.multi_tensor_updates() == 0);
  CHECK(multi.multi_tensor_updates() == 2 * 4);  // the linear layer's weight and bias
  CHECK(torch::allclose(a.lin->weight, b.lin->weight, 1e-6, 1e-7));
  CHECK(torch::allclose(a.lin->bias, b.lin->bias, 1e-6, 1e-7));
  CHECK(torch::allclose(a.emb->weight, b.emb->weight, 1e-6, 1e-7));  // the sparse rows' own path
  CHECK_FALSE(torch::equal(a.lin->weight, Tiny(true).lin->weight));  // it did move
}

TEST_CASE("lazy adam: sparse rows follow the formula, untouched rows stay", "[optim]") {
  Tiny dense(false), sparse(true);
  torch::optim::Adam ref(dense.params(), torch::optim::AdamOptions(0.1));
  LazyAdam lazy(sparse.params(), torch::optim::AdamOptions(0.1));
  // Step 1 touches rows 1 and 2: with zero moments elsewhere, both optimizers agree.
  ref.zero_grad();
  dense.loss({1, 2}).backward();
  ref.step();
  lazy.zero_grad();
  sparse.loss({1, 2}).backward();
  REQUIRE(sparse.emb->weight.grad().is_sparse());
  lazy.step();
  CHECK(torch::allclose(dense.emb->weight, sparse.emb->weight, 1e-6, 1e-7));
  // Step 2 touches row 3 only: dense Adam moves rows 1 and 2 again by their momentum, lazy
  // Adam leaves them; row 3's first update is lr * sign(g) in both (m/sqrt(v) = g/|g|).
  const auto before = sparse.emb->weight.clone();
  const auto dense_before = dense.emb->weight.clone();
  ref.zero_grad();
  dense.loss({3}).backward();
  ref.step();
  lazy.zero_grad();
  sparse.loss({3}).backward();
  lazy.step();
  CHECK(torch::equal(sparse.emb->weight[1], before[1]));
  CHECK(torch::equal(sparse.emb->weight[2], before[2]));
  CHECK_FALSE(torch::allclose(dense.emb->weight[1], dense_before[1]));
  // Row 3 at its first touch, at the table's step 2: m = 0.1 g, v = 0.001 g^2,
  // update = lr / (1 - 0.9^2) * m / (sqrt(v) / sqrt(1 - 0.999^2) + eps).
  const auto delta = (sparse.emb->weight[3] - before[3]).abs();
  const double expected = 0.1 / (1 - 0.81) * 0.1 / (std::sqrt(0.001) / std::sqrt(1 - 0.998001));
  CHECK(delta.max().item<double>() == Approx(expected).epsilon(1e-4));
  CHECK(torch::equal(sparse.emb->weight[0], before[0]));
}

TEST_CASE("lazy adam: dense parameters match torch::optim::Adam bit for bit, with decay",
          "[optim]") {
  Tiny a(false), b(false);
  const auto options = torch::optim::AdamOptions(0.1).weight_decay(0.01);
  torch::optim::Adam ref(a.params(), options);
  LazyAdam lazy(b.params(), options);
  step_both(a, ref, b, lazy, {1, 2}, 3);
  CHECK(torch::equal(a.emb->weight, b.emb->weight));
  CHECK(torch::equal(a.lin->weight, b.lin->weight));
  CHECK(torch::equal(a.lin->bias, b.lin->bias));
  CHECK_FALSE(torch::equal(a.lin->weight, Tiny(false).lin->weight));  // it did move
}

TEST_CASE("lazy adam: weight decay is lazy, only touched rows decay", "[optim]") {
  Tiny t(true);
  LazyAdam lazy(t.params(), torch::optim::AdamOptions(0.1).weight_decay(0.5));
  const auto before = t.emb->weight.clone();
  // Row 1 is in the batch but its loss gradient is zero, so all it gets is the decay term
  // 0.5 x row: Adam's first step moves it by lr toward zero in every coordinate.
  lazy.zero_grad();
  (t.loss({1}) * 0.0).backward();
  REQUIRE(t.emb->weight.grad().is_sparse());
  lazy.step();
  const auto moved = t.emb->weight[1] - before[1];
  const auto expected = -0.1 * torch::sign(before[1]);
  CHECK(torch::allclose(moved, expected, 1e-5, 1e-6));
  for (int row : {0, 2, 3, 4}) {
    CHECK(torch::equal(t.emb->weight[row], before[row]));  // untouched: no decay
  }
  SECTION("without decay the same step leaves the row where it was") {
    Tiny u(true);
    LazyAdam plain(u.params(), torch::optim::AdamOptions(0.1));
    const auto start = u.emb->weight.clone();
    plain.zero_grad();
    (u.loss({1}) * 0.0).backward();
    plain.step();
    CHECK(torch::equal(u.emb->weight, start));
  }
}

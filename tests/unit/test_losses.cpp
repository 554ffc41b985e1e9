// Training losses (train/loss.hpp): golden values worked out by hand (see the comments),
// finite-difference gradient checks, and candidate scoring against the per-candidate forward.
#include <catch2/catch.hpp>

#include <cmath>

#include "attnrec/config/fields.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/loss.hpp"
#include "model_support.hpp"

using namespace attnrec;

namespace {

torch::Tensor row(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).unsqueeze(0); }

/// Max |analytic - central difference| of d loss / d logits at `x`.
double gradient_error(const std::function<torch::Tensor(const torch::Tensor&)>& loss,
                      torch::Tensor x) {
  x = x.clone().set_requires_grad(true);
  loss(x).backward();
  const auto analytic = x.grad().clone();
  torch::NoGradGuard no_grad;
  double worst = 0.0;
  const double h = 1e-6;
  auto flat = x.detach().clone().reshape({-1});
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    auto up = flat.clone(), down = flat.clone();
    up[i] += h;
    down[i] -= h;
    const double numeric =
        (loss(up.view_as(x)).item<double>() - loss(down.view_as(x)).item<double>()) / (2 * h);
    worst = std::max(worst, std::abs(numeric - analytic.reshape({-1})[i].item<double>()));
  }
  return worst;
}

}  // namespace

TEST_CASE("loss: BPR golden value", "[loss]") {
  // Positive 2, negatives 1 and 0: (softplus(1 - 2) + softplus(0 - 2)) / 2
  // = (log(1 + e^-1) + log(1 + e^-2)) / 2 = (0.313262 + 0.126928) / 2.
  CHECK(bpr_loss(row({2, 1, 0})).item<double>() == Approx(0.2200948492805977).epsilon(1e-12));
  // Far apart: no loss left; reversed: about the gap.
  CHECK(bpr_loss(row({40, 0})).item<double>() == Approx(0.0).margin(1e-12));
  CHECK(bpr_loss(row({0, 40})).item<double>() == Approx(40.0).epsilon(1e-12));
}

TEST_CASE("loss: sampled softmax golden values, with and without log-q", "[loss]") {
  // logsumexp(2, 1, 0) - 2 = log(1 + e^-1 + e^-2) = 0.4076060.
  CHECK(sampled_softmax_loss(row({2, 1, 0})).item<double>() ==
        Approx(0.4076059644443806).epsilon(1e-12));
  // q = (0.5, 0.25, 0.25): logits - log q = (2.6931, 2.3863, 1.3863); the popular positive
  // is discounted, so the loss rises to 0.6963567.
  const auto log_q = row({std::log(0.5), std::log(0.25), std::log(0.25)});
  CHECK(sampled_softmax_loss(row({2, 1, 0}), log_q).item<double>() ==
        Approx(0.6963567487889981).epsilon(1e-12));
  // A constant log q (uniform sampling) changes nothing.
  const auto uniform = torch::full({1, 3}, std::log(0.1), torch::kFloat64);
  CHECK(sampled_softmax_loss(row({2, 1, 0}), uniform).item<double>() ==
        Approx(0.4076059644443806).epsilon(1e-12));
}

TEST_CASE("loss: BCE over a positive and its negatives, and label smoothing", "[loss]") {
  // (softplus(-2) + softplus(0.5)) / 2 = (0.126928 + 0.974077) / 2.
  CHECK(candidate_bce_loss(row({2, 0.5})).item<double>() ==
        Approx(0.5505024976115396).epsilon(1e-12));
  // Smoothing 0.1: targets 0.95 and 0.05.
  CHECK(candidate_bce_loss(row({2, 0.5}), 0.1).item<double>() ==
        Approx(0.5880024976115397).epsilon(1e-12));
  CHECK(bce_loss(torch::tensor({2.0, 0.5}, torch::kFloat64),
                 torch::tensor({1.0, 0.0}, torch::kFloat64))
            .item<double>() == Approx(0.5505024976115396).epsilon(1e-12));
}

TEST_CASE("loss: gradients match central differences", "[loss]") {
  torch::manual_seed(3);
  const auto x = torch::randn({3, 5}, torch::kFloat64);
  const auto log_q = torch::log_softmax(torch::randn({3, 5}, torch::kFloat64), 1);
  CHECK(gradient_error([](const torch::Tensor& l) { return bpr_loss(l); }, x) < 1e-7);
  CHECK(gradient_error([](const torch::Tensor& l) { return sampled_softmax_loss(l); }, x) < 1e-7);
  CHECK(gradient_error([&](const torch::Tensor& l) { return sampled_softmax_loss(l, log_q); }, x) <
        1e-7);
  CHECK(gradient_error([](const torch::Tensor& l) { return candidate_bce_loss(l, 0.1); }, x) <
        1e-7);
  // And the analytic form of BPR: d/d positive = -mean over negatives of sigmoid(n - p) / K / B.
  auto y = x.clone().set_requires_grad(true);
  bpr_loss(y).backward();
  const auto p = x.narrow(1, 0, 1), n = x.narrow(1, 1, 4);
  const auto expected = -torch::sigmoid(n - p).sum(1) / (3.0 * 4.0);
  CHECK(torch::allclose(y.grad().select(1, 0), expected, 1e-12, 1e-12));
}

TEST_CASE("loss: candidate logits equal scoring each candidate on its own", "[loss]") {
  for (const bool bias : {false, true}) {
    Config c = default_config();
    c.model.embedding.dim = 8;
    c.model.encoder.hidden = 8;
    c.model.head.item_bias = bias;
    auto model = build_recommender(c, 10, 5);
    model->eval();
    if (bias) {
      torch::NoGradGuard no_grad;
      model->named_parameters()["item_bias.weight"].copy_(torch::arange(10.0).unsqueeze(1));
    }
    Batch b;
    b.history = torch::tensor({{2, 3, 4}, {5, 0, 0}}, torch::kInt64);
    b.mask = b.history.ne(0);
    b.lengths = torch::tensor({3, 1}, torch::kInt64);
    b.item = torch::tensor({6, 7}, torch::kInt64);
    b.negatives = torch::tensor({{8, 9, 2}, {3, 4, 6}}, torch::kInt64);
    torch::NoGradGuard no_grad;
    const auto logits = candidate_logits(model, b);
    REQUIRE(logits.sizes() == std::vector<std::int64_t>{2, 4});
    for (std::int64_t j = 0; j < 4; ++j) {
      Batch one = b;
      one.item = j == 0 ? b.item : b.negatives.select(1, j - 1).contiguous();
      const auto alone = model->forward(one).logits;
      INFO("candidate " << j << " bias " << bias);
      CHECK(torch::allclose(logits.select(1, j), alone, 1e-5, 1e-6));
    }
  }
}

TEST_CASE("loss: the objective uses drawn negatives when the batch has them", "[loss]") {
  Config c = default_config();
  c.model.embedding.dim = 4;
  c.model.encoder.hidden = 4;
  auto model = build_recommender(c, 10, 5);
  Batch b;
  b.history = torch::tensor({{2, 3}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({2}, torch::kInt64);
  b.item = torch::tensor({4}, torch::kInt64);
  b.label = torch::tensor({1.0f});
  const TrainObjective bpr(LossKind::bpr, 0.0);
  const TrainObjective bce(LossKind::bce, 0.0);
  const auto pointwise = bce(model, b).item<double>();
  CHECK(pointwise == Approx(bce_loss(model->forward(b).logits, b.label).item<double>()));
  b.negatives = torch::tensor({{5, 6}}, torch::kInt64);
  CHECK(bpr(model, b).item<double>() ==
        Approx(bpr_loss(candidate_logits(model, b)).item<double>()));
  // Popularity log-q is looked up per candidate id.
  std::vector<float> table(10, std::log(0.1f));
  table[4] = std::log(0.5f);
  const TrainObjective softmax(LossKind::sampled_softmax, 0.0, torch::tensor(table));
  const auto logits = candidate_logits(model, b).to(torch::kFloat64);
  const auto expected =
      sampled_softmax_loss(logits, row({std::log(0.5), std::log(0.1), std::log(0.1)}));
  CHECK(softmax(model, b).item<double>() == Approx(expected.item<double>()).epsilon(1e-5));
}

TEST_CASE("next-item training: every position against the next event and its own negatives",
          "[train][losses][transformer]") {
  Config c = attnrec::test::factorised_config();
  torch::manual_seed(9);
  auto model = build_recommender(c, 20, 0);
  model->eval();  // no dropout: the reference below recomputes the same states
  // Row 0: history 2 3 4, item 5. Row 1: history 6, item 7 (padded to 3).
  Batch b;
  b.history = torch::tensor({{2, 3, 4}, {6, 0, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({3, 1}, torch::kInt64);
  b.item = torch::tensor({5, 7}, torch::kInt64);
  // K = 2 negatives per position: columns [2t, 2t + 2) of each row (6 drawn, some unused).
  b.negatives = torch::tensor({{10, 11, 12, 13, 14, 15}, {16, 17, 18, 19, 8, 9}}, torch::kInt64);
  const auto [logits, ids] = next_item_logits(model, b, 2);
  // Four valid positions; column 0 is the event after each one.
  REQUIRE(ids.sizes() == std::vector<std::int64_t>{4, 3});
  CHECK(ids.equal(
      torch::tensor({{3, 10, 11}, {4, 12, 13}, {5, 14, 15}, {7, 16, 17}}, torch::kInt64)));
  // Reference: the encoder output at (row, position) against each id's vector and bias.
  const auto keys = model->encode(b).keys;
  const std::vector<std::pair<int, int>> at = {{0, 0}, {0, 1}, {0, 2}, {1, 0}};
  for (std::size_t n = 0; n < at.size(); ++n) {
    const auto state = keys[at[n].first][at[n].second];
    for (int j = 0; j < 3; ++j) {
      const auto [vec, bias] = model->item_vectors(ids[n][j].reshape({1}));
      const double want = ((state * vec[0]).sum() + bias[0]).item<double>();
      CHECK(logits[n][j].item<double>() == Approx(want).epsilon(1e-5));
    }
  }
  // The newest position's logit is the model's own score of the sample's item.
  CHECK(logits[2][0].item<double>() ==
        Approx(model->forward(b).logits[0].item<double>()).epsilon(1e-5));
  // Causal: a later history item never moves an earlier position's logits.
  Batch changed = b;
  changed.history = torch::tensor({{2, 3, 9}, {6, 0, 0}}, torch::kInt64);
  const auto [after, after_ids] = next_item_logits(model, changed, 2);
  CHECK(torch::allclose(after.narrow(0, 0, 1), logits.narrow(0, 0, 1), 1e-6, 1e-7));
  CHECK(after_ids[1][0].item<std::int64_t>() == 9);  // position 1 now predicts 9
  // The objective is the chosen loss over those logits.
  TrainObjective bce(LossKind::bce, 0.0);
  bce.train_next_item(2);
  CHECK(bce(model, b).item<double>() == Approx(candidate_bce_loss(logits).item<double>()));
}

#include <catch2/catch.hpp>

#include "attnrec/model/encoder.hpp"
#include "attnrec/model/fused_lstm.hpp"

using namespace attnrec;

namespace {

struct Case {
  torch::Tensor input, lengths, mask;
};

/// Right-padded inputs with lengths including 0, 1 and the full length, values beyond the
/// lengths set to garbage (the fused path must ignore them as torch's LSTM + mask does).
Case make_case(std::int64_t batch, std::int64_t steps, std::int64_t e, std::uint64_t seed) {
  torch::manual_seed(seed);
  Case c;
  c.lengths = torch::randint(0, steps + 1, {batch}, torch::kInt64);
  c.lengths[0] = steps;
  if (batch > 1) c.lengths[1] = 0;
  if (batch > 2) c.lengths[2] = 1;
  c.mask = torch::arange(steps).unsqueeze(0) < c.lengths.unsqueeze(1);
  c.input = torch::randn({batch, steps, e}) * 2.0;  // large enough to saturate some gates
  return c;
}

/// The reference: torch::nn::LSTM over the padded batch, outputs masked.
torch::Tensor reference(torch::nn::LSTM& lstm, const Case& c, const torch::Tensor& input) {
  return std::get<0>(lstm->forward(input)) * c.mask.unsqueeze(2).to(torch::kFloat32);
}

torch::Tensor fused(torch::nn::LSTM& lstm, const Case& c, const torch::Tensor& input) {
  const auto w = lstm->all_weights();
  return fused_lstm(input, c.lengths, w[0], w[1], w[2], w[3]);
}

void check_against_torch(std::int64_t batch, std::int64_t steps, std::int64_t e, std::int64_t h,
                         int threads) {
  const int saved_threads = torch::get_num_threads();
  torch::set_num_threads(threads);
  auto c = make_case(batch, steps, e, 7 + static_cast<std::uint64_t>(batch));
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(e, h).batch_first(true));
  const auto weight = torch::randn({batch, steps, h});  // a loss that weighs every output

  auto x_ref = c.input.clone().requires_grad_(true);
  const auto out_ref = reference(lstm, c, x_ref);
  (out_ref * weight).sum().backward();
  std::vector<torch::Tensor> grads_ref;
  for (auto& p : lstm->parameters()) {
    grads_ref.push_back(p.grad().clone());
    p.mutable_grad() = torch::Tensor();
  }

  auto x = c.input.clone().requires_grad_(true);
  const auto out = fused(lstm, c, x);
  (out * weight).sum().backward();

  REQUIRE(out.sizes() == out_ref.sizes());
  CHECK(torch::allclose(out, out_ref, /*rtol=*/1e-5, /*atol=*/1e-6));
  CHECK((out.masked_select(c.mask.logical_not().unsqueeze(2).expand_as(out)) == 0)
            .all()
            .item<bool>());
  CHECK(torch::allclose(x.grad(), x_ref.grad(), 1e-4, 1e-5));
  // Gradients at padded input positions are exactly zero (they influence nothing).
  CHECK((x.grad().masked_select(c.mask.logical_not().unsqueeze(2).expand_as(x)) == 0)
            .all()
            .item<bool>());
  const auto params = lstm->parameters();
  REQUIRE(params.size() == grads_ref.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << i << " " << params[i].sizes());
    CHECK(torch::allclose(params[i].grad(), grads_ref[i], 1e-4, 1e-4));
  }
  torch::set_num_threads(saved_threads);
}

}  // namespace

TEST_CASE("fused LSTM matches torch::nn::LSTM: outputs and all gradients", "[model][fused]") {
  SECTION("one part") { check_against_torch(9, 7, 5, 4, 1); }
  SECTION("two parts, recommender sizes") { check_against_torch(64, 20, 16, 16, 2); }
  SECTION("more threads than sequences") { check_against_torch(3, 4, 3, 2, 2); }
}

TEST_CASE("fused LSTM inference path equals the autograd path", "[model][fused]") {
  auto c = make_case(33, 11, 8, 3);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(8, 6).batch_first(true));
  const auto with_grad = fused(lstm, c, c.input);
  torch::Tensor without;
  {
    torch::InferenceMode guard;
    without = fused(lstm, c, c.input);
  }
  CHECK(with_grad.requires_grad());
  CHECK_FALSE(without.requires_grad());
  CHECK(torch::allclose(with_grad, without, 1e-5, 1e-6));  // GEMM blocking differs
  CHECK(torch::allclose(without, reference(lstm, c, c.input).detach(), 1e-5, 1e-6));
}

TEST_CASE("fused LSTM: all-padding batch and bad arguments", "[model][fused]") {
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(3, 2).batch_first(true));
  const auto w = lstm->all_weights();
  const auto x = torch::randn({2, 4, 3}, torch::requires_grad());
  const auto out = fused_lstm(x, torch::zeros({2}, torch::kInt64), w[0], w[1], w[2], w[3]);
  CHECK(out.sizes() == torch::IntArrayRef({2, 4, 2}));
  CHECK((out == 0).all().item<bool>());
  out.sum().backward();
  CHECK((x.grad() == 0).all().item<bool>());

  CHECK_THROWS_WITH(fused_lstm(x, torch::full({2}, 5, torch::kInt64), w[0], w[1], w[2], w[3]),
                    Catch::Contains("expected values in [0, 4], got 5"));
  CHECK_THROWS_WITH(fused_lstm(x, torch::zeros({3}, torch::kInt64), w[0], w[1], w[2], w[3]),
                    Catch::Contains("expected a CPU int64 tensor [2]"));
  CHECK_THROWS_WITH(
      fused_lstm(x.to(torch::kFloat64), torch::zeros({2}, torch::kInt64), w[0], w[1], w[2], w[3]),
      Catch::Contains("expected a float32 CPU input"));
  CHECK_THROWS_WITH(
      fused_lstm(torch::randn({2, 4, 5}), torch::zeros({2}, torch::kInt64), w[0], w[1], w[2], w[3]),
      Catch::Contains("w_ih: expected [8, 5]"));
}

TEST_CASE("encoder: fused and torch LSTM agree for stacked layers", "[model][fused][encoder]") {
  auto c = make_case(17, 9, 6, 11);
  torch::manual_seed(5);
  SequenceEncoder fused_encoder(SequenceEncoderOptions(6).hidden_size(5).layers(2));
  SequenceEncoder torch_encoder(SequenceEncoderOptions(6).hidden_size(5).layers(2).fused(false));
  {
    torch::NoGradGuard guard;
    const auto from = fused_encoder->named_parameters();
    for (auto& p : torch_encoder->named_parameters()) p.value().copy_(from[p.key()]);
  }
  const auto a = fused_encoder(c.input, c.mask, c.lengths);
  const auto b = torch_encoder(c.input, c.mask, c.lengths);
  CHECK(torch::allclose(a, b, 1e-5, 1e-6));
  a.pow(2).sum().backward();
  b.pow(2).sum().backward();
  const auto pa = fused_encoder->parameters(), pb = torch_encoder->parameters();
  REQUIRE(pa.size() == 8);
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CHECK(torch::allclose(pa[i].grad(), pb[i].grad(), 1e-4, 1e-5));
  }
}

TEST_CASE("fused LSTM: a NaN input stays NaN and infinities saturate, as in torch's LSTM",
          "[model][fused]") {
  // The activations' exponent used to convert NaN to int (undefined behaviour, UBSan); the
  // NaN must still reach the output so that a non-finite loss is caught, never hidden.
  auto c = make_case(4, 5, 3, 11);
  c.lengths.fill_(5);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(3, 4).batch_first(true));
  auto input = c.input.clone();
  input[0][2][1] = std::numeric_limits<float>::quiet_NaN();
  input[1][0][0] = std::numeric_limits<float>::infinity();
  input[2][3][2] = -std::numeric_limits<float>::infinity();
  const auto expected = std::get<0>(lstm->forward(input)).detach();
  for (bool inference : {false, true}) {
    INFO("inference mode " << inference);
    torch::Tensor out;
    {
      torch::InferenceMode guard(inference);
      out = fused(lstm, c, input).detach();
    }
    // Sample 0: finite before the NaN, NaN from it on, like the reference.
    CHECK(torch::isfinite(out[0].slice(0, 0, 2)).all().item<bool>());
    CHECK(torch::isnan(out[0].slice(0, 2)).all().item<bool>());
    CHECK(torch::isnan(expected[0].slice(0, 2)).all().item<bool>());
    // Samples 1-3: an infinite input saturates the gates to finite values (as torch's does).
    const auto rest = out.slice(0, 1);
    CHECK(torch::isfinite(rest).all().item<bool>());
    CHECK(torch::allclose(rest, expected.slice(0, 1), 1e-5, 1e-6));
  }
}

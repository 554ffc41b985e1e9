#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "attnrec/config/fields.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/model/transformer.hpp"
#include "model_support.hpp"

using namespace attnrec;
using attnrec::test::check_finite_differences;
using attnrec::test::factorised_config;

namespace {

using Matrix = std::vector<std::vector<double>>;

/// The parameter `name` of `m` in float64.
torch::Tensor param(torch::nn::Module& m, const std::string& name) {
  return m.named_parameters()[name].detach().to(torch::kFloat64);
}

/// The Linear layer `name` of `m` in plain loops: y = W x + b.
std::vector<double> linear(torch::nn::Module& m, const std::string& name,
                           const std::vector<double>& x) {
  const auto w = param(m, name + ".weight");
  const auto b = param(m, name + ".bias");
  std::vector<double> y(static_cast<std::size_t>(w.size(0)));
  for (std::int64_t i = 0; i < w.size(0); ++i) {
    double s = b[i].item<double>();
    for (std::int64_t j = 0; j < w.size(1); ++j) s += w[i][j].item<double>() * x[j];
    y[i] = s;
  }
  return y;
}

/// The LayerNorm `name` of `m` in plain loops.
std::vector<double> layer_norm(torch::nn::Module& m, const std::string& name,
                               const std::vector<double>& x, double eps) {
  const auto w = param(m, name + ".weight");
  const auto b = param(m, name + ".bias");
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i].item<double>() + b[i].item<double>();
  }
  return y;
}

std::vector<double> add(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> y(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) y[i] = a[i] + b[i];
  return y;
}

/// Multi-head self-attention for one sequence, position by position, in plain loops.
Matrix reference_attention(TransformerBlock& block, const Matrix& q_in, const Matrix& kv_in,
                           const std::vector<std::vector<bool>>& allowed) {
  const auto d = static_cast<std::size_t>(block->options.dim());
  const auto h = static_cast<std::size_t>(block->options.heads());
  const std::size_t dh = d / h, t = q_in.size();
  Matrix q, k, v, out;
  for (std::size_t i = 0; i < t; ++i) {
    q.push_back(linear(*block, "query", q_in[i]));
    k.push_back(linear(*block, "key", kv_in[i]));
    v.push_back(linear(*block, "value", kv_in[i]));
  }
  for (std::size_t i = 0; i < t; ++i) {
    std::vector<double> context(d, 0.0);
    for (std::size_t head = 0; head < h; ++head) {
      std::vector<double> s(t);
      double top = -1e300;
      for (std::size_t j = 0; j < t; ++j) {
        double dot = 0;
        for (std::size_t c = head * dh; c < (head + 1) * dh; ++c) dot += q[i][c] * k[j][c];
        s[j] = allowed[i][j] ? dot / std::sqrt(static_cast<double>(dh)) : -1e9;
        top = std::max(top, s[j]);
      }
      double z = 0;
      for (auto& x : s) z += (x = std::exp(x - top));
      for (std::size_t j = 0; j < t; ++j) {
        for (std::size_t c = head * dh; c < (head + 1) * dh; ++c) context[c] += s[j] / z * v[j][c];
      }
    }
    out.push_back(linear(*block, "out", context));
  }
  return out;
}

/// One block (dropout off) in plain loops, for each layer-norm placement.
Matrix reference_block(TransformerBlock& block, const Matrix& x,
                       const std::vector<std::vector<bool>>& allowed) {
  const double eps = block->options.norm_eps();
  auto n1 = [&](const std::vector<double>& row) {
    return layer_norm(*block, "norm_attention", row, eps);
  };
  auto n2 = [&](const std::vector<double>& row) { return layer_norm(*block, "norm_ff", row, eps); };
  auto ff = [&](const std::vector<double>& in) {
    auto hidden = linear(*block, "ff_in", in);
    for (auto& v : hidden) v = std::max(v, 0.0);  // relu
    return linear(*block, "ff_out", hidden);
  };
  Matrix normed, y, out;
  for (const auto& row : x) normed.push_back(n1(row));
  switch (block->options.norm()) {
    case TransformerNorm::pre: {
      const auto a = reference_attention(block, normed, normed, allowed);
      for (std::size_t i = 0; i < x.size(); ++i) y.push_back(add(x[i], a[i]));
      for (const auto& row : y) out.push_back(add(row, ff(n2(row))));
      break;
    }
    case TransformerNorm::post: {
      const auto a = reference_attention(block, x, x, allowed);
      for (std::size_t i = 0; i < x.size(); ++i) y.push_back(n1(add(x[i], a[i])));
      for (const auto& row : y) out.push_back(n2(add(row, ff(row))));
      break;
    }
    case TransformerNorm::sasrec: {
      const auto a = reference_attention(block, normed, x, allowed);
      for (std::size_t i = 0; i < x.size(); ++i) y.push_back(add(normed[i], a[i]));
      for (const auto& row : y) out.push_back(add(row, ff(n2(row))));
      break;
    }
  }
  return out;
}

Matrix to_matrix(const torch::Tensor& x) {  // [T, d]
  Matrix m(static_cast<std::size_t>(x.size(0)));
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    for (std::int64_t j = 0; j < x.size(1); ++j) m[i].push_back(x[i][j].item<double>());
  }
  return m;
}

TransformerEncoderOptions small(TransformerNorm norm, bool causal) {
  return TransformerEncoderOptions(4)
      .layers(2)
      .heads(2)
      .ff_size(6)
      .norm(norm)
      .causal(causal)
      .dropout(0.0)
      .attention_dropout(0.0)
      .max_length(6)
      .norm_eps(1e-5);
}

/// Randomises every parameter (layer norms included, so that they are not the identity).
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard guard;
  for (auto& p : m.parameters()) p.copy_(torch::randn_like(p) * 0.5);
}

}  // namespace

TEST_CASE("transformer: hand-checked causal attention on a tiny case", "[model][transformer]") {
  // dim 2, one head, identity projections, zero biases: position 0 sees only itself; position 1
  // weighs keys 0 and 1 by softmax(q1 . k / sqrt(2)).
  TransformerBlock block(TransformerEncoderOptions(2).heads(1).dropout(0).attention_dropout(0));
  {
    torch::NoGradGuard guard;
    for (auto& p : block->named_parameters()) {
      if (p.key().find("bias") != std::string::npos) {
        p.value().zero_();
      } else if (p.value().dim() == 2 && p.value().size(0) == p.value().size(1)) {
        p.value().copy_(torch::eye(2));
      }
    }
  }
  const auto x = torch::tensor({{{1.0f, 0.0f}, {1.0f, 2.0f}}});
  const auto allowed = torch::tensor({{{true, false}, {true, true}}});
  const auto out = block->attend(x, x, allowed);
  const double s0 = 1.0 / std::sqrt(2.0), s1 = 5.0 / std::sqrt(2.0);
  const double w0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  CHECK(out[0][0][0].item<double>() == Approx(1.0));
  CHECK(out[0][0][1].item<double>() == Approx(0.0).margin(1e-7));
  CHECK(out[0][1][0].item<double>() == Approx(w0 * 1 + (1 - w0) * 1).epsilon(1e-6));
  CHECK(out[0][1][1].item<double>() == Approx(w0 * 0 + (1 - w0) * 2).epsilon(1e-6));
}

TEST_CASE("transformer: every block equals a plain-loop reference to 1e-6",
          "[model][transformer]") {
  for (const auto norm : {TransformerNorm::pre, TransformerNorm::post, TransformerNorm::sasrec}) {
    for (const bool causal : {true, false}) {
      INFO(name_of(norm) << " causal=" << causal);
      torch::manual_seed(5);
      TransformerBlock block(small(norm, causal));
      randomise(*block);
      block->to(torch::kFloat64);
      block->eval();
      const auto x = torch::randn({1, 3, 4}, torch::kFloat64);
      std::vector<std::vector<bool>> allowed(3, std::vector<bool>(3));
      auto mask = torch::zeros({1, 3, 3}, torch::kBool);
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          allowed[i][j] = !causal || j <= i;
          mask[0][i][j] = static_cast<bool>(allowed[i][j]);
        }
      }
      const auto got = to_matrix(block->forward(x, mask)[0]);
      const auto want = reference_block(block, to_matrix(x[0]), allowed);
      for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t c = 0; c < 4; ++c) CHECK(got[i][c] == Approx(want[i][c]).margin(1e-6));
      }
    }
  }
}

TEST_CASE("transformer: gradients match finite differences", "[model][transformer]") {
  for (const auto norm : {TransformerNorm::pre, TransformerNorm::post, TransformerNorm::sasrec}) {
    INFO(name_of(norm));
    torch::manual_seed(7);
    TransformerEncoder enc(small(norm, true).layers(1).positional(PositionalKind::learned));
    randomise(*enc);
    enc->to(torch::kFloat64);
    auto x = torch::randn({2, 3, 4}, torch::kFloat64).requires_grad_(true);
    const auto mask = torch::tensor({{true, true, true}, {true, true, false}});
    const auto lengths = torch::tensor({3, 2}, torch::kInt64);
    const auto r = torch::randn({2, 3, 4}, torch::kFloat64);
    auto objective = [&] { return (enc(x, mask, lengths) * r).sum(); };
    objective().backward();
    std::vector<torch::Tensor> inputs = {x};
    for (auto& p : enc->parameters()) inputs.push_back(p);
    check_finite_differences(objective, inputs);
  }
}

TEST_CASE("transformer: padding changes nothing, and the causal mask leaks no future item",
          "[model][transformer]") {
  for (const bool causal : {true, false}) {
    for (const auto positional :
         {PositionalKind::learned, PositionalKind::sinusoidal, PositionalKind::none}) {
      INFO("causal=" << causal << " " << name_of(positional));
      torch::manual_seed(11);
      TransformerEncoder enc(small(TransformerNorm::pre, causal).positional(positional));
      randomise(*enc);
      enc->eval();
      const auto x = torch::randn({1, 3, 4});
      const auto alone =
          enc(x, torch::ones({1, 3}, torch::kBool), torch::tensor({3}, torch::kInt64));
      // The same sequence padded to 6 with garbage, beside a full row.
      auto padded = torch::randn({2, 6, 4}) * 10;
      padded[0].narrow(0, 0, 3).copy_(x[0]);
      const auto mask = torch::tensor(
          {{true, true, true, false, false, false}, {true, true, true, true, true, true}});
      const auto out = enc(padded, mask, torch::tensor({3, 6}, torch::kInt64));
      CHECK(torch::allclose(out[0].narrow(0, 0, 3), alone[0], 1e-5, 1e-6));
      CHECK(out[0].narrow(0, 3, 3).abs().sum().item<double>() == 0.0);
      if (positional != PositionalKind::none) continue;
      // Positions count back from the newest event, so the leak test runs without them: a
      // later item must not move an earlier output under the causal mask.
      auto changed = x.clone();
      changed[0][2] += torch::randn({4}) * 3;  // not a constant shift: layer norm removes those
      const auto after =
          enc(changed, torch::ones({1, 3}, torch::kBool), torch::tensor({3}, torch::kInt64));
      const bool same_prefix =
          torch::allclose(after[0].narrow(0, 0, 2), alone[0].narrow(0, 0, 2), 1e-6, 1e-7);
      CHECK(same_prefix == causal);
      CHECK_FALSE(torch::allclose(after[0][2], alone[0][2], 1e-6, 1e-7));
    }
  }
}

TEST_CASE("transformer: positions count back from the newest event", "[model][transformer]") {
  const auto mask = torch::tensor({{true, true, true, false}, {true, false, false, false}});
  const auto pos =
      TransformerEncoderImpl::recency_positions(mask, torch::tensor({3, 1}, torch::kInt64));
  CHECK(pos.equal(torch::tensor({{2, 1, 0, 0}, {0, 0, 0, 0}}, torch::kInt64)));
}

TEST_CASE("dot head with a self query factorises: state . item + bias", "[model][transformer]") {
  const Config c = factorised_config();
  validate_config(c);
  torch::manual_seed(2);
  auto model = build_recommender(c, 12, 0);
  model->eval();
  {
    torch::NoGradGuard guard;
    for (auto& p : model->named_parameters()) {
      if (p.key().find("item_bias") != std::string::npos) p.value().normal_();
    }
  }
  REQUIRE(model->factorised());
  Batch b;
  b.history = torch::tensor({{2, 3, 4}, {5, 0, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({3, 1}, torch::kInt64);
  b.item = torch::tensor({7, 9}, torch::kInt64);
  const auto out = model->forward(b);
  const auto states = model->user_states(model->encode(b));
  const auto [vectors, bias] = model->item_vectors(b.item);
  CHECK(torch::allclose(out.logits, (states * vectors).sum(1) + bias, 1e-5, 1e-6));
  // "last" takes the newest valid position.
  CHECK(out.attention.equal(torch::tensor({{0.f, 0.f, 1.f}, {1.f, 0.f, 0.f}})));
}

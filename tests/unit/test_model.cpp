#include <catch2/catch.hpp>
#include <cmath>

#include "attnrec/config/choices.hpp"
#include "attnrec/config/fields.hpp"
#include "attnrec/model/attention.hpp"
#include "attnrec/model/encoder.hpp"
#include "attnrec/model/factory.hpp"
#include "model_support.hpp"

using namespace attnrec;

namespace {

/// Query [1, 2] over keys [1, 0], [0, 1] and a masked [5, 5]; a second, all-padding row.
struct Tiny {
  torch::Tensor query = torch::tensor({{1.0f, 2.0f}, {1.0f, 2.0f}});
  torch::Tensor keys = torch::tensor(
      {{{1.0f, 0.0f}, {0.0f, 1.0f}, {5.0f, 5.0f}}, {{3.0f, 1.0f}, {1.0f, 3.0f}, {2.0f, 2.0f}}});
  torch::Tensor mask = torch::tensor({{true, true, false}, {false, false, false}});
};

/// Sets every parameter named like "w_query.weight" to the identity and every bias to zero, so
/// the learned projections do not change the hand computation.
void identity_parameters(Attention& a) {
  torch::NoGradGuard guard;
  for (auto& p : a->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      p.value().zero_();
    } else if (p.value().size(0) == 1) {
      p.value().fill_(1.0);  // additive v = [1, 1]
    } else {
      p.value().copy_(torch::eye(p.value().size(0)));
    }
  }
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

void check_golden(const std::string& type, double w1, std::vector<double> context,
                  std::int64_t heads = 1) {
  INFO(type);
  Tiny t;
  Attention a(AttentionOptions(2).type(type).heads(heads).hidden(2));
  identity_parameters(a);
  const auto out = a(t.query, t.keys, t.mask);
  REQUIRE(out.weights.sizes() == std::vector<std::int64_t>{2, 3});
  REQUIRE(out.context.sizes() == std::vector<std::int64_t>{2, 2});
  CHECK(out.weights[0][0].item<double>() == Approx(w1).epsilon(1e-5));
  CHECK(out.weights[0][1].item<double>() == Approx(1 - w1).epsilon(1e-5));
  CHECK(out.weights[0][2].item<double>() == 0.0);  // masked
  CHECK(out.context[0][0].item<double>() == Approx(context[0]).epsilon(1e-5));
  CHECK(out.context[0][1].item<double>() == Approx(context[1]).epsilon(1e-5));
  // All-padding row: zero weights and a zero (finite) context, never NaN.
  CHECK(out.weights[1].abs().sum().item<double>() == 0.0);
  CHECK(out.context[1].abs().sum().item<double>() == 0.0);
  CHECK(torch::isfinite(out.context).all().item<bool>());
}

}  // namespace

TEST_CASE("attention golden values for every scoring function", "[model][attention]") {
  // dot: scores [1, 2].
  check_golden("dot", sigmoid(1 - 2), {sigmoid(-1), sigmoid(1)});
  // scaled_dot: scores [1, 2] / sqrt(2).
  const double ws = sigmoid((1 - 2) / std::sqrt(2.0));
  check_golden("scaled_dot", ws, {ws, 1 - ws});
  // cosine: cos = [1, 2] / sqrt(5), divided by temperature 0.1.
  const double wc = sigmoid((1 - 2) / std::sqrt(5.0) / 0.1);
  check_golden("cosine", wc, {wc, 1 - wc});
  // additive with identity projections and v = [1, 1]: s_t = sum(tanh(k_t + q)).
  const double s1 = 2 * std::tanh(2.0), s2 = std::tanh(1.0) + std::tanh(3.0);
  const double wa = sigmoid(s1 - s2);
  check_golden("additive", wa, {wa, 1 - wa});
  // none: uniform over the valid positions.
  check_golden("none", 0.5, {0.5, 0.5});
  // last: all weight on the newest valid position (1), whose key is [0, 1].
  check_golden("last", 0.0, {0.0, 1.0});
}

TEST_CASE("multi-head attention golden values", "[model][attention]") {
  // Two heads of size 1 with identity projections. Head 1 sees q=1, keys [1, 0]; head 2 sees
  // q=2, keys [0, 1]. Context = [head 1 . values [1, 0], head 2 . values [0, 1]].
  Tiny t;
  Attention a(AttentionOptions(2).type("multi_head").heads(2));
  identity_parameters(a);
  const auto out = a(t.query, t.keys, t.mask);
  const double h1 = sigmoid(1.0), h2 = sigmoid(-2.0);  // weight of position 0 in each head
  CHECK(out.context[0][0].item<double>() == Approx(h1).epsilon(1e-5));
  CHECK(out.context[0][1].item<double>() == Approx(1 - h2).epsilon(1e-5));
  CHECK(out.weights[0][0].item<double>() == Approx((h1 + h2) / 2).epsilon(1e-5));
  CHECK(out.weights[0][2].item<double>() == 0.0);
  CHECK(out.context[1].abs().sum().item<double>() == 0.0);
}

TEST_CASE("attention gradients match finite differences", "[model][attention]") {
  for (const auto& variant : attention_variants()) {
    INFO(variant.name);
    torch::manual_seed(3);
    Attention a(AttentionOptions(4).type(variant.name).heads(2).hidden(3));
    a->to(torch::kFloat64);
    auto query = torch::randn({2, 4}, torch::kFloat64).requires_grad_(true);
    auto keys = torch::randn({2, 3, 4}, torch::kFloat64).requires_grad_(true);
    const auto mask = torch::tensor({{true, true, true}, {true, false, false}});
    const auto rc = torch::randn({2, 4}, torch::kFloat64);
    const auto rw = torch::randn({2, 3}, torch::kFloat64);
    auto objective = [&] {
      const auto out = a(query, keys, mask);
      return (out.context * rc).sum() + (out.weights * rw).sum();
    };
    objective().backward();
    std::vector<torch::Tensor> inputs = {query, keys};
    for (auto& p : a->parameters()) inputs.push_back(p);
    attnrec::test::check_finite_differences(objective, inputs);
  }
}

TEST_CASE("encoders: padding never leaks into valid positions", "[model][encoder]") {
  for (const auto& [type, bidirectional] :
       std::vector<std::pair<EncoderKind, bool>>{{EncoderKind::lstm, false},
                                                 {EncoderKind::gru, false},
                                                 {EncoderKind::lstm, true},
                                                 {EncoderKind::gru, true},
                                                 {EncoderKind::none, false}}) {
    INFO(name_of(type) << " bidirectional=" << bidirectional);
    torch::manual_seed(1);
    SequenceEncoder enc(
        SequenceEncoderOptions(3).type(type).hidden_size(4).layers(2).bidirectional(bidirectional));
    enc->eval();
    const auto x = torch::randn({1, 2, 3});
    // Alone, length 2, no padding.
    const auto alone = enc(x, torch::ones({1, 2}, torch::kBool), torch::tensor({2}, torch::kInt64));
    // In a batch padded to 5 with garbage in the padding.
    auto padded = torch::randn({2, 5, 3}) * 10;
    padded[0].narrow(0, 0, 2).copy_(x[0]);
    const auto mask =
        torch::tensor({{true, true, false, false, false}, {true, true, true, true, true}});
    const auto out = enc(padded, mask, torch::tensor({2, 5}, torch::kInt64));
    CHECK(torch::allclose(out[0].narrow(0, 0, 2), alone[0], 1e-5, 1e-6));
    CHECK(out[0].narrow(0, 2, 3).abs().sum().item<double>() == 0.0);
    CHECK(out.size(2) == enc->output_size());
  }
}

TEST_CASE("recommender: shapes and finite outputs for every variant", "[model]") {
  Batch b;
  b.history = torch::tensor({{2, 3, 4}, {5, 0, 0}, {0, 0, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({3, 1, 0}, torch::kInt64);
  b.item = torch::tensor({3, 6, 1}, torch::kInt64);
  b.user = torch::tensor({2, 3, 1}, torch::kInt64);
  for (const auto& attention : choice_names(attention_variants())) {
    for (const auto& encoder : choice_names(choices<EncoderKind>())) {
      for (const auto& query : choice_names(choices<QueryKind>())) {
        for (const auto& positional : choice_names(choices<PositionalKind>())) {
          INFO(attention << " " << encoder << " " << query << " " << positional);
          Config c = default_config();
          c.model.attention.type = attention;
          c.model.encoder.type = *parse_choice<EncoderKind>(encoder);
          c.model.attention.query = *parse_choice<QueryKind>(query);
          c.model.attention.positional = *parse_choice<PositionalKind>(positional);
          c.model.embedding.dim = 8;
          c.model.encoder.hidden = 8;
          c.model.attention.heads = 2;
          c.model.embedding.user = true;
          c.model.embedding.share_candidate = query == "self";
          auto model = build_recommender(c, 10, 5);
          const auto out = model->forward(b);
          CHECK(out.logits.sizes() == std::vector<std::int64_t>{3});
          CHECK(out.attention.sizes() == std::vector<std::int64_t>{3, 3});
          CHECK(torch::isfinite(out.logits).all().item<bool>());
          CHECK(out.attention[2].sum().item<double>() == 0.0);  // all-padding history
          CHECK(out.attention[0].sum().item<double>() == Approx(1.0));
        }
      }
    }
  }
}

TEST_CASE(
    "recommender: attribute() splits dot-head logits exactly by position, and the uniform control",
    "[model][explain]") {
  torch::NoGradGuard no_grad;
  Batch b;
  b.history = torch::tensor({{2, 3, 4}, {5, 0, 0}, {6, 7, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({3, 1, 2}, torch::kInt64);
  b.item = torch::tensor({3, 6, 8}, torch::kInt64);
  for (const auto& attention : choice_names(attention_variants())) {
    for (const auto& encoder : {"none", "lstm"}) {
      for (const auto& query : choice_names(choices<QueryKind>())) {
        for (const auto& head : {"dot", "mlp"}) {
          INFO(attention << " " << encoder << " " << query << " " << head);
          Config c = default_config();
          c.model.attention.type = attention;
          c.model.encoder.type = *parse_choice<EncoderKind>(encoder);
          c.model.attention.query = *parse_choice<QueryKind>(query);
          c.model.head.type = *parse_choice<HeadKind>(head);
          c.model.head.item_bias = true;
          c.model.embedding.dim = 8;
          c.model.encoder.hidden = 8;
          c.model.attention.heads = 2;
          auto model = build_recommender(c, 10, 5);
          model->eval();
          torch::nn::init::normal_(model->named_parameters()["item_bias.weight"]);
          const auto out = model->forward(b);
          const auto a = model->attribute(model->encode(b), b.item);
          REQUIRE(a.uniform_logits.sizes() == out.logits.sizes());
          // One valid position: its weight is 1 whatever the attention, so nothing changes.
          CHECK(a.uniform_logits[1].item<double>() ==
                Approx(out.logits[1].item<double>()).margin(1e-5));
          if (attention == "none") {  // the masked mean is uniform attention
            CHECK(torch::allclose(a.uniform_logits, out.logits, 1e-5, 1e-5));
          }
          if (attention == "multi_head") {
            REQUIRE(out.head_attention.sizes() == std::vector<std::int64_t>{3, 2, 3});
            CHECK(torch::allclose(out.head_attention.mean(1), out.attention, 1e-6, 1e-6));
          } else {
            CHECK_FALSE(out.head_attention.defined());
          }
          if (std::string(head) == "mlp") {
            CHECK_FALSE(a.contributions.defined());
            continue;
          }
          REQUIRE(a.contributions.sizes() == b.history.sizes());
          CHECK(torch::allclose(a.contributions.sum(1) + a.rest, out.logits, 1e-5, 1e-5));
          CHECK(a.contributions.masked_select(b.mask.logical_not()).abs().sum().item<double>() ==
                0.0);
          CHECK(a.rest.abs().sum().item<double>() > 0.0);  // the item bias at least
          if (attention == "none" && std::string(encoder) == "none") {
            // By hand: the mean of the history's embeddings, so position t owns
            // <e(h_t), e(item)> / length.
            const auto e = model->named_parameters()["item_embedding.weight"];
            const auto by_hand = (e.index_select(0, b.history.view({-1})).view({3, 3, 8}) *
                                  e.index_select(0, b.item).unsqueeze(1))
                                     .sum(2) *
                                 b.mask.to(torch::kFloat) /
                                 b.lengths.unsqueeze(1).to(torch::kFloat);
            CHECK(torch::allclose(a.contributions, by_hand, 1e-5, 1e-6));
          }
        }
      }
    }
  }
}

TEST_CASE("recommender: the padding embedding row gets no gradient", "[model]") {
  Config c = default_config();
  c.model.embedding.dim = 4;
  c.model.encoder.hidden = 4;
  auto model = build_recommender(c, 10, 5);
  Batch b;
  b.history = torch::tensor({{2, 3, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({2}, torch::kInt64);
  b.item = torch::tensor({4}, torch::kInt64);
  model->forward(b).logits.sum().backward();
  // A copy: named_parameters() returns a temporary dictionary.
  const auto table = model->named_parameters()["item_embedding.weight"];
  CHECK(table.grad()[0].abs().sum().item<double>() == 0.0);
  CHECK(table.grad()[2].abs().sum().item<double>() > 0.0);
}

TEST_CASE("recommender: model.embedding.init_std draws every embedding table but the bias",
          "[model]") {
  Config c = attnrec::test::factorised_config();
  c.model.encoder.positional = PositionalKind::learned;
  c.model.embedding.init_std = 0.02;
  torch::manual_seed(11);
  auto model = build_recommender(c, 5000, 0);
  int tables = 0;
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    const auto w = item.value().detach();
    if (name == "item_bias.weight") {
      CHECK(w.abs().max().item<double>() == 0.0);  // starts neutral
    } else if (name.find("embedding.weight") != std::string::npos ||
               name.find("positions.weight") != std::string::npos) {
      INFO(name);
      ++tables;
      const auto rows = name.rfind("item_embedding", 0) == 0 ? w.narrow(0, 1, w.size(0) - 1) : w;
      CHECK(rows.std().item<double>() == Approx(0.02).epsilon(0.05));
      if (name.rfind("item_embedding", 0) == 0) CHECK(w[0].abs().max().item<double>() == 0.0);
    }
  }
  CHECK(tables == 2);  // the item table and the transformer's positions
  // 0 keeps LibTorch's N(0, 1).
  c.model.embedding.init_std = 0.0;
  auto plain = build_recommender(c, 5000, 0);
  for (const auto& item : plain->named_parameters()) {
    if (item.key() == "item_embedding.weight") {
      CHECK(item.value().std().item<double>() == Approx(1.0).epsilon(0.05));
    }
  }
}

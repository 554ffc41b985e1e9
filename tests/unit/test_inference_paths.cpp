// The inference-only fast paths (item-gate table, fused additive attention, parallel key
// projection, length-sorted scoring) against the training-mode computation of the same model.
#include <catch2/catch.hpp>

#include "attnrec/config/choices.hpp"
#include "attnrec/config/fields.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/data/batching.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/model/fused_lstm.hpp"

using namespace attnrec;

namespace {

Batch random_batch(std::int64_t rows, std::int64_t steps, std::int64_t vocab, std::uint64_t seed) {
  torch::manual_seed(seed);
  Batch b;
  b.lengths = torch::randint(0, steps + 1, {rows}, torch::kInt64);
  b.lengths[0] = steps;
  b.lengths[1] = 0;
  b.mask = torch::arange(steps).unsqueeze(0) < b.lengths.unsqueeze(1);
  b.history = torch::randint(1, vocab, {rows, steps}, torch::kInt64) * b.mask.to(torch::kInt64);
  b.item = torch::randint(1, vocab, {rows}, torch::kInt64);
  b.user = torch::randint(1, 5, {rows}, torch::kInt64);
  return b;
}

Config small_config(const std::string& attention, std::int64_t layers, std::int64_t hidden = 6,
                    std::int64_t attention_hidden = 5) {
  Config c = default_config();
  c.model.attention.type = attention;
  c.model.embedding.dim = 8;
  c.model.encoder.hidden = hidden;
  c.model.encoder.layers = layers;
  c.model.attention.hidden = attention_hidden;
  c.model.head.dropout = 0.0;
  return c;
}

}  // namespace

TEST_CASE("inference paths equal the autograd computation", "[model][fused][inference]") {
  // Hidden 6: the generic recurrent path; hidden 8 with attention hidden 16: the fused kernel,
  // which also projects the keys for additive attention with one layer.
  for (const auto& [hidden, attention_hidden] : {std::pair{6, 5}, std::pair{8, 16}}) {
    for (const std::string attention : {"additive", "scaled_dot"}) {
      for (const std::int64_t layers : {1, 2}) {
        INFO(attention << ", " << layers << " layer(s), hidden " << hidden);
        auto model =
            build_recommender(small_config(attention, layers, hidden, attention_hidden), 40, 5);
        model->eval();
        const Batch b = random_batch(37, 9, 40, 2);
        const auto reference = model->forward(b);  // grad mode on: generic operators
        REQUIRE(reference.logits.requires_grad());
        torch::Tensor plain, cached, cached_weights;
        {
          c10::InferenceMode guard;
          plain = model->forward(b).logits;
          REQUIRE(model->cache_item_gates(true));
          const auto out = model->forward(b);
          cached = out.logits;
          cached_weights = out.attention;
          model->cache_item_gates(false);
        }
        CHECK(torch::allclose(plain, reference.logits.detach(), 1e-5, 1e-6));
        CHECK(torch::allclose(cached, reference.logits.detach(), 1e-5, 1e-6));
        CHECK(torch::allclose(cached_weights, reference.attention.detach(), 1e-5, 1e-6));
        CHECK(cached_weights[1].sum().item<double>() == 0.0);  // the empty history
      }
    }
  }
}

TEST_CASE("item-gate LSTM equals the fused LSTM on embedded items", "[model][fused][inference]") {
  // Hidden 3: the generic path (GEMM per step); 8 and 16: the fused recurrent kernel (one and
  // two unit blocks); 37 rows: odd row tails and more than one 16-row block per part. Weights
  // scaled by 10 drive the gates into saturation (beyond the kernel's +-9 clamp of its rational
  // tanh) and the cell state past 1; 40 steps let rounding accumulate.
  for (const double scale : {1.0, 10.0}) {
    for (const std::int64_t hidden : {3, 8, 16}) {
      for (const std::int64_t rows : {10, 37}) {
        INFO("hidden " << hidden << ", rows " << rows << ", weight scale " << scale);
        torch::manual_seed(hidden);
        torch::nn::Embedding table(12, 4);
        torch::nn::LSTM lstm(torch::nn::LSTMOptions(4, hidden).batch_first(true));
        torch::NoGradGuard no_grad;
        for (auto& p : lstm->parameters()) p.mul_(scale);
        const auto w = lstm->all_weights();
        const Batch b = random_batch(rows, 40, 12, 9);
        const auto gates = torch::addmm(w[2] + w[3], table->weight, w[0].t());
        const auto expected =
            std::get<0>(lstm->forward(table(b.history))) * b.mask.unsqueeze(2).to(torch::kFloat32);
        // The key projection computed in the kernel: outputs 2h (blocks of 16 when h is a
        // multiple of 8); 8 outputs cannot be, and come back undefined.
        const auto key_weight = torch::randn({2 * hidden, hidden});
        const auto [got, projected] =
            fused_lstm_items(b.history, b.lengths, gates, w[1], key_weight);
        if (hidden % 8 == 0) {
          REQUIRE(projected.defined());
          CHECK((projected - torch::matmul(expected, key_weight.t())).abs().max().item<double>() <
                (scale > 1 ? 1e-4 : 1e-5));
          CHECK(projected[1].abs().sum().item<double>() == 0.0);
        } else {
          CHECK_FALSE(projected.defined());
        }
        CHECK_FALSE(std::get<1>(fused_lstm_items(b.history, b.lengths, gates, w[1],
                                                 torch::randn({8, hidden})))
                        .defined());
        // Hidden states are in [-1, 1]; large recurrent weights amplify rounding over the steps.
        CHECK((got - expected).abs().max().item<double>() < (scale > 1 ? 2e-5 : 2e-6));
        if (scale > 1) CHECK(gates.abs().max().item<double>() > 9);  // saturation was reached
        CHECK(got[1].abs().sum().item<double>() == 0.0);  // the empty history stays zeros
        CHECK_THROWS_WITH(fused_lstm_items(b.history + 20, b.lengths, gates, w[1]),
                          Catch::Contains("outside [0, 12)"));
      }
    }
  }
}

TEST_CASE("the item-gate table is skipped when it would not fit", "[model][inference]") {
  auto model = build_recommender(small_config("additive", 1), 40, 5);
  CHECK(model->cache_item_gates(true));
  CHECK_FALSE(model->cache_item_gates(false));
  Config gru = small_config("additive", 1);
  gru.model.encoder.type = EncoderKind::gru;
  auto no_lstm = build_recommender(gru, 40, 5);
  CHECK_FALSE(no_lstm->cache_item_gates(true));
  // item_vocab * 4 * hidden * 4 bytes above the limit: 2^22 items x hidden 6 = 384 MiB.
  auto big = build_recommender(small_config("additive", 1), std::int64_t(1) << 22, 5);
  CHECK_FALSE(big->cache_item_gates(true));
}

TEST_CASE("scoring in length-sorted batches returns scores in sample order", "[eval][inference]") {
  // Hidden 8 and attention hidden 16: the fused recurrent kernel with the key projection.
  auto model = build_recommender(small_config("additive", 1, 8, 16), 40, 5);
  SampleSet set;
  set.has_items = true;
  set.history_offsets = {0};
  torch::manual_seed(4);
  for (int i = 0; i < 300; ++i) {
    const int len = (i * 7919) % 13;  // lengths in a scrambled order
    for (int t = 0; t < len; ++t) set.history.push_back(1 + (i + t) % 39);
    set.history_offsets.push_back(static_cast<std::int64_t>(set.history.size()));
    set.items.push_back(1 + i % 39);
    set.line_numbers.push_back(i + 1);
  }
  // One thread: batches one after another; two: whole batches in parallel (CPU scoring).
  const auto threads_before = at::get_num_threads();
  for (const int threads : {1, 2}) {
    INFO("threads " << threads);
    at::set_num_threads(threads);
    const auto scores = score(model, set, EvalOptions().with_batch_size(32));
    REQUIRE(scores.size() == 300);
    // Each sample scored alone (batch of one) gives the same value at the same position.
    for (int i = 0; i < 300; ++i) {
      const std::int64_t index = i;
      const Batch one = make_batch(set, &index, 1, false);
      torch::NoGradGuard no_grad;
      model->eval();
      const double alone = torch::sigmoid(model->forward(one).logits).item<double>();
      REQUIRE(scores[static_cast<std::size_t>(i)] == Approx(alone).epsilon(1e-5));
    }
  }
  at::set_num_threads(threads_before);
}

TEST_CASE("candidate side: a history against the whole item table scores as score() does",
          "[model][inference][ranking]") {
  // Every attention variant and encoder, the target and the self query, both heads, with and
  // without the user input and an item bias: the candidate side computed once for all items,
  // then each history against all of them, equals score() pair by pair (autograd operators).
  struct Head {
    QueryKind query;
    HeadKind type;
    HeadInputs inputs;
    bool bias;
  };
  const std::vector<Head> heads = {
      {QueryKind::target, HeadKind::mlp, HeadInputs::all, true},
      {QueryKind::target, HeadKind::mlp, HeadInputs::context_candidate, false},
      {QueryKind::target, HeadKind::dot, HeadInputs::all, true},
      {QueryKind::self, HeadKind::mlp, HeadInputs::all, false},
      {QueryKind::self, HeadKind::dot, HeadInputs::all, true}};
  for (const auto& attention : choice_names(attention_variants())) {
    for (const auto& encoder : choice_names(choices<EncoderKind>())) {
      for (std::size_t h = 0; h < heads.size(); ++h) {
        INFO(attention << ", " << encoder << ", head case " << h);
        Config c = small_config(attention, 1, 8, 5);
        c.model.encoder.type = *parse_choice<EncoderKind>(encoder);
        c.model.encoder.heads = 2;
        c.model.encoder.ff_size = 16;
        c.model.attention.heads = 2;
        c.model.attention.query = heads[h].query;
        c.model.head.type = heads[h].type;
        c.model.head.inputs = heads[h].inputs;
        c.model.head.item_bias = heads[h].bias;
        c.model.embedding.user = heads[h].type == HeadKind::mlp;
        // Large enough that items are split across threads and into several blocks per call.
        const std::int64_t vocab = attention == "additive" && encoder == "lstm" ? 2500 : 40;
        auto model = build_recommender(c, vocab, 5);
        model->eval();
        if (heads[h].bias) {
          torch::NoGradGuard no_grad;
          for (auto& p : model->named_parameters()) {
            if (p.key().find("item_bias") != std::string::npos) p.value().normal_(0.0, 1.0);
          }
        }
        const Batch b = random_batch(5, 7, vocab, 3);
        const auto ids = torch::arange(vocab, torch::kInt64);
        torch::Tensor fast;
        {
          c10::InferenceMode guard;
          const auto side = model->candidate_side(ids);
          fast = model->score_candidates(model->encode(b), side);
        }
        REQUIRE(fast.sizes() == std::vector<std::int64_t>{5, vocab});
        const auto encoded = model->encode(b);  // grad mode on: the generic operators
        for (std::int64_t r = 0; r < 5; ++r) {
          const auto one = encoded.select_rows(torch::full({1}, r, torch::kInt64));
          const auto reference = model->score(one, ids).logits.detach();
          CHECK(torch::allclose(fast[r], reference, 1e-5, 1e-5));
        }
      }
    }
  }
}

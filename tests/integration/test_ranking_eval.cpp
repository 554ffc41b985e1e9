// Ranking evaluation: the history-once scoring path against plain forward passes, golden ranks
// with a popularity scorer, and the whole preprocess -> train -> evaluate --ranking pipeline
// through the real binary.
#include <catch2/catch.hpp>

#include <numeric>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/data/batching.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/model/factory.hpp"
#include "model_support.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

/// Three rows with histories of different lengths (one empty) and users 2..4.
SampleSet three_rows() {
  SampleSet s;
  s.has_items = s.has_users = true;
  s.items = {2, 3, 4};
  s.users = {2, 3, 4};
  s.user_groups = {0, 1, 2};
  s.user_group_count = 3;
  s.history = {2, 3, 4, 5, 6, 7};
  s.history_offsets = {0, 4, 4, 6};
  s.line_numbers = {2, 3, 4};
  return s;
}

}  // namespace

TEST_CASE("ranking: scoring a history once against many candidates equals forward passes",
          "[ranking][model]") {
  for (const std::string type : {"additive", "multi_head", "scaled_dot", "dot", "cosine", "none"}) {
    INFO(type);
    Config config = default_config();
    config.model.embedding.dim = 8;
    config.model.encoder.hidden = 8;
    config.model.attention.type = type;
    config.model.attention.heads = 2;
    config.model.embedding.user = true;
    config.model.head.hidden = {8};
    torch::manual_seed(3);
    Recommender model = build_recommender(config, 10, 6);
    model->eval();
    const SampleSet rows = three_rows();
    // Each row against candidates 2..9.
    auto candidates = torch::arange(2, 10, torch::kInt64).unsqueeze(0).expand({3, 8}).contiguous();
    auto scorer = model_scorer(model, torch::kCPU, /*pairs_per_batch=*/5);  // forces chunking
    const auto fast = scorer->score(rows, 0, 3, candidates);
    REQUIRE(fast.sizes() == std::vector<std::int64_t>{3, 8});
    // Reference: one sample per (row, candidate), scored by forward().
    SampleSet pairs;
    pairs.has_items = pairs.has_users = true;
    pairs.history_offsets = {0};
    for (int r = 0; r < 3; ++r) {
      for (int c = 2; c < 10; ++c) {
        pairs.items.push_back(c);
        pairs.users.push_back(rows.users[r]);
        pairs.user_groups.push_back(r);
        pairs.history.insert(pairs.history.end(), rows.history.begin() + rows.history_offsets[r],
                             rows.history.begin() + rows.history_offsets[r + 1]);
        pairs.history_offsets.push_back(static_cast<std::int64_t>(pairs.history.size()));
        pairs.line_numbers.push_back(0);
      }
    }
    std::vector<std::int64_t> all(24);
    std::iota(all.begin(), all.end(), 0);
    torch::Tensor reference;
    {
      torch::NoGradGuard guard;
      reference = model->forward(make_batch(pairs, all.data(), 24)).logits.view({3, 8});
    }
    CHECK(torch::allclose(fast, reference.to(torch::kFloat64), 1e-5, 1e-6));
  }
}

TEST_CASE("ranking: a model in training mode is scored without dropout and left in training mode",
          "[ranking][model]") {
  // Validation during training scores the model being trained. Scored with its dropout on, the
  // validation figures were noisy and lower, and early stopping and the best checkpoint followed
  // the noise (found on MovieLens-100K: configs/sasrec.json stopped at epoch 19 of a model whose
  // eval-mode figure kept rising).
  Config config = factorised_config();
  config.model.encoder.dropout = 0.5;
  config.model.encoder.attention_dropout = 0.5;
  config.model.embedding.dropout = 0.5;
  torch::manual_seed(5);
  Recommender model = build_recommender(config, 40, 0);
  const SampleSet rows = three_rows();
  const auto candidates =
      torch::arange(2, 10, torch::kInt64).unsqueeze(0).expand({3, 8}).contiguous();
  model->eval();
  torch::Tensor reference_all, reference_pairs;
  {
    auto scorer = model_scorer(model, torch::kCPU, 2048);
    reference_all = scorer->score_all(rows, 0, 3, 2, 40);
    reference_pairs = scorer->score(rows, 0, 3, candidates);
  }
  CHECK_FALSE(model->is_training());
  model->train();
  {
    torch::manual_seed(6);
    // The users' states in the model's current mode.
    const auto states = [&] {
      torch::NoGradGuard guard;
      const std::vector<std::int64_t> all = {0, 1, 2};
      return model->user_states(model->encode(make_batch(rows, all.data(), 3)));
    };
    // Dropout does change this model's scores in training mode (so the checks below can fail).
    const auto noisy = states();
    auto scorer = model_scorer(model, torch::kCPU, 2048);
    CHECK_FALSE(model->is_training());
    for (int repeat = 0; repeat < 2; ++repeat) {
      CHECK(torch::equal(scorer->score_all(rows, 0, 3, 2, 40), reference_all));
      CHECK(torch::equal(scorer->score(rows, 0, 3, candidates), reference_pairs));
    }
    const auto clean = states();
    CHECK_FALSE(torch::allclose(noisy, clean));
  }
  CHECK(model->is_training());
}

TEST_CASE("ranking: a factorised model's full ranking by matrix product equals the pairwise path",
          "[ranking][model]") {
  const Config config = factorised_config();
  torch::manual_seed(4);
  Recommender model = build_recommender(config, 40, 0);
  {
    torch::NoGradGuard guard;
    for (auto& p : model->named_parameters()) {
      if (p.key().find("item_bias") != std::string::npos) p.value().normal_();
    }
  }
  model->eval();
  REQUIRE(model->factorised());
  auto fast = model_scorer(model, torch::kCPU, 2048);
  const SampleSet rows = three_rows();
  const auto matrix = fast->score_all(rows, 0, 3, 2, 40);
  // The base class's path: every item as each row's candidate, scored pair by pair.
  const auto ids = torch::arange(2, 40, torch::kInt64).unsqueeze(0).expand({3, 38}).contiguous();
  const auto pairwise = fast->score(rows, 0, 3, ids);
  REQUIRE(matrix.sizes() == pairwise.sizes());
  CHECK(torch::allclose(matrix.to(torch::kFloat64), pairwise, 1e-5, 1e-6));
  RankingInput full;
  full.protocol = "full";
  full.rows = rows;
  full.item_vocab = 40;
  full.excluded = {{5, 7}, {}, {2, 3}};
  /// The same model through score() only (no score_all override).
  struct Pairwise : RankingScorer {
    RankingScorer& inner;
    explicit Pairwise(RankingScorer& s) : inner(s) {}
    torch::Tensor score(const SampleSet& set, std::int64_t begin, std::int64_t count,
                        const torch::Tensor& candidates) override {
      return inner.score(set, begin, count, candidates);
    }
  } slow(*fast);
  RankingOptions options;
  options.ks = {1, 5, 10};
  const auto a = evaluate_ranking(*fast, full, options);
  const auto b = evaluate_ranking(slow, full, options);
  for (const char* key : {"hr@1", "hr@5", "hr@10", "ndcg@10", "mrr", "mean_rank"}) {
    INFO(key);
    CHECK(a[key].get<double>() == Approx(b[key].get<double>()));
  }
}

TEST_CASE("ranking: golden ranks with a popularity scorer, sampled and full", "[ranking]") {
  // Popularity by id: 2 -> 5, 3 -> 1, 4 -> 3, 5 -> 3, 6 -> 0, 7 -> 9.
  std::vector<double> counts = {0, 0, 5, 1, 3, 3, 0, 9};
  auto pop = popularity_scorer(counts);
  RankingInput sampled;
  sampled.protocol = "sampled";
  sampled.rows = three_rows();
  // Row 0: positive 2 (5) vs 3 (1), 6 (0) -> rank 1. Row 1: positive 3 (1) vs 7 (9), 2 (5)
  // -> rank 3. Row 2: positive 4 (3) vs 5 (3), 6 (0) -> tie counts against: rank 2.
  sampled.negatives = {{3, 6}, {7, 2}, {5, 6}};
  RankingOptions options;
  options.ks = {1, 2};
  auto r = evaluate_ranking(*pop, sampled, options);
  CHECK(r["rows"] == 3);
  CHECK(r["hr@1"].get<double>() == Approx(1.0 / 3));
  CHECK(r["hr@2"].get<double>() == Approx(2.0 / 3));
  CHECK(r["mrr"].get<double>() == Approx((1 + 1.0 / 3 + 0.5) / 3));
  CHECK(r["mean_candidates_per_row"].get<double>() == Approx(2.0));

  RankingInput full;
  full.protocol = "full";
  full.rows = three_rows();
  full.item_vocab = 8;  // candidates 2..7
  // Row 0 excludes 7 (so 2, the most popular left, ranks 1); row 1 excludes nothing: 3 (1)
  // is beaten by 7, 2, 4, 5 -> rank 5; row 2 excludes 5: 4 (3) below 7, 2 -> rank 3.
  full.excluded = {{7}, {}, {5}};
  r = evaluate_ranking(*pop, full, options);
  CHECK(r["mean_rank"].get<double>() == Approx((1 + 5 + 3) / 3.0));
  CHECK(r["mean_candidates_per_row"].get<double>() == Approx((4 + 5 + 4) / 3.0));
}

TEST_CASE("cli: preprocess, check-data, train and evaluate with both ranking protocols",
          "[cli][ranking]") {
  TempDir dir;
  const auto log = dir.file("log.dat");
  REQUIRE(run_cli("generate --log '" + log +
                  "' --log-users 120 --log-items 150 "
                  "--log-categories 6 --min-events 6 --max-events 30")
              .code == 0);
  const auto data = dir.file("prepared");
  auto pre = run_cli("preprocess -i '" + log + "' -o '" + data +
                     "' --min-rating 4 "
                     "--min-user-interactions 4 --ranking-negatives 30");
  INFO(pre.err);
  REQUIRE(pre.code == 0);
  CHECK_THAT(pre.out, Contains("leakage check passed"));
  CHECK(run_cli("check-data --dir '" + data + "'").code == 0);
  // The validation candidates are checked too, found in --dir or named by the flag.
  const auto checked = run_cli("check-data --dir '" + data + "' --valid-candidates '" + data +
                               "/valid_candidates.tsv' --output '" + dir.file("report.json") + "'");
  INFO(checked.err);
  CHECK(checked.code == 0);
  CHECK_THAT(checked.out, Contains("valid_candidate_rows"));
  const auto report = nlohmann::json::parse(read_text(dir.file("report.json")));
  CHECK(report["checked"]["valid_candidate_rows"].get<std::int64_t>() ==
        report["checked"]["candidate_rows"].get<std::int64_t>());  // one row per user each

  write_text(dir.file("c.json"),
             R"({"data": {"train": ")" + data + R"(/train.tsv",
      "valid": ")" +
                 data + R"(/valid.tsv", "columns": ["label", "user", "item", "history", "time"]},
      "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
      "train": {"epochs": 1, "batch_size": 64, "threads": 1, "device": "cpu"}})");
  const auto train =
      run_cli("train --config '" + dir.file("c.json") + "' --run-dir '" + dir.file("run") + "'");
  INFO(train.err);
  REQUIRE(train.code == 0);
  const auto eval = run_cli("evaluate --checkpoint '" + dir.file("run") + "' --data '" + data +
                            "/test.tsv' --ranking sampled,full --ks 1,10 --baseline popularity "
                            "--output '" +
                            dir.file("m.json") + "'");
  INFO(eval.err);
  REQUIRE(eval.code == 0);
  CHECK_THAT(eval.out, Contains("vs popularity"));
  CHECK_THAT(eval.out, Contains("protocol: split leave_last_out"));
  const auto m = nlohmann::json::parse(read_text(dir.file("m.json")));
  const auto stats = nlohmann::json::parse(read_text(data + "/stats.json"));
  const auto users = stats["splits"]["test"]["positives"].get<std::int64_t>();
  CHECK(m["ranking"]["sampled"]["rows"] == users);
  CHECK(m["ranking"]["sampled"]["mean_candidates_per_row"] == 30.0);
  CHECK(m["ranking"]["full"]["rows"] == users);
  CHECK(m["ranking"]["full"].contains("ndcg@10"));
  CHECK(m["baseline_popularity"]["ranking"]["sampled"]["rows"] == users);
  CHECK(m["protocol"]["split"] == "leave_last_out");
  CHECK(m["protocol"]["seed"] == 42);
  CHECK(m["protocol"]["sampled"]["negatives_per_row"] == 30);
  CHECK(m["protocol"]["data_sha256"].get<std::string>().size() == 64);
  CHECK(m.contains("beats_popularity"));

  // The run's vocabulary came from the training file only.
  CHECK(run_cli("check-data --dir '" + data + "' --vocab '" + dir.file("run") + "/items.vocab'")
            .code == 0);
  // A planted leak makes check-data fail with exit code 2 and name the kind.
  auto test = read_text(data + "/test.tsv");
  const auto first = test.find('\n') + 1;
  const auto tab = test.find('\t', test.find('\t', first) + 1);  // after user, at item
  const auto item = test.substr(tab + 1, test.find('\t', tab + 1) - tab - 1);
  const auto history_end = test.find('\t', test.find('\t', tab + 1) + 1);
  test.insert(history_end, "," + item);
  write_text(data + "/test.tsv", test);
  const auto leak = run_cli("check-data --dir '" + data + "'");
  CHECK(leak.code == 2);
  CHECK_THAT(leak.out, Contains("VIOLATION target_in_history"));
  CHECK_THAT(leak.err, Contains("leakage violation"));
}

TEST_CASE("cli evaluate --ranking: missing candidates and bad K are usage errors",
          "[cli][ranking]") {
  TempDir dir;
  const auto r = run_cli("evaluate --checkpoint nowhere --data x.tsv --ranking sideways");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("--ranking"));
}

TEST_CASE("cli preprocess: bad input exits 2 naming the file and line, writes nothing",
          "[cli][preprocess]") {
  TempDir dir;
  const auto log = write_text(dir.file("ratings.dat"), "1::10::5::100\n1::11::4\n");
  const auto r = run_cli("preprocess -i '" + log + "' -o '" + dir.file("out") + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("ratings.dat:2: expected 4 fields user::item::rating::timestamp"));
  CHECK_FALSE(std::filesystem::exists(dir.file("out/train.tsv")));
  const auto usage =
      run_cli("preprocess -i '" + log + "' -o '" + dir.file("out") + "' --split random");
  CHECK(usage.code == 2);
  // The option table's check and message, naming the flag and the option.
  CHECK_THAT(usage.err, Contains("--split: /preprocess/split: unknown value \"random\"") &&
                            Contains("allowed: leave_last_out, temporal"));
}

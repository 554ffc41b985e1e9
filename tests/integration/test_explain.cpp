// `attnrec explain` on a small generated set with planted positions: the counterfactuals are
// the model re-run (checked against `predict` on the edited history), padding changes nothing,
// weights sum to 1, and removing planted (and top-weighted) items moves the logit more than
// removing random ones. Kendall's tau and the line lists have golden values.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "attnrec/config/fields.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/tools/explain.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/train/run.hpp"
#include "model_support.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

TEST_CASE("explain: Kendall's tau-b and line lists", "[explain]") {
  CHECK(kendall_tau({1, 2, 3}, {10, 20, 30}) == Approx(1.0));
  CHECK(kendall_tau({1, 2, 3}, {3, 2, 1}) == Approx(-1.0));
  // Pairs: (0,1) tied in a only, (0,2) and (1,2) concordant: 2 / sqrt(3 * 2).
  CHECK(kendall_tau({1, 1, 2}, {1, 2, 3}) == Approx(2.0 / std::sqrt(6.0)));
  CHECK(kendall_tau({1, 1, 1}, {1, 2, 3}) == 0.0);
  CHECK(parse_line_list("3,7,10-12", "--lines") == std::vector<std::int64_t>{3, 7, 10, 11, 12});
  for (const char* bad : {"", "0", "5-3", "a", "1,,2", "2-"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_line_list(bad, "--lines"), Contains("--lines"));
  }
}

namespace {

struct ExplainedModel {
  TempDir dir;
  std::string data = dir.file("data"), run = dir.file("run");
  explicit ExplainedModel(const std::vector<std::string>& model_overrides = {}) {
    const SyntheticOptions o = small_planted_data(1000);
    generate_synthetic(data, o);
    Config c = default_config();
    apply_overrides(c, {"data.train=" + data + "/train.tsv", "data.valid=" + data + "/valid.tsv",
                        "data.test=", "model.embedding.dim=16", "model.encoder.hidden=16",
                        "model.attention.hidden=16", "model.head.hidden=[32]", "train.epochs=6",
                        "train.lr=0.005", "train.batch_size=128", "train.threads=1",
                        "train.device=cpu", "train.tensorboard=false"});
    apply_overrides(c, model_overrides);
    validate_config(c);
    TrainRunOptions options;
    options.run_dir = run;
    run_training(c, options);
  }
  nlohmann::json explain(const std::string& flags) const {
    const std::string out = dir.file("explain.json");
    const auto r = run_cli("--log-level warn explain --checkpoint '" + run + "' --data '" + data +
                           "/test.tsv' --output '" + out + "' " + flags);
    INFO(r.err);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(read_text(out));
  }
};

ExplainedModel& model() {
  static ExplainedModel m;
  return m;
}

/// Two-head attention with a self query and the dot head: logits split exactly by position.
ExplainedModel& multi_head_model() {
  static ExplainedModel m({"model.attention.type=multi_head", "model.attention.heads=2",
                           "model.attention.query=self", "model.head.type=dot",
                           "model.head.item_bias=true"});
  return m;
}

/// No encoder, a plain mean over the history and the dot head: small enough to compute by hand.
ExplainedModel& mean_pool_model() {
  static ExplainedModel m({"model.encoder.type=none", "model.attention.type=none",
                           "model.attention.query=self", "model.head.type=dot",
                           "model.head.item_bias=true", "train.epochs=2"});
  return m;
}

double logit_of(double p) { return std::log(p / (1.0 - p)); }

/// `attnrec predict` of one sample (label, user, item, history) with the given history.
double predicted_logit(const ExplainedModel& m, const std::string& user, const std::string& item,
                       const std::vector<std::string>& history) {
  std::string h;
  for (const auto& x : history) h += (h.empty() ? "" : ",") + x;
  const std::string file =
      write_text(m.dir.file("one.tsv"),
                 "label\tuser\titem\thistory\n1\t" + user + "\t" + item + "\t" + h + "\n");
  const std::string out = m.dir.file("one.scores");
  const auto r = run_cli("--log-level warn predict --checkpoint '" + m.run + "' --data '" + file +
                         "' --output '" + out + "'");
  REQUIRE(r.code == 0);
  std::istringstream rows(read_text(out));
  std::string header, row;
  std::getline(rows, header);
  std::getline(rows, row);
  return logit_of(std::stod(row.substr(row.rfind('\t') + 1)));
}

}  // namespace

TEST_CASE("explain: leave-one-out is the model re-run without the item, weights sum to 1",
          "[explain][cli]") {
  auto& m = model();
  const auto x = m.explain("--lines 2,3")["examples"][0];
  std::vector<std::string> history;
  double weights = 0;
  for (const auto& p : x["positions"]) {
    history.push_back(p["item"]);
    weights += p["weight"].get<double>();
  }
  CHECK(weights == Approx(1.0).margin(1e-5));
  REQUIRE(history.size() >= 5);
  const std::string user = x["user"], item = x["candidate"];
  CHECK(predicted_logit(m, user, item, history) == Approx(x["logit"].get<double>()).margin(1e-3));
  for (const std::size_t t : {std::size_t{0}, history.size() / 2, history.size() - 1}) {
    auto without = history;
    without.erase(without.begin() + static_cast<std::ptrdiff_t>(t));
    const double expected = x["logit"].get<double>() - x["positions"][t]["loo_delta"].get<double>();
    INFO("position " << t);
    CHECK(predicted_logit(m, user, item, without) == Approx(expected).margin(1e-3));
  }
}

TEST_CASE("explain: padding changes nothing (one sample alone or batched with others)",
          "[explain][cli]") {
  auto& m = model();
  const auto alone = m.explain("--lines 2")["examples"][0];
  const auto batched = m.explain("--lines 2-80")["examples"][0];
  REQUIRE(alone["line"] == batched["line"]);
  CHECK(alone["logit"].get<double>() == Approx(batched["logit"].get<double>()).margin(1e-5));
  REQUIRE(alone["positions"].size() == batched["positions"].size());
  for (std::size_t t = 0; t < alone["positions"].size(); ++t) {
    const auto &a = alone["positions"][t], &b = batched["positions"][t];
    CHECK(a["weight"].get<double>() == Approx(b["weight"].get<double>()).margin(1e-5));
    CHECK(a["loo_delta"].get<double>() == Approx(b["loo_delta"].get<double>()).margin(1e-5));
    CHECK(a["attention_only_delta"].get<double>() ==
          Approx(b["attention_only_delta"].get<double>()).margin(1e-5));
  }
}

TEST_CASE("explain --summary: planted and top-weighted items matter more than random ones",
          "[explain][cli]") {
  auto& m = model();
  const auto s = m.explain("--summary --oracle '" + m.data + "/oracle.json'")["summary"];
  INFO(s.dump(2));
  CHECK(s["examples"] == 1000);
  CHECK(s["mean_abs_loo_delta_top_weighted"].get<double>() >
        2 * s["mean_abs_loo_delta_random"].get<double>());
  CHECK(s["share_top_weighted_matters_more"].get<double>() > 0.6);
  CHECK(s["mean_abs_loo_delta_planted"].get<double>() >
        1.5 * s["mean_abs_loo_delta_not_planted"].get<double>());
  // The top-weighted position is planted far more often than a random pick would be.
  CHECK(s["planted_hit_rate"].get<double>() > 1.5 * s["planted_hit_rate_chance"].get<double>());
  CHECK(s["median_kendall_tau"].get<double>() > 0.0);
  // The controls: the lowest-weighted item matters least; a plain average over the history
  // instead of the learned weights moves the logit more than removing a random item.
  CHECK(s["mean_abs_loo_delta_lowest_weighted"].get<double>() <
        s["mean_abs_loo_delta_random"].get<double>());
  CHECK(s["mean_abs_uniform_attention_delta"].get<double>() >
        s["mean_abs_loo_delta_random"].get<double>());
}

TEST_CASE("explain: multi-head weights per head, and the dot head's exact split by position",
          "[explain][cli]") {
  auto& m = multi_head_model();
  const auto result = m.explain("--lines 2-40");
  for (const auto& x : result["examples"]) {
    INFO(x.dump());
    REQUIRE(x["heads"].size() == 2);
    double split = x["contribution_rest"].get<double>();
    for (const auto& p : x["positions"]) {
      REQUIRE(p["head_weights"].size() == 2);
      // The reported weight is the heads' mean.
      CHECK(p["weight"].get<double>() ==
            Approx((p["head_weights"][0].get<double>() + p["head_weights"][1].get<double>()) / 2)
                .margin(1e-6));
      split += p["contribution"].get<double>();
    }
    CHECK(split == Approx(x["logit"].get<double>()).margin(1e-4));
    for (const auto& h : x["heads"]) {  // each head's top item is its largest weight
      double largest = 0;
      for (const auto& p : x["positions"]) {
        largest = std::max(largest, p["head_weights"][h["head"].get<std::size_t>()].get<double>());
      }
      CHECK(h["weight"].get<double>() == largest);
    }
    if (x["positions"].size() >= 2) CHECK(x["controls"].contains("uniform_attention_delta"));
  }
  // The readable table shows the heads and the contributions.
  const auto r = run_cli("--log-level warn explain --checkpoint '" + m.run + "' --data '" + m.data +
                         "/test.tsv' --lines 2");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("each head's top item: 0 ") && Contains("contribution"));
}

TEST_CASE("explain: bad line lists are clear errors", "[explain][cli]") {
  auto& m = model();
  const std::string base =
      "explain --checkpoint '" + m.run + "' --data '" + m.data + "/test.tsv' --lines ";
  const auto header = run_cli(base + "1");
  CHECK(header.code == 2);
  CHECK_THAT(header.err, Contains("test.tsv:1 is not a sample line"));
  const auto backwards = run_cli(base + "5-3");
  CHECK(backwards.code == 2);
  CHECK_THAT(backwards.err, Contains("\"5-3\" is not a line number or a range"));
}

TEST_CASE("explain: on a mean-pooling dot-head model every number equals the hand computation",
          "[explain][cli]") {
  auto& m = mean_pool_model();
  const auto x = m.explain("--lines 5")["examples"][0];
  const LoadedModel loaded = load_model(m.run, torch::kCPU);
  auto params = loaded.model->named_parameters();
  const auto table = params["item_embedding.weight"].to(torch::kFloat64);
  const auto bias = params["item_bias.weight"].to(torch::kFloat64);
  std::vector<torch::Tensor> history;
  for (const auto& p : x["positions"]) {
    history.push_back(table[loaded.items.lookup(p["item"].get<std::string>())]);
  }
  REQUIRE(history.size() >= 3);
  const auto candidate_id = loaded.items.lookup(x["candidate"].get<std::string>());
  const auto candidate = table[candidate_id];
  const double b = bias[candidate_id][0].item<double>();
  // logit = mean(history) . candidate + bias; without item t, the mean of the others.
  const auto logit_of_items = [&](const std::vector<torch::Tensor>& items) {
    return torch::stack(items).mean(0).dot(candidate).item<double>() + b;
  };
  const double logit = logit_of_items(history);
  CHECK(x["logit"].get<double>() == Approx(logit).margin(1e-5));
  CHECK(x["uniform_attention_logit"].get<double>() == Approx(logit).margin(1e-5));
  CHECK(x["contribution_rest"].get<double>() == Approx(b).margin(1e-6));
  const double n = static_cast<double>(history.size());
  for (std::size_t t = 0; t < history.size(); ++t) {
    INFO("position " << t);
    const auto& p = x["positions"][t];
    auto without = history;
    without.erase(without.begin() + static_cast<std::ptrdiff_t>(t));
    CHECK(p["loo_delta"].get<double>() == Approx(logit - logit_of_items(without)).margin(1e-5));
    CHECK(p["weight"].get<double>() == Approx(1.0 / n).margin(1e-6));
    CHECK(p["contribution"].get<double>() ==
          Approx(history[t].dot(candidate).item<double>() / n).margin(1e-6));
    // Masking position t out of a mean over item embeddings is removing the item.
    CHECK(p["attention_only_delta"].get<double>() ==
          Approx(p["loo_delta"].get<double>()).margin(1e-5));
  }
}

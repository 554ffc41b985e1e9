// `attnrec explain` on a small generated set with planted positions: the counterfactuals are
// the model re-run (checked against `predict` on the edited history), padding changes nothing,
// weights sum to 1, and removing planted (and top-weighted) items moves the logit more than
// removing random ones. Kendall's tau and the line lists have golden values.

#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "attnrec/config/fields.hpp"
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
  ExplainedModel() {
    const SyntheticOptions o = small_planted_data(1000);
    generate_synthetic(data, o);
    Config c = default_config();
    apply_overrides(c, {"data.train=" + data + "/train.tsv", "data.valid=" + data + "/valid.tsv",
                        "data.test=", "model.embedding.dim=16", "model.encoder.hidden=16",
                        "model.attention.hidden=16", "model.head.hidden=[32]", "train.epochs=6",
                        "train.lr=0.005", "train.batch_size=128", "train.threads=1",
                        "train.device=cpu", "train.tensorboard=false"});
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

// Learning works and attention looks where it should, on a small generated data set
// (capped epochs, well under a minute on 2 cores).
#include <catch2/catch.hpp>

#include "attnrec/config/fields.hpp"
#include "attnrec/eval/attention_analysis.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/train/run.hpp"
#include "model_support.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::small_planted_data;
using attnrec::test::TempDir;

TEST_CASE("training on a small synthetic set beats chance and attends to planted items",
          "[learning]") {
  TempDir dir;
  const SyntheticOptions o = small_planted_data();
  const auto data = dir.file("data");
  const auto oracle = generate_synthetic(data, o);

  Config c = default_config();
  apply_overrides(
      c, {"data.train=" + data + "/train.tsv", "data.valid=" + data + "/valid.tsv",
          "data.test=" + data + "/test.tsv", "model.embedding.dim=16", "model.encoder.hidden=16",
          "model.attention.hidden=16", "model.head.hidden=[32]", "train.epochs=6", "train.lr=0.005",
          "train.batch_size=128", "train.threads=1", "train.device=cpu"});
  validate_config(c);
  TrainRunOptions run;
  run.run_dir = dir.file("run");
  const auto summary = run_training(c, run);

  const double test_auc = summary["test"]["auc"].get<double>();
  const double oracle_auc = oracle["test"]["auc"].get<double>();
  INFO("test AUC " << test_auc << ", oracle " << oracle_auc);
  CHECK(test_auc > 0.75);
  CHECK(test_auc <= oracle_auc + 0.02);  // nothing beats the Bayes-optimal score by much

  auto model = load_model(run.run_dir, torch::kCPU);
  const auto test = read_sample_file(data + "/test.tsv", reader_options(model.config.data),
                                     model.items, model.users);
  const auto mass = attention_mass(model.model, test, read_planted_positions(data + "/oracle.json"),
                                   EvalOptions());
  INFO("attention mass on planted positions " << mass.planted_mass << " vs uniform share "
                                              << mass.uniform_share);
  CHECK(mass.samples > 200);
  CHECK(mass.ratio > 1.3);
}

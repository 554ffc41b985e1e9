// The pieces of the training loop, each on its own: the LR schedule, what is due when, early
// stopping, the step and its non-finite policy, the checkpoint container and the checkpoint
// policy, stop requests. Golden values are worked out by hand.
#include <catch2/catch.hpp>
#include <filesystem>
#include <limits>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/checkpoint_policy.hpp"
#include "attnrec/train/resume.hpp"
#include "attnrec/train/schedule.hpp"
#include "attnrec/train/step.hpp"
#include "attnrec/train/stop.hpp"
#include "attnrec/train/trainer.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/torch_compat.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::TempDir;
using attnrec::test::write_text;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

Config tiny_config() {
  Config c = default_config();
  c.data.columns = {"label", "item", "history"};
  c.model.embedding.dim = 4;
  c.model.encoder.hidden = 4;
  c.model.attention.hidden = 4;
  c.model.head.hidden = {4};
  return c;
}

Batch tiny_batch() {
  Batch b;
  b.history = torch::tensor({{2, 3, 0}, {4, 0, 0}}, torch::kInt64);
  b.mask = b.history.ne(0);
  b.lengths = torch::tensor({2, 1}, torch::kInt64);
  b.item = torch::tensor({3, 5}, torch::kInt64);
  b.label = torch::tensor({1.0f, 0.0f});
  b.index = torch::tensor({0, 1}, torch::kInt64);
  return b;
}

/// A run directory with its layout and (empty) vocabularies, as checkpoints need.
RunDir empty_run(const TempDir& dir) {
  const RunDir run{dir.file("run")};
  fs::create_directories(run.checkpoints());
  Vocab().save(run.items_vocab());
  Vocab().save(run.users_vocab());
  return run;
}

}  // namespace

TEST_CASE("LR schedule: constant, linear warm-up then linear decay to 0", "[train][schedule]") {
  CHECK(scheduled_lr(LrSchedule::constant, 0.1, 7, 0, 100) == 0.1);
  // warm-up over 4 steps: (s + 1) / 4 of the rate
  CHECK(scheduled_lr(LrSchedule::warmup_linear, 0.1, 0, 4, 14) == Approx(0.025));
  CHECK(scheduled_lr(LrSchedule::warmup_linear, 0.1, 3, 4, 14) == Approx(0.1));
  // then (total - s) / (total - warmup): step 4 -> 10/10, step 9 -> 5/10, step 14 -> 0
  CHECK(scheduled_lr(LrSchedule::warmup_linear, 0.1, 4, 4, 14) == Approx(0.1));
  CHECK(scheduled_lr(LrSchedule::warmup_linear, 0.1, 9, 4, 14) == Approx(0.05));
  CHECK(scheduled_lr(LrSchedule::warmup_linear, 0.1, 14, 4, 14) == 0.0);
  CHECK(scheduled_lr(LrSchedule::warmup_linear, 0.1, 20, 4, 14) == 0.0);
}

TEST_CASE("schedule: what is due after a step", "[train][schedule]") {
  Config c = tiny_config();
  c.checkpoint.every_steps = 3;
  c.train.validate_every_steps = 4;
  c.train.epochs = 2;
  const TrainSchedule schedule(c, /*batches_per_epoch=*/8, /*has_validation=*/true,
                               /*read_every=*/5);
  CHECK(schedule.total_steps() == 16);
  TrainState s;
  s.global_step = 3;
  s.step_in_epoch = 3;
  Due d = schedule.after_step(s, false);
  CHECK(d.checkpoint);
  CHECK_FALSE(d.validate);
  CHECK(d.read_loss);  // a checkpoint saves the running loss
  s.global_step = s.step_in_epoch = 4;
  d = schedule.after_step(s, false);
  CHECK(d.validate);
  CHECK_FALSE(d.checkpoint);
  s.global_step = s.step_in_epoch = 5;
  CHECK(schedule.after_step(s, false).read_loss);  // every 5 steps
  s.global_step = s.step_in_epoch = 7;
  CHECK_FALSE(schedule.after_step(s, false).read_loss);
  CHECK(schedule.after_step(s, true).read_loss);  // a stop request saves it too
  // The last step of an epoch: no mid-epoch validation (the epoch's own comes next).
  s.global_step = s.step_in_epoch = 8;
  d = schedule.after_step(s, false);
  CHECK_FALSE(d.validate);
  CHECK(d.read_loss);
  // Without validation data nothing is validated.
  const TrainSchedule no_valid(c, 8, false, 5);
  s.global_step = s.step_in_epoch = 4;
  CHECK_FALSE(no_valid.after_step(s, false).validate);
  c.train.schedule = LrSchedule::warmup_linear;
  c.train.warmup_steps = 4;
  CHECK(schedule.lr(9) == Approx(c.train.lr * 7.0 / 12.0));
}

TEST_CASE("early stopping: best, patience, direction, round trip", "[train][schedule]") {
  EarlyStopping auc(StopMetric::auc, 2);
  CHECK(auc.update(0.70, 10));
  CHECK_FALSE(auc.update(0.69, 20));
  CHECK_FALSE(auc.should_stop());
  CHECK_FALSE(auc.update(0.70, 30));  // equal is no improvement
  CHECK(auc.should_stop());
  CHECK(*auc.best() == 0.70);
  CHECK(auc.best_step() == 10);
  EarlyStopping logloss(StopMetric::logloss, 0);
  CHECK(logloss.update(0.5, 1));
  CHECK(logloss.update(0.4, 2));  // lower is better
  CHECK_FALSE(logloss.update(0.45, 3));
  CHECK_FALSE(logloss.should_stop());  // patience 0 never stops
  const auto back = EarlyStopping::from_json(auc.to_json());
  CHECK(back.to_json() == auc.to_json());
  CHECK(back.metric_name() == "auc");
  auto bad = auc.to_json();
  bad["metric"] = "accuracy";
  CHECK_THROWS_WITH(EarlyStopping::from_json(bad),
                    Contains("expected one of auc, gauc, logloss, hr@10, ndcg@10, mrr"));
  // The ranking metrics are higher-is-better and keep their names through a checkpoint.
  EarlyStopping ndcg(StopMetric::ndcg10, 1);
  CHECK(ndcg.update(0.10, 1));
  CHECK(ndcg.update(0.20, 2));
  CHECK_FALSE(ndcg.update(0.15, 3));
  CHECK(ndcg.should_stop());
  const auto ndcg_back = EarlyStopping::from_json(ndcg.to_json());
  CHECK(ndcg_back.metric() == StopMetric::ndcg10);
  CHECK(ndcg_back.metric_name() == "ndcg@10");
  CHECK(*ndcg_back.best() == 0.20);
  CHECK(is_ranking_metric(StopMetric::mrr));
  CHECK_FALSE(is_ranking_metric(StopMetric::gauc));
}

TEST_CASE("step: an update, and a non-finite loss never reaches the weights", "[train][step]") {
  Config c = tiny_config();
  torch::manual_seed(3);
  auto model = build_recommender(c, 8, 0);
  auto optimizer = make_optimizer(c.train, model);
  TrainStep step(model, *optimizer, c.train);
  const auto before = weights_sha256(model);
  auto r = step.run(tiny_batch(), 0.01, 0, 0);
  CHECK(r.applied);
  CHECK(r.samples == 2);
  CHECK(std::isfinite(r.loss.item<double>()));
  CHECK(weights_sha256(model) != before);
  // A gradient synchronisation hook runs between backward and the update.
  struct Count : GradientSync {
    int calls = 0;
    bool had_grads = false;
    StepTotals sync(Recommender& m, const StepTotals& local) override {
      ++calls;
      had_grads = m->parameters()[0].grad().defined();
      StepTotals total = local;
      total.samples *= 2;  // as if a second process had an equal part
      return total;
    }
  } count;
  TrainStep synced(model, *optimizer, c.train, &count);
  const auto synced_result = synced.run(tiny_batch(), 0.01, 1, 0);
  CHECK(count.calls == 1);
  CHECK(count.had_grads);
  CHECK(synced_result.samples == 4);  // the sums the hook returns are the step's
  // NaN in the embedding table: error names the step (1-based), or skip leaves the weights.
  {
    torch::NoGradGuard guard;
    model->parameters()[0].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  const auto poisoned = weights_sha256(model);
  CHECK_THROWS_WITH(step.run(tiny_batch(), 0.01, 41, 2),
                    Contains("non-finite training loss at global step 42 (epoch 3)"));
  c.train.on_nonfinite = NonFinitePolicy::skip;
  TrainStep skipping(model, *optimizer, c.train);
  r = skipping.run(tiny_batch(), 0.01, 0, 0);
  CHECK_FALSE(r.applied);
  CHECK(weights_sha256(model) == poisoned);
}

TEST_CASE("fused Adam never reads moments that live on another device", "[train][step][device]") {
  // A restored state is read onto the CPU and follows the model to its device
  // (place_optimizer_state, run by the trainer; the [cuda] round-trip test covers it on a GPU).
  // Should moments still sit elsewhere, the fused CPU kernel (raw pointers) must leave them to
  // Adam's own step, which refuses with LibTorch's error: before, a CUDA checkpoint resumed on
  // the CPU read device memory as host memory and crashed. The meta device stands in for a GPU.
  Config c = tiny_config();
  torch::manual_seed(3);
  auto model = build_recommender(c, 8, 0);
  auto optimizer = make_optimizer(c.train, model);
  TrainStep step(model, *optimizer, c.train);
  REQUIRE(step.run(tiny_batch(), 0.01, 0, 0).applied);  // creates Adam's moments on the CPU
  place_optimizer_state(model, *optimizer);             // already there: nothing changes
  std::size_t moved = 0;
  for (const auto& p : model->parameters()) {
    const auto it = optimizer->state().find(compat::optimizer_state_key(p));
    REQUIRE(it != optimizer->state().end());
    auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
    CHECK(s.exp_avg().device().is_cpu());
    s.exp_avg(s.exp_avg().to(torch::kMeta));
    s.exp_avg_sq(s.exp_avg_sq().to(torch::kMeta));
    ++moved;
  }
  CHECK(moved == model->parameters().size());
  CHECK_THROWS(step.run(tiny_batch(), 0.01, 1, 0));
}

TEST_CASE("checkpoint container: header round trip, field checks, payload", "[train][io]") {
  TempDir dir;
  const RunDir run = empty_run(dir);
  Config c = tiny_config();
  torch::manual_seed(5);
  auto model = build_recommender(c, 8, 0);
  auto optimizer = make_optimizer(c.train, model);
  TrainStep(model, *optimizer, c.train).run(tiny_batch(), 0.01, 0, 0);
  CheckpointContents contents;
  contents.kind = "periodic";
  contents.config = &c;
  contents.train_state.global_step = 1;
  contents.train_state.step_in_epoch = 1;
  contents.train_state.samples_seen = 2;
  contents.items_vocab = run.items_vocab();
  contents.users_vocab = run.users_vocab();
  contents.optimizer = optimizer.get();
  contents.rng = true;
  save_checkpoint(run.periodic(1), model, contents);
  const auto meta = read_checkpoint_meta(run.periodic(1));
  CHECK(meta.kind == "periodic");
  CHECK(meta.format_version == kCheckpointFormatVersion);
  CHECK(meta.train_state.to_json() == contents.train_state.to_json());
  CHECK(config_to_json(meta.config) == config_to_json(c));
  CHECK(meta.items.file == "../items.vocab");
  CHECK(meta.weights_sha256 == weights_sha256(model));
  CHECK(meta.optimizer_sha256 == optimizer_sha256(model, *optimizer));
  CHECK(CheckpointMeta::from_json(meta.to_json(), "x").to_json() == meta.to_json());
  // The payload restores the same weights and Adam state into a fresh model.
  torch::manual_seed(99);
  auto other = build_recommender(c, 8, 0);
  auto other_optimizer = make_optimizer(c.train, other);
  check_parameter_shapes(run.periodic(1), meta, other);
  load_checkpoint_state(run.periodic(1), other, other_optimizer.get(), true);
  CHECK(weights_sha256(other) == meta.weights_sha256);
  CHECK(optimizer_sha256(other, *other_optimizer) == meta.optimizer_sha256);
  // Each field is checked.
  for (const auto& [pointer, value, message] :
       std::vector<std::tuple<std::string, nlohmann::json, std::string>>{
           {"/kind", "latest", "kind: expected periodic, best or final"},
           {"/train_state/samples_seen", -1, "samples_seen: negative"},
           {"/train_state/train_seconds", "x", "malformed checkpoint header"},
           {"/parameter_shapes/head.0.weight", nlohmann::json::array({4, -4}), "negative size"},
           {"/config/train/lr", -1.0, "/train/lr: out of range"}}) {
    INFO(pointer);
    auto j = meta.to_json();
    j[nlohmann::json::json_pointer(pointer)] = value;
    CHECK_THROWS_WITH(CheckpointMeta::from_json(j, "c.pt"), Contains(message));
  }
  // A model of another shape is refused before and after loading.
  Config wider = c;
  wider.model.encoder.hidden = 6;
  auto wide = build_recommender(wider, 8, 0);
  CHECK_THROWS_WITH(check_parameter_shapes(run.periodic(1), meta, wide),
                    Contains("the stored config builds shape"));
  CHECK_THROWS_WITH(load_checkpoint_state(run.periodic(1), wide, nullptr, false),
                    Contains("the model expects") && Contains("but the checkpoint's weights are"));
}

TEST_CASE("checkpoint policy: naming, latest, pruning, the next-epoch rule", "[train][io]") {
  TempDir dir;
  const RunDir run = empty_run(dir);
  Config c = tiny_config();
  c.checkpoint.keep_last = 2;
  auto model = build_recommender(c, 8, 0);
  auto optimizer = make_optimizer(c.train, model);
  const CheckpointPolicy policy(c, run);
  TrainState s;
  for (const std::int64_t step : {3, 6, 9}) {
    s.global_step = step;
    policy.save_periodic(model, *optimizer, s);
    CHECK(run.latest() == run.periodic(step));
  }
  CHECK(run.periodic_checkpoints() == std::vector<std::string>{run.periodic(6), run.periodic(9)});
  CHECK(fs::path(run.periodic(9)).filename() == "step-000000009.pt");
  policy.save_best(model, *optimizer, s, {{"auc", 0.75}});
  CHECK(read_checkpoint_meta(run.best()).kind == "best");
  CHECK(read_checkpoint_meta(run.best()).metrics["auc"] == 0.75);
  policy.save_final(model, *optimizer, s);
  CHECK(read_checkpoint_meta(run.final_model()).kind == "final");
  // End of an epoch: saved as the start of the next one; not when stopping early or when
  // every_epoch is off.
  s.epoch = 1;
  s.step_in_epoch = 8;
  const auto next = policy.at_epoch_end(s);
  REQUIRE(next);
  CHECK(next->epoch == 2);
  CHECK(next->step_in_epoch == 0);
  CHECK(next->global_step == s.global_step);
  s.stopped_early = true;
  CHECK_FALSE(policy.at_epoch_end(s));
  s.stopped_early = false;
  c.checkpoint.every_epoch = false;
  CHECK_FALSE(CheckpointPolicy(c, run).at_epoch_end(s));
}

TEST_CASE("stop requests: the step limit", "[train][schedule]") {
  const StopRequests none(0), limit(5);
  TrainState s;
  s.global_step = 4;
  CHECK_FALSE(none.pending(s));
  CHECK_FALSE(limit.pending(s));
  s.global_step = 5;
  CHECK(limit.pending(s));
  CHECK_FALSE(none.pending(s));
  CHECK_NOTHROW(limit.honour(s, 10, RunDir{"run"}));  // logs where to resume
}

TEST_CASE("preprocess options: training ignores them, a resume never compares them",
          "[config][resume]") {
  for (const auto& f : config_fields()) {
    INFO(f.name);
    const bool preprocess = f.name.rfind("preprocess.", 0) == 0;
    CHECK(f.training == !preprocess);
    if (preprocess) CHECK_FALSE(f.resumable);  // not listed among the resumable options
  }
  for (const auto& name : resumable_fields()) CHECK(name.rfind("preprocess.", 0) != 0);
  CheckpointMeta meta;
  meta.config = default_config();
  // A preprocess option may differ (training ignores it); a model option may not.
  const Config resumed = resumed_config(meta, {"preprocess.seed=7", "train.epochs=12"});
  CHECK(resumed.preprocess.seed == 7);
  CHECK(resumed.train.epochs == 12);
  CHECK_THROWS_WITH(
      resumed_config(meta, {"preprocess.seed=7", "model.embedding.dim=3"}),
      Catch::Contains("/model/embedding/dim") && !Catch::Contains("/preprocess/seed"));
}

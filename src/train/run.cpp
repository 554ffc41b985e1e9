#include "attnrec/train/run.hpp"

#include "attnrec/data/negatives.hpp"

#include <fmt/format.h>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/categories.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/eval/evaluation.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/metrics_log.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/resume.hpp"
#include "attnrec/train/trainer.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/logging.hpp"
#include "attnrec/util/run_lock.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

namespace {

/// The files a training run reads, for the checks against its run directory.
std::vector<std::pair<std::string, std::string>> training_inputs(const Config& config,
                                                                 const std::string& config_file) {
  return {{config_file, "--config"},
          {config.data.train, "data.train"},
          {config.data.valid, "data.valid"},
          {config.data.test, "data.test"},
          {config.data.item_categories, "data.item_categories"}};
}

nlohmann::json data_stats(const SampleSet& s) {
  return {{"file", s.source},
          {"samples", s.size()},
          {"positives", s.stats.positives},
          {"skipped_lines", s.stats.skipped},
          {"truncated_histories", s.stats.truncated},
          {"oov_rate", s.stats.oov_rate()},
          {"skipped_examples", s.stats.skipped_examples}};
}

}  // namespace

namespace {

/// Everything a run needs besides the model: data, vocabularies, device.
struct Prepared {
  RunDir run;
  std::unique_ptr<Parallel> parallel;  ///< several processes (null: one)
  bool writes = true;                  ///< writes the run directory (one process, or rank 0)
  torch::Device device = torch::kCPU;
  int threads = 1;
  TrainingData train;
  std::string train_sha256;  ///< samples_sha256(train.samples), computed once by read_data
  std::optional<SampleSet> valid, test;
  std::optional<RankingInput> valid_ranking;  ///< the frozen validation candidates
  std::optional<ItemCategories> categories;
};

void check_data_files(const Config& config) {
  if (config.data.train.empty()) {
    throw ConfigError("config: /data/train: empty; training needs a training file");
  }
  // Fail on a missing file now rather than after the run directory was set up.
  for (const auto* path : {&config.data.train, &config.data.valid, &config.data.test,
                           &config.data.item_categories, &config.data.valid_candidates}) {
    if (!path->empty() && !std::ifstream(*path)) {
      throw DataError(*path + ": cannot open sample file");
    }
  }
}

/// The frozen validation candidates: data.valid_candidates, or the valid_candidates.tsv beside
/// data.valid; read when given, and required by a ranking early-stopping metric.
void read_valid_candidates(const Config& config, const ReaderOptions& reader, Prepared& p) {
  if (config.data.valid.empty()) return;
  const auto metric = config.train.early_stopping.metric;
  if (is_ranking_metric(metric) && config.train.early_stopping.protocol == RankingProtocol::full) {
    p.valid_ranking = full_ranking_input(*p.valid, config.data.valid, p.train.items, p.train.users,
                                         p.train.samples);
    if (p.valid_ranking->rows.size() == 0) {
      throw DataError(config.data.valid +
                      ": no positive samples (label 1) to rank; choose auc, "
                      "gauc or logloss as train.early_stopping.metric");
    }
    spdlog::info(
        "{}: {} validation positives ranked against every item their user has not "
        "interacted with in training",
        config.data.valid, p.valid_ranking->rows.size());
    return;
  }
  std::string path = config.data.valid_candidates;
  if (path.empty() && is_ranking_metric(metric)) {
    path = file_beside(config.data.valid, "valid_candidates.tsv");
    if (path.empty()) {
      throw ConfigError(fmt::format(
          "config: /train/early_stopping/metric: \"{}\" ranks each validation positive against "
          "frozen candidates, but /data/valid_candidates is empty and there is no "
          "valid_candidates.tsv beside {}; set data.valid_candidates, or run attnrec preprocess "
          "(with --ranking-negatives > 0 it writes one), or choose auc, gauc or logloss",
          name_of(metric), config.data.valid));
    }
  }
  if (path.empty()) return;
  p.valid_ranking = read_candidates_file(path, reader, p.train.items, p.train.users);
  if (p.valid_ranking->rows.size() == 0) {
    throw DataError(path +
                    ": no candidate rows; the validation ranking needs at least one (re-run "
                    "attnrec preprocess with --ranking-negatives > 0, or choose auc, gauc or "
                    "logloss as train.early_stopping.metric)");
  }
  spdlog::info("{}: {} validation positives ranked against {} frozen candidates each", path,
               p.valid_ranking->rows.size(),
               p.valid_ranking->negatives.empty() ? 0 : p.valid_ranking->negatives[0].size());
}

void read_data(const Config& config, Prepared& p) {
  const ReaderOptions reader = reader_options(config.data, at::get_num_threads());
  VocabOptions vocab_options;
  vocab_options.min_count = config.data.min_count;
  vocab_options.max_size = config.data.max_vocab;
  // With drawn negatives the training file may hold positives only (train_positives.tsv);
  // validation and test keep their frozen negatives, so they still need both classes.
  ReaderOptions train_reader = reader;
  if (trains_on_positives(config.train)) train_reader.require_both_classes = false;
  p.train = read_training_file(config.data.train, train_reader, vocab_options);
  p.train_sha256 = samples_sha256(p.train.samples);
  spdlog::info("{}: {} samples ({} positive), {} items, {} users in vocabulary", config.data.train,
               p.train.samples.size(), p.train.samples.stats.positives, p.train.items.size(),
               p.train.users.size());
  if (config.model.embedding.category) {
    p.categories = read_item_categories(config.data.item_categories, p.train.items);
    spdlog::info("{}: {} categories; {} vocabulary items without one", config.data.item_categories,
                 p.categories->categories.size() - Vocab::kReserved,
                 p.categories->items_without_category);
  }
  if (!config.data.valid.empty()) {
    p.valid = read_sample_file(config.data.valid, reader, p.train.items, p.train.users);
    spdlog::info("{}: {} samples, OOV rate {:.4f}", config.data.valid, p.valid->size(),
                 p.valid->stats.oov_rate());
  }
  read_valid_candidates(config, reader, p);
  if (!config.data.test.empty()) {
    p.test = read_sample_file(config.data.test, reader, p.train.items, p.train.users);
    spdlog::info("{}: {} samples, OOV rate {:.4f}", config.data.test, p.test->size(),
                 p.test->stats.oov_rate());
  }
}

/// The first 64 bits of a SHA-256 written in hex.
std::uint64_t digest_of_hex(const std::string& sha256) {
  return std::stoull(sha256.substr(0, 16), nullptr, 16);
}

std::uint64_t digest(const std::string& text) { return digest_of_hex(sha256_hex(text)); }

std::uint64_t digest(const SampleSet& s) { return digest_of_hex(samples_sha256(s)); }

/// What every process of a multi-process run must agree on before training.
std::vector<Fingerprint> fingerprints(const Config& config, const Prepared& p) {
  std::vector<Fingerprint> f = {
      {"attnrec build (version and LibTorch)",
       digest(std::string(ATTNREC_VERSION) + "\n" + describe_build())},
      {"config (after --set)", digest(config_to_json(config).dump())},
      {"training data (" + config.data.train + ")", digest_of_hex(p.train_sha256)},
      {"item vocabulary", digest(p.train.items.to_text())},
      {"user vocabulary", digest(p.train.users.to_text())},
  };
  if (p.valid) f.push_back({"validation data (" + config.data.valid + ")", digest(*p.valid)});
  if (p.test) f.push_back({"test data (" + config.data.test + ")", digest(*p.test)});
  return f;
}

/// This process's device (cuda and auto mean its GPU, options.cuda_index) and CPU threads.
void set_up_device(const Config& config, const TrainRunOptions& options, Prepared& p) {
  p.device = resolve_device(config.train.device, "/train/device", options.cuda_index);
  if (p.device.is_cuda()) set_cuda_determinism(config.train.deterministic);
  p.threads =
      configure_threads(config.train.threads > 0 ? config.train.threads : options.default_threads);
}

/// Connects to the other processes (when the options ask for it): rank 0 alone writes.
void connect(const Config& config, const TrainRunOptions& options, Prepared& p) {
  if (options.connect) p.parallel = options.connect(config, p.device);
  p.writes = !p.parallel || p.parallel->rank() == 0;
}

/// A resume keeps the number of processes, which bit-identical results need (data shards,
/// bucket sums and dropout streams depend on it), unless the user allows the change.
void check_world_size(const std::string& checkpoint, const CheckpointMeta& meta, const Prepared& p,
                      bool allow_change) {
  const int stored = meta.world_size();
  const int now = p.parallel ? p.parallel->world_size() : 1;
  if (stored == now) return;
  if (!allow_change) {
    throw CheckpointError(fmt::format(
        "{}: written by a run of {} process(es), resumed with {}; resume with {} process(es) "
        "for results bit-identical to an uninterrupted run, or pass --allow-world-size-change "
        "to continue with {} (the optimisation stays the same, the bits do not)",
        checkpoint, stored, now, stored, now));
  }
  spdlog::warn(
      "resuming a checkpoint of {} process(es) with {} (--allow-world-size-change): the results "
      "are no longer bit-identical to an uninterrupted run",
      stored, now);
}

/// Builds the model the config describes (with the category map when there is one).
Recommender build_model(const Config& config, const Prepared& p) {
  Recommender model = build_recommender(config, p.train.items.size(), p.train.users.size(),
                                        p.categories ? p.categories->categories.size() : 0);
  if (p.categories) model->set_item_categories(torch::tensor(p.categories->of_item, torch::kInt64));
  return model;
}

/// Trains (fresh or resumed) and writes the test row and summary.
nlohmann::json train_and_finish(const Config& config, Prepared& p, Recommender& model,
                                const FitOptions& fit,
                                const std::chrono::steady_clock::time_point& started) {
  std::int64_t parameters = 0;
  for (const auto& param : model->parameters()) parameters += param.numel();
  spdlog::info("model: {} encoder, {} attention ({} query), {} parameters",
               name_of(config.model.encoder.type), config.model.attention.type,
               name_of(config.model.attention.query), parameters);
  Trainer trainer(config, p.train, p.valid ? &*p.valid : nullptr, p.run, p.device,
                  p.test ? &*p.test : nullptr);
  if (p.valid_ranking) trainer.set_valid_ranking(&*p.valid_ranking);
  const TrainState state = trainer.fit(model, fit);
  if (!p.writes) return nlohmann::json{{"rank", p.parallel->rank()}};  // rank 0 reports
  const bool finished = state.epoch >= config.train.epochs || state.stopped_early;

  nlohmann::json summary = {
      {"run_dir", p.run.root},
      {"finished", finished},
      {"device", p.device.str()},
      {"threads", p.threads},
      {"parameters", parameters},
      {"epochs_completed", state.epoch},
      {"steps", state.global_step},
      {"stopped_early", state.stopped_early},
      {"skipped_nonfinite_batches", state.skipped_nonfinite},
      {"train_seconds", state.train_seconds},
      {"train_samples_per_second",
       state.train_seconds > 0 ? static_cast<double>(state.samples_seen) / state.train_seconds
                               : 0.0},
      {"early_stopping", state.early_stopping.to_json()},
      {"data", {{"train", data_stats(p.train.samples)}}},
  };
  if (p.valid) summary["data"]["valid"] = data_stats(*p.valid);
  if (p.parallel) {
    summary["distributed"] = p.parallel->describe();
    summary["distributed"].update(p.parallel->statistics());
  }
  if (finished) {
    summary["best_checkpoint"] = resolve_checkpoint_path(p.run.root);
    if (p.test) {
      summary["data"]["test"] = data_stats(*p.test);
      // The same loading path as `attnrec evaluate RUN_DIR`: the best model from its checkpoint.
      auto best = load_model(p.run.root, p.device);
      const auto result = evaluate(best.model, *p.test,
                                   EvalOptions()
                                       .with_batch_size(config.eval.batch_size)
                                       .with_threshold(config.eval.threshold)
                                       .with_device(p.device));
      nlohmann::json row = result.metrics;
      row["split"] = "test";
      row["checkpoint"] = best.checkpoint_path;
      row["step"] = best.meta.train_state.global_step;
      MetricsLog(p.run.metrics()).append(row);
      summary["test"] = result.metrics;
    }
  }
  summary["wall_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  write_file_atomic(p.run.summary(), summary.dump(2) + "\n");
  return summary;
}

}  // namespace

nlohmann::json run_training(const Config& config, const TrainRunOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  Prepared p;
  p.run = RunDir{options.run_dir};
  // Everything is checked and read before the run directory changes: a failure leaves it (and
  // an earlier run in it) as it was.
  set_up_device(config, options, p);
  check_data_files(config);
  connect(config, options, p);
  if (p.writes) {
    check_run_dir_usable(p.run, options.overwrite, training_inputs(config, options.config_file));
  }
  seed_everything(static_cast<std::uint64_t>(config.train.seed));
  spdlog::info("run directory {}; device {}; {} CPU thread(s)", p.run.root, p.device.str(),
               p.threads);
  read_data(config, p);
  Recommender model = build_model(config, p);
  if (p.parallel) p.parallel->check_same(fingerprints(config, p));

  std::unique_ptr<RunLock> lock;
  if (p.writes) {
    lock = lock_run_dir(p.run);
    reset_run_dir(p.run);
    lock->announce();
    add_log_file(p.run.log());
    write_file_atomic(p.run.config(), config_to_json(config).dump(2) + "\n");
    p.train.items.save(p.run.items_vocab());
    p.train.users.save(p.run.users_vocab());
    if (p.categories) p.categories->categories.save(p.run.categories_vocab());
  }
  FitOptions fit;
  fit.stop_after_steps = options.stop_after_steps;
  fit.parallel = p.parallel.get();
  fit.train_data_sha256 = p.train_sha256;
  return train_and_finish(config, p, model, fit, started);
}

nlohmann::json resume_training(const std::string& path, const std::vector<std::string>& overrides,
                               const TrainRunOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const auto [checkpoint, run] = resume_target(path);
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  const Config config = resumed_config(meta, overrides);
  check_data_files(config);
  Prepared p;
  p.run = run;
  set_up_device(config, options, p);
  connect(config, options, p);
  check_world_size(checkpoint, meta, p, options.allow_world_size_change);
  // Nothing in the run directory changes until the checkpoint, the data and the overrides have
  // all been checked: a failing resume leaves config.json, the metrics and the checkpoints.
  std::unique_ptr<RunLock> lock;
  if (p.writes) lock = std::make_unique<RunLock>(p.run.root, /*announce=*/false);
  read_data(config, p);
  check_same_vocabularies(checkpoint, meta, config.data.train, p.train.items, p.train.users);
  check_same_training_data(checkpoint, meta, config.data.train, p.train_sha256);
  Recommender model = build_model(config, p);
  FitOptions fit;
  fit.optimizer = make_optimizer(config.train, model);
  // With drawn negatives (or the full softmax) an epoch iterates over the positives only.
  const std::int64_t samples =
      trains_on_positives(config.train) ? positive_count(p.train.samples) : p.train.samples.size();
  const std::int64_t per_epoch = (samples + config.train.batch_size - 1) / config.train.batch_size;
  fit.start = restore_training(checkpoint, meta, config, per_epoch,
                               count_metrics_rows(p.run.metrics()), model, *fit.optimizer);
  fit.stop_after_steps = options.stop_after_steps;
  fit.parallel = p.parallel.get();
  fit.train_data_sha256 = p.train_sha256;
  if (p.parallel) p.parallel->check_same(fingerprints(config, p));

  if (p.writes) {
    lock->announce();
    add_log_file(p.run.log());
    spdlog::info("resuming {} from {}", p.run.root, checkpoint);
    remove_stale_temporaries(p.run);
    write_file_atomic(p.run.config(), config_to_json(config).dump(2) + "\n");
    MetricsLog(p.run.metrics()).truncate(fit.start->metrics_rows);
  }
  return train_and_finish(config, p, model, fit, started);
}

std::optional<AutoResume> auto_resume_target(const Config& config, const std::string& run_dir) {
  const RunDir run{run_dir};
  if (!run.holds_run()) return std::nullopt;
  const std::string latest = run.latest();
  if (latest.empty()) return std::nullopt;
  const CheckpointMeta meta = read_checkpoint_meta(latest);
  AutoResume target{latest, {}};
  std::vector<std::string> differ;
  for (const auto& f : config_fields()) {
    if (!f.training) continue;
    const auto mine = field_value(f, config), stored = field_value(f, meta.config);
    if (mine == stored) continue;
    if (f.resumable) {
      target.overrides.push_back(f.name + "=" + mine.dump());
    } else {
      differ.push_back(fmt::format("{} ({} there, {} here)", f.name, stored.dump(), mine.dump()));
    }
  }
  if (!differ.empty()) {
    throw UsageError(fmt::format(
        "--auto-resume: {} holds a run of another config: {}; pass another --run-dir, or "
        "--overwrite to replace that run",
        run_dir, join(differ, ", ")));
  }
  return target;
}

}  // namespace attnrec

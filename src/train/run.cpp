#include "attnrec/train/run.hpp"

#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <spdlog/spdlog.h>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/checkpoint.hpp"
#include "attnrec/train/trainer.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/logging.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

namespace {

void prepare_run_dir(const RunDir& run, bool overwrite) {
  const fs::path root(run.root);
  if (fs::exists(root) && !fs::is_directory(root)) {
    throw UsageError(run.root + ": exists and is not a directory");
  }
  if (fs::exists(root) && !fs::is_empty(root)) {
    const bool looks_like_run = fs::exists(run.config()) || fs::exists(run.metrics());
    if (!overwrite || !looks_like_run) {
      throw UsageError(run.root + (looks_like_run
                                       ? ": already holds a run; pass --overwrite to replace it "
                                         "or --run-dir to train elsewhere"
                                       : ": not empty and not a run directory; choose another "
                                         "--run-dir"));
    }
    fs::remove_all(root);
  }
  std::error_code ec;
  fs::create_directories(fs::path(run.checkpoints()), ec);
  if (ec) throw IoError(run.root + ": cannot create run directory: " + ec.message());
}

nlohmann::json data_stats(const SampleSet& s) {
  return {{"file", s.source},          {"samples", s.size()},
          {"positives", s.stats.positives}, {"skipped_lines", s.stats.skipped},
          {"truncated_histories", s.stats.truncated}, {"oov_rate", s.stats.oov_rate()},
          {"skipped_examples", s.stats.skipped_examples}};
}

}  // namespace

SampleSet read_for_model(const std::string& path, const Config& config, const Vocab& items,
                         const Vocab& users, bool label_optional,
                         std::vector<std::string>* columns_used) {
  ReaderOptions options = reader_options(config.data);
  if (label_optional) {
    options.require_both_classes = false;
    // Peek at the first data line: one field fewer than configured means "no label column".
    std::ifstream in(path);
    std::string line;
    std::vector<std::string_view> fields;
    for (int i = 0; i < 2 && std::getline(in, line); ++i) {
      split(line, '\t', fields);
      const bool header_like = fields.size() > 0 && (fields[0] == "label" || fields[0] == "user" ||
                                                     fields[0] == "item" || fields[0] == "history");
      if (header_like && i == 0 && config.data.header != "no") continue;
      if (fields.size() + 1 == options.columns.size() && has_column(config.data, "label")) {
        options.columns.erase(std::find(options.columns.begin(), options.columns.end(), "label"));
      }
      break;
    }
  }
  if (columns_used) *columns_used = options.columns;
  return read_sample_file(path, options, items, users);
}

nlohmann::json run_training(const Config& config, const TrainRunOptions& options) {
  if (config.data.train.empty()) {
    throw ConfigError("config: /data/train: empty; training needs a training file");
  }
  const auto started = std::chrono::steady_clock::now();
  const RunDir run{options.run_dir};
  const torch::Device device = resolve_device(config.train.device);
  // Fail on a missing file now rather than after the run directory was set up.
  for (const auto* path : {&config.data.train, &config.data.valid, &config.data.test}) {
    if (!path->empty() && !std::ifstream(*path)) {
      throw DataError(*path + ": cannot open sample file");
    }
  }
  prepare_run_dir(run, options.overwrite);
  add_log_file(run.log());
  write_file_atomic(run.config(), config_to_json(config).dump(2) + "\n");
  const int threads =
      configure_threads(config.train.threads, config.data.prefetch_batches > 0);
  seed_everything(static_cast<std::uint64_t>(config.train.seed));
  spdlog::info("run directory {}; device {}; {} CPU thread(s)", run.root, device.str(), threads);

  const ReaderOptions reader = reader_options(config.data);
  VocabOptions vocab_options;
  vocab_options.min_count = config.data.min_count;
  vocab_options.max_size = config.data.max_vocab;
  const TrainingData train = read_training_file(config.data.train, reader, vocab_options);
  train.items.save(run.items_vocab());
  train.users.save(run.users_vocab());
  spdlog::info("{}: {} samples ({} positive), {} items, {} users in vocabulary",
               config.data.train, train.samples.size(), train.samples.stats.positives,
               train.items.size(), train.users.size());
  std::optional<SampleSet> valid, test;
  if (!config.data.valid.empty()) {
    valid = read_sample_file(config.data.valid, reader, train.items, train.users);
    spdlog::info("{}: {} samples, OOV rate {:.4f}", config.data.valid, valid->size(),
                 valid->stats.oov_rate());
  }
  if (!config.data.test.empty()) {
    test = read_sample_file(config.data.test, reader, train.items, train.users);
    spdlog::info("{}: {} samples, OOV rate {:.4f}", config.data.test, test->size(),
                 test->stats.oov_rate());
  }

  Recommender model = build_recommender(config, train.items.size(), train.users.size());
  std::int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  spdlog::info("model: {} encoder, {} attention ({} query), {} parameters",
               config.model.encoder.type, config.model.attention.type,
               config.model.attention.query, parameters);

  Trainer trainer(config, train, valid ? &*valid : nullptr, run, device);
  const TrainState state = trainer.fit(model);

  nlohmann::json summary = {
      {"run_dir", run.root},
      {"device", device.str()},
      {"threads", threads},
      {"parameters", parameters},
      {"epochs_completed", state.epoch},
      {"steps", state.global_step},
      {"stopped_early", state.stopped_early},
      {"train_seconds", state.train_seconds},
      {"train_samples_per_second",
       state.train_seconds > 0 ? static_cast<double>(state.samples_seen) / state.train_seconds
                               : 0.0},
      {"early_stopping", state.early_stopping.to_json()},
      {"data", {{"train", data_stats(train.samples)}}},
  };
  if (valid) summary["data"]["valid"] = data_stats(*valid);
  summary["best_checkpoint"] = resolve_checkpoint_path(run.root);
  if (test) {
    summary["data"]["test"] = data_stats(*test);
    // The same loading path as `attnrec evaluate RUN_DIR`: the best model from its checkpoint.
    auto best = load_model(run.root, device);
    const auto result = evaluate(best.model, *test, EvalOptions()
                                                      .with_batch_size(config.eval.batch_size)
                                                      .with_threshold(config.eval.threshold)
                                                      .with_device(device));
    nlohmann::json row = result.metrics;
    row["split"] = "test";
    row["checkpoint"] = best.checkpoint_path;
    row["step"] = best.meta["train_state"]["global_step"];
    MetricsLog(run.metrics()).append(row);
    summary["test"] = result.metrics;
  }
  summary["wall_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  write_file_atomic(run.summary(), summary.dump(2) + "\n");
  return summary;
}

}  // namespace attnrec

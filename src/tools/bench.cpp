#include "attnrec/tools/bench.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/loader.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/run.hpp"
#include "attnrec/train/trainer.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/profiler.hpp"
#include "attnrec/util/rng.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

BenchWorkload bench_workload(const std::string& name) {
  BenchWorkload w;
  w.name = name;
  if (name == "W1") return w;
  if (name == "T1") {
    w.vocab = 12000 + Vocab::kReserved;  // the full-ranking size: 12,000 items
    return w;
  }
  if (name == "W2") {
    w.vocab = 2000000;
    return w;
  }
  throw UsageError("bench: unknown workload \"" + name + "\" (expected W1, W2 or T1)");
}

SampleSet make_bench_samples(const BenchWorkload& w, std::int64_t n, std::uint64_t seed) {
  constexpr std::int64_t kTopics = 100;
  Rng rng(seed);
  SampleSet s;
  s.source = "bench:" + w.name;
  s.has_labels = s.has_items = true;
  s.history_offsets.reserve(static_cast<std::size_t>(n) + 1);
  s.history_offsets.push_back(0);
  s.history.reserve(static_cast<std::size_t>(n) * 28);
  auto topic_item = [&](std::int64_t k) {
    const std::int64_t count = (w.vocab - 2 - k) / kTopics + 1;  // ids 1 + k + 100 j < vocab
    return static_cast<std::int32_t>(1 + k +
                                     kTopics * static_cast<std::int64_t>(rng.uniform_int(count)));
  };
  auto any_item = [&] { return static_cast<std::int32_t>(1 + rng.uniform_int(w.vocab - 1)); };
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::int64_t>(rng.uniform_int(kTopics));
    const auto len = 5 + static_cast<std::int64_t>(rng.uniform_int(46));
    for (std::int64_t t = 0; t < len; ++t) {
      s.history.push_back(rng.uniform() < 0.8 ? topic_item(k) : any_item());
    }
    s.history_offsets.push_back(static_cast<std::int64_t>(s.history.size()));
    const bool on_topic = rng.uniform() < 0.5;
    s.items.push_back(on_topic ? topic_item(k) : any_item());
    const std::uint8_t label = rng.uniform() < (on_topic ? 0.9 : 0.1) ? 1 : 0;
    s.labels.push_back(label);
    s.stats.positives += label;
    s.line_numbers.push_back(i + 1);
  }
  s.stats.samples = n;
  return s;
}

Config bench_config(const BenchWorkload& w) {
  Config c = default_config();
  c.data.columns = {"label", "item", "history"};
  c.data.max_history = 50;
  c.data.shuffle = false;  // the samples are already in random order
  c.model.embedding.dim = 64;
  c.model.embedding.user = false;
  c.model.encoder.type = EncoderKind::lstm;
  c.model.encoder.hidden = 64;
  c.model.attention.type = "additive";
  c.model.attention.query = QueryKind::target;
  c.model.attention.hidden = 64;
  c.model.head.inputs = HeadInputs::context_candidate;
  c.model.head.hidden = {};
  c.train.epochs = 1;
  c.train.batch_size = w.batch_size;
  c.train.lr = 1e-3;
  c.train.threads = 0;
  c.train.device = "cpu";
  c.train.log_every_steps = 1000000;  // no progress output inside the measurement
  c.checkpoint.every_epoch = false;
  c.checkpoint.every_steps = 0;
  if (w.name == "T1") {
    // configs/sasrec.json's model on the same data.
    c.model.encoder.type = EncoderKind::transformer;
    c.model.encoder.layers = 2;
    c.model.encoder.heads = 1;
    c.model.encoder.norm = TransformerNorm::sasrec;
    c.model.encoder.dropout = 0.2;
    c.model.encoder.attention_dropout = 0.2;
    c.model.encoder.scale_input = true;
    c.model.attention.type = "last";
    c.model.attention.query = QueryKind::self;
    c.model.head.type = HeadKind::dot;  // head.inputs and head.hidden do not apply
  }
  return c;
}

namespace {

double peak_rss_mb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// Full ranking of `users` fresh histories against every item of the vocabulary: seconds and
/// (history, item) pairs per second.
nlohmann::json bench_full_ranking(Recommender& model, const BenchWorkload& w, std::int64_t users,
                                  const torch::Device& device) {
  RankingInput in;
  in.protocol = "full";
  in.rows = make_bench_samples(w, users, w.seed + 2);
  in.item_vocab = w.vocab;
  in.excluded.resize(static_cast<std::size_t>(users));
  for (std::int64_t r = 0; r < users; ++r) {
    auto& ex = in.excluded[static_cast<std::size_t>(r)];
    ex.assign(in.rows.history.begin() + in.rows.history_offsets[r],
              in.rows.history.begin() + in.rows.history_offsets[r + 1]);
    std::sort(ex.begin(), ex.end());
    ex.erase(std::unique(ex.begin(), ex.end()), ex.end());
  }
  model->eval();
  auto scorer = model_scorer(model, device, RankingOptions().pairs_per_batch);
  const auto t0 = std::chrono::steady_clock::now();
  const auto result = evaluate_ranking(*scorer, in, RankingOptions());
  const double seconds = seconds_since(t0);
  const double pairs = static_cast<double>(users) * static_cast<double>(w.vocab - Vocab::kReserved);
  return {{"rank_users", users},
          {"rank_items", w.vocab - Vocab::kReserved},
          {"rank_factorised", model->factorised()},
          {"rank_seconds", seconds},
          {"rank_pairs_per_s", pairs / seconds},
          {"rank_hr@10", result["hr@10"]}};
}

/// Writes `n` fresh samples of the workload as a TSV file (label, item, history) and evaluates
/// `model` on it the way `attnrec evaluate` does: read with the config's reader, score, metrics.
nlohmann::json bench_eval_file(Recommender& model, const Config& config,
                               const torch::Device& device, const BenchWorkload& w, std::int64_t n,
                               const std::filesystem::path& dir) {
  const SampleSet fresh = make_bench_samples(w, n, w.seed + 1);
  const std::string path = (dir / "eval.tsv").string();
  {
    AtomicFileWriter out(path, "benchmark file");
    std::string line;
    for (std::int64_t i = 0; i < fresh.size(); ++i) {
      line.clear();
      line += fresh.labels[static_cast<std::size_t>(i)] ? "1\t" : "0\t";
      line += std::to_string(fresh.items[static_cast<std::size_t>(i)]);
      line += '\t';
      for (auto k = fresh.history_offsets[i]; k < fresh.history_offsets[i + 1]; ++k) {
        if (k > fresh.history_offsets[i]) line += ',';
        line += std::to_string(fresh.history[static_cast<std::size_t>(k)]);
      }
      line += '\n';
      out.write(line);
    }
    out.commit();
  }
  // Token "k" -> id k for every item (ids 0 and 1 are padding and OOV; the workload's item 1
  // reads as OOV, which is id 1 as well).
  std::string vocab_text = "<pad>\t0\n<oov>\t0\n";
  for (std::int64_t id = 2; id < w.vocab; ++id) vocab_text += std::to_string(id) + "\t1\n";
  const Vocab items = Vocab::from_text(vocab_text, "bench vocabulary");
  const auto t0 = std::chrono::steady_clock::now();
  const SampleSet set =
      read_sample_file(path, reader_options(config.data, at::get_num_threads()), items, Vocab());
  const double read_seconds = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  const auto probabilities =
      score(model, set, EvalOptions().with_batch_size(config.eval.batch_size).with_device(device));
  const double score_seconds = seconds_since(t1);
  const auto t2 = std::chrono::steady_clock::now();
  const auto metrics = compute_metrics(set, probabilities, 0.5);
  const double metrics_seconds = seconds_since(t2);
  const double total = read_seconds + score_seconds + metrics_seconds;
  return {{"eval_file_samples", set.size()},
          {"eval_file_samples_per_s", static_cast<double>(set.size()) / total},
          {"eval_file_read_seconds", read_seconds},
          {"eval_file_score_seconds", score_seconds},
          {"eval_file_metrics_seconds", metrics_seconds},
          {"eval_file_auc", metrics["auc"]}};
}

constexpr int kSegments = 10;

/// Loss by tenth of the epoch, step times and the loader's waits, watched from the loop.
struct LossWatch : TrainObserver {
  LossWatch(std::int64_t steps, const torch::Device& device) : steps(steps) {
    // On the training device: a sum there costs no copy to the host per step. One tensor per
    // segment (a vector filled with copies of one tensor would share storage).
    for (int i = 0; i < kSegments; ++i)
      segment_sum.push_back(torch::zeros({}, torch::dtype(torch::kFloat64).device(device)));
  }
  void after_step(const TrainState& state, const torch::Tensor& loss) override {
    const auto now = std::chrono::steady_clock::now();
    if (state.global_step == 1) first_step = now;
    last_step = now;
    const auto seg =
        std::min<std::int64_t>(kSegments - 1, (state.global_step - 1) * kSegments / steps);
    segment_sum[seg] += loss.to(torch::kFloat64);
    ++segment_steps[seg];
  }
  void after_epoch(const TrainState&, double seconds) override { data_wait_seconds += seconds; }
  /// The mean loss of each tenth.
  nlohmann::json segments() const {
    nlohmann::json out = nlohmann::json::array();
    for (int i = 0; i < kSegments; ++i) {
      out.push_back(segment_steps[i] ? segment_sum[i].item<double>() / segment_steps[i] : 0.0);
    }
    return out;
  }

  std::int64_t steps;
  std::vector<torch::Tensor> segment_sum;
  std::vector<std::int64_t> segment_steps = std::vector<std::int64_t>(kSegments, 0);
  std::chrono::steady_clock::time_point first_step, last_step;
  double data_wait_seconds = 0.0;
};

/// --profile: a trace of training steps `from` + 1 .. `to`, recorded from the loop: after a
/// warm-up of up to 20 steps (a quarter of a short run), up to 20 steps.
struct StepTrace : TrainObserver {
  StepTrace(const std::string& folder, std::int64_t steps, const torch::Device& device)
      : path((std::filesystem::path(folder) / "train.json").string()),
        from(std::max<std::int64_t>(1, std::min<std::int64_t>(20, steps / 4))),
        to(std::min(steps, from + 20)),
        cuda(device.is_cuda()) {}
  bool records() const { return to > from; }  // a one-step run has no window
  void after_step(const TrainState& state, const torch::Tensor&) override {
    if (!records()) return;
    if (state.global_step == from) recorder = std::make_unique<TraceRecorder>(cuda);
    if (state.global_step == to && recorder) {
      if (cuda) torch::cuda::synchronize();  // the window's kernels end inside it
      recorder->save(path);
      recorder.reset();
    }
  }

  std::string path;
  std::int64_t from, to;
  bool cuda;
  std::unique_ptr<TraceRecorder> recorder;
};

void make_profile_folder(const std::string& folder) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec || !std::filesystem::is_directory(folder)) {
    throw UsageError("--profile " + folder + ": cannot create the folder for the traces (" +
                     (ec ? ec.message() : "not a folder") + "); choose a writable folder");
  }
}

/// --profile: a trace of inference, 20 batches of fresh samples.
nlohmann::json trace_inference(Recommender& model, const BenchWorkload& w, const Config& config,
                               const torch::Device& device, const std::string& folder) {
  const std::int64_t batches = 20;
  const SampleSet fresh = make_bench_samples(w, batches * config.eval.batch_size, w.seed + 3);
  const auto path = (std::filesystem::path(folder) / "infer.json").string();
  TraceRecorder recorder(device.is_cuda());
  score(model, fresh, EvalOptions().with_batch_size(config.eval.batch_size).with_device(device));
  if (device.is_cuda()) torch::cuda::synchronize();
  recorder.save(path);
  return {{"infer_trace", path}, {"infer_batches", batches}};
}

/// Seconds to build every batch of the epoch in this thread: the data pipeline alone.
double time_data_pipeline(const SampleSet& samples, std::int64_t batch_size) {
  DataLoader loader(samples, LoaderOptions().with_batch_size(batch_size).with_prefetch(0));
  loader.start_epoch(0);
  const auto t0 = std::chrono::steady_clock::now();
  while (loader.next()) {
  }
  return seconds_since(t0);
}

}  // namespace

nlohmann::json run_bench(const BenchOptions& options) {
  namespace fs = std::filesystem;
  BenchWorkload w = bench_workload(options.workload);
  if (options.samples > 0) w.samples = options.samples;
  if (!options.profile.empty()) make_profile_folder(options.profile);
  Config config = bench_config(w);
  apply_overrides(config, options.overrides);
  validate_config(config);
  const int threads = configure_threads(config.train.threads);
  const torch::Device device = resolve_device(config.train.device);
  if (device.is_cuda()) set_cuda_determinism(config.train.deterministic);
  seed_everything(w.seed);
  TrainingData train;
  train.samples = make_bench_samples(w, w.samples, w.seed);
  spdlog::info("bench {}: {} samples, vocabulary {}, {} thread(s)", w.name, w.samples, w.vocab,
               threads);

  // 1. The data pipeline alone.
  const double data_seconds = time_data_pipeline(train.samples, w.batch_size);

  // 2. Training: the product's Trainer, one epoch, in a throw-away run directory.
  const fs::path dir = fs::temp_directory_path() / ("attnrec-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "checkpoints");
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{dir};
  RunDir run{dir.string()};
  Vocab().save(run.items_vocab());
  Vocab().save(run.users_vocab());
  Recommender model = build_recommender(config, w.vocab, 0);
  Trainer trainer(config, train, nullptr, run, device);
  const std::int64_t steps = (w.samples + w.batch_size - 1) / w.batch_size;
  LossWatch watch(steps, device);
  FitOptions fit;
  fit.observers.push_back(&watch);
  nlohmann::json profile;
  std::optional<StepTrace> step_trace;
  if (!options.profile.empty()) {
    step_trace.emplace(options.profile, steps, device);
    if (step_trace->records()) {
      fit.observers.push_back(&*step_trace);
      profile = {{"train_trace", step_trace->path},
                 {"train_steps", {step_trace->from + 1, step_trace->to}}};
    }
  }
  const double peak_rss_before_train = peak_rss_mb();
  const TrainState state = trainer.fit(model, fit);
  const double peak_rss_train = peak_rss_mb();
  const double loop_seconds =
      std::chrono::duration<double>(watch.last_step - watch.first_step).count();

  // 3. Inference on the same samples: no autograd, large batches.
  const auto t0 = std::chrono::steady_clock::now();
  score(model, train.samples,
        EvalOptions().with_batch_size(config.eval.batch_size).with_device(device));
  const double infer_seconds = seconds_since(t0);
  if (!options.profile.empty())
    profile.update(trace_inference(model, w, config, device, options.profile));

  // 4. Optional: evaluation of a file, as `attnrec evaluate` runs it.
  nlohmann::json eval_file;
  if (options.eval_samples > 0)
    eval_file = bench_eval_file(model, config, device, w, options.eval_samples, dir);

  const double n = static_cast<double>(w.samples);
  const double steps_after_first = static_cast<double>(state.global_step - 1);
  nlohmann::json result = {
      {"workload", w.name},
      {"optimizer", name_of(config.train.optimizer)},
      {"samples", w.samples},
      {"vocab", w.vocab},
      {"threads", threads},
      {"device", device.str()},
      {"precision", name_of(config.train.precision)},
      {"deterministic", config.train.deterministic},  // CUDA's kernels (see train.deterministic)
      // The OpenMP wait policy this process started with (see ensure_passive_openmp).
      {"omp_wait_policy",
       std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "libgomp default"},
      {"data_samples_per_s", n / data_seconds},
      {"train_samples_per_s", n / state.train_seconds},
      // Wall time between the first and last step: includes any wait for data.
      {"train_loop_samples_per_s",
       loop_seconds > 0 ? steps_after_first * static_cast<double>(w.batch_size) / loop_seconds
                        : 0.0},
      {"infer_samples_per_s", n / infer_seconds},
      {"infer_batch_size", config.eval.batch_size},
      {"train_seconds", state.train_seconds},
      // Time the training loop spent waiting for the loader's next batch.
      {"train_data_wait_seconds", watch.data_wait_seconds},
      {"peak_rss_mb", peak_rss_mb()},
      // Peak resident memory up to the end of data generation and of training: what each
      // phase added (inference comes last).
      {"peak_rss_mb_before_train", peak_rss_before_train},
      {"peak_rss_mb_after_train", peak_rss_train},
      {"loss_segments", watch.segments()}};
  if (!profile.is_null()) result["profile"] = profile;
  if (options.rank_users > 0) {
    result.update(bench_full_ranking(model, w, options.rank_users, device));
  }
  if (!eval_file.is_null()) {
    result.update(eval_file);
    // Issue 6's target (>= 10): evaluation against this run's own training throughput.
    result["eval_file_vs_train"] =
        eval_file["eval_file_samples_per_s"].get<double>() / (n / state.train_seconds);
  }
  return result;
}

}  // namespace attnrec

#include "attnrec/train/trainer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <chrono>
#include <filesystem>

#include "attnrec/data/loader.hpp"
#include "attnrec/train/checkpoint_policy.hpp"
#include "attnrec/train/fused_adam.hpp"
#include "attnrec/train/lazy_adam.hpp"
#include "attnrec/train/schedule.hpp"
#include "attnrec/train/stop.hpp"
#include "attnrec/train/validation.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/progress.hpp"
#include "attnrec/util/rng.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec {

namespace fs = std::filesystem;

std::shared_ptr<torch::optim::Adam> make_optimizer(const TrainConfig& t, Recommender& model) {
  const auto adam_options = torch::optim::AdamOptions(t.lr)
                                .betas({t.beta1, t.beta2})
                                .eps(t.eps)
                                .weight_decay(t.weight_decay);
  // lazy_adam: the model's embedding tables produce sparse gradients (see the factory), and
  // only the rows of a batch are updated. Both keep Adam's state format for checkpoints.
  if (t.optimizer == OptimizerKind::lazy_adam) {
    return std::make_shared<LazyAdam>(model->parameters(), adam_options);
  }
  return std::make_shared<FusedAdam>(model->parameters(), adam_options);
}

void place_optimizer_state(Recommender& model, torch::optim::Adam& optimizer) {
  auto& state = optimizer.state();
  for (const auto& p : model->parameters()) {
    const auto it = state.find(compat::optimizer_state_key(p));
    if (it == state.end()) continue;
    auto& adam = static_cast<torch::optim::AdamParamState&>(*it->second);
    const auto to = [&](const torch::Tensor& t) { return t.defined() ? t.to(p.device()) : t; };
    adam.exp_avg(to(adam.exp_avg()));
    adam.exp_avg_sq(to(adam.exp_avg_sq()));
    adam.max_exp_avg_sq(to(adam.max_exp_avg_sq()));
  }
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Reading the loss synchronises with the device, so it happens only every few steps.
std::int64_t read_every(const TrainConfig& t) {
  return progress_bar_enabled() ? std::min<std::int64_t>(10, t.log_every_steps) : t.log_every_steps;
}

/// The loss, with the log-q table when sampled softmax corrects for popularity sampling.
TrainObjective make_objective(const TrainConfig& t, const TrainingNegatives* negatives,
                              torch::Device device) {
  torch::Tensor log_q;
  if (negatives && t.loss == LossKind::sampled_softmax &&
      t.negatives.sampling == NegativeDistribution::popularity) {
    const auto table = negatives->log_probabilities();
    log_q = torch::tensor(table, torch::kFloat32);
  }
  TrainObjective objective(t.loss, t.label_smoothing, log_q);
  if (is_full_catalogue(t.loss)) {
    spdlog::info("loss {}: every case against all the items, {} at a time{}", name_of(t.loss),
                 t.softmax_block, t.next_item ? " (every position of a history is a case)" : "");
  }
  if (t.next_item) objective.train_next_item(t.negatives.per_positive);
  objective.set_gbce_t(t.gbce_t);
  objective.set_softmax_block(t.softmax_block);
  objective.to(device);
  return objective;
}

/// Data-parallel training: the generator of dropout (and of any other draw inside a step)
/// restarts every step from (seed, step, rank), so each process draws masks of its own and a
/// resumed run draws what the uninterrupted one drew, without saving every process's generator.
void reseed_step(std::int64_t seed, std::int64_t step, const Parallel& parallel) {
  const auto stream = Rng::mix(static_cast<std::uint64_t>(step), 0x64726f70ULL);
  torch::manual_seed(Rng::mix(Rng::mix(static_cast<std::uint64_t>(seed), stream),
                              static_cast<std::uint64_t>(parallel.rank())));
}

TrainState fresh_state(const TrainConfig& t) {
  TrainState s;
  s.early_stopping = EarlyStopping(t.early_stopping.metric, t.early_stopping.patience);
  return s;
}

}  // namespace

/// Everything one fit() works with.
struct Trainer::Loop {
  Loop(const Trainer& trainer, Recommender& m, const FitOptions& o)
      : model(m),
        options(o),
        optimizer(o.optimizer ? o.optimizer : make_optimizer(trainer.config_.train, m)),
        state(o.start ? *o.start : fresh_state(trainer.config_.train)),
        loader(trainer.training_samples(),
               LoaderOptions()
                   .with_negatives(trainer.negatives_ ? &*trainer.negatives_ : nullptr)
                   .with_batch_size(trainer.config_.train.batch_size)
                   .with_shuffle(trainer.config_.data.shuffle)
                   .with_seed(static_cast<std::uint64_t>(trainer.config_.train.seed))
                   .with_prefetch(trainer.config_.data.prefetch_batches)
                   .with_shard(o.parallel ? o.parallel->rank() : 0,
                               o.parallel ? o.parallel->world_size() : 1)
                   .with_pin_memory(trainer.device_.is_cuda())),
        schedule(trainer.config_, loader.batches_per_epoch(), trainer.valid_ != nullptr,
                 read_every(trainer.config_.train)),
        step(m, *optimizer, trainer.config_.train, o.parallel ? o.parallel : o.gradient_sync,
             make_objective(trainer.config_.train,
                            trainer.negatives_ ? &*trainer.negatives_ : nullptr, trainer.device_)),
        stop(o.stop_after_steps),
        checkpoints(trainer.config_, trainer.run_) {
    const bool writes = !o.parallel || o.parallel->rank() == 0;
    if (writes) checkpoints.set_train_data_sha256(o.train_data_sha256);
    if (writes && trainer.config_.train.tensorboard && !trainer.run_.root.empty()) {
      events = std::make_shared<EventWriter>(trainer.run_.tensorboard(), state.global_step);
    }
    if (trainer.valid_) {
      // Every process validates on the whole set (exact metrics, the same early-stopping
      // decisions everywhere); rank 0 writes the rows.
      validation.emplace(trainer.config_, *trainer.valid_, trainer.device_,
                         MetricsLog(writes ? trainer.run_.metrics() : std::string(), events),
                         trainer.valid_ranking_);
    }
    if (o.parallel) {
      stop.use_agreed_signals(writes);
      o.parallel->align(m, *optimizer);
      checkpoints.set_distributed(o.parallel->describe(), writes);
    }
  }

  /// The epoch's running loss (on the device) and its progress display.
  void start_epoch(const Config& config, torch::Device device) {
    loader.start_epoch(state.epoch, state.step_in_epoch);
    progress.emplace(fmt::format("epoch {}/{}", state.epoch + 1, config.train.epochs),
                     schedule.batches_per_epoch(), state.step_in_epoch,
                     config.train.log_every_steps);
    if (options.parallel && options.parallel->rank() != 0) progress->without_bar();
    loss_sum = torch::full({}, state.epoch_loss_sum,
                           torch::TensorOptions().dtype(torch::kFloat64).device(device));
    window_start = Clock::now();
    window_samples = 0;
  }

  /// Synchronises the running loss into the state and draws the progress.
  void read_loss() {
    state.epoch_loss_sum = loss_sum.item<double>();
    shown_loss = state.epoch_loss_samples > 0
                     ? state.epoch_loss_sum / static_cast<double>(state.epoch_loss_samples)
                     : 0.0;
    const double secs = seconds_since(window_start);
    const double per_second = secs > 0 ? static_cast<double>(window_samples) / secs : 0.0;
    progress->update(state.step_in_epoch, shown_loss, per_second);
    if (events) {
      events->scalar("train/loss", shown_loss, state.global_step);
      events->scalar("train/samples_per_second", per_second, state.global_step);
      events->scalar("train/lr", optimizer->param_groups().front().options().get_lr(),
                     state.global_step);
    }
    window_start = Clock::now();
    window_samples = 0;
  }

  Recommender& model;
  const FitOptions& options;
  std::shared_ptr<torch::optim::Adam> optimizer;
  TrainState state;
  DataLoader loader;
  TrainSchedule schedule;
  TrainStep step;
  StopRequests stop;
  CheckpointPolicy checkpoints;
  std::optional<Validation> validation;
  std::optional<Progress> progress;
  torch::Tensor loss_sum;
  double shown_loss = 0.0;
  std::shared_ptr<EventWriter> events;  ///< TensorBoard (train.tensorboard, rank 0), or null
  Clock::time_point window_start;
  std::int64_t window_samples = 0;
  bool stopped = false;  ///< a stop request was honoured: fit() returns
};

Trainer::Trainer(const Config& config, const TrainingData& train, const SampleSet* valid,
                 RunDir run, torch::Device device, const SampleSet* test)
    : config_(config),
      train_(train),
      valid_(valid),
      test_(test),
      run_(std::move(run)),
      device_(device) {
  if (!trains_on_positives(config.train)) return;
  positives_ = positives_only(train.samples);
  if (positives_->size() == 0) {
    throw DataError(train.samples.source +
                    ": no positive samples (label 1) to train on (train.negatives, or the "
                    "softmax loss, contrast each positive with other items)");
  }
}

void Trainer::prepare_negatives(std::int64_t item_vocab) {
  const auto& n = config_.train.negatives;
  if (!draws_negatives(config_.train) || !positives_ || negatives_) return;
  std::vector<const SampleSet*> exclude;
  if (n.exclude == NegativeExclusion::all) {
    for (const auto* set : {valid_, test_}) {
      if (set) exclude.push_back(set);
    }
  }
  TrainingNegativesOptions options;
  // Next-item training scores every position against negatives of its own.
  options.per_positive = n.per_positive * (config_.train.next_item ? config_.data.max_history : 1);
  options.shared_pool = n.shared_pool;
  options.distribution = n.sampling;
  options.exponent = n.exponent;
  // Its own stream: drawing negatives must not shift the shuffling or initialisation.
  options.seed = Rng::mix(static_cast<std::uint64_t>(config_.train.seed), 0x6e6567ULL);
  negatives_.emplace(*positives_, item_vocab, options, exclude);
  if (n.shared_pool > 0) {
    spdlog::info(
        "negatives: a shared pool of {} ({}) drawn for every batch, scored against each of its "
        "{} (a pool item equal to a case's positive is masked out of that case)",
        n.shared_pool, name_of(n.sampling), config_.train.next_item ? "positions" : "samples");
    return;
  }
  spdlog::info(
      "negatives: {} per positive ({}), drawn each epoch for the {} positives of the {} training "
      "samples (the file's own negatives are not used)",
      n.per_positive, name_of(n.sampling), positives_->size(), train_.samples.size());
  if (config_.train.next_item) {
    spdlog::info(
        "next-item training: every position of a history predicts the next event against {} "
        "negatives of its own ({} drawn per sample)",
        n.per_positive, options.per_positive);
  }
}

TrainState Trainer::fit(Recommender& model, const FitOptions& options) {
  fs::create_directories(run_.checkpoints());
  model->to(device_);
  if (options.optimizer) place_optimizer_state(model, *options.optimizer);  // a restored state
  model->train();
  // Negatives are drawn from the model's item table, whatever built its vocabulary.
  prepare_negatives(model->options.item_vocab());
  Loop loop(*this, model, options);
  TrainState& s = loop.state;
  if (options.start) {
    spdlog::info("resumed at epoch {}, step {} of the epoch (global step {})", s.epoch + 1,
                 s.step_in_epoch, s.global_step);
  }
  spdlog::info("training {} samples, {} steps/epoch x {} epochs on {}", training_samples().size(),
               loop.schedule.batches_per_epoch(), config_.train.epochs, device_.str());
  for (; s.epoch < config_.train.epochs && !s.stopped_early; ++s.epoch, s.step_in_epoch = 0) {
    loop.start_epoch(config_, device_);
    while (auto batch = loop.loader.next()) {
      const auto started = Clock::now();
      if (options.parallel) reseed_step(config_.train.seed, s.global_step, *options.parallel);
      const auto result = loop.step.run(batch->to(device_), loop.schedule.lr(s.global_step),
                                        s.global_step, s.epoch);
      if (after_step(loop, result, seconds_since(started))) break;
      if (loop.stopped) return s;
    }
    loop.progress->finish();
    if (s.stopped_early) break;
    if (s.step_in_epoch == loop.schedule.batches_per_epoch() && after_epoch(loop)) return s;
  }
  if (s.stopped_early) {
    spdlog::info("early stopping: no {} improvement in {} validations (best {:.4f} at step {})",
                 s.early_stopping.metric_name(), s.early_stopping.bad_validations(),
                 *s.early_stopping.best(), s.early_stopping.best_step());
  }
  s.step_in_epoch = 0;
  loop.checkpoints.save_final(model, *loop.optimizer, s);
  return s;
}

bool Trainer::after_step(Loop& l, const StepResult& r, double step_seconds) {
  TrainState& s = l.state;
  if (l.options.parallel) l.stop.agree(r.agreed_signal);
  if (r.applied) {
    l.loss_sum += r.loss.to(torch::kFloat64) * static_cast<double>(r.samples);
    s.epoch_loss_samples += r.samples;
  } else {
    ++s.skipped_nonfinite;
    spdlog::warn("non-finite loss at global step {}: batch skipped ({} so far)", s.global_step + 1,
                 s.skipped_nonfinite);
  }
  l.window_samples += r.samples;
  ++s.global_step;
  ++s.step_in_epoch;
  s.samples_seen += r.samples;
  s.train_seconds += step_seconds;
  if (r.applied) {
    for (auto* observer : l.options.observers) observer->after_step(s, r.loss);
  }
  const Due due = l.schedule.after_step(s, l.stop.pending(s));
  if (due.read_loss) l.read_loss();
  if (due.validate) {
    validate(l, l.shown_loss);  // its log lines clear the bar's line, the bar is redrawn after
    if (s.early_stopping.should_stop()) {
      s.stopped_early = true;
      return true;
    }
  }
  if (due.checkpoint) l.checkpoints.save_periodic(l.model, *l.optimizer, s);
  if (l.stop.pending(s)) {
    if (!due.checkpoint) l.checkpoints.save_periodic(l.model, *l.optimizer, s);
    l.stop.honour(s, l.schedule.batches_per_epoch(), run_);
    l.stopped = true;
  }
  return false;
}

bool Trainer::after_epoch(Loop& l) {
  TrainState& s = l.state;
  const double epoch_loss =
      s.epoch_loss_samples > 0 ? s.epoch_loss_sum / static_cast<double>(s.epoch_loss_samples) : 0.0;
  spdlog::info("epoch {}/{} done: train loss {:.4f}, {:.0f} samples/s, data wait {:.1f}s",
               s.epoch + 1, config_.train.epochs, epoch_loss,
               static_cast<double>(s.samples_seen) / std::max(1e-9, s.train_seconds),
               l.loader.wait_seconds());
  for (auto* observer : l.options.observers) observer->after_epoch(s, l.loader.wait_seconds());
  validate(l, epoch_loss);
  if (s.early_stopping.should_stop()) s.stopped_early = true;
  s.epoch_loss_sum = 0.0;
  s.epoch_loss_samples = 0;
  // Saved as the start of the next epoch, so a resume continues there.
  const auto next = l.checkpoints.at_epoch_end(s);
  if (!next) return false;
  l.checkpoints.save_periodic(l.model, *l.optimizer, *next);
  if (!l.stop.pending(s)) return false;
  l.stop.honour(s, l.schedule.batches_per_epoch(), run_);
  s = *next;
  return true;
}

void Trainer::validate(Loop& l, double train_loss) {
  if (!l.validation) return;
  if (auto best = l.validation->run(l.model, l.state, train_loss)) {
    l.checkpoints.save_best(l.model, *l.optimizer, l.state, *best);
  }
}

}  // namespace attnrec

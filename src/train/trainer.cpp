#include "attnrec/train/trainer.hpp"

#include "attnrec/train/fused_adam.hpp"
#include "attnrec/train/lazy_adam.hpp"
#include "attnrec/train/schedule.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/loader.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/progress.hpp"
#include "attnrec/util/signals.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

Trainer::Trainer(const Config& config, const TrainingData& train, const SampleSet* valid,
                 RunDir run, torch::Device device)
    : config_(config),
      train_(train),
      valid_(valid),
      run_(std::move(run)),
      device_(device),
      log_(run_.metrics()) {}

void Trainer::save(const std::string& path, const std::string& kind, Recommender& model,
                   torch::optim::Optimizer& optimizer, const TrainState& state,
                   const nlohmann::json& metrics) const {
  CheckpointContents c;
  c.kind = kind;
  c.config = &config_;
  c.train_state = state;
  c.metrics = metrics;
  c.items_vocab = run_.items_vocab();
  c.users_vocab = run_.users_vocab();
  c.optimizer = &optimizer;
  c.rng = true;
  save_checkpoint(path, model, c);
}

void Trainer::save_periodic(Recommender& model, torch::optim::Optimizer& optimizer,
                            const TrainState& state) const {
  const std::string path = run_.periodic(state.global_step);
  save(path, "periodic", model, optimizer, state, nlohmann::json::object());
  // The pointer moves only once the checkpoint is complete and in place.
  write_file_atomic(run_.latest_pointer(), fs::path(path).filename().string() + "\n");
  const auto periodic = run_.periodic_checkpoints();
  const auto keep = static_cast<std::size_t>(config_.checkpoint.keep_last);
  for (std::size_t i = 0; i + keep < periodic.size(); ++i) {
    if (periodic[i] != path) fs::remove(periodic[i]);
  }
}

void Trainer::validate(Recommender& model, torch::optim::Optimizer& optimizer, TrainState& state,
                       double train_loss) {
  const auto start = std::chrono::steady_clock::now();
  const auto result = evaluate(model, *valid_,
                               EvalOptions()
                                   .with_batch_size(config_.eval.batch_size)
                                   .with_threshold(config_.eval.threshold)
                                   .with_device(device_));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json row = result.metrics;
  row["split"] = "valid";
  row["epoch"] = state.epoch;
  row["step"] = state.global_step;
  row["train_loss"] = train_loss;
  row["eval_seconds"] = seconds;
  row["train_seconds"] = state.train_seconds;
  row["train_samples_per_second"] =
      state.train_seconds > 0 ? static_cast<double>(state.samples_seen) / state.train_seconds : 0.0;
  const auto& metric = state.early_stopping.metric_name();
  const auto& value = result.metrics[metric];
  if (result.metrics.contains("nonfinite_scores")) {
    // A diverged model is never the best one; training goes on (on_nonfinite = skip).
    row["best"] = false;
    log_.append(row);
    ++state.metrics_rows;
    spdlog::warn(
        "valid epoch {} step {}: {} non-finite scores; not a candidate for the best "
        "model",
        state.epoch + 1, state.global_step, result.metrics["nonfinite_scores"].get<std::int64_t>());
    return;
  }
  if (!value.is_number()) {
    throw DataError(
        fmt::format("{}: validation {} is undefined (e.g. one class only); choose "
                    "another train.early_stopping.metric",
                    valid_->source, metric));
  }
  // A non-finite score (diverged model) never becomes the best model.
  const bool improved = std::isfinite(value.get<double>()) &&
                        state.early_stopping.update(value.get<double>(), state.global_step);
  row["best"] = improved;
  log_.append(row);
  ++state.metrics_rows;
  spdlog::info("valid epoch {} step {}: auc {:.4f} gauc {} logloss {:.4f}{} ({:.1f}s)",
               state.epoch + 1, state.global_step, result.metrics["auc"].get<double>(),
               result.metrics["gauc"].is_number()
                   ? fmt::format("{:.4f}", result.metrics["gauc"].get<double>())
                   : "n/a",
               result.metrics["logloss"].get<double>(), improved ? " (best so far)" : "", seconds);
  if (improved) save(run_.best(), "best", model, optimizer, state, result.metrics);
}

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

TrainState restore_training(const std::string& checkpoint, const CheckpointMeta& meta,
                            const Config& config, std::int64_t batches_per_epoch,
                            Recommender& model, torch::optim::Adam& optimizer) {
  TrainState state = meta.train_state;
  if (state.step_in_epoch > batches_per_epoch) {
    throw CheckpointError(
        fmt::format("{}: train_state.step_in_epoch {} is beyond the {} batches "
                    "of an epoch of this run; the checkpoint does not belong "
                    "to this training data and batch size",
                    checkpoint, state.step_in_epoch, batches_per_epoch));
  }
  if (state.epoch > config.train.epochs) {
    throw ConfigError(
        fmt::format("--resume: /train/epochs: {} is below the {} epochs the "
                    "checkpoint {} has already trained; set it to at least {}",
                    config.train.epochs, state.epoch, checkpoint, state.epoch));
  }
  check_parameter_shapes(checkpoint, meta, model);
  load_checkpoint_state(checkpoint, model, &optimizer, /*restore_rng=*/true);
  // Patience may be changed on resume; the best score and its counter carry over.
  auto es = state.early_stopping.to_json();
  es["patience"] = config.train.early_stopping.patience;
  state.early_stopping = EarlyStopping::from_json(es);
  return state;
}

TrainState Trainer::fit(Recommender& model, const FitOptions& options) {
  const auto& t = config_.train;
  fs::create_directories(run_.checkpoints());
  model->to(device_);
  model->train();
  const std::shared_ptr<torch::optim::Adam> adam =
      options.optimizer ? options.optimizer : make_optimizer(t, model);
  torch::optim::Adam& optimizer = *adam;
  TrainState state;
  state.early_stopping = EarlyStopping(t.early_stopping.metric, t.early_stopping.patience);
  if (options.start) {
    state = *options.start;
    spdlog::info("resumed at epoch {}, step {} of the epoch (global step {})", state.epoch + 1,
                 state.step_in_epoch, state.global_step);
  }
  DataLoader loader(train_.samples, LoaderOptions()
                                        .with_batch_size(t.batch_size)
                                        .with_shuffle(config_.data.shuffle)
                                        .with_seed(static_cast<std::uint64_t>(t.seed))
                                        .with_prefetch(config_.data.prefetch_batches)
                                        .with_pin_memory(device_.is_cuda()));
  const std::int64_t per_epoch = loader.batches_per_epoch();
  const std::int64_t total_steps = per_epoch * t.epochs;
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  // Reading the loss value synchronises with the device, so it happens only every few steps.
  const std::int64_t read_every =
      tty ? std::min<std::int64_t>(10, t.log_every_steps) : t.log_every_steps;
  install_stop_handlers();
  spdlog::info("training {} samples, {} steps/epoch x {} epochs on {}", train_.samples.size(),
               per_epoch, t.epochs, device_.str());

  // Stops with a checkpoint: on a signal (Interrupted) or at options.stop_after_steps.
  auto stop_if_requested = [&](bool just_saved) {
    const int sig = stop_signal();
    const bool step_limit =
        options.stop_after_steps > 0 && state.global_step >= options.stop_after_steps;
    if (!sig && !step_limit) return false;
    if (!just_saved) save_periodic(model, optimizer, state);
    const std::string where =
        fmt::format("global step {} (epoch {}, step {} of {})", state.global_step, state.epoch + 1,
                    state.step_in_epoch, per_epoch);
    if (sig) {
      spdlog::warn(
          "{} received: stopped at {}; checkpoint {}; resume with: attnrec train "
          "--resume {}",
          sig == 15 ? "SIGTERM" : "SIGINT", where, run_.latest(), run_.root);
      throw Interrupted(fmt::format("interrupted at {}; resume with: attnrec train --resume {}",
                                    where, run_.root),
                        sig);
    }
    spdlog::info("stopped after {} as requested; resume with: attnrec train --resume {}", where,
                 run_.root);
    return true;
  };

  for (; state.epoch < t.epochs && !state.stopped_early; ++state.epoch, state.step_in_epoch = 0) {
    loader.start_epoch(state.epoch, state.step_in_epoch);
    Progress progress(fmt::format("epoch {}/{}", state.epoch + 1, t.epochs), per_epoch,
                      state.step_in_epoch, t.log_every_steps);
    auto loss_sum = torch::full({}, state.epoch_loss_sum,
                                torch::TensorOptions().dtype(torch::kFloat64).device(device_));
    double shown_loss = 0.0;
    auto window_start = std::chrono::steady_clock::now();
    std::int64_t window_samples = 0;
    while (auto batch = loader.next()) {
      const auto step_start = std::chrono::steady_clock::now();
      const Batch b = batch->to(device_);
      const double lr =
          scheduled_lr(t.schedule, t.lr, state.global_step, t.warmup_steps, total_steps);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      }
      // Gradients are dropped rather than zeroed (PyTorch's zero_grad(set_to_none=True)): the
      // backward pass then hands its gradient tensors over instead of adding them into zeroed
      // ones, which for a dense embedding table saves two passes over it per step. Every
      // parameter takes part in every forward pass, so Adam still updates all of them.
      for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
      const auto out = model->forward(b);
      const auto loss = torch::binary_cross_entropy_with_logits(out.logits, b.label);
      loss.backward();
      double norm = 0.0;
      if (t.grad_clip > 0)
        norm = torch::nn::utils::clip_grad_norm_(model->parameters(), t.grad_clip);
      // Checked before the update so a diverged step never reaches the weights (or a
      // checkpoint). This reads one value per step from the device.
      const bool finite = torch::isfinite(loss).item<bool>() && std::isfinite(norm);
      const std::int64_t n = b.size();
      if (finite) {
        optimizer.step();
        loss_sum += loss.detach().to(torch::kFloat64) * static_cast<double>(n);
        state.epoch_loss_samples += n;
        if (options.on_step) options.on_step(state.global_step + 1, loss.detach());
      } else if (t.on_nonfinite == NonFinitePolicy::skip) {
        ++state.skipped_nonfinite;
        spdlog::warn("non-finite loss at global step {}: batch skipped ({} so far)",
                     state.global_step + 1, state.skipped_nonfinite);
      } else {
        throw Error(
            fmt::format("non-finite training loss at global step {} (epoch {}); no "
                        "checkpoint was written from it. Lower train.lr, set "
                        "train.grad_clip, or set train.on_nonfinite to \"skip\"",
                        state.global_step + 1, state.epoch + 1));
      }
      window_samples += n;
      ++state.global_step;
      ++state.step_in_epoch;
      state.samples_seen += n;
      state.train_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      const bool checkpoint_due = config_.checkpoint.every_steps > 0 &&
                                  state.global_step % config_.checkpoint.every_steps == 0;
      const bool validation_due = valid_ && t.validate_every_steps > 0 &&
                                  state.global_step % t.validate_every_steps == 0 &&
                                  state.step_in_epoch != per_epoch;
      // The epoch's running loss is synchronised whenever it is shown or saved.
      if (state.step_in_epoch % read_every == 0 || state.step_in_epoch == per_epoch ||
          checkpoint_due || validation_due || stop_signal() ||
          (options.stop_after_steps > 0 && state.global_step >= options.stop_after_steps)) {
        state.epoch_loss_sum = loss_sum.item<double>();
        shown_loss = state.epoch_loss_samples > 0
                         ? state.epoch_loss_sum / static_cast<double>(state.epoch_loss_samples)
                         : 0.0;
        const auto now = std::chrono::steady_clock::now();
        const double secs = std::chrono::duration<double>(now - window_start).count();
        progress.update(state.step_in_epoch, shown_loss,
                        secs > 0 ? static_cast<double>(window_samples) / secs : 0.0);
        window_start = now;
        window_samples = 0;
      }
      if (validation_due) {
        progress.finish();
        validate(model, optimizer, state, shown_loss);
        if (state.early_stopping.should_stop()) {
          state.stopped_early = true;
          break;
        }
      }
      if (checkpoint_due) save_periodic(model, optimizer, state);
      if (stop_if_requested(checkpoint_due)) return state;
    }
    progress.finish();
    if (state.stopped_early) break;
    if (state.step_in_epoch == per_epoch) {
      const double epoch_loss =
          state.epoch_loss_samples > 0
              ? state.epoch_loss_sum / static_cast<double>(state.epoch_loss_samples)
              : 0.0;
      spdlog::info("epoch {}/{} done: train loss {:.4f}, {:.0f} samples/s, data wait {:.1f}s",
                   state.epoch + 1, t.epochs, epoch_loss,
                   static_cast<double>(state.samples_seen) / std::max(1e-9, state.train_seconds),
                   loader.wait_seconds());
      if (options.on_data_wait) options.on_data_wait(loader.wait_seconds());
      if (valid_) validate(model, optimizer, state, epoch_loss);
      if (state.early_stopping.should_stop()) state.stopped_early = true;
      state.epoch_loss_sum = 0.0;
      state.epoch_loss_samples = 0;
      if (config_.checkpoint.every_epoch && !state.stopped_early) {
        // Saved as the start of the next epoch, so a resume continues there.
        TrainState next = state;
        ++next.epoch;
        next.step_in_epoch = 0;
        save_periodic(model, optimizer, next);
        if (stop_if_requested(true)) {
          state = next;
          return state;
        }
      }
    }
  }
  if (state.stopped_early) {
    spdlog::info("early stopping: no {} improvement in {} validations (best {:.4f} at step {})",
                 state.early_stopping.metric_name(), state.early_stopping.bad_validations(),
                 *state.early_stopping.best(), state.early_stopping.best_step());
  }
  state.step_in_epoch = 0;
  save(run_.final_model(), "final", model, optimizer, state, nlohmann::json::object());
  return state;
}

}  // namespace attnrec

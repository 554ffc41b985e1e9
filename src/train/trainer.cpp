#include "attnrec/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/loader.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/train/checkpoint.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/progress.hpp"

namespace attnrec {

void MetricsLog::append(const nlohmann::json& row) const {
  std::ofstream out(path_, std::ios::app);
  out << row.dump() << '\n';
  out.flush();
  if (!out) throw IoError(path_ + ": cannot append metrics");
}

Trainer::Trainer(const Config& config, const TrainingData& train, const SampleSet* valid,
                 RunDir run, torch::Device device)
    : config_(config),
      train_(train),
      valid_(valid),
      run_(std::move(run)),
      device_(device),
      log_(run_.metrics()) {}

nlohmann::json Trainer::checkpoint_meta(const TrainState& state, const nlohmann::json& metrics,
                                        const std::string& path) const {
  return {{"config", config_to_json(config_)},
          {"train_state", state.to_json()},
          {"metrics", metrics},
          {"vocab",
           {{"items", vocab_reference(path, run_.items_vocab())},
            {"users", vocab_reference(path, run_.users_vocab())}}}};
}

void Trainer::validate(Recommender& model, torch::optim::Optimizer& optimizer, TrainState& state,
                       double train_loss) {
  const auto start = std::chrono::steady_clock::now();
  const auto result = evaluate(model, *valid_, EvalOptions()
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
  const auto& metric = state.early_stopping.metric();
  const auto& value = result.metrics[metric];
  if (!value.is_number()) {
    throw DataError(fmt::format("{}: validation {} is undefined (e.g. one class only); choose "
                                "another train.early_stopping.metric",
                                valid_->source, metric));
  }
  const bool improved = state.early_stopping.update(value.get<double>(), state.global_step);
  row["best"] = improved;
  log_.append(row);
  spdlog::info("valid epoch {} step {}: auc {:.4f} gauc {} logloss {:.4f}{} ({:.1f}s)",
               state.epoch + 1, state.global_step, result.metrics["auc"].get<double>(),
               result.metrics["gauc"].is_number()
                   ? fmt::format("{:.4f}", result.metrics["gauc"].get<double>())
                   : "n/a",
               result.metrics["logloss"].get<double>(), improved ? " (best so far)" : "", seconds);
  if (improved) {
    save_checkpoint(run_.best(), model, &optimizer,
                    checkpoint_meta(state, result.metrics, run_.best()));
  }
}

TrainState Trainer::fit(Recommender& model, TrainState state) {
  const auto& t = config_.train;
  if (state.global_step == 0 && state.epoch == 0) {
    state.early_stopping = EarlyStopping(t.early_stopping.metric, t.early_stopping.patience);
  }
  std::filesystem::create_directories(run_.checkpoints());
  model->to(device_);
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(t.lr)
                                                        .betas({t.beta1, t.beta2})
                                                        .eps(t.eps)
                                                        .weight_decay(t.weight_decay));
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
  const std::int64_t read_every = tty ? std::min<std::int64_t>(10, t.log_every_steps)
                                      : t.log_every_steps;
  spdlog::info("training {} samples, {} steps/epoch x {} epochs on {}", train_.samples.size(),
               per_epoch, t.epochs, device_.str());

  for (; state.epoch < t.epochs && !state.stopped_early; ++state.epoch) {
    loader.start_epoch(state.epoch, state.step_in_epoch);
    Progress progress(fmt::format("epoch {}/{}", state.epoch + 1, t.epochs), per_epoch,
                      state.step_in_epoch, t.log_every_steps);
    auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
    std::int64_t loss_samples = 0;
    double shown_loss = 0.0;
    auto window_start = std::chrono::steady_clock::now();
    std::int64_t window_samples = 0;
    while (auto batch = loader.next()) {
      const auto step_start = std::chrono::steady_clock::now();
      const Batch b = batch->to(device_);
      const double lr = scheduled_lr(t.schedule, t.lr, state.global_step, t.warmup_steps, total_steps);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      }
      optimizer.zero_grad();
      const auto out = model->forward(b);
      const auto loss = torch::binary_cross_entropy_with_logits(out.logits, b.label);
      loss.backward();
      if (t.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), t.grad_clip);
      optimizer.step();

      const std::int64_t n = b.size();
      loss_sum += loss.detach().to(torch::kFloat64) * static_cast<double>(n);
      loss_samples += n;
      window_samples += n;
      ++state.global_step;
      ++state.step_in_epoch;
      state.samples_seen += n;
      state.train_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      if (state.step_in_epoch % read_every == 0 || state.step_in_epoch == per_epoch) {
        shown_loss = loss_sum.item<double>() / static_cast<double>(loss_samples);
        if (!std::isfinite(shown_loss)) {
          throw Error(fmt::format("non-finite training loss at step {} (epoch {}); lower "
                                  "train.lr or set train.grad_clip",
                                  state.global_step, state.epoch + 1));
        }
        const auto now = std::chrono::steady_clock::now();
        const double secs = std::chrono::duration<double>(now - window_start).count();
        progress.update(state.step_in_epoch, shown_loss,
                        secs > 0 ? static_cast<double>(window_samples) / secs : 0.0);
        window_start = now;
        window_samples = 0;
      }
      if (valid_ && t.validate_every_steps > 0 && state.global_step % t.validate_every_steps == 0 &&
          state.step_in_epoch != per_epoch) {
        progress.finish();
        validate(model, optimizer, state, shown_loss);
        if (state.early_stopping.should_stop()) break;
      }
    }
    progress.finish();
    const double epoch_loss =
        loss_samples > 0 ? loss_sum.item<double>() / static_cast<double>(loss_samples) : 0.0;
    if (state.step_in_epoch == per_epoch) {
      spdlog::info("epoch {}/{} done: train loss {:.4f}, {:.0f} samples/s, data wait {:.1f}s",
                   state.epoch + 1, t.epochs, epoch_loss,
                   static_cast<double>(state.samples_seen) / std::max(1e-9, state.train_seconds),
                   loader.wait_seconds());
      if (valid_) validate(model, optimizer, state, epoch_loss);
    }
    if (state.early_stopping.should_stop()) {
      state.stopped_early = true;
      spdlog::info("early stopping: no {} improvement in {} validations (best {:.4f} at step {})",
                   state.early_stopping.metric(), state.early_stopping.bad_validations(),
                   *state.early_stopping.best(), state.early_stopping.best_step());
    }
    state.step_in_epoch = 0;
  }
  save_checkpoint(run_.final_model(), model, &optimizer,
                  checkpoint_meta(state, nlohmann::json::object(), run_.final_model()));
  return state;
}

}  // namespace attnrec

#include "attnrec/train/validation.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <chrono>
#include <cmath>

#include "attnrec/eval/evaluator.hpp"
#include "attnrec/util/error.hpp"

namespace attnrec {

Validation::Validation(const Config& config, const SampleSet& valid, torch::Device device,
                       MetricsLog log, const RankingInput* ranking)
    : config_(config), valid_(valid), device_(device), log_(std::move(log)), ranking_(ranking) {
  if (is_ranking_metric(config.train.early_stopping.metric) && !ranking) {
    throw ConfigError(fmt::format(
        "config: /train/early_stopping/metric: \"{}\" needs the frozen validation candidates "
        "(/data/valid_candidates)",
        name_of(config.train.early_stopping.metric)));
  }
}

namespace {

/// The ranking of the frozen candidates: its figures both nested (`ranking`) and flat
/// (`hr@10`, `ndcg@10`, `mrr`), where early stopping reads them.
void add_ranking(Recommender& model, const RankingInput& ranking, torch::Device device,
                 nlohmann::json& metrics) {
  auto scorer = model_scorer(model, device, RankingOptions().pairs_per_batch);
  RankingOptions options;
  options.ks = {10};
  const auto result = evaluate_ranking(*scorer, ranking, options);
  for (const char* key : {"hr@10", "ndcg@10", "mrr"}) metrics[key] = result[key];
  metrics["ranking"] = result;
  metrics["ranking"]["protocol"] = ranking.protocol;  // sampled (frozen candidates) or full
  if (result["nonfinite_positive_scores"].get<std::int64_t>() > 0 &&
      !metrics.contains("nonfinite_scores")) {
    metrics["nonfinite_scores"] = result["nonfinite_positive_scores"];
  }
}

}  // namespace

std::optional<nlohmann::json> Validation::run(Recommender& model, TrainState& state,
                                              double train_loss) {
  const auto start = std::chrono::steady_clock::now();
  auto result = evaluate(model, valid_,
                         EvalOptions()
                             .with_batch_size(config_.eval.batch_size)
                             .with_threshold(config_.eval.threshold)
                             .with_device(device_));
  if (ranking_) add_ranking(model, *ranking_, device_, result.metrics);
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
    spdlog::warn("valid epoch {} step {}: {} non-finite scores; not a candidate for the best model",
                 state.epoch + 1, state.global_step,
                 result.metrics["nonfinite_scores"].get<std::int64_t>());
    return std::nullopt;
  }
  if (!value.is_number()) {
    throw DataError(
        fmt::format("{}: validation {} is undefined (e.g. one class only); choose another "
                    "train.early_stopping.metric",
                    valid_.source, metric));
  }
  // A non-finite score (diverged model) never becomes the best model.
  const bool improved = std::isfinite(value.get<double>()) &&
                        state.early_stopping.update(value.get<double>(), state.global_step);
  row["best"] = improved;
  log_.append(row);
  ++state.metrics_rows;
  spdlog::info("valid epoch {} step {}: auc {:.4f} gauc {} logloss {:.4f}{}{} ({:.1f}s)",
               state.epoch + 1, state.global_step, result.metrics["auc"].get<double>(),
               result.metrics["gauc"].is_number()
                   ? fmt::format("{:.4f}", result.metrics["gauc"].get<double>())
                   : "n/a",
               result.metrics["logloss"].get<double>(),
               ranking_ ? fmt::format(" ndcg@10 {:.4f} hr@10 {:.4f}",
                                      result.metrics["ndcg@10"].get<double>(),
                                      result.metrics["hr@10"].get<double>())
                        : "",
               improved ? " (best so far)" : "", seconds);
  if (!improved) return std::nullopt;
  return result.metrics;
}

}  // namespace attnrec

#include "attnrec/io/train_state.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "attnrec/util/strings.hpp"

namespace attnrec {

EarlyStopping::EarlyStopping(StopMetric metric, std::int64_t patience)
    : metric_(metric), patience_(patience) {}

bool EarlyStopping::update(double value, std::int64_t step) {
  const bool lower_is_better = metric_ == StopMetric::logloss;
  const bool improved = !best_ || (lower_is_better ? value < *best_ : value > *best_);
  if (improved) {
    best_ = value;
    best_step_ = step;
    bad_validations_ = 0;
  } else {
    ++bad_validations_;
  }
  return improved;
}

nlohmann::json EarlyStopping::to_json() const {
  return {{"metric", name_of(metric_)},
          {"patience", patience_},
          {"best", best_ ? nlohmann::json(*best_) : nlohmann::json()},
          {"best_step", best_step_},
          {"bad_validations", bad_validations_}};
}

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

EarlyStopping EarlyStopping::from_json(const nlohmann::json& j) {
  const auto name = j.at("metric").get<std::string>();
  const auto metric = parse_choice<StopMetric>(name);
  require(metric.has_value(), "early_stopping.metric: expected one of " +
                                  join(choice_names(choices<StopMetric>()), ", ") + ", got \"" +
                                  name + "\"");
  EarlyStopping e(*metric, j.at("patience").get<std::int64_t>());
  require(e.patience_ >= 0, "early_stopping.patience: negative");
  if (!j.at("best").is_null()) {
    e.best_ = j.at("best").get<double>();
    require(std::isfinite(*e.best_), "early_stopping.best: not a finite number");
  }
  e.best_step_ = j.at("best_step").get<std::int64_t>();
  e.bad_validations_ = j.at("bad_validations").get<std::int64_t>();
  require(e.best_step_ >= -1, "early_stopping.best_step: below -1");
  require(e.bad_validations_ >= 0, "early_stopping.bad_validations: negative");
  return e;
}

nlohmann::json TrainState::to_json() const {
  return {{"epoch", epoch},
          {"step_in_epoch", step_in_epoch},
          {"global_step", global_step},
          {"samples_seen", samples_seen},
          {"train_seconds", train_seconds},
          {"stopped_early", stopped_early},
          {"epoch_loss_sum", epoch_loss_sum},
          {"epoch_loss_samples", epoch_loss_samples},
          {"skipped_nonfinite", skipped_nonfinite},
          {"metrics_rows", metrics_rows},
          {"early_stopping", early_stopping.to_json()}};
}

TrainState TrainState::from_json(const nlohmann::json& j) {
  TrainState s;
  s.epoch = j.at("epoch").get<std::int64_t>();
  s.step_in_epoch = j.at("step_in_epoch").get<std::int64_t>();
  s.global_step = j.at("global_step").get<std::int64_t>();
  s.samples_seen = j.at("samples_seen").get<std::int64_t>();
  s.train_seconds = j.at("train_seconds").get<double>();
  s.stopped_early = j.at("stopped_early").get<bool>();
  s.epoch_loss_sum = j.at("epoch_loss_sum").get<double>();
  s.epoch_loss_samples = j.at("epoch_loss_samples").get<std::int64_t>();
  s.skipped_nonfinite = j.at("skipped_nonfinite").get<std::int64_t>();
  s.metrics_rows = j.at("metrics_rows").get<std::int64_t>();
  s.early_stopping = EarlyStopping::from_json(j.at("early_stopping"));
  for (const auto& [name, value] : {std::pair<const char*, std::int64_t>{"epoch", s.epoch},
                                    {"step_in_epoch", s.step_in_epoch},
                                    {"global_step", s.global_step},
                                    {"samples_seen", s.samples_seen},
                                    {"epoch_loss_samples", s.epoch_loss_samples},
                                    {"skipped_nonfinite", s.skipped_nonfinite},
                                    {"metrics_rows", s.metrics_rows}}) {
    require(value >= 0, std::string(name) + ": negative (" + std::to_string(value) + ")");
  }
  require(s.step_in_epoch <= s.global_step, "step_in_epoch: larger than global_step");
  require(s.epoch_loss_samples <= s.samples_seen, "epoch_loss_samples: more than samples_seen");
  require(std::isfinite(s.train_seconds) && s.train_seconds >= 0,
          "train_seconds: not a finite non-negative number");
  require(std::isfinite(s.epoch_loss_sum), "epoch_loss_sum: not a finite number");
  require(s.early_stopping.best_step() <= s.global_step,
          "early_stopping.best_step: after global_step");
  return s;
}

}  // namespace attnrec

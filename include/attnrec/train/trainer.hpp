#pragma once
/// \file The training loop, as wiring of small pieces: the step (step.hpp), what is due when
/// (schedule.hpp), the checkpoint policy (checkpoint_policy.hpp), validation and early
/// stopping (validation.hpp), stop requests (stop.hpp), progress, and observers
/// (observer.hpp). Resuming is restore_training() (resume.hpp) before fit().

#include <torch/torch.h>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/data/negatives.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"
#include "attnrec/train/observer.hpp"
#include "attnrec/train/parallel.hpp"
#include "attnrec/train/step.hpp"

namespace attnrec {

/// Options of Trainer::fit() beyond the config.
struct FitOptions {
  /// Where training starts: the state restored by restore_training() for a resume. Default:
  /// a fresh start (epoch 0, early stopping from the config).
  std::optional<TrainState> start;
  /// The optimizer to step (restored for a resume). Default: make_optimizer() on the model.
  std::shared_ptr<torch::optim::Adam> optimizer;
  /// Stop (with a checkpoint, exit 0) after this global step; 0 = never. Default: 0
  std::int64_t stop_after_steps = 0;
  /// Called after every step and epoch (not owned). Default: none
  std::vector<TrainObserver*> observers;
  /// Runs between backward and the optimizer step (data-parallel training; not owned).
  /// Default: none
  GradientSync* gradient_sync = nullptr;
  /// Data-parallel training over several processes (not owned): each takes its part of every
  /// batch, gradients are summed through it (it replaces gradient_sync), signals are agreed on,
  /// dropout draws from a stream of (seed, step, rank), and only rank 0 writes checkpoints and
  /// metrics. Default: none (one process)
  Parallel* parallel = nullptr;
  /// samples_sha256() of the training data, recorded in every checkpoint so that a resume can
  /// check it (computed once per run by run_training/resume_training). Default: "" (not
  /// recorded; such checkpoints are not checked).
  std::string train_data_sha256;
};

/// Adam as `train.optimizer` asks: FusedAdam (dense) or LazyAdam (sparse embedding rows). Both
/// keep torch's Adam state format, so checkpoints do not depend on the choice.
std::shared_ptr<torch::optim::Adam> make_optimizer(const TrainConfig& train, Recommender& model);

/// Puts every parameter's Adam moments on that parameter's device: a restored state is read
/// onto the CPU, and the model may train elsewhere (a checkpoint moves between CPU and CUDA).
void place_optimizer_state(Recommender& model, torch::optim::Adam& optimizer);

class Trainer {
 public:
  /// `valid` may be null (no validation: no best checkpoint, no early stopping); `test` is read
  /// only for train.negatives.exclude = all, and may be null. The vocabulary files must already
  /// be in `run`. With train.negatives, training iterates over the positives of `train` and
  /// draws their negatives each epoch.
  Trainer(const Config& config, const TrainingData& train, const SampleSet* valid, RunDir run,
          torch::Device device, const SampleSet* test = nullptr);

  /// Frozen candidates of the validation positives, ranked at every validation (their HR,
  /// NDCG and MRR go into the metrics rows; needed when train.early_stopping.metric is a
  /// ranking metric). Must outlive fit(); null: none.
  void set_valid_ranking(const RankingInput* ranking) { valid_ranking_ = ranking; }

  /// What an epoch iterates over: the training samples, or their positives with drawn
  /// negatives.
  const SampleSet& training_samples() const { return positives_ ? *positives_ : train_.samples; }

  /// Trains `model` to the end (or to a stop request). Returns the final state. Throws
  /// Interrupted after writing a checkpoint when SIGINT/SIGTERM arrives.
  TrainState fit(Recommender& model, const FitOptions& options = {});

 private:
  struct Loop;  // the pieces one fit() wires together
  /// Folds a finished step into the state; returns true when it stops the epoch (early stop).
  bool after_step(Loop& loop, const StepResult& step, double step_seconds);
  /// End of a complete epoch: log, validate, the epoch checkpoint; true when training stops.
  bool after_epoch(Loop& loop);
  /// Validates (when there is validation data) and keeps the best model.
  void validate(Loop& loop, double train_loss);
  /// With train.negatives: the sampler over the model's `item_vocab` items (once).
  void prepare_negatives(std::int64_t item_vocab);

  const Config& config_;
  const TrainingData& train_;
  const SampleSet* valid_;
  const SampleSet* test_;
  const RankingInput* valid_ranking_ = nullptr;
  RunDir run_;
  torch::Device device_;
  std::optional<SampleSet> positives_;          // with train.negatives
  std::optional<TrainingNegatives> negatives_;  // with train.negatives
};

}  // namespace attnrec

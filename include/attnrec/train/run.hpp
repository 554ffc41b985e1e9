#pragma once
/// \file A whole training run as `attnrec train` performs it: prepare and lock the run
/// directory, read data and build vocabularies, train (or resume), evaluate the best model on
/// the test split, write the summary.

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/train/parallel.hpp"

namespace attnrec {

struct TrainRunOptions {
  /// Run directory (created). Default: "runs/run"
  std::string run_dir = "runs/run";
  /// Replace an existing run in run_dir. Default: false
  bool overwrite = false;
  /// Stop with a checkpoint after this global step (0: run to the end). Default: 0
  std::int64_t stop_after_steps = 0;
  /// The config file the run was read from (checked like the data files: --overwrite never
  /// deletes an input). Default: none
  std::string config_file;
  /// Data-parallel training: connects this process to the others of its job, once the config
  /// (fresh or resumed) and this process's device are known. Null, or a null result: one
  /// process. Default: none
  std::function<std::unique_ptr<Parallel>(const Config&, const torch::Device&)> connect;
  /// The CUDA device that train.device `cuda` and `auto` mean (a process of a multi-process job:
  /// its LOCAL_RANK, one GPU per process). Default: 0
  int cuda_index = 0;
  /// Resume a checkpoint written by a different number of processes (results are then no
  /// longer bit-identical to an uninterrupted run; a warning says so). Default: false
  bool allow_world_size_change = false;
  /// CPU threads when train.threads is 0 (0: the physical cores). Several processes on one
  /// host share its cores. Default: 0
  std::int64_t default_threads = 0;
};

/// Trains from scratch; returns the summary also written to RUN_DIR/summary.json.
nlohmann::json run_training(const Config& config, const TrainRunOptions& options);

/// Continues the run of `path` (a run directory, meaning its latest checkpoint, or a checkpoint
/// file) with its stored config plus `overrides`. options.run_dir is ignored (the checkpoint's
/// run directory is used).
nlohmann::json resume_training(const std::string& path, const std::vector<std::string>& overrides,
                               const TrainRunOptions& options);

/// `train --auto-resume` (elastic and preemptible jobs: torchrun --max_restarts, Slurm
/// --requeue restart the same command line): where to continue when `run_dir` already holds a
/// run of `config`.
struct AutoResume {
  std::string checkpoint;              ///< the run's latest checkpoint
  std::vector<std::string> overrides;  ///< `config`'s values of the resumable options it changes
};
/// nullopt when `run_dir` holds no run, or a run without a checkpoint yet (start it afresh).
/// A run of another config (a non-resumable option differs) is a UsageError naming the options.
std::optional<AutoResume> auto_resume_target(const Config& config, const std::string& run_dir);

}  // namespace attnrec

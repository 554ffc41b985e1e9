#pragma once
/// \file The layout of a run directory, known here only.
///
///   RUN/config.json       resolved config of the run
///   RUN/items.vocab       item vocabulary (users.vocab, categories.vocab alike)
///   RUN/metrics.jsonl     one validation/test row per line
///   RUN/summary.json      the run's summary
///   RUN/train.log         the log
///   RUN/tb/               TensorBoard event files (events.out.tfevents.*), one per segment
///   RUN/.lock             held (flock) while a process trains in RUN
///   RUN/checkpoints/      best.pt, final.pt, step-NNNNNNNNN.pt, `latest` (name of the newest
///                         periodic checkpoint), .NAME.tmpPID while a file is being written
/// These are the files a run *owns*: only they are ever replaced or deleted by attnrec, and no
/// command writes an output over one of them.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attnrec/util/run_lock.hpp"

namespace attnrec {

/// Files of a run directory.
struct RunDir {
  std::string root;
  std::string config() const { return root + "/config.json"; }
  std::string items_vocab() const { return root + "/items.vocab"; }
  std::string users_vocab() const { return root + "/users.vocab"; }
  std::string categories_vocab() const { return root + "/categories.vocab"; }
  std::string metrics() const { return root + "/metrics.jsonl"; }
  std::string tensorboard() const { return root + "/tb"; }
  std::string summary() const { return root + "/summary.json"; }
  std::string log() const { return root + "/train.log"; }
  std::string lock() const { return root + "/.lock"; }
  std::string checkpoints() const { return root + "/checkpoints"; }
  std::string best() const { return checkpoints() + "/best.pt"; }
  std::string final_model() const { return checkpoints() + "/final.pt"; }
  std::string latest_pointer() const { return checkpoints() + "/latest"; }
  /// Path of the periodic checkpoint written at `global_step`.
  std::string periodic(std::int64_t global_step) const;
  /// The checkpoint `latest` names; empty when there is none.
  std::string latest() const;

  /// True when `relative` (a path relative to the root) is a file the layout owns.
  static bool owns(const std::filesystem::path& relative);
  /// True for a periodic checkpoint name ("step-000000120.pt").
  static bool is_periodic_name(const std::string& name);
  /// True for the temporary name of a file being written (".NAME.tmpPID").
  static bool is_temporary_name(const std::string& name);
  /// True when the directory holds a run: a checkpoints/ directory beside config.json or .lock.
  bool holds_run() const;
  /// The owned files present (paths under root), checkpoints/ included; `.lock` excluded.
  std::vector<std::string> owned_files() const;
  /// The periodic checkpoints present, oldest first.
  std::vector<std::string> periodic_checkpoints() const;
};

/// Refuses (UsageError) a run directory whose use would lose work, and changes nothing: a file
/// in its place; a non-empty directory that is not a run; a run without `overwrite`; a run
/// whose owned files include one of `inputs` ({path, what}); a run another process trains in.
void check_run_dir_usable(const RunDir& run, bool overwrite,
                          const std::vector<std::pair<std::string, std::string>>& inputs);

/// Deletes the files an earlier run owned (never anything else, which is listed in a warning)
/// and creates the layout. Call with the lock held, after every check passed.
void reset_run_dir(const RunDir& run);

/// Creates the run directory (new runs) and takes its lock without changing the lock file.
std::unique_ptr<RunLock> lock_run_dir(const RunDir& run);

/// Removes temporary files left by a process killed while writing a checkpoint.
void remove_stale_temporaries(const RunDir& run);

/// The run directory `path` lies in (the nearest ancestor directory that holds a run), if any.
std::optional<RunDir> enclosing_run(const std::string& path);

/// The run directory of a checkpoint file (RUN/checkpoints/x.pt -> RUN), if it lies in one.
std::optional<RunDir> run_of_checkpoint(const std::string& checkpoint);

/// A checkpoint file, or a run directory: its best model, else its final model, else its
/// latest checkpoint. Throws CheckpointError when there is none.
std::string resolve_checkpoint_path(const std::string& path);

}  // namespace attnrec

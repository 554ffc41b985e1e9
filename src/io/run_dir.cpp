#include "attnrec/io/run_dir.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <fstream>

#include "attnrec/io/outputs.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

std::string RunDir::periodic(std::int64_t global_step) const {
  return checkpoints() + fmt::format("/step-{:09}.pt", global_step);
}

std::string RunDir::latest() const {
  std::ifstream in(latest_pointer());
  std::string name;
  if (!(in >> name)) return "";
  if (!is_periodic_name(name)) {
    throw CheckpointError(latest_pointer() + ": names \"" + name.substr(0, 80) +
                          "\", not a periodic checkpoint (step-NNNNNNNNN.pt); the run directory "
                          "was changed by hand");
  }
  return checkpoints() + "/" + name;
}

bool RunDir::is_periodic_name(const std::string& name) {
  // step-NNNNNNNNN.pt: nine or more digits (zero-padded, so lexical order is step order).
  if (name.size() < 17 || name.rfind("step-", 0) != 0) return false;
  if (name.compare(name.size() - 3, 3, ".pt") != 0) return false;
  const auto digits = name.substr(5, name.size() - 8);
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool RunDir::is_temporary_name(const std::string& name) {
  return name.size() > 1 && name[0] == '.' && name.find(".tmp") != std::string::npos;
}

bool RunDir::owns(const fs::path& relative) {
  const auto normal = relative.lexically_normal();
  const std::string text = normal.string();
  static const char* const kRootFiles[] = {
      "config.json",  "items.vocab", "users.vocab", "categories.vocab", "metrics.jsonl",
      "summary.json", "train.log",   ".lock",       "checkpoints",      "tb"};
  for (const char* name : kRootFiles) {
    if (text == name) return true;
  }
  if (is_temporary_name(text)) return true;
  auto it = normal.begin();
  if (it == normal.end() || (it->string() != "checkpoints" && it->string() != "tb")) return false;
  // Everything under checkpoints/ and tb/ belongs to the run.
  return ++it != normal.end();
}

bool RunDir::holds_run() const {
  std::error_code ec;
  return fs::is_directory(checkpoints(), ec) &&
         (fs::is_regular_file(config(), ec) || fs::exists(lock(), ec));
}

std::vector<std::string> RunDir::owned_files() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    if (name == ".lock" || name == "checkpoints" || name == "tb") continue;
    if (owns(name) && !entry.is_directory()) out.push_back(entry.path().string());
  }
  if (fs::is_directory(checkpoints(), ec)) {
    for (const auto& entry : fs::directory_iterator(checkpoints(), ec)) {
      const auto name = entry.path().filename().string();
      const bool ours = name == "best.pt" || name == "final.pt" || name == "latest" ||
                        is_periodic_name(name) || is_temporary_name(name);
      if (ours && !entry.is_directory()) out.push_back(entry.path().string());
    }
  }
  if (fs::is_directory(tensorboard(), ec)) {
    for (const auto& entry : fs::directory_iterator(tensorboard(), ec)) {
      const auto name = entry.path().filename().string();
      if (name.rfind("events.out.tfevents.", 0) == 0 && !entry.is_directory()) {
        out.push_back(entry.path().string());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> RunDir::periodic_checkpoints() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints(), ec)) {
    if (is_periodic_name(entry.path().filename().string())) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded: lexical order = step order
  return out;
}

std::optional<RunDir> enclosing_run(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return std::nullopt;
  for (fs::path dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    RunDir run{dir.string()};
    if (run.holds_run()) return run;
    if (dir == dir.root_path()) break;
  }
  return std::nullopt;
}

std::optional<RunDir> run_of_checkpoint(const std::string& checkpoint) {
  std::error_code ec;
  const auto file = fs::weakly_canonical(fs::absolute(checkpoint, ec), ec);
  if (ec || file.parent_path().filename() != "checkpoints") return std::nullopt;
  RunDir run{file.parent_path().parent_path().string()};
  if (!run.holds_run()) return std::nullopt;
  return run;
}

std::string resolve_checkpoint_path(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw CheckpointError(path + ": no such checkpoint or run directory");
  }
  if (!fs::is_directory(path, ec)) return path;
  const RunDir run{path};
  for (const auto& candidate : {run.best(), run.final_model()}) {
    if (fs::exists(candidate, ec)) return candidate;
  }
  const std::string latest = run.latest();
  if (!latest.empty()) return latest;
  throw CheckpointError(path +
                        ": a directory without checkpoints (checkpoints/best.pt, "
                        "final.pt or latest); pass a run directory or a checkpoint file");
}

namespace {

/// True when `root` holds only what a training start creates before it writes config.json
/// (an empty checkpoints/ directory, the lock file, the log, atomic-write temporaries): a run
/// killed during its first moments, which --overwrite may replace.
bool is_interrupted_start(const fs::path& root) {
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    const bool skeleton =
        (name == "checkpoints" && entry.is_directory() && fs::is_empty(entry.path())) ||
        name == ".lock" || name == "train.log" || RunDir::is_temporary_name(name);
    if (!skeleton) return false;
  }
  return true;
}

}  // namespace

void check_run_dir_usable(const RunDir& run, bool overwrite,
                          const std::vector<std::pair<std::string, std::string>>& inputs) {
  const fs::path root(run.root);
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_directory(root, ec)) {
    throw UsageError(run.root + ": exists and is not a directory");
  }
  if (!fs::exists(root, ec) || fs::is_empty(root, ec)) return;
  const bool looks_like_run =
      fs::exists(run.config()) || fs::exists(run.metrics()) || is_interrupted_start(root);
  if (!overwrite || !looks_like_run) {
    throw UsageError(run.root + (looks_like_run
                                     ? ": already holds a run; pass --overwrite to replace it "
                                       "or --run-dir to train elsewhere"
                                     : ": not empty and not a run directory; choose another "
                                       "--run-dir"));
  }
  // --overwrite deletes the files the old run owns: none of them may be an input.
  for (const auto& file : run.owned_files()) {
    for (const auto& [path, what] : inputs) {
      if (!path.empty() && same_file(path, file)) {
        throw UsageError(
            fmt::format("{}: {} ({}) is {} of the run directory, which --overwrite "
                        "would delete; move it out of {} first",
                        run.root, what, path, fs::path(file).filename().string(), run.root));
      }
    }
  }
  // Never replace a run another process is still training (probing an existing lock changes
  // nothing; a run without a lock file has no holder).
  if (fs::exists(run.lock(), ec)) {
    RunLock probe(run.root, /*announce=*/false);
  }
}

void reset_run_dir(const RunDir& run) {
  std::vector<std::string> kept;
  for (const auto& file : run.owned_files()) fs::remove(file);
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(run.root, ec)) {
    const auto relative = entry.path().lexically_relative(run.root);
    if (!entry.is_directory() && relative != ".lock") kept.push_back(relative.string());
  }
  std::sort(kept.begin(), kept.end());
  if (!kept.empty()) {
    spdlog::warn("{}: kept {} file(s) attnrec did not write: {}", run.root, kept.size(),
                 join(kept, ", "));
  }
  fs::create_directories(fs::path(run.checkpoints()), ec);
  if (ec) throw IoError(run.root + ": cannot create run directory: " + ec.message());
}

std::unique_ptr<RunLock> lock_run_dir(const RunDir& run) {
  std::error_code ec;
  fs::create_directories(fs::path(run.root), ec);
  if (ec) throw IoError(run.root + ": cannot create run directory: " + ec.message());
  return std::make_unique<RunLock>(run.root, /*announce=*/false);
}

void remove_stale_temporaries(const RunDir& run) {
  if (!fs::exists(run.checkpoints())) return;
  for (const auto& entry : fs::directory_iterator(run.checkpoints())) {
    if (RunDir::is_temporary_name(entry.path().filename().string())) fs::remove(entry.path());
  }
}

}  // namespace attnrec

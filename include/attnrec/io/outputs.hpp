#pragma once
/// \file Output paths checked before a command writes anything.
///
/// A command declares the files it reads and the files it will write; OutputGuard refuses an
/// output that is one of the inputs (the same file by any path: symbolic links and hard links
/// count), two outputs that are the same file, and an output that is a file owned by a run
/// directory (checkpoints, vocabularies, config.json, metrics.jsonl, ...; see run_dir.hpp).
/// "-" (standard output) and existing devices or FIFOs are never refused for being in a run.

#include <string>
#include <vector>

namespace attnrec {

class OutputGuard {
 public:
  /// Declares a file the command reads; `what` names it in messages (a flag or config key).
  /// Empty paths are ignored.
  OutputGuard& input(const std::string& path, const std::string& what);
  /// Checks `path` (the value of `what`, e.g. "--output") against the inputs, the outputs
  /// declared before and the run directories; throws UsageError on a conflict. Empty paths are
  /// ignored.
  OutputGuard& output(const std::string& path, const std::string& what);

 private:
  struct Entry {
    std::string path, what;
  };
  std::vector<Entry> inputs_, outputs_;
};

/// True when `a` and `b` name the same file (or the same path where one does not exist yet).
bool same_file(const std::string& a, const std::string& b);

}  // namespace attnrec

#pragma once
/// \file metrics.jsonl: one JSON object per validation or test evaluation.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "attnrec/io/tensorboard.hpp"

namespace attnrec {

/// Appends one JSON object per line to a file (metrics.jsonl). An empty path writes nothing
/// (the processes of a multi-process run other than rank 0).
class MetricsLog {
 public:
  /// `events`, when given, also receives every numeric field of each row as the scalar
  /// "SPLIT/FIELD" at the row's "step".
  explicit MetricsLog(std::string path, std::shared_ptr<EventWriter> events = nullptr)
      : path_(std::move(path)), events_(std::move(events)) {}
  void append(const nlohmann::json& row) const;
  /// Keeps the first `rows` lines (drops rows written after the checkpoint a run resumes from).
  void truncate(std::int64_t rows) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<EventWriter> events_;
};

/// Lines in a metrics file (0 when it does not exist).
std::int64_t count_metrics_rows(const std::string& path);

}  // namespace attnrec

#include "attnrec/io/metrics_log.hpp"

#include <cerrno>
#include <fstream>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"

namespace attnrec {

void MetricsLog::append(const nlohmann::json& row) const {
  if (path_.empty()) return;
  errno = 0;
  std::ofstream out(path_, std::ios::app);
  out << row.dump() << '\n';
  out.flush();
  if (!out) throw IoError(path_ + ": cannot append metrics" + errno_reason());
  if (!events_ || !row.contains("step")) return;
  const std::string split = row.value("split", std::string("valid"));
  const auto step = row["step"].get<std::int64_t>();
  for (const auto& [name, value] : row.items()) {
    if (value.is_number() && name != "step" && name != "epoch") {
      events_->scalar(split + "/" + name, value.get<double>(), step);
    }
  }
}

void MetricsLog::truncate(std::int64_t rows) const {
  if (path_.empty()) return;
  std::ifstream in(path_);
  std::string kept, line;
  for (std::int64_t n = 0; n < rows && std::getline(in, line); ++n) kept += line + "\n";
  write_file_atomic(path_, kept);
}

std::int64_t count_metrics_rows(const std::string& path) {
  std::ifstream in(path);
  std::int64_t rows = 0;
  for (std::string line; std::getline(in, line);) ++rows;
  return rows;
}

}  // namespace attnrec

#pragma once
/// \file `attnrec report RUN`: one self-contained HTML page about a run (no network, no
/// scripts, no external fonts; inline SVG drawn by attnrec):
/// - the run: model, data statistics, the data's protocol, device and threads, wall time and
///   throughput, resumed segments;
/// - learning curves from metrics.jsonl: the training loss and every validation metric by step,
///   the best step, the early stop and every resume marked;
/// - on a data file (default: the run's test split) scored with the best model: ROC with AUC,
///   precision-recall with average precision, a reliability diagram with the expected
///   calibration error, score histograms by label, the popularity baseline beside the model
///   (when the run's training file is there) and ranking metrics (when test_candidates.tsv is
///   beside the data);
/// - attention heat rows for a handful of positive examples (history items x weight, then the
///   candidate).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnrec {

struct ReportRequest {
  std::string run;                     ///< run directory
  std::string data;                    ///< labelled sample file (default: the run's data.test)
  std::string output;                  ///< the page (default: RUN/report.html)
  std::int64_t examples = 6;           ///< attention heat rows
  std::vector<std::string> overrides;  ///< `--set` for scoring (train.device, train.threads)
};

/// What write_report() wrote: the page, its sections (ids, in order) and the metrics of the
/// data file it drew (evaluate's metrics JSON; null when the run has no data file to score).
struct ReportResult {
  std::string path;
  std::vector<std::string> sections;
  nlohmann::json metrics;
};

ReportResult write_report(const ReportRequest& request);

}  // namespace attnrec

// `attnrec report`: flags to a ReportRequest.

#include <spdlog/spdlog.h>
#include <memory>

#include "attnrec/tools/report.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_report_command(CLI::App& app, Commands& commands) {
  auto r = std::make_shared<ReportRequest>();
  auto* cmd = app.add_subcommand(
      "report",
      "Write one self-contained HTML page about a run: its learning curves, held-out "
      "curves (ROC, precision-recall, reliability, histograms) and attention");
  cmd->add_option("run", r->run, "Run directory")->required();
  cmd->add_option("--data", r->data,
                  "Labelled sample file to draw the held-out curves on (default: the run's "
                  "data.test)");
  cmd->add_option("--output,-o", r->output, "The page (default: RUN/report.html)");
  cmd->add_option("--examples", r->examples, "Attention heat rows to draw")
      ->check(CLI::Range(0, 100));
  cmd->add_option("--set", r->overrides,
                  "Scoring override KEY=VALUE (train.device, train.threads, eval.batch_size)");
  commands.push_back({cmd, [r] {
                        const auto result = write_report(*r);
                        std::printf("report: %s\n", result.path.c_str());
                        return 0;
                      }});
}

}  // namespace attnrec::cli

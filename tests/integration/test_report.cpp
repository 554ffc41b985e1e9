// `attnrec report`: the page of a real (resumed) run, checked by structure against the metrics
// JSON and run files, and in headless Chromium (a screenshot, and the parsed DOM holds every
// chart with its marks).

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <regex>

#include "attnrec/util/strings.hpp"
#include "support.hpp"

using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// The `<svg ...>...</svg>` elements of `page` with a data-chart attribute, by name.
std::map<std::string, std::string> charts_of(const std::string& page) {
  std::map<std::string, std::string> charts;
  const std::regex open(R"re(<svg class="chart[^"]*" data-chart="([^"]+)")re");
  for (std::sregex_iterator it(page.begin(), page.end(), open), end; it != end; ++it) {
    const auto from = static_cast<std::size_t>(it->position(0));
    charts[(*it)[1]] = page.substr(from, page.find("</svg>", from) - from);
  }
  return charts;
}

struct ReportedRun {
  TempDir dir;
  std::string data = dir.file("data"), run = dir.file("run");
  CliResult report;
  std::string page;
  ReportedRun() {
    REQUIRE(run_cli("--log-level warn generate --out '" + data +
                    "' --users 40 --items 60 --categories 6 --train 1200 --valid 200 --test 300 "
                    "--seed 5")
                .code == 0);
    write_text(dir.file("c.json"), R"({"data": {"train": ")" + data + R"(/train.tsv",
        "valid": ")" + data + R"(/valid.tsv", "test": ")" +
                                       data + R"(/test.tsv"},
        "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
        "train": {"epochs": 3, "batch_size": 64, "threads": 1, "device": "cpu",
                  "early_stopping": {"patience": 0}}})");
    // Two segments: stopped after 7 steps, then resumed to the end.
    const auto first = run_cli("--log-level warn train --config '" + dir.file("c.json") +
                               "' --run-dir '" + run + "' --stop-after-steps 7");
    INFO(first.err);
    REQUIRE(first.code == 0);
    const auto second = run_cli("--log-level warn train --resume '" + run + "'");
    INFO(second.err);
    REQUIRE(second.code == 0);
    report = run_cli("--log-level warn report '" + run + "'");
    page = read_text(run + "/report.html");
  }
};

ReportedRun& reported() {
  static ReportedRun r;
  return r;
}

}  // namespace

TEST_CASE("cli report: a self-contained page whose numbers are the run's", "[cli][report]") {
  auto& r = reported();
  INFO(r.report.err);
  REQUIRE(r.report.code == 0);
  CHECK_THAT(r.report.out, Contains("report: " + r.run + "/report.html"));
  // Self-contained: nothing is fetched, nothing runs.
  CHECK(count_of(r.page, "http://") + count_of(r.page, "https://") == 0);
  CHECK(count_of(r.page, "<script") == 0);
  CHECK(count_of(r.page, "url(") == 0);
  for (const char* id : {"run", "curves", "test", "attention", "explanations"}) {
    CHECK_THAT(r.page, Contains(std::string("<section id=\"") + id + "\">"));
  }
  const auto charts = charts_of(r.page);
  for (const char* name : {"loss", "validation", "roc", "pr", "reliability", "histogram",
                           "attention-1", "attention-2"}) {
    INFO(name);
    REQUIRE(charts.count(name) == 1);
  }
  // The learning curves have a point per validation row (3 epochs), the resume is marked.
  const auto rows = read_jsonl(r.run + "/metrics.jsonl");
  std::size_t valid_rows = 0;
  for (const auto& row : rows) valid_rows += row["split"] == "valid";
  REQUIRE(valid_rows == 3);
  const std::string& v = charts.at("validation");
  const auto at = v.find("data-series=\"valid auc\" d=\"");
  REQUIRE(at != std::string::npos);
  CHECK(count_of(v.substr(at, v.find("\"/>", at) - at), " L") == valid_rows - 1);
  CHECK_THAT(v, Contains(">resumed</text>"));
  CHECK_THAT(r.page, Contains("resumed at global step 7"));
  // The held-out numbers are evaluate's, on the same file with the same model.
  const auto m_path = r.dir.file("m.json");
  REQUIRE(run_cli("--log-level warn evaluate --checkpoint '" + r.run + "' --data '" + r.data +
                  "/test.tsv' --baseline popularity --output '" + m_path + "'")
              .code == 0);
  const auto m = nlohmann::json::parse(read_text(m_path));
  const auto cell = [](double v) { return fmt::format("{:.4f}", v); };
  CHECK_THAT(r.page, Contains("class=\"model-auc\">" + cell(m["auc"].get<double>()) + "<"));
  CHECK_THAT(r.page, Contains("class=\"model-logloss\">" + cell(m["logloss"].get<double>()) + "<"));
  CHECK_THAT(r.page, Contains("<td>" + cell(m["baseline_popularity"]["auc"].get<double>()) + "<"));
  CHECK_THAT(r.page, Contains("ROC (model AUC " + cell(m["auc"].get<double>()) + ")"));
  CHECK_THAT(r.page, Contains("&quot;split&quot;: &quot;synthetic&quot;"));  // the data's protocol
  // The explanations are explain's (its summary over the first 1,000 samples).
  const auto x_path = r.dir.file("x.json");
  REQUIRE(run_cli("--log-level warn explain --checkpoint '" + r.run + "' --data '" + r.data +
                  "/test.tsv' --summary --limit 1000 --output '" + x_path + "'")
              .code == 0);
  const auto x = nlohmann::json::parse(read_text(x_path))["summary"];
  CHECK_THAT(r.page,
             Contains("<td>" + cell(x["mean_abs_loo_delta_top_weighted"].get<double>()) + "</td>"));
  // The attention rows show the first positives' histories, in file order.
  CHECK_THAT(charts.at("attention-1"), Contains("class=\"cell\""));
}

TEST_CASE("cli report: the example explanations are explain's, also past the first 1,000 samples",
          "[cli][report]") {
  auto& r = reported();
  REQUIRE(r.report.code == 0);
  // The examples are the first positives; `explain --lines` on them gives the page's headings.
  const auto heading = [&](const std::string& data, std::int64_t line) {
    const auto path = r.dir.file("x" + std::to_string(line) + ".json");
    const auto x = run_cli("--log-level warn explain --checkpoint '" + r.run + "' --data '" + data +
                           "' --lines " + std::to_string(line) + " --output '" + path + "'");
    REQUIRE(x.code == 0);
    const auto e = nlohmann::json::parse(read_text(path))["examples"][0];
    return fmt::format("<h3>line {}: candidate {}, probability {:.4f}</h3>", line,
                       e["candidate"].get<std::string>(), e["probability"].get<double>());
  };
  const std::string test = r.data + "/test.tsv";
  const std::string text = read_text(test);
  std::vector<std::string_view> fields;
  attnrec::split(text, '\n', fields);
  std::vector<std::string> rows(fields.begin(), fields.end());
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  std::int64_t first_positive = 0;  // its line number (the header is line 1)
  for (std::size_t i = 1; i < rows.size() && first_positive == 0; ++i) {
    if (rows[i].rfind("1\t", 0) == 0 && rows[i].find(',') != std::string::npos) {
      first_positive = static_cast<std::int64_t>(i) + 1;
    }
  }
  REQUIRE(first_positive > 0);
  CHECK_THAT(r.page, Contains(heading(test, first_positive)));
  // A file whose first 1,000 samples are negatives: the examples need explain's second pass.
  std::string shifted = rows[0] + "\n";
  std::int64_t negatives = 0;
  for (std::size_t i = 1; negatives < 1000; i = i % (rows.size() - 1) + 1) {
    if (rows[i].rfind("0\t", 0) != 0) continue;
    shifted += rows[i] + "\n";
    ++negatives;
  }
  for (std::size_t i = 1; i < rows.size(); ++i) shifted += rows[i] + "\n";
  const std::string data = r.dir.file("shifted.tsv");
  write_text(data, shifted);
  const auto page = r.dir.file("shifted.html");
  const auto again = run_cli("--log-level warn report '" + r.run + "' --data '" + data +
                             "' --output '" + page + "'");
  INFO(again.err);
  REQUIRE(again.code == 0);
  CHECK_THAT(read_text(page), Contains(heading(data, 1001 + first_positive)));
}

TEST_CASE("cli report: bad input is a clear error", "[cli][report]") {
  TempDir dir;
  const auto r = run_cli("report '" + dir.path().string() + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("not a finished run directory (no summary.json)"));
}

TEST_CASE("cli report: headless Chromium draws every chart", "[cli][report][browser]") {
  auto& r = reported();
  REQUIRE(r.report.code == 0);
  if (std::system("chromium --version >/dev/null 2>&1") != 0) {
    WARN("SKIPPED: no chromium (scripts/test.sh installs Debian's chromium)");
    return;
  }
  const std::string page = "file://" + r.run + "/report.html";
  const std::string flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars ";
  const std::string dom = r.dir.file("dom.html"), png = r.dir.file("report.png");
  REQUIRE(std::system(("timeout 120 chromium " + flags + "--dump-dom '" + page + "' >'" + dom +
                       "' 2>/dev/null")
                          .c_str()) == 0);
  REQUIRE(std::system(("timeout 120 chromium " + flags + "--window-size=1280,4000 --screenshot='" +
                       png + "' '" + page + "' >/dev/null 2>&1")
                          .c_str()) == 0);
  CHECK(std::filesystem::file_size(png) > 50000);  // a blank page is a few KB
  // The browser's DOM holds every chart of the page, each with its marks.
  const auto parsed = charts_of(read_text(dom));
  const auto written = charts_of(r.page);
  CHECK(parsed.size() == written.size());
  for (const auto& [name, svg] : parsed) {
    INFO(name);
    CHECK((svg.find("<path") != std::string::npos ||
           svg.find("<rect class=\"cell\"") != std::string::npos ||
           svg.find("<g class=\"series\"") != std::string::npos));
  }
  if (const char* keep = std::getenv("ATTNREC_KEEP_SCREENSHOTS")) {
    std::filesystem::copy_file(png, std::string(keep) + "/report.png",
                               std::filesystem::copy_options::overwrite_existing);
  }
}

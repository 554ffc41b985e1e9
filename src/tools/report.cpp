#include "attnrec/tools/report.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "attnrec/eval/curves.hpp"
#include "attnrec/eval/evaluation.hpp"
#include "attnrec/eval/metrics.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/tools/explain.hpp"
#include "attnrec/tools/svg.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"

namespace attnrec {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kModelColor = "#1f77b4";
constexpr const char* kBaselineColor = "#ff7f0e";
constexpr const char* kGuideColor = "#999999";
const std::vector<const char*> kPalette = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                           "#8c564b", "#e377c2", "#17becf", "#bcbd22"};

json read_json(const std::string& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw DataError(path + ": not valid JSON: " + e.what());
  }
}

std::vector<json> read_rows(const std::string& path) {
  std::vector<json> rows;
  std::ifstream in(path);
  std::string line;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      rows.push_back(json::parse(line));
    } catch (const json::exception& e) {
      throw DataError(path + ":" + std::to_string(n) + ": not a JSON object: " + e.what());
    }
  }
  return rows;
}

std::string number(const json& v, const char* format = "{:.4f}") {
  if (v.is_number_integer()) return fmt::format("{}", v.get<std::int64_t>());
  if (v.is_number()) return fmt::format(format, v.get<double>());
  if (v.is_null()) return "n/a";
  return svg::escape(v.is_string() ? v.get<std::string>() : v.dump());
}

std::string table(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string out = "<table class=\"facts\">\n";
  for (const auto& [k, v] : rows) {
    out += "<tr><th>" + svg::escape(k) + "</th><td>" + v + "</td></tr>\n";
  }
  return out + "</table>\n";
}

/// The global steps at which resumed segments started (train.log's "resumed at" lines).
std::vector<std::int64_t> resume_steps(const std::string& log) {
  std::vector<std::int64_t> steps;
  std::ifstream in(log);
  const std::regex pattern(R"(resumed at epoch \d+, step \d+ of the epoch \(global step (\d+)\))");
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, m, pattern)) steps.push_back(std::stoll(m[1]));
  }
  return steps;
}

/// Numeric fields of a metrics row, nested objects flattened with '/'.
void flatten(const json& row, const std::string& prefix, std::map<std::string, double>& out) {
  for (const auto& [k, v] : row.items()) {
    if (v.is_object()) flatten(v, prefix + k + "/", out);
    if (v.is_number() && !v.is_boolean()) out[prefix + k] = v.get<double>();
  }
}

/// Fields of a validation row that are bookkeeping, not quality.
bool is_bookkeeping(const std::string& name) {
  static const std::vector<std::string> names = {"step",
                                                 "epoch",
                                                 "samples",
                                                 "positives",
                                                 "skipped_lines",
                                                 "eval_seconds",
                                                 "threshold",
                                                 "train_seconds",
                                                 "train_samples_per_second",
                                                 "gauc_users",
                                                 "gauc_users_excluded",
                                                 "oov_rate"};
  if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  return name.find("mean_rank") != std::string::npos ||
         name.find("candidates") != std::string::npos || name.find("ks/") != std::string::npos;
}

struct RunFacts {
  json config, summary;
  std::vector<json> rows;
  std::vector<std::int64_t> resumes;
};

std::string run_section(const ReportRequest& r, const RunFacts& f) {
  const json& s = f.summary;
  const json m = f.config.value("model", json::object());
  std::vector<std::pair<std::string, std::string>> rows = {
      {"run directory", svg::escape(r.run)},
      {"model",
       svg::escape(fmt::format("{} encoder, {} attention",
                               m.value("/encoder/type"_json_pointer, std::string("?")),
                               m.value("/attention/type"_json_pointer, std::string("?"))))},
      {"loss", number(f.config.value("/train/loss"_json_pointer, json()))},
      {"parameters", number(s.value("parameters", json()))},
      {"device", number(s.value("device", json()))},
      {"threads", number(s.value("threads", json()))},
      {"steps", number(s.value("steps", json()))},
      {"epochs completed", number(s.value("epochs_completed", json()))},
      {"wall time (s)", number(s.value("wall_seconds", json()), "{:.1f}")},
      {"training time (s)", number(s.value("train_seconds", json()), "{:.1f}")},
      {"throughput (samples/s)", number(s.value("train_samples_per_second", json()), "{:.0f}")},
      {"stopped early", number(s.value("stopped_early", json()))},
      {"best checkpoint", number(s.value("best_checkpoint", json()))},
  };
  std::string resumes;
  for (const auto step : f.resumes) resumes += (resumes.empty() ? "" : ", ") + std::to_string(step);
  rows.emplace_back("resumed segments",
                    resumes.empty() ? "none (one segment)" : "resumed at global step " + resumes);
  std::string out = "<section id=\"run\">\n<h2>The run</h2>\n" + table(rows);
  out +=
      "<h3>Data</h3>\n<table class=\"data\"><tr><th>split</th><th>file</th><th>samples</th>"
      "<th>positives</th><th>OOV rate</th><th>skipped lines</th></tr>\n";
  const json data = s.value("data", json::object());
  for (const auto& [split, d] : data.items()) {
    out +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    svg::escape(split), number(d.value("file", json())),
                    number(d.value("samples", json())), number(d.value("positives", json())),
                    number(d.value("oov_rate", json())), number(d.value("skipped_lines", json())));
  }
  return out + "</table>\n</section>\n";
}

std::string curves_section(const RunFacts& f) {
  std::map<std::string, svg::Series> series;
  svg::Series train_loss{"train loss", {}, {}, "#333333", true};
  for (const auto& row : f.rows) {
    if (row.value("split", std::string()) != "valid") continue;
    const double step = row.value("step", 0.0);
    std::map<std::string, double> fields;
    flatten(row, "", fields);
    for (const auto& [name, value] : fields) {
      if (name == "train_loss") {
        train_loss.x.push_back(step);
        train_loss.y.push_back(value);
      } else if (!is_bookkeeping(name)) {
        series[name].name = "valid " + name;
        series[name].x.push_back(step);
        series[name].y.push_back(value);
      }
    }
  }
  std::vector<svg::Marker> markers;
  const json es = f.summary.value("early_stopping", json::object());
  if (es.contains("best_step")) {
    markers.push_back({es["best_step"].get<double>(), "best", "#2ca02c"});
  }
  if (f.summary.value("stopped_early", false) && !f.rows.empty()) {
    markers.push_back({f.summary.value("steps", 0.0), "early stop", "#d62728"});
  }
  for (const auto step : f.resumes) {
    markers.push_back({static_cast<double>(step), "resumed", "#9467bd"});
  }
  std::vector<svg::Series> losses, quality;
  if (!train_loss.x.empty()) losses.push_back(train_loss);
  std::size_t colour = 0;
  for (auto& [name, s] : series) {
    s.color = kPalette[colour++ % kPalette.size()];
    (name == "logloss" || name.find("loss") != std::string::npos ? losses : quality).push_back(s);
  }
  std::string out = "<section id=\"curves\">\n<h2>Learning curves</h2>\n";
  if (losses.empty() && quality.empty()) {
    return out +
           "<p>metrics.jsonl has no validation rows (the run had no data.valid).</p>\n"
           "</section>\n";
  }
  out += svg::line_chart(svg::axes("loss", "Loss by step", "global step", "loss"), losses, markers);
  out +=
      svg::line_chart(svg::axes("validation", "Validation metrics by step", "global step", "value"),
                      quality, markers);
  return out + "</section>\n";
}

/// The samples `rows` of `set`, as a set of their own.
SampleSet subset(const SampleSet& set, const std::vector<std::int64_t>& rows) {
  SampleSet out;
  out.source = set.source;
  out.has_labels = set.has_labels;
  out.has_items = set.has_items;
  out.has_users = set.has_users;
  out.history_offsets.push_back(0);
  for (const auto i : rows) {
    if (set.has_labels) out.labels.push_back(set.labels[i]);
    if (set.has_items) out.items.push_back(set.items[i]);
    if (set.has_users) {
      out.users.push_back(set.users[i]);
      out.user_groups.push_back(set.user_groups[i]);
    }
    for (auto h = set.history_offsets[i]; h < set.history_offsets[i + 1]; ++h) {
      out.history.push_back(set.history[h]);
    }
    out.history_offsets.push_back(static_cast<std::int64_t>(out.history.size()));
    out.line_numbers.push_back(set.line_numbers[i]);
  }
  out.user_group_count = set.user_group_count;
  return out;
}

/// Attention heat rows for the first `n` positives with at least two history items.
std::string attention_rows(const ScoredFile& f, std::int64_t n, std::vector<std::int64_t>& lines) {
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 0; i < f.set.size() && static_cast<std::int64_t>(rows.size()) < n; ++i) {
    if (f.set.labels[i] == 1 && f.set.history_length(i) >= 2) rows.push_back(i);
  }
  if (rows.empty()) return "<p>No positive sample with a history of two items or more.</p>\n";
  for (const auto i : rows) lines.push_back(f.set.line_numbers[i]);
  const SampleSet examples = subset(f.set, rows);
  std::string out;
  bool has_attention = true;
  std::int64_t k = 0;
  score(f.model, examples, f.options, [&](const Batch& batch, const RecommenderOutput& o) {
    if (!o.attention.defined()) {
      has_attention = false;
      return;
    }
    const auto history = batch.history.cpu(), mask = batch.mask.cpu();
    const auto weights = o.attention.to(torch::kCPU, torch::kFloat64);
    for (std::int64_t b = 0; b < batch.size(); ++b, ++k) {
      std::vector<std::string> labels;
      std::vector<double> w;
      for (std::int64_t t = 0; t < history.size(1); ++t) {
        if (!mask[b][t].item<bool>()) continue;
        labels.emplace_back(
            f.items.token(static_cast<std::int32_t>(history[b][t].item<std::int64_t>())));
        w.push_back(weights[b][t].item<double>());
      }
      // The most recent items only: a row stays readable on a page.
      constexpr std::size_t kShown = 20;
      const std::size_t older = labels.size() > kShown ? labels.size() - kShown : 0;
      labels.erase(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(older));
      w.erase(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(older));
      const auto i = rows[static_cast<std::size_t>(k)];
      const std::string candidate =
          f.set.has_items ? std::string(f.items.token(f.set.items[i])) : std::string("?");
      out += fmt::format(
          "<figure class=\"example\"><figcaption>line {}: score {:.4f}, label {}{}"
          "</figcaption>\n{}</figure>\n",
          f.set.line_numbers[i], f.probabilities[i], int{f.set.labels[i]},
          older ? fmt::format(" (the {} most recent of {} history items)", kShown, kShown + older)
                : std::string(),
          svg::heat_row(fmt::format("attention-{}", k + 1), labels, w, candidate));
    }
  });
  if (!has_attention) return "<p>This model has no attention weights over the history.</p>\n";
  return out;
}

/// The charts of a scored file: ROC, precision-recall, reliability, histograms.
std::string score_charts(const ScoredFile& f, json& metrics) {
  const auto& p = f.probabilities;
  const auto& y = f.set.labels;
  std::vector<svg::Series> roc, pr;
  const auto add = [&](const std::vector<double>& scores, const std::string& who,
                       const char* colour) {
    const Curve r = thin_curve(roc_curve(scores, y), 400);
    const Curve full_pr = precision_recall_curve(scores, y);
    const double ap = average_precision(full_pr);
    const Curve c = thin_curve(full_pr, 400);
    metrics["report"][who]["average_precision"] = ap;
    roc.push_back({who, r.x, r.y, colour});
    pr.push_back({fmt::format("{} (AP {:.4f})", who, ap), c.x, c.y, colour});
  };
  add(p, "model", kModelColor);
  if (!f.baseline.empty()) add(f.baseline, "popularity", kBaselineColor);
  roc.push_back({"chance", {0, 1}, {0, 1}, kGuideColor, true});
  const Calibration cal = calibration(p, y, 10);
  metrics["report"]["model"]["ece"] = cal.ece;
  svg::Series observed{"observed rate", {}, {}, kModelColor};
  for (std::size_t b = 0; b < cal.count.size(); ++b) {
    if (cal.count[b] == 0) continue;
    observed.x.push_back(cal.mean_predicted[b]);
    observed.y.push_back(cal.observed_rate[b]);
  }
  std::vector<double> edges;
  for (int b = 0; b <= 20; ++b) edges.push_back(b / 20.0);
  const auto counts = [&](std::uint8_t label) {
    const auto c = histogram_by_label(p, y, label, 20, 0.0, 1.0);
    return std::vector<double>(c.begin(), c.end());
  };
  const auto model_auc = auc(p, y);  // what compute_metrics reports as "auc"
  const std::string auc_text = model_auc ? fmt::format("{:.4f}", *model_auc) : "n/a";
  std::string out;
  out += svg::line_chart({"roc", "ROC (model AUC " + auc_text + ")", "false positive rate",
                          "true positive rate", 0.0, 1.0, 0.0, 1.0},
                         roc);
  out += svg::line_chart({"pr", "Precision-recall", "recall", "precision", 0.0, 1.0, 0.0, 1.0}, pr);
  out +=
      svg::line_chart({"reliability", fmt::format("Reliability (ECE {:.4f})", cal.ece),
                       "mean predicted probability", "observed positive rate", 0.0, 1.0, 0.0, 1.0},
                      {observed, {"perfect calibration", {0, 1}, {0, 1}, kGuideColor, true}});
  out += svg::histogram(
      svg::axes("histogram", "Scores by label", "predicted probability", "samples"), edges,
      {{"label 0", {}, counts(0), "#d62728"}, {"label 1", {}, counts(1), kModelColor}});
  return out;
}

/// Model and baseline metrics side by side, and the ranking metrics when computed.
std::string metrics_tables(const json& m) {
  const json base = m.value("baseline_popularity", json::object());
  std::string out =
      "<table class=\"metrics\"><tr><th>metric</th><th>model</th><th>popularity baseline</th>"
      "</tr>\n";
  for (const char* k : {"auc", "gauc", "logloss", "accuracy", "precision", "recall", "f1",
                        "samples", "positives", "oov_rate"}) {
    out += fmt::format("<tr><td>{}</td><td class=\"model-{}\">{}</td><td>{}</td></tr>\n", k, k,
                       number(m.value(k, json())), number(base.value(k, json())));
  }
  out += "</table>\n";
  if (!m.contains("ranking")) return out;
  for (const auto& [protocol, r] : m["ranking"].items()) {
    const json b =
        base.value("/ranking"_json_pointer, json::object()).value(protocol, json::object());
    out += fmt::format(
        "<h3>Ranking ({} candidates)</h3>\n<table class=\"ranking\"><tr><th>metric"
        "</th><th>model</th><th>popularity baseline</th></tr>\n",
        svg::escape(protocol));
    for (const auto& [k, v] : r.items()) {
      if (!v.is_number()) continue;
      out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", svg::escape(k), number(v),
                         number(b.value(k, json())));
    }
    out += "</table>\n";
  }
  return out;
}

/// What `attnrec explain` says: its summary over the first 1,000 samples and its table for the
/// attention examples.
std::string explanations_section(const ScoringRequest& scoring,
                                 const std::vector<std::int64_t>& lines, ReportResult& result) {
  ExplainRequest x;
  x.scoring = scoring;
  x.limit = 1000;
  // The example lines (the first positives) are almost always among the first 1,000 samples:
  // one pass explains both. Held in a variable: a range-for over a member of a temporary would
  // read freed memory (found by the AddressSanitizer suite).
  x.examples = !lines.empty();
  const json explained = run_explain(x);
  const json& summary = explained["summary"];
  result.metrics["explain"] = summary;
  std::string out =
      "<section id=\"explanations\">\n<h2>Which history items drove the predictions</h2>\n"
      "<p>From <code>attnrec explain</code>: for each sample, the logit change when an item is "
      "removed from the history (leave-one-out) and when only its attention weight is zeroed "
      "(attention-only), over the first " +
      std::to_string(summary["examples"].get<std::int64_t>()) + " samples of the file.</p>\n";
  out += table({{"mean |leave-one-out change| of the top-weighted item",
                 number(summary["mean_abs_loo_delta_top_weighted"])},
                {"mean |leave-one-out change| of a random item",
                 number(summary["mean_abs_loo_delta_random"])},
                {"mean |leave-one-out change| of the lowest-weighted item",
                 number(summary["mean_abs_loo_delta_lowest_weighted"])},
                {"mean |logit change| with uniform attention weights",
                 number(summary["mean_abs_uniform_attention_delta"])},
                {"share of samples where the top-weighted item matters more",
                 number(summary["share_top_weighted_matters_more"])},
                {"median Kendall tau (weights vs |leave-one-out change|)",
                 number(summary["median_kendall_tau"])}});
  if (lines.empty()) return out + "</section>\n";
  std::map<std::int64_t, json> by_line;
  for (const auto& e : explained["examples"]) by_line[e["line"].get<std::int64_t>()] = e;
  std::string missing;
  for (const auto line : lines) {
    if (by_line.count(line) == 0) missing += (missing.empty() ? "" : ",") + std::to_string(line);
  }
  if (!missing.empty()) {  // lines past the first 1,000 samples: a second pass for them
    x.lines = missing;
    const json more = run_explain(x);
    for (const auto& e : more["examples"]) by_line[e["line"].get<std::int64_t>()] = e;
  }
  for (const auto line : lines) {
    const json& example = by_line.at(line);
    out += fmt::format(
        "<h3>line {}: candidate {}, probability {:.4f}</h3>\n<table class=\"explain\">"
        "<tr><th>recency</th><th>item</th><th>weight</th><th>leave-one-out</th>"
        "<th>attention-only</th></tr>\n",
        example["line"].get<std::int64_t>(),
        svg::escape(example.value("candidate", std::string("?"))),
        example["probability"].get<double>());
    const auto& order = example["by_weight"];
    for (std::size_t k = 0; k < order.size() && k < 5; ++k) {
      const auto& p = example["positions"][order[k].get<std::size_t>()];
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.4f}</td><td>{:+.4f}</td><td>{:+.4f}"
          "</td></tr>\n",
          p["recency"].get<std::int64_t>(), svg::escape(p["item"].get<std::string>()),
          p["weight"].get<double>(), p["loo_delta"].get<double>(),
          p["attention_only_delta"].get<double>());
    }
    out += "</table>\n";
  }
  return out + "</section>\n";
}

/// The held-out section: the data file scored with the run's best model, and its attention.
std::string test_section(const ReportRequest& r, const std::string& data, const json& config,
                         ReportResult& result) {
  EvaluationRequest e;
  e.scoring = {r.run, data, r.overrides};
  const std::string train = config.value("/data/train"_json_pointer, std::string());
  e.popularity_baseline = !train.empty() && fs::is_regular_file(train);
  e.sampled_ranking = !file_beside(data, "test_candidates.tsv").empty();
  std::string charts, attention;
  std::vector<std::int64_t> example_lines;
  e.inspect = [&](const ScoredFile& f) {
    if (!f.set.has_labels) throw DataError(data + ": no label column; the report needs labels");
    charts = score_charts(f, result.metrics);
    attention = attention_rows(f, r.examples, example_lines);
  };
  json m = run_evaluation(e);
  m["report"] = result.metrics.value("report", json::object());
  result.metrics = m;
  std::string out = "<section id=\"test\">\n<h2>Held-out data: " + svg::escape(data) + "</h2>\n";
  out += metrics_tables(m) + charts;
  out += "<h3>Protocol</h3>\n<pre>" + svg::escape(m.value("protocol", json()).dump(2)) + "</pre>\n";
  out +=
      "</section>\n<section id=\"attention\">\n<h2>Attention on a few positive examples</h2>\n"
      "<p>Each row is one sample's history, oldest first, shaded by the attention weight the "
      "model gave it when scoring the candidate on the right.</p>\n";
  return out + attention + "</section>\n" + explanations_section(e.scoring, example_lines, result);
}

const char* kStyle = R"(<style>
body { font: 14px/1.4 sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
svg.chart { margin: 4px 8px 12px 0; background: #fff; }
svg text { font: 11px sans-serif; fill: #222; } svg text.title { font-size: 13px; font-weight: bold; }
figure.example { margin: 4px 0 12px; } figcaption { font-size: 12px; color: #555; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
</style>
)";

}  // namespace

ReportResult write_report(const ReportRequest& r) {
  RunFacts facts;
  const fs::path run(r.run);
  if (!fs::is_regular_file(run / "summary.json")) {
    throw UsageError(r.run +
                     ": not a finished run directory (no summary.json); train it to the "
                     "end, or resume it with `attnrec train --resume " +
                     r.run + "`");
  }
  facts.summary = read_json((run / "summary.json").string());
  facts.config = read_json((run / "config.json").string());
  if (fs::exists(run / "metrics.jsonl")) facts.rows = read_rows((run / "metrics.jsonl").string());
  facts.resumes = resume_steps((run / "train.log").string());
  ReportResult result;
  result.path = r.output.empty() ? (run / "report.html").string() : r.output;
  std::string body = run_section(r, facts) + curves_section(facts);
  result.sections = {"run", "curves"};
  const std::string data =
      r.data.empty() ? facts.config.value("/data/test"_json_pointer, std::string()) : r.data;
  if (!data.empty()) {
    body += test_section(r, data, facts.config, result);
    result.sections.insert(result.sections.end(), {"test", "attention", "explanations"});
  } else {
    body +=
        "<section id=\"test\"><h2>Held-out data</h2><p>The run has no data.test; pass "
        "--data FILE to draw its curves.</p></section>\n";
    result.sections.push_back("test");
  }
  const std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>attnrec "
      "report: " +
      svg::escape(r.run) + "</title>\n" + kStyle +
      "</head>\n<body>\n<h1>attnrec "
      "report: " +
      svg::escape(r.run) + "</h1>\n" + body + "</body>\n</html>\n";
  write_file_atomic(result.path, page);
  return result;
}

}  // namespace attnrec

// The pieces of `attnrec report`: curves (ROC, precision-recall, calibration, histograms) with
// hand-computed values, and golden fragments of the SVG charts.

#include <catch2/catch.hpp>

#include "attnrec/eval/curves.hpp"
#include "attnrec/eval/metrics.hpp"
#include "attnrec/tools/svg.hpp"

using namespace attnrec;
using Catch::Matchers::Contains;

TEST_CASE("curves: ROC and precision-recall by hand", "[report]") {
  // Scores high to low: 0.9 (+), 0.8 (-), 0.7 (+), 0.7 (-), 0.2 (-).
  const std::vector<double> s = {0.2, 0.7, 0.9, 0.7, 0.8};
  const std::vector<std::uint8_t> y = {0, 1, 1, 0, 0};
  const Curve roc = roc_curve(s, y);
  // One point per distinct score; the tie at 0.7 moves both rates at once.
  CHECK(roc.x == std::vector<double>{0.0, 0.0, 1.0 / 3, 2.0 / 3, 1.0});
  CHECK(roc.y == std::vector<double>{0.0, 0.5, 0.5, 1.0, 1.0});
  // The trapezoids under the curve are the AUC of metrics.hpp (ties count 1/2).
  double area = 0;
  for (std::size_t i = 1; i < roc.x.size(); ++i) {
    area += (roc.x[i] - roc.x[i - 1]) * (roc.y[i] + roc.y[i - 1]) / 2;
  }
  CHECK(area == Approx(*auc(s, y)));
  const Curve pr = precision_recall_curve(s, y);
  CHECK(pr.x == std::vector<double>{0.5, 0.5, 1.0, 1.0});
  CHECK(pr.y == std::vector<double>{1.0, 0.5, 0.5, 0.4});
  CHECK(average_precision(pr) == Approx(0.5 * 1.0 + 0.5 * 0.5));
  CHECK(roc_curve({0.1, 0.2}, {1, 1}).x.empty());  // one class: no curve
  const Curve thin = thin_curve(roc, 3);
  CHECK(thin.x == std::vector<double>{0.0, 1.0 / 3, 1.0});
}

TEST_CASE("curves: calibration bins, ECE and histograms by label", "[report]") {
  const std::vector<double> p = {0.05, 0.15, 0.12, 0.95, 1.0};
  const std::vector<std::uint8_t> y = {0, 1, 0, 1, 1};
  const Calibration c = calibration(p, y, 10);
  CHECK(c.count == std::vector<std::int64_t>{1, 2, 0, 0, 0, 0, 0, 0, 0, 2});
  CHECK(c.mean_predicted[1] == Approx(0.135));
  CHECK(c.observed_rate[1] == Approx(0.5));
  CHECK(c.observed_rate[9] == Approx(1.0));
  // ECE = (1 * |0 - 0.05| + 2 * |0.5 - 0.135| + 2 * |1 - 0.975|) / 5
  CHECK(c.ece == Approx((0.05 + 2 * 0.365 + 2 * 0.025) / 5));
  CHECK(histogram_by_label(p, y, 1, 4, 0.0, 1.0) == std::vector<std::int64_t>{1, 0, 0, 2});
  CHECK(histogram_by_label(p, y, 0, 4, 0.0, 1.0) == std::vector<std::int64_t>{2, 0, 0, 0});
}

TEST_CASE("svg: golden fragments of a line chart, a histogram and a heat row", "[report]") {
  CHECK(svg::escape("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;");
  CHECK(svg::tick_label(0.25) == "0.25");
  CHECK(svg::tick_label(2504) == "2504");
  CHECK(svg::tick_label(1e-17) == "0");
  const std::string chart =
      svg::line_chart({"roc", "ROC <AUC>", "fpr", "tpr", 0.0, 1.0, 0.0, 1.0},
                      {{"model", {0, 0.5, 1}, {0, 0.75, 1}}}, {{0.5, "best"}});
  CHECK_THAT(chart, Contains("<svg class=\"chart\" data-chart=\"roc\" viewBox=\"0 0 560 320\""));
  CHECK_THAT(chart, Contains(">ROC &lt;AUC&gt;</text>"));
  // Plot area x 58..544, y 274..30: (0,0) -> (58, 274), (0.5, 0.75) -> (301, 91), (1,1) -> (544,
  // 30).
  CHECK_THAT(chart, Contains("data-series=\"model\" d=\"M58.0 274.0 L301.0 91.0 L544.0 30.0\""));
  CHECK_THAT(chart, Contains("<line class=\"marker\" x1=\"301.0\""));
  const std::string hist = svg::histogram(svg::axes("h", "H", "p", "n"), {0.0, 0.5, 1.0},
                                          {{"label 1", {}, {2, 4}, "#00f"}});
  // Bars from y = 0: the taller bar reaches the top (30), the other half way (152).
  CHECK_THAT(hist, Contains("<rect x=\"58.0\" y=\"152.0\" width=\"242.0\" height=\"122.0\"/>"));
  CHECK_THAT(hist, Contains("<rect x=\"301.0\" y=\"30.0\" width=\"242.0\" height=\"244.0\"/>"));
  const std::string heat = svg::heat_row("attention-1", {"i1", "i<2>"}, {0.25, 0.75}, "i9");
  CHECK_THAT(heat, Contains("fill=\"rgb(188,188,255)\""));  // 255 - 200 * (0.25 / 0.75)
  CHECK_THAT(heat, Contains("fill=\"rgb(55,55,255)\""));    // the largest weight: darkest
  CHECK_THAT(heat, Contains("<title>i&lt;2&gt;: 0.7500</title>"));
  CHECK_THAT(heat, Contains("&#8594; i9"));
}

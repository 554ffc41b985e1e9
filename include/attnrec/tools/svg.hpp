#pragma once
/// \file Inline SVG charts for `attnrec report`: line charts, histograms and attention heat
/// rows. Output is deterministic (fixed number formats, no time or randomness), so charts can be
/// pinned by golden fragments. Every chart is `<svg class="chart" data-chart="NAME" ...>`.

#include <optional>
#include <string>
#include <vector>

namespace attnrec::svg {

/// One line of a line chart (or one bar set of a histogram).
struct Series {
  std::string name;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  bool dashed = false;
};

/// A vertical line at `x`, labelled (best step, early stop, a resumed segment).
struct Marker {
  double x = 0;
  std::string label;
  std::string color = "#555";
};

/// Titles and ranges; a range left unset follows the data.
struct Axes {
  std::string name;  ///< data-chart attribute
  std::string title, x_label, y_label;
  std::optional<double> x_min, x_max, y_min, y_max;
};

/// Axes whose ranges follow the data.
inline Axes axes(std::string name, std::string title, std::string x_label, std::string y_label) {
  Axes a;
  a.name = std::move(name);
  a.title = std::move(title);
  a.x_label = std::move(x_label);
  a.y_label = std::move(y_label);
  return a;
}

/// Characters that are markup in XML/HTML, escaped.
std::string escape(const std::string& text);

/// A number for an axis tick: up to 4 significant digits, no trailing zeros.
std::string tick_label(double value);

/// A line chart of `series` with a legend, axis ticks and `markers`.
std::string line_chart(const Axes& axes, const std::vector<Series>& series,
                       const std::vector<Marker>& markers = {});

/// A histogram: `series[k].y[b]` is the height of bin b of set k over the bin `edges`
/// (size bins + 1); sets are drawn over one another, half transparent.
std::string histogram(const Axes& axes, const std::vector<double>& edges,
                      const std::vector<Series>& series);

/// One attention heat row: a cell per history item (`labels`, oldest first) shaded by its
/// weight, the weight written in it, then the candidate.
std::string heat_row(const std::string& name, const std::vector<std::string>& labels,
                     const std::vector<double>& weights, const std::string& candidate);

}  // namespace attnrec::svg

#include "attnrec/tools/svg.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <limits>

namespace attnrec::svg {

namespace {

constexpr double kWidth = 560, kHeight = 320;
constexpr double kLeft = 58, kRight = 16, kTop = 30, kBottom = 46;

/// A linear map from data to pixels.
struct Scale {
  double lo, hi, from, to;
  double operator()(double v) const {
    return hi > lo ? from + (v - lo) / (hi - lo) * (to - from) : (from + to) / 2;
  }
};

struct Frame {
  Scale x, y;
};

std::pair<double, double> range_of(const std::vector<Series>& series, bool of_x,
                                   std::optional<double> lo, std::optional<double> hi) {
  double a = std::numeric_limits<double>::infinity(), b = -a;
  for (const auto& s : series) {
    for (const double v : of_x ? s.x : s.y) {
      if (!std::isfinite(v)) continue;
      a = std::min(a, v);
      b = std::max(b, v);
    }
  }
  if (!std::isfinite(a)) a = 0, b = 1;
  return {lo.value_or(a), hi.value_or(b)};
}

std::string open_chart(const Axes& axes) {
  return fmt::format(
      "<svg class=\"chart\" data-chart=\"{}\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" "
      "role=\"img\" aria-label=\"{}\">\n<text class=\"title\" x=\"{}\" y=\"18\">{}</text>\n",
      escape(axes.name), kWidth, kHeight, kWidth, kHeight, escape(axes.title), kLeft,
      escape(axes.title));
}

/// The plot frame, grid, ticks and axis labels.
std::string axes_of(const Axes& axes, const Frame& f) {
  std::string out = fmt::format(
      "<rect class=\"plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#999\"/>\n",
      kLeft, kTop, kWidth - kLeft - kRight, kHeight - kTop - kBottom);
  for (int k = 0; k <= 4; ++k) {
    const double vx = f.x.lo + (f.x.hi - f.x.lo) * k / 4, vy = f.y.lo + (f.y.hi - f.y.lo) * k / 4;
    out += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>"
        "<text class=\"tick\" x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        f.x(vx), kTop, kHeight - kBottom, kHeight - kBottom + 14, tick_label(vx));
    out += fmt::format(
        "<line x1=\"{1}\" y1=\"{0:.1f}\" x2=\"{2}\" y2=\"{0:.1f}\" stroke=\"#eee\"/>"
        "<text class=\"tick\" x=\"{3}\" y=\"{0:.1f}\" text-anchor=\"end\" "
        "dominant-baseline=\"middle\">{4}</text>\n",
        f.y(vy), kLeft, kWidth - kRight, kLeft - 4, tick_label(vy));
  }
  out +=
      fmt::format("<text class=\"label\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                  (kLeft + kWidth - kRight) / 2, kHeight - 8, escape(axes.x_label));
  out += fmt::format(
      "<text class=\"label\" transform=\"translate(14 {:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      (kTop + kHeight - kBottom) / 2, escape(axes.y_label));
  return out;
}

std::string legend(const std::vector<Series>& series) {
  std::string out;
  double y = kTop + 12;
  for (const auto& s : series) {
    out += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"{4}/><text class=\"legend\" x=\"{5}\" y=\"{1:.1f}\" "
        "dominant-baseline=\"middle\">{6}</text>\n",
        kWidth - kRight - 150, y, kWidth - kRight - 130, s.color,
        s.dashed ? " stroke-dasharray=\"4 3\"" : "", kWidth - kRight - 126, escape(s.name));
    y += 14;
  }
  return out;
}

Frame frame_of(const Axes& axes, const std::vector<Series>& series) {
  const auto [x0, x1] = range_of(series, true, axes.x_min, axes.x_max);
  const auto [y0, y1] = range_of(series, false, axes.y_min, axes.y_max);
  return {{x0, x1, kLeft, kWidth - kRight}, {y0, y1, kHeight - kBottom, kTop}};
}

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string tick_label(double value) {
  if (std::abs(value) < 1e-12) return "0";
  return fmt::format("{:.4g}", value);
}

std::string line_chart(const Axes& axes, const std::vector<Series>& series,
                       const std::vector<Marker>& markers) {
  const Frame f = frame_of(axes, series);
  std::string out = open_chart(axes) + axes_of(axes, f);
  double label_y = kHeight - kBottom - 6;  // from the bottom up: the legend is at the top
  for (const auto& m : markers) {
    // Labels in the right half of the plot sit left of their line, so they are never cut off.
    const bool right = f.x(m.x) > (kLeft + kWidth - kRight) / 2;
    out += fmt::format(
        "<line class=\"marker\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-dasharray=\"2 3\"/><text class=\"marker\" x=\"{4:.1f}\" y=\"{5:.0f}\" "
        "fill=\"{3}\" text-anchor=\"{7}\">{6}</text>\n",
        f.x(m.x), kTop, kHeight - kBottom, m.color, f.x(m.x) + (right ? -3 : 3), label_y,
        escape(m.label), right ? "end" : "start");
    label_y -= 12;  // markers at nearby steps keep their labels apart
  }
  for (const auto& s : series) {
    std::string d;
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      d += fmt::format("{}{:.1f} {:.1f}", d.empty() ? "M" : " L", f.x(s.x[i]), f.y(s.y[i]));
    }
    if (s.x.size() == 1) d += fmt::format(" h 0.1");  // a single point stays visible (round cap)
    out += fmt::format(
        "<path class=\"series\" data-series=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\" stroke-linecap=\"round\"{}/>\n",
        escape(s.name), d, s.color, s.dashed ? " stroke-dasharray=\"4 3\"" : "");
  }
  return out + legend(series) + "</svg>\n";
}

std::string histogram(const Axes& axes, const std::vector<double>& edges,
                      const std::vector<Series>& series) {
  std::vector<Series> span = series;
  for (auto& s : span) s.x = {edges.front(), edges.back()};
  Axes a = axes;
  a.y_min = a.y_min.value_or(0.0);
  const Frame f = frame_of(a, span);
  std::string out = open_chart(a) + axes_of(a, f);
  for (const auto& s : series) {
    out += fmt::format("<g class=\"series\" data-series=\"{}\" fill=\"{}\" fill-opacity=\"0.5\">",
                       escape(s.name), s.color);
    for (std::size_t b = 0; b + 1 < edges.size() && b < s.y.size(); ++b) {
      const double x0 = f.x(edges[b]), x1 = f.x(edges[b + 1]), y = f.y(s.y[b]);
      out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/>", x0,
                         y, std::max(0.0, x1 - x0 - 1), std::max(0.0, f.y.from - y));
    }
    out += "</g>\n";
  }
  return out + legend(series) + "</svg>\n";
}

std::string heat_row(const std::string& name, const std::vector<std::string>& labels,
                     const std::vector<double>& weights, const std::string& candidate) {
  constexpr double kCell = 46, kRowTop = 6, kCellHeight = 30;
  const double top = *std::max_element(weights.begin(), weights.end());
  const double width = kCell * static_cast<double>(labels.size() + 2) + 8;
  std::string out = fmt::format(
      "<svg class=\"chart heat\" data-chart=\"{}\" viewBox=\"0 0 {:.0f} 56\" width=\"{:.0f}\" "
      "height=\"56\" role=\"img\" aria-label=\"attention weights\">\n",
      escape(name), width, width);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double w = top > 0 ? weights[i] / top : 0.0;
    const int shade = static_cast<int>(std::lround(255 - 200 * w));
    const double x = 4 + kCell * static_cast<double>(i);
    out += fmt::format(
        "<rect class=\"cell\" x=\"{0:.0f}\" y=\"{1}\" width=\"{2}\" height=\"{3}\" "
        "fill=\"rgb({4},{4},255)\" stroke=\"#fff\"><title>{5}: {6:.4f}</title></rect>"
        "<text x=\"{7:.0f}\" y=\"{8}\" text-anchor=\"middle\" class=\"weight\">{6:.2f}</text>"
        "<text x=\"{7:.0f}\" y=\"{9}\" text-anchor=\"middle\" class=\"item\">{5}</text>\n",
        x, kRowTop, kCell - 2, kCellHeight, shade, escape(labels[i]), weights[i], x + kCell / 2 - 1,
        kRowTop + 19, kRowTop + kCellHeight + 14);
  }
  const double cx = 4 + kCell * static_cast<double>(labels.size()) + kCell / 2;
  out +=
      fmt::format("<text x=\"{0:.0f}\" y=\"{1}\" class=\"candidate\">&#8594; {2}</text>\n</svg>\n",
                  cx, kRowTop + 19, escape(candidate));
  return out;
}

}  // namespace attnrec::svg

#include "rvt/report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace rvt::report {
namespace {

std::string cell_run(std::size_t col, std::size_t row, std::size_t len) {
  return "M" + std::to_string(col) + " " + std::to_string(row) + "h" + std::to_string(len) + "v1h-" +
         std::to_string(len) + "z";
}

}  // namespace

std::string Rgb::hex() const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

Rgb mix(Rgb a, Rgb b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto ch = [t](std::uint8_t x, std::uint8_t y) {
    return static_cast<std::uint8_t>(std::lround(x + (static_cast<double>(y) - x) * t));
  };
  return {ch(a.r, b.r), ch(a.g, b.g), ch(a.b, b.b)};
}

Rgb viridis(double t) {
  static constexpr Rgb kStops[] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                   {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  constexpr int n = sizeof kStops / sizeof kStops[0];
  if (!(t > 0.0)) return kStops[0];  // also NaN
  if (t >= 1.0) return kStops[n - 1];
  const double x = t * (n - 1);
  const int i = static_cast<int>(x);
  return mix(kStops[i], kStops[i + 1], x - i);
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double value) {
  if (!std::isfinite(value)) return "0";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

Svg::Svg(double width, double height) : width_(width), height_(height) {}

void Svg::rect(double x, double y, double w, double h, const std::string& fill, const std::string& extra) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + fill + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
}

void Svg::line(double x1, double y1, double x2, double y2, const std::string& stroke, double width,
               const std::string& extra) {
  body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
           "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) + "\"" + (extra.empty() ? "" : " " + extra) +
           "/>\n";
}

void Svg::text(double x, double y, const std::string& content, double size, const std::string& anchor,
               const std::string& extra) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) + "\" text-anchor=\"" + anchor +
           "\"" + (extra.empty() ? "" : " " + extra) + ">" + xml_escape(content) + "</text>\n";
}

void Svg::vtext(double x, double y, const std::string& content, double size) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) +
           "\" text-anchor=\"middle\" transform=\"rotate(-90 " + num(x) + " " + num(y) + ")\">" + xml_escape(content) +
           "</text>\n";
}

void Svg::path(const std::string& d, const std::string& fill, const std::string& extra) {
  body_ += "<path d=\"" + d + "\" fill=\"" + fill + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
}

void Svg::raw(const std::string& fragment) { body_ += fragment; }

void Svg::title(const std::string& text) { body_ += "<title>" + xml_escape(text) + "</title>\n"; }

std::string Svg::str() const {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
         num(width_) + "\" height=\"" + num(height_) + "\" viewBox=\"0 0 " + num(width_) + " " + num(height_) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
         "<rect x=\"0\" y=\"0\" width=\"" +
         num(width_) + "\" height=\"" + num(height_) + "\" fill=\"#ffffff\"/>\n" + body_ + "</svg>\n";
}

void CellLayer::run(std::size_t col, std::size_t row, std::size_t len, const std::string& fill) {
  if (len == 0) return;
  auto it = paths_.find(fill);
  if (it == paths_.end()) {
    order_.push_back(fill);
    it = paths_.emplace(fill, std::string()).first;
  }
  it->second += cell_run(col, row, len);
}

void CellLayer::draw(Svg& svg, double x0, double y0, double cell_w, double cell_h, const std::string& extra,
                     double outline_px) const {
  if (order_.empty()) return;
  char scale[64];  // more digits than num(): an error here is multiplied by the cell count
  std::snprintf(scale, sizeof scale, "%.7g %.7g", cell_w, cell_h);
  std::string g = "<g transform=\"translate(" + num(x0) + " " + num(y0) + ") scale(" + scale + ")\" shape-rendering=\"crispEdges\"" + (extra.empty() ? "" : " " + extra) + ">\n";
  for (const std::string& fill : order_) {
    g += "<path d=\"" + paths_.at(fill) + "\" fill=\"" + fill + "\"";
    if (outline_px > 0.0) {
      g += " stroke=\"" + fill + "\" stroke-width=\"" + num(outline_px) + "\" vector-effect=\"non-scaling-stroke\"";
    }
    g += "/>\n";
  }
  g += "</g>\n";
  svg.raw(g);
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || target < 1) {
    ticks.push_back(lo);
    return ticks;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  // Ticks by index, not by adding step: where step is below the spacing of doubles near lo
  // (lo = 1e16, hi = lo + 4), t += step would not move.
  const double first = std::ceil(lo / step) * step, count = std::floor((hi - first) / step + 1e-9) + 1.0;
  if (!(count >= 1.0 && count <= 1000.0)) {
    ticks.push_back(lo);
    return ticks;
  }
  for (int i = 0; i < static_cast<int>(count); ++i) ticks.push_back(first + i * step);
  return ticks;
}

}  // namespace rvt::report

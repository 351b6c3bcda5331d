// A small SVG 1.1 writer for report pictures: no dependencies, text out.
//
// Coordinates are in user units (1 unit = 1 px at the document's natural size). Text is
// XML-escaped; numbers are written with at most 3 decimals so files stay small and diff
// cleanly. Large cell grids (heatmaps, attention patterns) go through CellLayer, which
// merges the cells of one colour into a single <path> of "M x y h w v h h-w z" runs instead
// of one <rect> per cell: a 512 x 512 pattern stays a few hundred KB.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rvt::report {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
};

// Perceptually ordered colour map (viridis, 9 control points interpolated); t in [0, 1],
// clamped.
Rgb viridis(double t);
// Linear mix of two colours, t in [0, 1].
Rgb mix(Rgb a, Rgb b, double t);

std::string xml_escape(const std::string& text);
std::string num(double value);  // "12", "12.5", "0.125", "-3.333"

class Svg {
 public:
  Svg(double width, double height);

  // Attributes are passed through as written: `extra` is e.g. R"(stroke="#000")".
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& extra = "");
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1.0,
            const std::string& extra = "");
  // anchor: "start" | "middle" | "end"
  void text(double x, double y, const std::string& content, double size = 12.0, const std::string& anchor = "start",
            const std::string& extra = "");
  // Text rotated by -90 degrees around (x, y): a vertical axis label.
  void vtext(double x, double y, const std::string& content, double size = 12.0);
  void path(const std::string& d, const std::string& fill, const std::string& extra = "");
  void raw(const std::string& fragment);  // already valid SVG
  void title(const std::string& text);    // <title>, shown by browsers as a tooltip

  std::string str() const;  // the complete document

 private:
  double width_, height_;
  std::string body_;
};

// Cells on an integer grid, drawn with a transform: cell (col, row) covers
// [x0 + col*cw, x0 + (col+len)*cw) x [y0 + row*ch, y0 + (row+1)*ch).
class CellLayer {
 public:
  // Adds a horizontal run of `len` cells starting at (col, row) in `fill`.
  void run(std::size_t col, std::size_t row, std::size_t len, const std::string& fill);
  void cell(std::size_t col, std::size_t row, const std::string& fill) { run(col, row, 1, fill); }
  // One <path> per colour inside a <g transform>, in first-use order of the colours.
  // outline_px > 0 strokes each path in its own colour that many screen pixels wide
  // (non-scaling), so single cells of a large grid stay visible.
  void draw(Svg& svg, double x0, double y0, double cell_w, double cell_h, const std::string& extra = "",
            double outline_px = 0.0) const;
  bool empty() const { return order_.empty(); }

 private:
  std::map<std::string, std::string> paths_;
  std::vector<std::string> order_;
};

// "nice" axis ticks: about `target` round values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace rvt::report

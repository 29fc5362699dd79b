// Line plots to PNG (see plot.h).
#include "core/report/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/base/atomic_file.h"
#include "core/base/crc32.h"
#include "core/base/error.h"

namespace ls {
namespace {

// --- PNG: signature, IHDR, PLTE, IDAT of stored (uncompressed) deflate blocks, IEND ----------

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  png += body;
  put_u32(png, crc32(body));
}

std::string zlib_stored(const std::string& raw) {
  std::string out = "\x78\x01";  // deflate, 32K window, no compression preset
  size_t pos = 0;
  do {
    size_t n = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + n == raw.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<char>(n & 0xff));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(~n & 0xff));
    out.push_back(static_cast<char>((~n >> 8) & 0xff));
    out.append(raw, pos, n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put_u32(out, (b << 16) | a);
  return out;
}

// --- raster and font
// ------------------------------------------------------------------------------

enum Color : uint8_t { kWhite, kBlack, kGrey, kBlue, kOrange, kLightGrey };
const std::vector<uint32_t> kPalette = {0xffffff, 0x202020, 0x808080, 0x1f77b4, 0xff7f0e, 0xe6e6e6};

// 5x7 glyphs, one byte per row, low 5 bits, bit 4 = leftmost column.
const std::map<char, std::array<uint8_t, 7>>& font() {
  static const std::map<char, std::array<uint8_t, 7>> glyphs = {
      {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},
      {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
      {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},
      {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},
      {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
      {'a', {0, 0, 14, 1, 15, 17, 15}},    {'b', {16, 16, 22, 25, 17, 17, 30}},
      {'c', {0, 0, 14, 16, 16, 17, 14}},   {'d', {1, 1, 13, 19, 17, 17, 15}},
      {'e', {0, 0, 14, 17, 31, 16, 14}},   {'f', {6, 9, 8, 28, 8, 8, 8}},
      {'g', {0, 15, 17, 17, 15, 1, 14}},   {'h', {16, 16, 22, 25, 17, 17, 17}},
      {'i', {4, 0, 12, 4, 4, 4, 14}},      {'j', {2, 0, 6, 2, 2, 18, 12}},
      {'k', {16, 16, 18, 20, 24, 20, 18}}, {'l', {12, 4, 4, 4, 4, 4, 14}},
      {'m', {0, 0, 26, 21, 21, 17, 17}},   {'n', {0, 0, 22, 25, 17, 17, 17}},
      {'o', {0, 0, 14, 17, 17, 17, 14}},   {'p', {0, 0, 30, 17, 30, 16, 16}},
      {'q', {0, 0, 13, 19, 15, 1, 1}},     {'r', {0, 0, 22, 25, 16, 16, 16}},
      {'s', {0, 0, 14, 16, 14, 1, 30}},    {'t', {8, 8, 28, 8, 8, 9, 6}},
      {'u', {0, 0, 17, 17, 17, 19, 13}},   {'v', {0, 0, 17, 17, 17, 10, 4}},
      {'w', {0, 0, 17, 17, 21, 21, 10}},   {'x', {0, 0, 17, 10, 4, 10, 17}},
      {'y', {0, 0, 17, 17, 15, 1, 14}},    {'z', {0, 0, 31, 2, 4, 8, 31}},
      {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},
      {'_', {0, 0, 0, 0, 0, 0, 31}},       {':', {0, 12, 12, 0, 12, 12, 0}},
      {'/', {1, 1, 2, 4, 8, 16, 16}},      {'(', {2, 4, 8, 8, 8, 4, 2}},
      {')', {8, 4, 2, 2, 2, 4, 8}},        {'+', {0, 4, 4, 31, 4, 4, 0}},
      {' ', {0, 0, 0, 0, 0, 0, 0}},
  };
  return glyphs;
}

struct Canvas {
  int width, height;
  std::vector<uint8_t> pixels;
  Canvas(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * h, kWhite) {}
  void set(int x, int y, uint8_t c) {
    if (x >= 0 && y >= 0 && x < width && y < height) pixels[static_cast<size_t>(y) * width + x] = c;
  }
  void line(int x0, int y0, int x1, int y1, uint8_t c, int thickness = 1) {
    int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1,
        sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      for (int t = 0; t < thickness; ++t) set(x0, y0 + t, c), set(x0 + t, y0, c);
      if (x0 == x1 && y0 == y1) break;
      int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  void text(int x, int y, const std::string& s, uint8_t c) {
    for (char ch : s) {
      auto it = font().find(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
      if (it != font().end())
        for (int row = 0; row < 7; ++row)
          for (int col = 0; col < 5; ++col)
            if (it->second[row] & (16 >> col)) set(x + col, y + row, c);
      x += 6;
    }
  }
};

std::string tick(double v) {
  if (v == 0) return "0";
  double a = std::abs(v);
  return a >= 1e4 || a < 1e-2 ? fmt::format("{:.1e}", v) : fmt::format("{:.3g}", v);
}

void panel(Canvas& canvas, const Series& s, int left, int top, int w, int h, uint8_t color) {
  const int x0 = left + 56, y0 = top + 20, pw = w - 72, ph = h - 50;
  canvas.text(x0, top + 4, s.title, kBlack);
  for (int i = 0; i <= 4; ++i)
    canvas.line(x0, y0 + ph * i / 4, x0 + pw, y0 + ph * i / 4, kLightGrey);
  canvas.line(x0, y0, x0, y0 + ph, kGrey);
  canvas.line(x0, y0 + ph, x0 + pw, y0 + ph, kGrey);
  if (s.x.empty()) {
    canvas.text(x0 + 10, y0 + ph / 2, "no data", kGrey);
    return;
  }
  double xmin = *std::min_element(s.x.begin(), s.x.end()),
         xmax = *std::max_element(s.x.begin(), s.x.end());
  double ymin = *std::min_element(s.y.begin(), s.y.end()),
         ymax = *std::max_element(s.y.begin(), s.y.end());
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1, ymin -= 1;
  const double pad = (ymax - ymin) * 0.05;
  ymin -= pad, ymax += pad;
  auto px = [&](double x) {
    return x0 + static_cast<int>(std::lround((x - xmin) / (xmax - xmin) * pw));
  };
  auto py = [&](double y) {
    return y0 + ph - static_cast<int>(std::lround((y - ymin) / (ymax - ymin) * ph));
  };
  for (int i = 0; i <= 4; ++i) {
    std::string label = tick(ymax - (ymax - ymin) * i / 4);
    canvas.text(x0 - 6 - 6 * static_cast<int>(label.size()), y0 + ph * i / 4 - 3, label, kBlack);
  }
  canvas.text(x0, y0 + ph + 6, tick(xmin), kBlack);
  std::string right = tick(xmax);
  canvas.text(x0 + pw - 6 * static_cast<int>(right.size()), y0 + ph + 6, right, kBlack);
  canvas.text(x0 + pw / 2 - 12, y0 + ph + 18, "step", kGrey);
  for (size_t i = 1; i < s.x.size(); ++i)
    canvas.line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), color, 2);
  for (size_t i = 0; i < s.x.size(); ++i)
    for (int d = -2; d <= 2; ++d)
      canvas.set(px(s.x[i]) + d, py(s.y[i]), color), canvas.set(px(s.x[i]), py(s.y[i]) + d, color);
}

}  // namespace

std::string encode_png(int width, int height, const std::vector<uint8_t>& pixels,
                       const std::vector<uint32_t>& palette_rgb) {
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string header;
  put_u32(header, width);
  put_u32(header, height);
  header +=
      std::string("\x08\x03\x00\x00\x00", 5);  // 8-bit, palette, deflate, no filter, no interlace
  chunk(png, "IHDR", header);
  std::string palette;
  for (uint32_t rgb : palette_rgb)
    palette += {static_cast<char>(rgb >> 16), static_cast<char>(rgb >> 8), static_cast<char>(rgb)};
  chunk(png, "PLTE", palette);
  std::string raw;
  raw.reserve(static_cast<size_t>(width + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    raw.append(reinterpret_cast<const char*>(pixels.data()) + static_cast<size_t>(y) * width,
               width);
  }
  chunk(png, "IDAT", zlib_stored(raw));
  chunk(png, "IEND", "");
  return png;
}

void write_line_plots(const std::vector<Series>& panels, const std::filesystem::path& png) {
  const int panel_width = 420, height = 300;
  Canvas canvas(panel_width * static_cast<int>(std::max<size_t>(panels.size(), 1)), height);
  for (size_t i = 0; i < panels.size(); ++i)
    panel(canvas, panels[i], static_cast<int>(i) * panel_width, 0, panel_width, height,
          i % 2 ? kOrange : kBlue);
  write_file_atomic(png, encode_png(canvas.width, canvas.height, canvas.pixels, kPalette));
}

void write_training_curves(const std::filesystem::path& metrics_jsonl,
                           const std::filesystem::path& png, const std::string& metric) {
  Series loss{"train loss", {}, {}}, validation{"validation " + metric, {}, {}};
  std::ifstream in(metrics_jsonl);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto r = nlohmann::json::parse(line);
    const std::string split = r.value("split", "");
    if (split == "train" && r.contains("loss"))
      loss.x.push_back(r["step"].get<double>()), loss.y.push_back(r["loss"].get<double>());
    if (split == "validation" && r.contains(metric))
      validation.x.push_back(r["step"].get<double>()),
          validation.y.push_back(r[metric].get<double>());
  }
  write_line_plots({loss, validation}, png);
}

}  // namespace ls

// curves.png: the training loss and the validation metric against optimizer steps, drawn from a
// run's metrics.jsonl at the end of training. Self-contained (a small raster, a 5x7 bitmap font
// and an uncompressed PNG encoder), so runs need no plotting library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ls {

struct Series {
  std::string title;
  std::vector<double> x, y;
};

// Draws one panel per series side by side into a PNG (written atomically).
void write_line_plots(const std::vector<Series>& panels, const std::filesystem::path& png);

// Reads metrics.jsonl: panel 1 = train loss, panel 2 = validation `metric` (if any records).
void write_training_curves(const std::filesystem::path& metrics_jsonl,
                           const std::filesystem::path& png, const std::string& metric);

// PNG bytes of an 8-bit palette image (for tests: decodable by any PNG reader).
std::string encode_png(int width, int height, const std::vector<uint8_t>& pixels,
                       const std::vector<uint32_t>& palette_rgb);

}  // namespace ls

// 8-bit pixel images: decoding compressed formats with stb_image, encoding PNG and PNM, and
// the channel helpers the image transforms share.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "io/detect.h"

namespace mbz::io {

// The largest image io/ accepts: 2^28 pixels (16384 x 16384) is 1 GiB of RGBA, which keeps a
// lying header from asking for absurd memory while leaving room for any real photograph.
inline constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

// An 8-bit image held as a raster: rows top to bottom, pixels left to right, channels
// interleaved (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
struct Image {
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;
  std::vector<uint8_t> pixels;  // width * height * channels bytes
};

// Throws mbz::Error (kUsageBadArgument) unless 1 <= width, height; width * height <=
// kMaxPixels; 1 <= channels <= 4; and pixels holds exactly width * height * channels bytes.
void check_image(const Image& image);

// What stb_image reports about a file without decoding its pixels.
struct ImageInfo {
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;  // as stored: palette images report 3 or 4
  bool sixteen_bit = false;
  bool hdr = false;
};

// Header-only probe; nullopt when stb_image does not recognise the file.
std::optional<ImageInfo> probe_image(std::span<const uint8_t> file);

// Decodes PNG, JPEG, BMP, TGA, GIF (first frame), PSD (composite), PNM with stb_image into 8
// bits per channel, keeping the file's channel count. Throws mbz::Error (kUnsupportedInput)
// saying why when stb_image cannot read it, when it has 16-bit or floating point samples
// (8-bit pixels would not be identical), when it is over kMaxPixels, or when a PNG declares
// more pixels than its compressed data can hold.
Image decode_image(std::span<const uint8_t> file);

// PNG through stb_image_write: for a given stb version the same pixels always give the same
// bytes (the bytes may differ between stb versions; the pixels never do).
std::vector<uint8_t> encode_png(const Image& image);

// Binary PNM: P5 for gray, P6 for RGB, P7 (PAM, TUPLTYPE GRAYSCALE_ALPHA / RGB_ALPHA) for 2
// and 4 channels; maxval 255.
std::vector<uint8_t> encode_pnm(const Image& image);

// The value of the last channel when it is the same in every pixel and the image has an
// alpha channel (2 or 4 channels); nullopt otherwise. Opaque RGBA PNGs and 32-bit BMPs
// with an unused fourth byte are common, and the model need not code a constant.
std::optional<uint8_t> constant_alpha(std::span<const uint8_t> raster, uint32_t channels);

// raster with `channels` channels -> the same raster without its last channel.
std::vector<uint8_t> drop_last_channel(std::span<const uint8_t> raster, uint32_t channels);

// raster with `channels` channels -> the same raster with a last channel of `value` added.
std::vector<uint8_t> add_last_channel(std::span<const uint8_t> raster, uint32_t channels,
                                      uint8_t value);

}  // namespace mbz::io

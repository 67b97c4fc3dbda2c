#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "codec/error.h"

namespace mbz::io {
namespace {

std::string dims(uint64_t w, uint64_t h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

[[noreturn]] void unsupported(const std::string& message) {
  throw Error(ErrorCode::kUnsupportedInput, message);
}

// Deflate never expands data by more than 1032:1 (RFC 1951: a 258-byte match costs at least
// 2 bits), and a PNG row holds at least a filter byte and one bit per pixel, so a PNG
// declaring more rows than its size allows is lying about its dimensions.
bool png_size_plausible(std::span<const uint8_t> file, uint64_t w, uint64_t h) {
  const uint64_t min_raw = h * (1 + (w + 7) / 8);
  return min_raw / 1032 <= file.size();
}

// Dimensions as the header declares them, read without stb_image, so that an absurd header
// is refused with its own numbers (stb_image only says "too large"). nullopt when the
// format has no fixed place for them (JPEG, PSD, ...).
std::optional<std::pair<uint64_t, uint64_t>> declared_dimensions(std::span<const uint8_t> f,
                                                                 Format format) {
  auto be32 = [&](size_t i) {
    return uint64_t{f[i]} << 24 | uint64_t{f[i + 1]} << 16 | uint64_t{f[i + 2]} << 8 | f[i + 3];
  };
  if (format == Format::kPng && f.size() >= 24) return std::pair{be32(16), be32(20)};
  if (format == Format::kGif && f.size() >= 10) {
    return std::pair{uint64_t{f[6]} | uint64_t{f[7]} << 8, uint64_t{f[8]} | uint64_t{f[9]} << 8};
  }
  return std::nullopt;
}

// Pixels per input byte beyond which a non-PNG header is taken to lie. A blank JPEG spends
// about 2 bits per 8x8 block (256 pixels per byte); GIF's 12-bit LZW codes reach ~4096.
constexpr uint64_t kMaxPixelsPerByte = 8192;

void append(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

}  // namespace

void check_image(const Image& image) {
  const uint64_t pixels = uint64_t{image.width} * image.height;
  const bool ok = image.width >= 1 && image.height >= 1 && pixels <= kMaxPixels &&
                  image.channels >= 1 && image.channels <= 4 &&
                  image.pixels.size() == pixels * image.channels;
  if (!ok) {
    throw Error(ErrorCode::kUsageBadArgument,
                "image: expected 1.." + std::to_string(kMaxPixels) +
                    " pixels, 1..4 channels and width*height*channels bytes, got " +
                    dims(image.width, image.height) + "x" + std::to_string(image.channels) +
                    " with " + std::to_string(image.pixels.size()) + " bytes");
  }
}

std::optional<ImageInfo> probe_image(std::span<const uint8_t> file) {
  if (file.empty() || file.size() > INT_MAX) return std::nullopt;
  const auto* data = file.data();
  const int len = static_cast<int>(file.size());
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &c) || w <= 0 || h <= 0 || c <= 0) {
    return std::nullopt;
  }
  ImageInfo info;
  info.width = static_cast<uint32_t>(w);
  info.height = static_cast<uint32_t>(h);
  info.channels = static_cast<uint32_t>(c);
  info.sixteen_bit = stbi_is_16_bit_from_memory(data, len) != 0;
  info.hdr = stbi_is_hdr_from_memory(data, len) != 0;
  return info;
}

Image decode_image(std::span<const uint8_t> file) {
  const Format format = detect_format(file);
  const std::string name = format == Format::kUnknown ? "image" : format_name(format);
  if (file.size() > INT_MAX) unsupported(name + ": over 2 GiB, beyond what stb_image reads");
  if (const auto declared = declared_dimensions(file, format)) {
    const auto [w, h] = *declared;
    if (w * h > kMaxPixels) {
      unsupported(name + ": header declares " + dims(w, h) + " pixels, over the limit of " +
                  std::to_string(kMaxPixels));
    }
    if (format == Format::kPng && !png_size_plausible(file, w, h)) {
      unsupported(name + ": header declares " + dims(w, h) + " pixels, more than " +
                  std::to_string(file.size()) + " bytes of PNG can hold");
    }
  }
  const auto info = probe_image(file);
  if (!info) {
    const char* why = file.empty() ? "empty input" : stbi_failure_reason();
    unsupported(name + ": stb_image cannot read it (" + (why ? why : "unknown reason") + ")");
  }
  if (info->hdr) unsupported(name + ": floating point samples would not survive 8-bit pixels");
  if (info->sixteen_bit) unsupported(name + ": 16-bit samples would not survive 8-bit pixels");
  const uint64_t w = info->width, h = info->height;
  if (w * h > kMaxPixels) {
    unsupported(name + ": " + dims(w, h) + " pixels is over the limit of " +
                std::to_string(kMaxPixels));
  }
  // stb_image fills pixels that a truncated or RLE-bloated file lacks (TGA, for one), so a
  // few bytes could "decode" to a huge image. Real codecs stay far below this ratio.
  if (format != Format::kPng &&
      w * h > std::max<uint64_t>(kMaxPixelsPerByte * file.size(), 1 << 20)) {
    unsupported(name + ": header declares " + dims(w, h) + " pixels, more than " +
                std::to_string(file.size()) + " bytes can hold");
  }

  int iw = 0, ih = 0, ic = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(file.data(), static_cast<int>(file.size()), &iw, &ih, &ic, 0),
      stbi_image_free);
  if (!pixels) {
    const char* why = stbi_failure_reason();
    unsupported(name + ": stb_image failed to decode it (" + (why ? why : "unknown reason") + ")");
  }
  // The probe and the decoder are separate code paths in stb_image; trust neither blindly.
  if (uint64_t(iw) != w || uint64_t(ih) != h || ic < 1 || ic > 4) {
    unsupported(name + ": decoder returned " + dims(iw, ih) + "x" + std::to_string(ic) +
                " but the header said " + dims(w, h));
  }
  Image image;
  image.width = static_cast<uint32_t>(iw);
  image.height = static_cast<uint32_t>(ih);
  image.channels = static_cast<uint32_t>(ic);
  const size_t bytes = size_t{image.width} * image.height * image.channels;
  image.pixels.assign(pixels.get(), pixels.get() + bytes);
  return image;
}

std::vector<uint8_t> encode_png(const Image& image) {
  check_image(image);
  // stb_image_write works in int: the row stride and the filtered buffer must fit.
  const uint64_t stride = uint64_t{image.width} * image.channels;
  if ((stride + 1) * image.height > INT_MAX) {
    throw Error(ErrorCode::kUnsupportedFeature,
                "PNG writer: " + dims(image.width, image.height) + " is over 2 GiB of pixels");
  }
  std::vector<uint8_t> out;
  const int ok = stbi_write_png_to_func(
      append, &out, static_cast<int>(image.width), static_cast<int>(image.height),
      static_cast<int>(image.channels), image.pixels.data(), static_cast<int>(stride));
  if (!ok || out.empty()) {
    throw Error(ErrorCode::kIoWrite, "PNG writer: stb_image_write failed for " +
                                         dims(image.width, image.height) + "x" +
                                         std::to_string(image.channels));
  }
  return out;
}

std::vector<uint8_t> encode_pnm(const Image& image) {
  check_image(image);
  const std::string w = std::to_string(image.width), h = std::to_string(image.height);
  std::string header;
  switch (image.channels) {
    case 1:
      header = "P5\n" + w + " " + h + "\n255\n";
      break;
    case 3:
      header = "P6\n" + w + " " + h + "\n255\n";
      break;
    default:
      header = "P7\nWIDTH " + w + "\nHEIGHT " + h + "\nDEPTH " + std::to_string(image.channels) +
               "\nMAXVAL 255\nTUPLTYPE " + (image.channels == 2 ? "GRAYSCALE_ALPHA" : "RGB_ALPHA") +
               "\nENDHDR\n";
  }
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), image.pixels.begin(), image.pixels.end());
  return out;
}

std::optional<uint8_t> constant_alpha(std::span<const uint8_t> raster, uint32_t channels) {
  if ((channels != 2 && channels != 4) || raster.size() < channels) return std::nullopt;
  const uint8_t value = raster[channels - 1];
  for (size_t i = channels - 1; i < raster.size(); i += channels) {
    if (raster[i] != value) return std::nullopt;
  }
  return value;
}

std::vector<uint8_t> drop_last_channel(std::span<const uint8_t> raster, uint32_t channels) {
  std::vector<uint8_t> out;
  if (channels < 2) return out;
  const size_t pixels = raster.size() / channels;
  out.resize(pixels * (channels - 1));
  for (size_t p = 0; p < pixels; ++p) {
    std::memcpy(&out[p * (channels - 1)], &raster[p * channels], channels - 1);
  }
  return out;
}

std::vector<uint8_t> add_last_channel(std::span<const uint8_t> raster, uint32_t channels,
                                      uint8_t value) {
  const size_t pixels = channels ? raster.size() / channels : 0;
  std::vector<uint8_t> out(pixels * (channels + 1));
  for (size_t p = 0; p < pixels; ++p) {
    std::memcpy(&out[p * (channels + 1)], &raster[p * channels], channels);
    out[p * (channels + 1) + channels] = value;
  }
  return out;
}

}  // namespace mbz::io

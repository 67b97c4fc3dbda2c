#include "io/pnm_bmp.h"

#include <cstring>
#include <string>
#include <string_view>

#include "codec/endian.h"
#include "codec/error.h"
#include "io/image.h"

namespace mbz::io {
namespace {

[[noreturn]] void unsupported(const char* format, const std::string& message) {
  throw Error(ErrorCode::kUnsupportedInput, std::string(format) + ": " + message);
}

// The payload must fit in the file and the image under kMaxPixels; checked before anything
// is allocated, so a lying header costs nothing.
void check_payload_fits(const char* format, const RawRaster& r, size_t file_size) {
  const uint64_t pixels = uint64_t{r.width} * r.height;
  if (pixels > kMaxPixels) {
    unsupported(format, std::to_string(r.width) + "x" + std::to_string(r.height) +
                            " pixels is over the limit of " + std::to_string(kMaxPixels));
  }
  if (r.header_size > file_size || r.payload_size() > file_size - r.header_size) {
    unsupported(format, "header declares " + std::to_string(r.payload_size()) +
                            " bytes of pixels at offset " + std::to_string(r.header_size) +
                            ", the file has " + std::to_string(file_size) + " bytes");
  }
}

// Reads the whitespace- and comment-separated header tokens of P5/P6 (Netpbm: a comment runs
// from '#' to the end of the line and may sit between any two tokens).
class PnmTokens {
 public:
  explicit PnmTokens(std::span<const uint8_t> file) : file_(file) {}

  uint32_t number(const char* field) {
    skip_space_and_comments();
    if (pos_ >= file_.size() || file_[pos_] < '0' || file_[pos_] > '9') {
      unsupported("PNM", std::string("expected a number for ") + field + " at offset " +
                             std::to_string(pos_));
    }
    uint64_t value = 0;
    while (pos_ < file_.size() && file_[pos_] >= '0' && file_[pos_] <= '9') {
      value = value * 10 + (file_[pos_++] - '0');
      if (value > UINT32_MAX) unsupported("PNM", std::string(field) + " is out of range");
    }
    return static_cast<uint32_t>(value);
  }
  // After maxval comes exactly one whitespace byte, then the pixels.
  size_t end_of_header() {
    if (pos_ >= file_.size() || !space(file_[pos_])) {
      unsupported("PNM",
                  "expected one whitespace byte after maxval at offset " + std::to_string(pos_));
    }
    return pos_ + 1;
  }
  void seek(size_t pos) { pos_ = pos; }

 private:
  static bool space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  }
  void skip_space_and_comments() {
    while (pos_ < file_.size()) {
      if (space(file_[pos_])) {
        ++pos_;
      } else if (file_[pos_] == '#') {
        while (pos_ < file_.size() && file_[pos_] != '\n' && file_[pos_] != '\r') ++pos_;
      } else {
        break;
      }
    }
  }
  std::span<const uint8_t> file_;
  size_t pos_ = 0;
};

// PAM header: lines of "KEY value" up to "ENDHDR\n" (netpbm.sourceforge.net/doc/pam.html).
RawRaster parse_pam(std::span<const uint8_t> file) {
  // A real PAM header is a few lines; 64 KiB bounds the scan of a file that only starts "P7\n".
  const size_t limit = std::min<size_t>(file.size(), 64 * 1024);
  size_t pos = 3;
  int64_t width = -1, height = -1, depth = -1, maxval = -1;
  while (true) {
    size_t end = pos;
    while (end < limit && file[end] != '\n') ++end;
    if (end >= limit) {
      unsupported("PAM", "no ENDHDR line in the first " + std::to_string(limit) + " bytes");
    }
    std::string_view line(reinterpret_cast<const char*>(file.data()) + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t line_start = pos;
    pos = end + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    if (line == "ENDHDR") break;
    const size_t space = line.find_first_of(" \t");
    const std::string_view key = line.substr(0, space);
    if (key == "TUPLTYPE") continue;  // free text; kept verbatim in the header bytes
    int64_t* field = key == "WIDTH"    ? &width
                     : key == "HEIGHT" ? &height
                     : key == "DEPTH"  ? &depth
                     : key == "MAXVAL" ? &maxval
                                       : nullptr;
    if (!field) unsupported("PAM", "unknown header line at offset " + std::to_string(line_start));
    std::string_view digits = space == std::string_view::npos ? "" : line.substr(space);
    while (!digits.empty() && (digits.front() == ' ' || digits.front() == '\t')) {
      digits.remove_prefix(1);
    }
    while (!digits.empty() && (digits.back() == ' ' || digits.back() == '\t')) {
      digits.remove_suffix(1);
    }
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      unsupported("PAM",
                  std::string(key) + " is not a number at offset " + std::to_string(line_start));
    }
    *field = std::stoll(std::string(digits));
  }
  if (width < 1 || height < 1 || depth < 1 || maxval < 1) {
    unsupported("PAM", "WIDTH, HEIGHT, DEPTH and MAXVAL must all be given and positive");
  }
  if (maxval > 255) {
    unsupported("PAM", "MAXVAL " + std::to_string(maxval) + " needs 16-bit samples");
  }
  if (depth > 4) unsupported("PAM", "DEPTH " + std::to_string(depth) + " is over 4 channels");
  RawRaster r;
  r.format = Format::kPnm;
  r.width = static_cast<uint32_t>(width);
  r.height = static_cast<uint32_t>(height);
  r.channels = static_cast<uint32_t>(depth);
  r.header_size = pos;
  check_payload_fits("PAM", r, file.size());
  return r;
}

}  // namespace

RawRaster parse_pnm(std::span<const uint8_t> file) {
  if (file.size() < 3 || file[0] != 'P' || (file[1] != '5' && file[1] != '6' && file[1] != '7')) {
    unsupported("PNM", "expected magic P5, P6 or P7");
  }
  if (file[1] == '7') {
    if (file[2] != '\n') unsupported("PAM", "expected a newline after P7");
    return parse_pam(file);
  }
  PnmTokens tokens(file);
  tokens.seek(2);
  RawRaster r;
  r.format = Format::kPnm;
  r.width = tokens.number("width");
  r.height = tokens.number("height");
  const uint32_t maxval = tokens.number("maxval");
  r.header_size = tokens.end_of_header();
  r.channels = file[1] == '6' ? 3 : 1;
  if (r.width == 0 || r.height == 0) unsupported("PNM", "width and height must be at least 1");
  if (maxval == 0 || maxval > 255) {
    unsupported("PNM", "maxval " + std::to_string(maxval) + " is not 1..255 (8-bit samples)");
  }
  check_payload_fits("PNM", r, file.size());
  return r;
}

RawRaster parse_bmp(std::span<const uint8_t> file) {
  if (file.size() < 26 || file[0] != 'B' || file[1] != 'M') {
    unsupported("BMP", "expected magic BM and a 26-byte header");
  }
  const uint32_t offset = le32(&file[10]);
  const uint32_t dib = le32(&file[14]);
  if (dib < 12 || file.size() < 14 + uint64_t{dib}) {
    unsupported("BMP", "info header of " + std::to_string(dib) + " bytes does not fit");
  }
  int64_t width, height;
  uint32_t bpp, compression = 0;
  if (dib == 12) {  // OS/2 BITMAPCOREHEADER: unsigned 16-bit dimensions, always uncompressed
    width = le16(&file[18]);
    height = le16(&file[20]);
    bpp = le16(&file[24]);
  } else if (dib >= 40) {  // BITMAPINFOHEADER and its V2..V5 extensions, OS/2 2.x (64)
    width = static_cast<int32_t>(le32(&file[18]));
    height = static_cast<int32_t>(le32(&file[22]));
    bpp = le16(&file[28]);
    compression = le32(&file[30]);
  } else {
    unsupported("BMP", "unknown info header size " + std::to_string(dib));
  }
  if (bpp != 24 && bpp != 32) {
    unsupported("BMP", std::to_string(bpp) + " bits per pixel (only 24 and 32 are kept exact)");
  }
  // 0 = BI_RGB; 3 = BI_BITFIELDS, which for 32 bits only says which byte is which channel.
  // OS/2 2.x (dib 64) gives 3 another meaning (Huffman), so it only allows 0.
  const bool bitfields = compression == 3 && bpp == 32 && dib != 64;
  if (compression != 0 && !bitfields) {
    unsupported("BMP", "compression " + std::to_string(compression) +
                           " (only uncompressed pixels are kept exact)");
  }
  if (width < 1 || height == 0) {
    unsupported("BMP", "dimensions " + std::to_string(width) + "x" + std::to_string(height));
  }
  RawRaster r;
  r.format = Format::kBmp;
  r.width = static_cast<uint32_t>(width);
  r.bottom_up = height > 0;
  r.height = static_cast<uint32_t>(height > 0 ? height : -height);  // int64: -INT32_MIN fits
  r.channels = bpp / 8;
  r.bgr = true;
  r.row_padding = static_cast<uint32_t>((4 - r.row_bytes() % 4) % 4);
  r.header_size = offset;
  if (offset < 14 + uint64_t{dib}) {
    unsupported("BMP", "pixel offset " + std::to_string(offset) + " is inside the header");
  }
  check_payload_fits("BMP", r, file.size());
  return r;
}

RawRaster parse_raw_raster(std::span<const uint8_t> file) {
  if (file.size() >= 2 && file[0] == 'B' && file[1] == 'M') return parse_bmp(file);
  if (file.size() >= 2 && file[0] == 'P') return parse_pnm(file);
  unsupported("image", "not a binary PNM or an uncompressed BMP");
}

void check_raw_raster(const RawRaster& r) {
  auto bad = [](const char* field, uint64_t value, const char* expected) {
    throw Error(ErrorCode::kFormatField, std::string("raw raster params: field ") + field + " is " +
                                             std::to_string(value) + ", expected " + expected);
  };
  if (r.format != Format::kPnm && r.format != Format::kBmp) {
    bad("source_format", uint64_t(r.format), "PNM (20) or BMP (19)");
  }
  if (r.width < 1) bad("width", r.width, ">= 1");
  if (r.height < 1) bad("height", r.height, ">= 1");
  if (uint64_t{r.width} * r.height > kMaxPixels) bad("height", r.height, "width*height <= 2^28");
  if (r.channels < 1 || r.channels > 4) bad("stored_channels", r.channels, "1..4");
  if (r.row_padding > 3) bad("row_padding", r.row_padding, "0..3");
  if (r.bgr && r.channels < 3) bad("flags", r.channels, "BGR order only with 3 or 4 channels");
}

std::vector<uint8_t> raster_from_payload(const RawRaster& r, std::span<const uint8_t> payload) {
  if (payload.size() != r.payload_size()) {
    unsupported(format_name(r.format), "payload has " + std::to_string(payload.size()) +
                                           " bytes, layout needs " +
                                           std::to_string(r.payload_size()));
  }
  const size_t row = r.row_bytes(), stride = row + r.row_padding;
  std::vector<uint8_t> raster(r.raster_size());
  for (size_t y = 0; y < r.height; ++y) {
    const size_t src_row = r.bottom_up ? r.height - 1 - y : y;
    const uint8_t* src = &payload[src_row * stride];
    for (size_t k = 0; k < r.row_padding; ++k) {
      if (src[row + k] != 0) {
        unsupported(format_name(r.format),
                    "row padding byte at offset " +
                        std::to_string(r.header_size + src_row * stride + row + k) +
                        " is not zero and would not be restored");
      }
    }
    uint8_t* dst = &raster[y * row];
    std::memcpy(dst, src, row);
    if (r.bgr) {
      for (size_t p = 0; p < row; p += r.channels) std::swap(dst[p], dst[p + 2]);
    }
  }
  return raster;
}

void payload_from_raster(const RawRaster& r, std::span<const uint8_t> raster,
                         std::vector<uint8_t>& out) {
  if (raster.size() != r.raster_size()) {
    throw Error(ErrorCode::kUsageBadArgument,
                "raw raster: expected " + std::to_string(r.raster_size()) + " raster bytes, got " +
                    std::to_string(raster.size()));
  }
  const size_t row = r.row_bytes(), stride = row + r.row_padding;
  const size_t base = out.size();
  out.resize(base + r.payload_size(), 0);  // padding bytes stay zero
  for (size_t y = 0; y < r.height; ++y) {
    const size_t dst_row = r.bottom_up ? r.height - 1 - y : y;
    uint8_t* dst = &out[base + dst_row * stride];
    std::memcpy(dst, &raster[y * row], row);
    if (r.bgr) {
      for (size_t p = 0; p < row; p += r.channels) std::swap(dst[p], dst[p + 2]);
    }
  }
}

}  // namespace mbz::io

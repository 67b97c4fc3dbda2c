// Image formats whose pixels are stored uncompressed, parsed well enough to split a file
// into header bytes, a pixel payload and trailing bytes, so that the payload can be coded as
// tiles and the file rebuilt byte for byte:
//   - binary PNM with maxval <= 255: PGM (P5), PPM (P6), PAM (P7, depth 1..4);
//   - BMP with 24 or 32 bits per pixel, uncompressed (BI_RGB) or BI_BITFIELDS (32-bit).
// Everything else (16-bit PNM, palette or RLE BMP, ...) is refused with a reason, and the
// caller codes it as raw bytes or decodes its pixels.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/detect.h"

namespace mbz::io {

// Where the pixels of a raw-pixel file are and how they are laid out. The same struct
// rebuilds the payload from a top-down raster, so every field the payload layout depends
// on is stored in the transform parameters (io/TRANSFORMS.md).
struct RawRaster {
  Format format = Format::kUnknown;  // kPnm or kBmp
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;     // bytes per pixel as stored, 1..4
  bool bottom_up = false;    // rows stored bottom to top (BMP with a positive height)
  bool bgr = false;          // bytes 0 and 2 of each pixel swapped (BMP stores B, G, R)
  uint32_t row_padding = 0;  // zero bytes after each row (BMP pads rows to 4 bytes), 0..3
  uint64_t header_size = 0;  // the payload starts at this offset in the file

  uint64_t row_bytes() const { return uint64_t{width} * channels; }
  uint64_t payload_size() const { return (row_bytes() + row_padding) * height; }
  uint64_t raster_size() const { return row_bytes() * height; }
};

// Binary PNM (P5, P6, P7). Throws mbz::Error (kUnsupportedInput) saying what is missing or
// out of range: wrong magic, malformed header, maxval over 255, depth over 4, over
// kMaxPixels, or a payload that runs past the end of the file.
RawRaster parse_pnm(std::span<const uint8_t> file);

// BMP with 24- or 32-bit uncompressed pixels. Throws like parse_pnm: palette, 16-bit, RLE
// or JPEG/PNG-in-BMP compression, absurd dimensions, a pixel offset or payload past the end.
RawRaster parse_bmp(std::span<const uint8_t> file);

// parse_pnm or parse_bmp, whichever the magic bytes call for.
RawRaster parse_raw_raster(std::span<const uint8_t> file);

// Checks a layout read back from transform parameters: format is PNM or BMP, dimensions
// within kMaxPixels, channels 1..4, padding 0..3, bgr only with 3 or 4 channels. Throws
// mbz::Error (kFormatField) naming the field.
void check_raw_raster(const RawRaster& layout);

// payload (layout.payload_size() bytes) -> top-down raster with channels in R, G, B order.
// Throws mbz::Error (kUnsupportedInput) if a padding byte is not zero: the padding is not
// stored, so such a file could not be rebuilt exactly.
std::vector<uint8_t> raster_from_payload(const RawRaster& layout, std::span<const uint8_t> payload);

// The exact inverse: appends layout.payload_size() bytes to out.
void payload_from_raster(const RawRaster& layout, std::span<const uint8_t> raster,
                         std::vector<uint8_t>& out);

}  // namespace mbz::io

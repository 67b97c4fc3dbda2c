// How the bytes of a segment are laid out, for the context mixer's modality models: a
// tiled image (pixels in square tiles, channels interleaved) or 16-bit little-endian
// audio (channels interleaved), described by numbers alone. The codec does not parse
// images or audio; the archive reads these few fields from the transform parameters of
// its header (codec/segment_coder.cpp, io/TRANSFORMS.md) and the predictor then knows
// where a byte's neighbours are. Both sides derive the same Layout from the same header,
// so it is part of what a decoder must share with its encoder, like the table sizes.
#pragma once

#include <cstdint>

namespace mbz::cm {

struct Layout {
  enum class Kind : uint8_t {
    kBytes = 0,  // no known structure: text, raw, and anything not described below
    kImage = 1,  // W x H pixels of `channels` bytes in T x T tiles (io/tiles.h)
    kAudio = 2,  // signed 16-bit little-endian samples, `channels` interleaved
  };
  Kind kind = Kind::kBytes;
  uint32_t width = 0;   // image: pixels a row
  uint32_t height = 0;  // image: rows
  // image: bytes a pixel (1..4); audio: samples a frame (1..kMaxAudioChannels)
  uint32_t channels = 0;
  uint32_t tile = 0;  // image: the tile side T, 4, 8 or 16
  // Stream offset of the segment's first byte: a stream of several segments is laid out
  // as one, and each segment sees only its own bytes.
  uint64_t offset = 0;

  static constexpr uint32_t kMaxAudioChannels = 8;  // more are coded as plain bytes

  // True when the fields describe something the models can follow (a Layout that is not
  // is coded as kBytes).
  bool valid() const {
    switch (kind) {
      case Kind::kBytes:
        return true;
      case Kind::kImage:
        return width >= 1 && height >= 1 && channels >= 1 && channels <= 4 &&
               (tile == 4 || tile == 8 || tile == 16) && uint64_t{width} * height <= (1u << 28);
      case Kind::kAudio:
        return channels >= 1 && channels <= kMaxAudioChannels;
    }
    return false;
  }
  // Image: the bytes of the whole stream.
  uint64_t image_bytes() const { return uint64_t{width} * height * channels; }

  bool operator==(const Layout&) const = default;
};

}  // namespace mbz::cm

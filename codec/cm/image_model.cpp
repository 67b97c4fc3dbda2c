#include "codec/cm/image_model.h"

#include <algorithm>
#include <bit>
#include <cstdlib>

namespace mbz::cm {
namespace {

// Count limit of the image contexts' counters. Pixels are far more stationary than text
// (whose contexts measured best at 16): on the valid photos at level 2, 255 gave 1.891
// bits a subpixel, 60 1.897.
constexpr uint32_t kLimit = 255;

int clamp255(int v) {
  return std::clamp(v, 0, 255);
}

// The median of a, b and c.
int median(int a, int b, int c) {
  return std::max(std::min(a, b), std::min(std::max(a, b), c));
}

// 0..7, growing with the log of v >= 0.
int log_bucket(int v) {
  return std::min(static_cast<int>(std::bit_width(static_cast<unsigned>(v))), 7);
}

}  // namespace

ImageModel::ImageModel(const Layout& layout, int table_bits)
    : layout_(layout),
      row_bytes_(uint64_t{layout.tile} * layout.width * layout.channels),
      contexts_(table_bits, kLimit) {}

uint64_t ImageModel::offset_of(uint32_t x, uint32_t y, uint32_t c) const {
  const uint32_t t = layout_.tile;
  const uint32_t tx = x / t, ty = y / t;
  const uint32_t x0 = tx * t, y0 = ty * t;
  const uint64_t tile_h = std::min(t, layout_.height - y0);
  const uint64_t tile_w = std::min(t, layout_.width - x0);
  return ty * row_bytes_ + x0 * tile_h * layout_.channels +
         ((y - y0) * tile_w + (x - x0)) * layout_.channels + c;
}

void ImageModel::begin_byte(const History& history, uint32_t lane) {
  const uint64_t s = layout_.offset + history.next(lane);
  if (s >= layout_.image_bytes()) {
    // More stream than the layout describes (a damaged or hand-made archive): nothing to
    // say about this byte, but the coding stays well defined.
    for (int i = 0; i < kContexts; ++i) contexts_.set(i, i);
    group_ = channel_ = expected_ = 0;
    return;
  }
  // Where the byte is: tile row, tile, pixel in the tile, channel.
  const uint32_t t = layout_.tile, channels = layout_.channels;
  const uint32_t ty = static_cast<uint32_t>(s / row_bytes_);
  uint64_t r = s - ty * row_bytes_;
  const uint32_t y0 = ty * t;
  const uint64_t tile_bytes = uint64_t{t} * std::min(t, layout_.height - y0) * channels;
  const uint32_t tx = static_cast<uint32_t>(r / tile_bytes);
  r -= tx * tile_bytes;
  const uint32_t x0 = tx * t, tile_w = std::min(t, layout_.width - x0);
  const uint32_t pixel = static_cast<uint32_t>(r / channels);
  const int c = static_cast<int>(r % channels);
  const int64_t x = x0 + pixel % tile_w, y = y0 + pixel / tile_w;

  // Channel ch of the pixel (dx, dy) away, or -1 when it is not known (yet).
  auto at = [&](int dx, int dy, int ch) -> int {
    const int64_t nx = x + dx, ny = y + dy;
    if (nx < 0 || ny < 0 || nx >= layout_.width) return -1;
    const uint64_t o =
        offset_of(static_cast<uint32_t>(nx), static_cast<uint32_t>(ny), static_cast<uint32_t>(ch));
    if (o < layout_.offset) return -1;
    const uint64_t i = o - layout_.offset;
    return history.known(i) ? history.at(i) : -1;
  };
  int p = c > 0 ? at(0, 0, c - 1) : -1;  // this pixel's previous channel
  int w = at(-1, 0, c), n = at(0, -1, c), nw = at(-1, -1, c), ne = at(1, -1, c);
  int ww = at(-2, 0, c), nn = at(0, -2, c), nne = at(1, -2, c);
  // Stand-ins for what is not known: the nearest known neighbour.
  if (w < 0 && n < 0) w = n = p >= 0 ? p : 128;
  if (w < 0) w = n;
  if (n < 0) n = w;
  if (nw < 0) nw = y > 0 ? n : w;
  if (ne < 0) ne = n;
  if (ww < 0) ww = w;
  if (nn < 0) nn = n;
  if (nne < 0) nne = ne;

  const int grad = clamp255(w + n - nw);
  const int med = median(w, n, w + n - nw);
  const int activity = std::abs(w - nw) + std::abs(n - nw) + std::abs(n - ne);

  // Contexts: up to three 16-bit values, the context's number and the channel.
  auto set = [&](int i, uint64_t a, uint64_t b = 0, uint64_t d = 0) {
    const uint64_t kind = static_cast<uint64_t>(i * 4 + c) << 48;
    contexts_.set(i, combine(0x1A6E, kind | a | b << 16 | d << 32));
  };
  set(0, w, n);
  set(1, grad);
  set(2, med, log_bucket(activity));
  set(3, (w + n + 1) >> 1, std::min(std::abs(w - n) >> 2, 15));
  set(4, clamp255(n + ne - nne));
  set(5, clamp255(w + ((ne - nw) >> 1)));
  set(6, clamp255(2 * n - nn));
  set(7, clamp255(2 * w - ww));
  set(8, (w + ne + 1) >> 1);
  set(9, (w >> 2) | (n >> 2) << 8, (ne >> 2) | (nw >> 2) << 8);
  set(10, n, ne);
  set(11, w, nw);
  if (c > 0) {
    // The previous channel moves with this one: its change from the neighbours predicts
    // this channel's.
    if (p < 0) p = w;
    int pw = at(-1, 0, c - 1), pn = at(0, -1, c - 1);
    if (pw < 0) pw = p;
    if (pn < 0) pn = p;
    set(12, clamp255(p + w - pw), 1);
    set(13, clamp255(p + n - pn), 1);
    set(14, clamp255(p + ((w - pw + n - pn) >> 1)), 1);
    set(15, p, med, 1);
  } else {
    set(12, n, nn >> 2);
    set(13, w, ww >> 2);
    set(14, grad, med, 1);
    set(15, med, std::clamp((ne - n) >> 2, -8, 7) & 15);
  }
  channel_ = c;
  group_ = log_bucket(activity) * 4 + std::min(c, 3);
  expected_ = med;
}

void ImageModel::predict(int c0, int bitpos, int16_t* inputs) {
  contexts_.predict(c0, bitpos, inputs);
}

void ImageModel::update(int bit) {
  contexts_.update(bit);
}

}  // namespace mbz::cm

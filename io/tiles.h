// Patch-ordered flattening of an 8-bit pixel raster, so that a byte model sees pixels that
// are close in the image close in the stream.
//
// The image (W x H pixels, C interleaved channels, rows top to bottom) is cut into T x T
// tiles. Tiles are emitted in raster order (left to right, then top to bottom); inside a
// tile, pixels in raster order; each pixel's C channels together. Tiles on the right and
// bottom edges are partial (min(T, W - x0) wide, min(T, H - y0) high) and emit only their
// real pixels, so the flattened stream has exactly W * H * C bytes and no padding.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mbz::io {

// The tile side used when the caller does not choose one. Measured with bench/stream_order
// (order2-v1 on the 18 validation photos of corpora/, 3.27 MB of pixels): tiles of 16
// cost 3.758 bits per subpixel, of 8 3.770, of 4 3.778 (raster order: 3.714). Re-measure
// when the byte model changes: MEGABYTE patches of pixels favour square neighbourhoods.
inline constexpr uint32_t kDefaultTile = 16;

// True for the tile sides the format allows: 4, 8 and 16.
bool valid_tile(uint32_t tile);

// The shape of a tiled image and where each tile lands in the flattened stream.
struct TileGeometry {
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;  // 1..4
  uint32_t tile = 0;      // T

  uint32_t tiles_x() const { return (width + tile - 1) / tile; }
  uint32_t tiles_y() const { return (height + tile - 1) / tile; }
  uint64_t size() const { return uint64_t{width} * height * channels; }
  // Offset in the flattened stream of the first byte of tile (tx, ty).
  uint64_t tile_offset(uint32_t tx, uint32_t ty) const;
  // Width and height of tile (tx, ty): T, or less on the right and bottom edges.
  uint32_t tile_width(uint32_t tx) const;
  uint32_t tile_height(uint32_t ty) const;
};

// Where a byte of the flattened stream comes from in the image.
struct TilePosition {
  uint32_t x = 0, y = 0, channel = 0;  // pixel column, row and channel in the image
  uint32_t tx = 0, ty = 0;             // the tile holding it
};

// Throws mbz::Error (kUsageBadArgument) when width, height or channels is 0, channels > 4,
// the tile side is not 4, 8 or 16, or W * H * C does not fit in memory addressing.
void check_geometry(const TileGeometry& g);

// Maps a stream offset (< g.size()) back to its pixel; for models that condition on position.
TilePosition locate(const TileGeometry& g, uint64_t offset);

// raster (g.size() bytes, rows top to bottom, channels interleaved) -> tiles (g.size() bytes).
void tiles_from_raster(const TileGeometry& g, std::span<const uint8_t> raster,
                       std::span<uint8_t> tiles);
std::vector<uint8_t> tiles_from_raster(const TileGeometry& g, std::span<const uint8_t> raster);

// The exact inverse: tiles (g.size() bytes) -> raster.
void raster_from_tiles(const TileGeometry& g, std::span<const uint8_t> tiles,
                       std::span<uint8_t> raster);
std::vector<uint8_t> raster_from_tiles(const TileGeometry& g, std::span<const uint8_t> tiles);

}  // namespace mbz::io

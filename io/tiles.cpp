#include "io/tiles.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "codec/error.h"

namespace mbz::io {
namespace {

// Copies each tile row between the raster and the tile stream; to_tiles picks the direction.
// Both directions share this loop so that they cannot disagree about the order.
template <bool to_tiles>
void walk(const TileGeometry& g, const uint8_t* src, uint8_t* dst) {
  const size_t row_bytes = size_t{g.width} * g.channels;
  size_t stream = 0;
  for (uint32_t y0 = 0; y0 < g.height; y0 += g.tile) {
    const uint32_t th = std::min(g.tile, g.height - y0);
    for (uint32_t x0 = 0; x0 < g.width; x0 += g.tile) {
      const size_t span = size_t{std::min(g.tile, g.width - x0)} * g.channels;
      for (uint32_t y = y0; y < y0 + th; ++y) {
        const size_t raster = y * row_bytes + size_t{x0} * g.channels;
        if constexpr (to_tiles) {
          std::memcpy(dst + stream, src + raster, span);
        } else {
          std::memcpy(dst + raster, src + stream, span);
        }
        stream += span;
      }
    }
  }
}

void check_sizes(const TileGeometry& g, size_t in, size_t out) {
  check_geometry(g);
  if (in != g.size() || out != g.size()) {
    throw Error(ErrorCode::kUsageBadArgument,
                "tiles: " + std::to_string(g.width) + "x" + std::to_string(g.height) + "x" +
                    std::to_string(g.channels) + " needs buffers of " + std::to_string(g.size()) +
                    " bytes, got " + std::to_string(in) + " and " + std::to_string(out));
  }
}

}  // namespace

bool valid_tile(uint32_t tile) {
  return tile == 4 || tile == 8 || tile == 16;
}

uint64_t TileGeometry::tile_offset(uint32_t tx, uint32_t ty) const {
  // Every full tile row above holds tile * width pixels; tiles to the left in this tile row
  // hold tile_height(ty) * tile pixels each (all of them full width, only the last can be
  // partial, and it is never to the left of another).
  const uint64_t above = uint64_t{ty} * tile * width;
  const uint64_t left = uint64_t{tx} * tile * tile_height(ty);
  return (above + left) * channels;
}

uint32_t TileGeometry::tile_width(uint32_t tx) const {
  return std::min(tile, width - tx * tile);
}
uint32_t TileGeometry::tile_height(uint32_t ty) const {
  return std::min(tile, height - ty * tile);
}

void check_geometry(const TileGeometry& g) {
  const bool ok = g.width > 0 && g.height > 0 && g.channels >= 1 && g.channels <= 4 &&
                  valid_tile(g.tile) && g.size() <= uint64_t{SIZE_MAX / 2};
  if (!ok) {
    throw Error(ErrorCode::kUsageBadArgument,
                "tiles: expected width, height >= 1, 1..4 channels and tile 4, 8 or 16, got " +
                    std::to_string(g.width) + "x" + std::to_string(g.height) + "x" +
                    std::to_string(g.channels) + " tile " + std::to_string(g.tile));
  }
}

TilePosition locate(const TileGeometry& g, uint64_t offset) {
  check_geometry(g);
  if (offset >= g.size()) {
    throw Error(ErrorCode::kUsageBadArgument, "tiles: offset " + std::to_string(offset) +
                                                  " is past the stream of " +
                                                  std::to_string(g.size()) + " bytes");
  }
  TilePosition p;
  p.channel = static_cast<uint32_t>(offset % g.channels);
  const uint64_t pixel = offset / g.channels;
  const uint64_t band = uint64_t{g.tile} * g.width;  // pixels in one full row of tiles
  p.ty = static_cast<uint32_t>(pixel / band);
  const uint64_t in_band = pixel % band;
  const uint64_t th = g.tile_height(p.ty);
  p.tx = static_cast<uint32_t>(in_band / (th * g.tile));
  const uint64_t in_tile = in_band % (th * g.tile);
  const uint32_t tw = g.tile_width(p.tx);
  p.x = p.tx * g.tile + static_cast<uint32_t>(in_tile % tw);
  p.y = p.ty * g.tile + static_cast<uint32_t>(in_tile / tw);
  return p;
}

void tiles_from_raster(const TileGeometry& g, std::span<const uint8_t> raster,
                       std::span<uint8_t> tiles) {
  check_sizes(g, raster.size(), tiles.size());
  walk<true>(g, raster.data(), tiles.data());
}

std::vector<uint8_t> tiles_from_raster(const TileGeometry& g, std::span<const uint8_t> raster) {
  check_sizes(g, raster.size(), raster.size());  // before allocating what a bad size asks for
  std::vector<uint8_t> out(raster.size());
  tiles_from_raster(g, raster, out);
  return out;
}

void raster_from_tiles(const TileGeometry& g, std::span<const uint8_t> tiles,
                       std::span<uint8_t> raster) {
  check_sizes(g, tiles.size(), raster.size());
  walk<false>(g, tiles.data(), raster.data());
}

std::vector<uint8_t> raster_from_tiles(const TileGeometry& g, std::span<const uint8_t> tiles) {
  check_sizes(g, tiles.size(), tiles.size());  // before allocating what a bad size asks for
  std::vector<uint8_t> out(tiles.size());
  raster_from_tiles(g, tiles, out);
  return out;
}

}  // namespace mbz::io

// Patch-ordered flattening: exhaustive over every width and height 1..40, 1..4 channels and
// each tile size, against an independent reference walk; plus hand-computed examples.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "codec/error.h"
#include "io/tiles.h"

namespace mbz::io {
namespace {

struct Subpixel {
  uint32_t x, y, c;
};

// The order the spec describes, written as plainly as possible: tiles in raster order,
// pixels in raster order inside a tile, channels together.
std::vector<Subpixel> reference_order(uint32_t w, uint32_t h, uint32_t ch, uint32_t t) {
  std::vector<Subpixel> order;
  for (uint32_t ty = 0; ty * t < h; ++ty) {
    for (uint32_t tx = 0; tx * t < w; ++tx) {
      for (uint32_t y = ty * t; y < (ty + 1) * t && y < h; ++y) {
        for (uint32_t x = tx * t; x < (tx + 1) * t && x < w; ++x) {
          for (uint32_t c = 0; c < ch; ++c) order.push_back({x, y, c});
        }
      }
    }
  }
  return order;
}

TEST(IoTiles, ExhaustiveSmallImagesMatchReferenceAndInvert) {
  int checked = 0;
  for (uint32_t t : {4u, 8u, 16u}) {
    for (uint32_t ch = 1; ch <= 4; ++ch) {
      for (uint32_t h = 1; h <= 40; ++h) {
        for (uint32_t w = 1; w <= 40; ++w) {
          const TileGeometry g{w, h, ch, t};
          // Two rasters holding the low and high byte of each subpixel's raster index (at
          // most 40 * 40 * 4 = 6400), so that every subpixel is told apart exactly.
          std::vector<uint8_t> low(g.size()), high(g.size());
          for (size_t i = 0; i < low.size(); ++i) {
            low[i] = static_cast<uint8_t>(i);
            high[i] = static_cast<uint8_t>(i >> 8);
          }
          const std::vector<uint8_t> tiles_low = tiles_from_raster(g, low);
          const std::vector<uint8_t> tiles_high = tiles_from_raster(g, high);
          const std::vector<Subpixel> order = reference_order(w, h, ch, t);
          ASSERT_EQ(order.size(), tiles_low.size());
          for (size_t i = 0; i < order.size(); ++i) {
            const size_t expected = (size_t{order[i].y} * w + order[i].x) * ch + order[i].c;
            ASSERT_EQ(tiles_low[i] | tiles_high[i] << 8, expected)
                << w << "x" << h << "x" << ch << " T" << t << " offset " << i;
          }
          ASSERT_EQ(raster_from_tiles(g, tiles_low), low)
              << w << "x" << h << "x" << ch << " T" << t;
          ASSERT_EQ(raster_from_tiles(g, tiles_high), high);

          // locate() is the same map read backwards; check it on every offset of the
          // smaller half of the sizes to keep the test fast.
          if (w <= 20 && h <= 20) {
            for (size_t i = 0; i < order.size(); ++i) {
              const TilePosition p = locate(g, i);
              ASSERT_EQ(p.x, order[i].x);
              ASSERT_EQ(p.y, order[i].y);
              ASSERT_EQ(p.channel, order[i].c);
              ASSERT_EQ(p.tx, order[i].x / t);
              ASSERT_EQ(p.ty, order[i].y / t);
            }
          }
          // tile_offset() points at each tile's first subpixel.
          for (uint32_t ty = 0; ty < g.tiles_y(); ++ty) {
            for (uint32_t tx = 0; tx < g.tiles_x(); ++tx) {
              const Subpixel first = order[g.tile_offset(tx, ty)];
              ASSERT_EQ(first.x, tx * t);
              ASSERT_EQ(first.y, ty * t);
              ASSERT_EQ(first.c, 0u);
            }
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 3 * 4 * 40 * 40);
}

TEST(IoTiles, HandComputedPartialTiles) {
  // 5x3 gray, T=4: a 4x3 tile then a 1x3 tile.
  std::vector<uint8_t> raster(15);
  for (int i = 0; i < 15; ++i) raster[i] = static_cast<uint8_t>(i);
  const TileGeometry g{5, 3, 1, 4};
  const std::vector<uint8_t> expected = {0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 4, 9, 14};
  EXPECT_EQ(tiles_from_raster(g, raster), expected);
  EXPECT_EQ(g.tiles_x(), 2u);
  EXPECT_EQ(g.tiles_y(), 1u);
  EXPECT_EQ(g.tile_offset(1, 0), 12u);
  EXPECT_EQ(g.tile_width(1), 1u);
}

TEST(IoTiles, HandComputedTwoChannelsTwoTileRows) {
  // 2x5, 2 channels, T=4: pixel p has channels (10p, 10p+1). Tile rows of height 4 and 1.
  std::vector<uint8_t> raster;
  for (int p = 0; p < 10; ++p) {
    raster.push_back(static_cast<uint8_t>(10 * p));
    raster.push_back(static_cast<uint8_t>(10 * p + 1));
  }
  const TileGeometry g{2, 5, 2, 4};
  const std::vector<uint8_t> tiles = tiles_from_raster(g, raster);
  EXPECT_EQ(tiles, raster);  // one tile column: the order is the raster order
  EXPECT_EQ(g.tile_offset(0, 1), 16u);
  EXPECT_EQ(g.tile_height(1), 1u);
}

TEST(IoTiles, WideImageOrderDiffersFromRaster) {
  // 32x2 gray with T=16: the second tile starts with pixel (16, 0), not with row 1.
  std::vector<uint8_t> raster(64);
  for (int i = 0; i < 64; ++i) raster[i] = static_cast<uint8_t>(i);
  const std::vector<uint8_t> tiles = tiles_from_raster({32, 2, 1, 16}, raster);
  EXPECT_EQ(tiles[15], 15);
  EXPECT_EQ(tiles[16], 32);  // second row of the first tile
  EXPECT_EQ(tiles[32], 16);  // first pixel of the second tile
  EXPECT_EQ(tiles[63], 63);
}

TEST(IoTiles, RejectsBadGeometryAndSizes) {
  const std::vector<uint8_t> buf(48);
  auto code = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kIoRead;  // "did not throw"
  };
  EXPECT_EQ(code([&] { tiles_from_raster({0, 4, 3, 4}, buf); }), ErrorCode::kUsageBadArgument);
  EXPECT_EQ(code([&] { tiles_from_raster({4, 4, 5, 4}, buf); }), ErrorCode::kUsageBadArgument);
  EXPECT_EQ(code([&] { tiles_from_raster({4, 4, 3, 5}, buf); }), ErrorCode::kUsageBadArgument);
  EXPECT_EQ(code([&] {
              tiles_from_raster({4, 4, 2, 4}, buf);
            }),
            ErrorCode::kUsageBadArgument);  // 32 != 48
  EXPECT_EQ(code([&] { locate({4, 4, 3, 4}, 48); }), ErrorCode::kUsageBadArgument);
  EXPECT_EQ(tiles_from_raster({4, 4, 3, 4}, buf).size(), 48u);
}

TEST(IoTiles, ValidTilesAndDefault) {
  EXPECT_TRUE(valid_tile(4));
  EXPECT_TRUE(valid_tile(8));
  EXPECT_TRUE(valid_tile(16));
  EXPECT_FALSE(valid_tile(0));
  EXPECT_FALSE(valid_tile(2));
  EXPECT_FALSE(valid_tile(32));
  EXPECT_TRUE(valid_tile(kDefaultTile));
}

}  // namespace
}  // namespace mbz::io

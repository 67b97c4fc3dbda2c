// Images: byte-exact PNM/BMP round trips through tiles, pixel-exact PNG/JPEG/GIF round trips
// with --pixels, and broken or absurd headers that must fall back to raw or fail clearly.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "codec/error.h"
#include "io/image.h"
#include "io/pnm_bmp.h"
#include "io/tiles.h"
#include "io/transform.h"
#include "io_test_util.h"

namespace mbz::io {
namespace {

using namespace test;

// Pixels with structure in every channel, so that swapped or misplaced channels show.
Image make_image(uint32_t w, uint32_t h, uint32_t c, uint32_t seed = 1) {
  Image img{w, h, c, Bytes(size_t{w} * h * c)};
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    const size_t pixel = i / c, k = i % c, x = pixel % w, y = pixel / w;
    img.pixels[i] = static_cast<uint8_t>(x * 11 + y * 29 + k * 71 + seed * 3);
  }
  return img;
}

Bytes flatten_default(const Bytes& file) {
  return flatten(file, {}).stream;
}

// The common check of a byte-exact image transform: modality image, the stream is the
// image's pixels in tile order, and unflatten rebuilds the file.
void expect_exact_image(const Bytes& file, const Image& pixels, uint32_t tile = kDefaultTile) {
  FlattenOptions options;
  options.tile = static_cast<int>(tile);
  const Flattened f = flatten(file, options);
  ASSERT_EQ(f.modality, Modality::kImage);
  ASSERT_EQ(f.params.at(0), uint8_t(TransformKind::kImageExact));
  const auto p = image_params(f.modality, f.params);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->width, pixels.width);
  EXPECT_EQ(p->height, pixels.height);
  EXPECT_EQ(p->tile, tile);
  Bytes raster = pixels.pixels;
  if (p->alpha) raster = drop_last_channel(raster, pixels.channels);
  EXPECT_EQ(p->channels + (p->alpha ? 1 : 0), pixels.channels);
  EXPECT_EQ(f.stream, tiles_from_raster(p->geometry(), raster));
  EXPECT_EQ(unflatten(f.modality, f.params, f.stream), file);
  EXPECT_EQ(units(f.modality, f.params).subpixels,
            uint64_t{pixels.width} * pixels.height * pixels.channels);
  EXPECT_EQ(output_extension(f.modality, f.params), "");
}

// ---- PNM ----------------------------------------------------------------------------------

TEST(IoImagePnm, PgmPpmPamRoundTripByteExact) {
  for (uint32_t w : {1u, 3u, 8u, 17u}) {
    for (uint32_t h : {1u, 2u, 9u}) {
      const Image gray = make_image(w, h, 1), rgb = make_image(w, h, 3);
      Bytes pgm = encode_pnm(gray), ppm = encode_pnm(rgb);
      expect_exact_image(pgm, gray);
      expect_exact_image(ppm, rgb, 4);
      for (uint32_t c : {2u, 4u}) {
        const Image img = make_image(w, h, c);
        expect_exact_image(encode_pnm(img), img, 16);
      }
    }
  }
}

TEST(IoImagePnm, CommentsOddWhitespaceSmallMaxvalAndTrailingImage) {
  const Image img = make_image(5, 4, 3);
  Bytes file;
  append(file, "P6 # made by hand\n# another comment\n5\t4\r\n# between\n200 ");
  Bytes pixels = img.pixels;
  for (auto& v : pixels) v = static_cast<uint8_t>(v % 201);
  file.insert(file.end(), pixels.begin(), pixels.end());
  append(file, "P5\n1 1\n255\n\x07");  // a second image: trailing bytes
  expect_exact_image(file, Image{5, 4, 3, pixels});
  const auto f = flatten(file, {});
  EXPECT_EQ(describe(f.modality, f.params),
            "byte-exact original (PNM, 5x4, 3 channels, 16x16 tiles)");
}

TEST(IoImagePnm, PamConstantAlphaIsLeftOutOfTheStream) {
  Image img = make_image(6, 5, 4);
  for (size_t i = 3; i < img.pixels.size(); i += 4) img.pixels[i] = 255;
  const Bytes file = encode_pnm(img);
  const Flattened f = flatten(file, {});
  ASSERT_EQ(f.modality, Modality::kImage);
  EXPECT_EQ(f.stream.size(), 6u * 5 * 3);
  const auto p = image_params(f.modality, f.params);
  ASSERT_TRUE(p && p->alpha);
  EXPECT_EQ(*p->alpha, 255);
  EXPECT_EQ(p->channels, 3u);
  expect_exact_image(file, img);
}

TEST(IoImagePnm, SixteenBitTruncatedAndAbsurdFallBackToRaw) {
  const std::vector<Bytes> files = {
      [] {
        Bytes b;
        append(b, "P5\n2 2\n65535\n");
        b.resize(b.size() + 8, 1);
        return b;
      }(),  // 16-bit
      [] {
        Bytes b;
        append(b, "P6\n4 4\n255\n");
        b.resize(b.size() + 47, 9);
        return b;
      }(),  // 1 byte short
      [] {
        Bytes b;
        append(b, "P6\n100000 100000\n255\n");
        b.resize(b.size() + 300, 9);
        return b;
      }(),
      [] {
        Bytes b;
        append(b, "P5\n99999999999 2\n255\n");
        b.resize(b.size() + 30, 9);
        return b;
      }(),
      [] {
        Bytes b;
        append(b, "P7\nWIDTH 2\nHEIGHT 2\nDEPTH 5\nMAXVAL 255\nENDHDR\n");
        b.resize(b.size() + 20, 9);
        return b;
      }(),
  };
  for (const Bytes& file : files) {
    const Flattened f = flatten(file, {});
    EXPECT_EQ(f.modality, Modality::kRaw);
    EXPECT_EQ(f.stream, file);
    FlattenOptions forced;
    forced.as = Modality::kImage;
    try {
      flatten(file, forced);
      ADD_FAILURE() << "forced --as image accepted a broken PNM";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupportedInput);
      const std::string what = e.what();
      EXPECT_TRUE(what.find("PNM") != std::string::npos || what.find("PAM") != std::string::npos)
          << what;
    }
  }
}

// ---- BMP ----------------------------------------------------------------------------------

// A BMP with BITMAPINFOHEADER (or V5 when v5), rows padded to 4 bytes, B, G, R(, A) order.
Bytes make_bmp(const Image& img, bool top_down = false, bool v5 = false, uint8_t pad_value = 0) {
  const uint32_t dib = v5 ? 124 : 40, bpp = img.channels * 8;
  const uint32_t row = img.width * img.channels, stride = (row + 3) & ~3u;
  Bytes b;
  append(b, "BM");
  put_le32(b, 14 + dib + stride * img.height);
  put_le32(b, 0);
  put_le32(b, 14 + dib);
  put_le32(b, dib);
  put_le32(b, img.width);
  put_le32(b, top_down ? static_cast<uint32_t>(-static_cast<int32_t>(img.height)) : img.height);
  put_le16(b, 1);
  put_le16(b, bpp);
  put_le32(b, v5 ? 3 : 0);  // BI_BITFIELDS with masks in the V5 header
  put_le32(b, stride * img.height);
  put_le32(b, 2835);
  put_le32(b, 2835);
  put_le32(b, 0);
  put_le32(b, 0);
  if (v5) {
    put_le32(b, 0x00FF0000);
    put_le32(b, 0x0000FF00);
    put_le32(b, 0x000000FF);
    put_le32(b, 0xFF000000);
    append(b, "BGRs");
    b.resize(14 + dib, 0);
  }
  for (uint32_t i = 0; i < img.height; ++i) {
    const uint32_t y = top_down ? i : img.height - 1 - i;
    for (uint32_t x = 0; x < img.width; ++x) {
      const uint8_t* p = &img.pixels[(size_t{y} * img.width + x) * img.channels];
      b.push_back(p[2]);
      b.push_back(p[1]);
      b.push_back(p[0]);
      if (img.channels == 4) b.push_back(p[3]);
    }
    for (uint32_t k = row; k < stride; ++k) b.push_back(pad_value);
  }
  return b;
}

TEST(IoImageBmp, TwentyFourBitEveryPaddingBothRowOrders) {
  for (uint32_t w = 1; w <= 9; ++w) {
    for (uint32_t h : {1u, 4u, 11u}) {
      const Image img = make_image(w, h, 3, w + h);
      expect_exact_image(make_bmp(img), img);
      expect_exact_image(make_bmp(img, true), img, 4);
    }
  }
}

TEST(IoImageBmp, ThirtyTwoBitWithUnusedAndRealAlpha) {
  Image x = make_image(7, 6, 4);
  for (size_t i = 3; i < x.pixels.size(); i += 4) x.pixels[i] = 0;  // BI_RGB: fourth byte unused
  const Bytes xbmp = make_bmp(x);
  expect_exact_image(xbmp, x);
  EXPECT_EQ(flatten(xbmp, {}).stream.size(), 7u * 6 * 3);
  const Image a = make_image(7, 6, 4);  // varying alpha stays in the stream
  expect_exact_image(make_bmp(a, false, true), a, 16);
  EXPECT_EQ(flatten(make_bmp(a, false, true), {}).stream.size(), 7u * 6 * 4);
}

TEST(IoImageBmp, StreamStartsWithTopLeftPixelInRgbOrder) {
  const Image img = make_image(3, 2, 3);
  const Bytes stream = flatten_default(make_bmp(img));  // bottom-up, BGR on disk
  ASSERT_EQ(stream.size(), 18u);
  EXPECT_EQ(stream[0], img.pixels[0]);  // R of (0, 0)
  EXPECT_EQ(stream[2], img.pixels[2]);  // B of (0, 0)
  EXPECT_EQ(stream[3], img.pixels[3]);  // R of (1, 0)
}

TEST(IoImageBmp, TrailingBytesAreKept) {
  const Image img = make_image(5, 3, 3);
  Bytes file = make_bmp(img);
  append(file, "trailing ICC profile or junk");
  expect_exact_image(file, img);
}

TEST(IoImageBmp, NonzeroPaddingPaletteAndAbsurdDimensionsFallBackToRaw) {
  const Image img = make_image(5, 3, 3);
  const Bytes padded = make_bmp(img, false, false, 0xAB);  // 5*3 = 15: one padding byte per row
  Bytes palette = make_bmp(img);
  palette[28] = 8;  // 8 bits per pixel: palette indices
  Bytes absurd = make_bmp(img);
  absurd[18] = absurd[19] = absurd[20] = 0xFF;  // width 0x00FFFFFF
  absurd[22] = absurd[23] = absurd[24] = 0xFF;  // height 0x00FFFFFF
  Bytes negative_width = make_bmp(img);
  negative_width[21] = 0x80;
  Bytes offset_past_end = make_bmp(img);
  offset_past_end[12] = 0x10;  // pixel offset 0x100036
  for (const Bytes* file :
       std::vector<const Bytes*>{&padded, &palette, &absurd, &negative_width, &offset_past_end}) {
    const Flattened f = flatten(*file, {});
    EXPECT_EQ(f.modality, Modality::kRaw);
    EXPECT_EQ(f.stream, *file);
    FlattenOptions forced;
    forced.as = Modality::kImage;
    EXPECT_THROW(flatten(*file, forced), Error);
  }
}

TEST(IoImageBmp, NonzeroPaddingWithPixelsDecodesToPngWithIdenticalPixels) {
  const Image img = make_image(5, 3, 3);
  const Bytes padded = make_bmp(img, false, false, 0xAB);
  FlattenOptions options;
  options.pixels = true;
  const Flattened f = flatten(padded, options);
  ASSERT_EQ(f.modality, Modality::kImage);
  EXPECT_EQ(f.params.at(0), uint8_t(TransformKind::kImagePixels));
  const Bytes png = unflatten(f.modality, f.params, f.stream);
  const Image back = decode_image(png);
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_EQ(output_extension(f.modality, f.params), ".png");
}

// ---- PNG, JPEG, GIF through stb_image ----------------------------------------------------

TEST(IoImagePixels, PngEveryChannelCountRoundTripsPixels) {
  for (uint32_t c = 1; c <= 4; ++c) {
    for (auto [w, h] : {std::pair{1u, 1u}, {13u, 7u}, {40u, 33u}}) {
      const Image img = make_image(w, h, c, c);
      const Bytes png = encode_png(img);
      EXPECT_EQ(encode_png(img), png) << "PNG writer is not deterministic";
      const Flattened raw = flatten(png, {});
      EXPECT_EQ(raw.modality, Modality::kRaw);  // compressed payload: bytes by default
      EXPECT_EQ(raw.stream, png);

      FlattenOptions options;
      options.pixels = true;
      const Flattened f = flatten(png, options);
      ASSERT_EQ(f.modality, Modality::kImage);
      const auto p = image_params(f.modality, f.params);
      ASSERT_TRUE(p);
      EXPECT_EQ(p->source, Format::kPng);
      const Bytes raster = p->alpha ? drop_last_channel(img.pixels, c) : img.pixels;
      EXPECT_EQ(p->alpha.has_value(), w == 1 && (c == 2 || c == 4));  // one pixel: constant alpha
      EXPECT_EQ(f.stream, tiles_from_raster(p->geometry(), raster));
      const Image back = decode_image(unflatten(f.modality, f.params, f.stream));
      EXPECT_EQ(back.channels, c);
      EXPECT_EQ(back.pixels, img.pixels);
      EXPECT_EQ(units(f.modality, f.params).subpixels, uint64_t{w} * h * c);
    }
  }
}

TEST(IoImagePixels, OpaqueRgbaPngKeepsFourChannels) {
  Image img = make_image(9, 9, 4);
  for (size_t i = 3; i < img.pixels.size(); i += 4) img.pixels[i] = 255;
  FlattenOptions options;
  options.pixels = true;
  const Flattened f = flatten(encode_png(img), options);
  EXPECT_EQ(f.stream.size(), 9u * 9 * 3);
  const Image back = decode_image(unflatten(f.modality, f.params, f.stream));
  EXPECT_EQ(back.channels, 4u);
  EXPECT_EQ(back.pixels, img.pixels);
  EXPECT_EQ(describe(f.modality, f.params),
            "PNG with identical pixels (from PNG, 9x9, 4 channels, 16x16 tiles)");
}

TEST(IoImagePixels, JpegFixtureDecodedPixelsSurvive) {
  const Bytes jpeg = read_fixture("io_gradient.jpg");  // 24x17 RGB, stb_image_write quality 90
  ASSERT_FALSE(jpeg.empty());
  EXPECT_EQ(detect_format(jpeg), Format::kJpeg);
  EXPECT_EQ(flatten(jpeg, {}).modality, Modality::kRaw);
  const Image decoded = decode_image(jpeg);
  ASSERT_EQ(decoded.width, 24u);
  ASSERT_EQ(decoded.height, 17u);
  ASSERT_EQ(decoded.channels, 3u);
  FlattenOptions options;
  options.pixels = true;
  options.tile = 16;
  const Flattened f = flatten(jpeg, options);
  const Bytes png = unflatten(f.modality, f.params, f.stream);
  EXPECT_EQ(detect_format(png), Format::kPng);
  EXPECT_EQ(decode_image(png).pixels, decoded.pixels);
}

// A GIF with a 128-colour table whose LZW data is "uncompressed": every pixel a literal code,
// with a clear code every 64 codes so the code width stays at 8 bits.
Bytes make_gif(uint32_t w, uint32_t h, const std::vector<Bytes>& frames) {
  Bytes b;
  append(b, "GIF89a");
  put_le16(b, w);
  put_le16(b, h);
  b.push_back(0xF6);  // global colour table of 2^(6+1) = 128 entries
  b.push_back(0);
  b.push_back(0);
  for (int i = 0; i < 128; ++i) {
    b.push_back(static_cast<uint8_t>(i * 2));
    b.push_back(static_cast<uint8_t>(255 - i));
    b.push_back(static_cast<uint8_t>(i * 5));
  }
  for (const Bytes& indices : frames) {
    b.push_back(0x2C);
    put_le16(b, 0);
    put_le16(b, 0);
    put_le16(b, w);
    put_le16(b, h);
    b.push_back(0);
    b.push_back(7);  // LZW minimum code size: clear = 128, end = 129
    Bytes codes;
    for (size_t i = 0; i < indices.size(); ++i) {
      if (i % 64 == 0) codes.push_back(128);
      codes.push_back(indices[i]);
    }
    codes.push_back(129);
    for (size_t i = 0; i < codes.size(); i += 255) {
      const size_t n = std::min<size_t>(255, codes.size() - i);
      b.push_back(static_cast<uint8_t>(n));
      b.insert(b.end(), codes.begin() + i, codes.begin() + i + n);
    }
    b.push_back(0);
  }
  b.push_back(0x3B);
  return b;
}

TEST(IoImagePixels, GifFirstFrame) {
  const uint32_t w = 11, h = 7;
  Bytes first(w * h), second(w * h, 5);
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<uint8_t>((i * 13) % 128);
  const Bytes gif = make_gif(w, h, {first, second});
  EXPECT_EQ(detect_format(gif), Format::kGif);
  FlattenOptions options;
  options.pixels = true;
  const Flattened f = flatten(gif, options);
  ASSERT_EQ(f.modality, Modality::kImage);
  const Image back = decode_image(unflatten(f.modality, f.params, f.stream));
  ASSERT_EQ(back.width, w);
  ASSERT_EQ(back.height, h);
  ASSERT_EQ(back.channels, 4u);  // stb_image returns GIF frames as RGBA
  for (size_t i = 0; i < first.size(); ++i) {
    ASSERT_EQ(back.pixels[4 * i + 0], first[i] * 2) << i;
    ASSERT_EQ(back.pixels[4 * i + 1], 255 - first[i]) << i;
    ASSERT_EQ(back.pixels[4 * i + 2], static_cast<uint8_t>(first[i] * 5)) << i;
    ASSERT_EQ(back.pixels[4 * i + 3], 255) << i;
  }
  EXPECT_EQ(f.stream.size(), size_t{w} * h * 3);  // opaque: alpha left out
  EXPECT_NE(describe(f.modality, f.params).find("first frame"), std::string::npos);
}

// ---- Broken and absurd compressed images --------------------------------------------------

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFF;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

void png_chunk(Bytes& out, std::string_view type, const Bytes& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  append(out, type);
  out.insert(out.end(), data.begin(), data.end());
  put_be32(out, crc32(&out[start], out.size() - start));
}

// A PNG whose IDAT holds `scanlines` in stored (uncompressed) deflate blocks.
Bytes make_png(uint32_t w, uint32_t h, uint8_t bit_depth, uint8_t color_type,
               const Bytes& scanlines) {
  Bytes png;
  append(png, "\x89PNG\r\n\x1a\n");
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {bit_depth, color_type, 0, 0, 0});
  png_chunk(png, "IHDR", ihdr);
  Bytes z = {0x78, 0x01};
  uint32_t a = 1, b = 0;
  for (uint8_t v : scanlines) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  for (size_t i = 0; i == 0 || i < scanlines.size(); i += 65535) {
    const size_t n = std::min<size_t>(65535, scanlines.size() - i);
    z.push_back(i + n >= scanlines.size() ? 1 : 0);
    put_le16(z, static_cast<uint32_t>(n));
    put_le16(z, static_cast<uint32_t>(~n & 0xFFFF));
    z.insert(z.end(), scanlines.begin() + i, scanlines.begin() + i + n);
  }
  put_be32(z, b << 16 | a);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", {});
  return png;
}

TEST(IoImageBroken, HandMadePngDecodes) {
  // Sanity of the helper: a 2x2 8-bit gray PNG with filter 0.
  const Bytes png = make_png(2, 2, 8, 0, {0, 10, 20, 0, 30, 40});
  const Image img = decode_image(png);
  EXPECT_EQ(img.pixels, (Bytes{10, 20, 30, 40}));
}

TEST(IoImageBroken, HugeDeclaredPngIsRefusedBeforeDecoding) {
  const Bytes png = make_png(100000, 100000, 8, 2, Bytes(64, 0));
  const Flattened f = flatten(png, {});
  EXPECT_EQ(f.modality, Modality::kRaw);
  EXPECT_EQ(f.stream, png);
  FlattenOptions options;
  options.pixels = true;
  try {
    flatten(png, options);
    ADD_FAILURE() << "a 100000x100000 PNG was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupportedInput);
    EXPECT_NE(std::string(e.what()).find("100000x100000"), std::string::npos) << e.what();
  }
  // Under the pixel limit but far more than 300 bytes of deflate can hold.
  const Bytes liar = make_png(16000, 16000, 8, 0, Bytes(64, 0));
  EXPECT_THROW(flatten(liar, options), Error);
}

TEST(IoImageBroken, SixteenBitPngIsNotSqueezedIntoEightBits) {
  const Bytes png = make_png(2, 1, 16, 0, {0, 0x12, 0x34, 0x56, 0x78});
  EXPECT_EQ(flatten(png, {}).modality, Modality::kRaw);
  FlattenOptions options;
  options.pixels = true;
  try {
    flatten(png, options);
    ADD_FAILURE() << "16-bit PNG accepted as 8-bit pixels";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("16-bit"), std::string::npos) << e.what();
  }
}

TEST(IoImageBroken, EveryTruncationOfAPngFailsCleanlyWithPixels) {
  const Bytes png = encode_png(make_image(12, 10, 3));
  FlattenOptions options;
  options.pixels = true;
  for (size_t n = 0; n < png.size(); ++n) {
    const Bytes cut(png.begin(), png.begin() + n);
    const Flattened raw = flatten(cut, {});  // default: never throws, raw bytes
    ASSERT_EQ(raw.stream, cut);
    try {
      const Flattened f = flatten(cut, options);
      // stb_image tolerates a missing IEND; then the pixels must still be the real ones.
      const Image back = decode_image(unflatten(f.modality, f.params, f.stream));
      EXPECT_EQ(back.pixels, make_image(12, 10, 3).pixels) << "cut at " << n;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupportedInput) << "cut at " << n;
    }
  }
}

TEST(IoImageBroken, ForcedImageOnCompressedOrForeignInputExplains) {
  const Bytes png = encode_png(make_image(4, 4, 3));
  FlattenOptions forced;
  forced.as = Modality::kImage;
  try {
    flatten(png, forced);
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("PNG stores compressed pixels"), std::string::npos) << what;
    EXPECT_NE(what.find("--pixels"), std::string::npos) << what;
  }
  forced.pixels = true;
  EXPECT_EQ(flatten(png, forced).modality, Modality::kImage);
  const Bytes text = {'h', 'e', 'l', 'l', 'o', '\n'};
  EXPECT_THROW(flatten(text, forced), Error);
}

}  // namespace
}  // namespace mbz::io

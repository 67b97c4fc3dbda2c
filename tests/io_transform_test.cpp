// The flatten/unflatten API: options, the parameter layout pinned byte by byte (format
// stability), parameter validation, and bounded random mutation of inputs and parameters
// (flatten never fails on its own, unflatten(flatten(x)) == x, bad parameters give mbz::Error).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "codec/error.h"
#include "io/audio.h"
#include "io/image.h"
#include "io/pcm.h"
#include "io/transform.h"

namespace mbz::io {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

ErrorCode code_of(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "expected an mbz::Error";
  return ErrorCode::kIoRead;
}

// P5, 3x2, tile 4: the smallest file that exercises every image field.
Bytes tiny_pgm() {
  return bytes(std::string_view("P5\n3 2\n255\n\x01\x02\x03\x04\x05\x06", 17));
}

// Mono 16-bit WAV at 8000 Hz with two samples, 1 and -1.
Bytes tiny_wav() {
  return bytes(std::string_view(
      "RIFF\x28\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0"
      "data\x04\0\0\0\x01\0\xff\xff",
      48));
}

TEST(IoTransform, RawAndText) {
  const Bytes text = bytes("plain text\n");
  Flattened f = flatten(text, {});
  EXPECT_EQ(f.modality, Modality::kText);
  EXPECT_TRUE(f.params.empty());
  EXPECT_EQ(f.stream, text);
  EXPECT_EQ(unflatten(f.modality, f.params, f.stream), text);
  EXPECT_EQ(describe(f.modality, f.params), "byte-exact original");
  EXPECT_EQ(units(f.modality, f.params).subpixels, 0u);
  EXPECT_EQ(units(f.modality, f.params).samples, 0u);

  const Bytes binary = {0, 1, 2, 0xFF, 0x80};
  f = flatten(binary, {});
  EXPECT_EQ(f.modality, Modality::kRaw);
  EXPECT_EQ(f.stream, binary);

  f = flatten({}, {});
  EXPECT_EQ(f.modality, Modality::kRaw);
  EXPECT_TRUE(f.stream.empty());
  EXPECT_TRUE(unflatten(f.modality, f.params, f.stream).empty());
}

TEST(IoTransform, AsOverridesDetection) {
  FlattenOptions options;
  options.as = Modality::kRaw;
  Flattened f = flatten(tiny_wav(), options);
  EXPECT_EQ(f.modality, Modality::kRaw);
  EXPECT_EQ(f.stream, tiny_wav());
  options.as = Modality::kText;
  EXPECT_EQ(flatten(Bytes{0, 1, 2}, options).modality, Modality::kText);
  options.as = Modality::kAudio;
  EXPECT_EQ(flatten(tiny_wav(), options).modality, Modality::kAudio);
  options.as = Modality::kImage;
  EXPECT_EQ(code_of([&] { flatten(tiny_wav(), options); }), ErrorCode::kUnsupportedInput);
  options.as = static_cast<Modality>(7);
  EXPECT_EQ(code_of([&] { flatten(tiny_wav(), options); }), ErrorCode::kUsageBadArgument);
}

TEST(IoTransform, TileOption) {
  for (int tile : {4, 8, 16}) {
    FlattenOptions options;
    options.tile = tile;
    const Flattened f = flatten(tiny_pgm(), options);
    EXPECT_EQ(image_params(f.modality, f.params)->tile, uint32_t(tile));
  }
  EXPECT_EQ(image_params(Modality::kImage, flatten(tiny_pgm(), {}).params)->tile, kDefaultTile);
  for (int tile : {-8, 1, 3, 32}) {
    FlattenOptions options;
    options.tile = tile;
    EXPECT_EQ(code_of([&] { flatten(tiny_pgm(), options); }), ErrorCode::kUsageBadArgument) << tile;
    // Even for input that is not an image: a bad option is the caller's error.
    EXPECT_EQ(code_of([&] { flatten(bytes("text"), options); }), ErrorCode::kUsageBadArgument)
        << tile;
  }
}

// io/TRANSFORMS.md, kind 1: these bytes must never change meaning.
TEST(IoTransform, ImageExactParamsLayoutIsStable) {
  FlattenOptions options;
  options.tile = 4;
  const Flattened f = flatten(tiny_pgm(), options);
  const Bytes expected = {
      1,  1, 20, 4,                     // kind, version, source PNM, tile
      3,  0, 0,  0, 2,   0,   0,    0,  // width, height
      1,  0, 0,  0,                     // channels, flags, alpha, row padding
      11, 0, 0,  0, 'P', '5', '\n', '3', ' ', '2', '\n', '2', '5', '5', '\n',  // header
      0,  0, 0,  0,                                                            // trailer
  };
  EXPECT_EQ(f.params, expected);
  EXPECT_EQ(f.stream, (Bytes{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(unflatten(Modality::kImage, expected, f.stream), tiny_pgm());
}

// io/TRANSFORMS.md, kind 3.
TEST(IoTransform, AudioExactParamsLayoutIsStable) {
  const Flattened f = flatten(tiny_wav(), {});
  Bytes expected = {3, 1, 32, 0, 1, 0, 0x40, 0x1F, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 44, 0, 0, 0};
  const Bytes wav = tiny_wav();
  expected.insert(expected.end(), wav.begin(), wav.begin() + 44);
  expected.insert(expected.end(), {0, 0, 0, 0});
  EXPECT_EQ(f.params, expected);
  EXPECT_EQ(f.stream, (Bytes{1, 0, 0xFF, 0xFF}));
}

// io/TRANSFORMS.md, kinds 2 and 4.
TEST(IoTransform, DecodedParamsLayoutIsStable) {
  Image img{2, 1, 4, {10, 20, 30, 255, 40, 50, 60, 255}};
  FlattenOptions options;
  options.pixels = true;
  options.tile = 16;
  const Flattened image = flatten(encode_png(img), options);
  EXPECT_EQ(image.params, (Bytes{2, 1, 16, 16, 2, 0, 0, 0, 1, 0, 0, 0, 4, 4, 255, 1}));
  EXPECT_EQ(image.stream, (Bytes{10, 20, 30, 40, 50, 60}));

  options.samples = true;
  const Flattened audio =
      flatten(encode_audio({22050, 2, {1, 2, 3, 4}}, AudioContainer::kFlac), options);
  EXPECT_EQ(audio.params,
            (Bytes{4, 1, 34, 0, 2, 0, 0x22, 0x56, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 16}));
}

TEST(IoTransform, ParamValidation) {
  const Flattened image = flatten(tiny_pgm(), {});
  const Flattened audio = flatten(tiny_wav(), {});
  for (const Flattened* f : {&image, &audio}) {
    for (size_t n = 0; n < f->params.size(); ++n) {
      const Bytes prefix(f->params.begin(), f->params.begin() + n);
      EXPECT_EQ(code_of([&] { unflatten(f->modality, prefix, f->stream); }),
                ErrorCode::kCorruptTruncated)
          << n;
    }
    Bytes longer = f->params;
    longer.push_back(0);
    EXPECT_EQ(code_of([&] { unflatten(f->modality, longer, f->stream); }),
              ErrorCode::kCorruptTrailingData);
    Bytes version = f->params;
    version[1] = 2;
    EXPECT_EQ(code_of([&] { unflatten(f->modality, version, f->stream); }),
              ErrorCode::kFormatVersion);
    Bytes short_stream = f->stream;
    short_stream.pop_back();
    EXPECT_EQ(code_of([&] { unflatten(f->modality, f->params, short_stream); }),
              ErrorCode::kCorruptChunk);
  }
  // A kind that belongs to the other modality; parameters on raw data.
  EXPECT_EQ(code_of([&] { unflatten(Modality::kImage, audio.params, audio.stream); }),
            ErrorCode::kFormatField);
  EXPECT_EQ(code_of([&] { unflatten(Modality::kRaw, image.params, image.stream); }),
            ErrorCode::kFormatField);
  EXPECT_EQ(code_of([&] { describe(Modality::kText, image.params); }), ErrorCode::kFormatField);
  EXPECT_EQ(code_of([&] { unflatten(static_cast<Modality>(4), {}, {}); }), ErrorCode::kFormatField);

  // Absurd dimensions are refused from the parameters alone, before any allocation.
  Bytes huge = image.params;
  for (int i = 4; i < 12; ++i) huge[i] = 0xFF;
  EXPECT_EQ(code_of([&] { unflatten(Modality::kImage, huge, image.stream); }),
            ErrorCode::kFormatField);
  Bytes bad_tile = image.params;
  bad_tile[3] = 5;
  EXPECT_EQ(code_of([&] { unflatten(Modality::kImage, bad_tile, image.stream); }),
            ErrorCode::kFormatField);
  Bytes frames = audio.params;
  for (int i = 10; i < 18; ++i) frames[i] = 0xFF;
  EXPECT_EQ(code_of([&] { unflatten(Modality::kAudio, frames, audio.stream); }),
            ErrorCode::kFormatField);
  Bytes zero_channels = audio.params;
  zero_channels[4] = 0;
  EXPECT_EQ(code_of([&] { unflatten(Modality::kAudio, zero_channels, audio.stream); }),
            ErrorCode::kFormatField);
}

// Seeds covering every transform, for the mutation tests.
std::vector<Bytes> seeds() {
  std::vector<Bytes> out = {tiny_pgm(), tiny_wav(), bytes("some text\nmore text\n")};
  Image rgba{5, 3, 4, {}};
  for (int i = 0; i < 60; ++i) rgba.pixels.push_back(static_cast<uint8_t>(i * 9));
  out.push_back(encode_pnm(rgba));
  out.push_back(encode_png(rgba));
  // 24-bit bottom-up BMP, 3x2, one padding... three padding bytes per row.
  Bytes bmp = bytes(std::string_view(
      "BM\x46\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x03\0\0\0\x02\0\0\0\x01\0\x18\0", 30));
  bmp.resize(54, 0);
  for (int row = 0; row < 2; ++row) {
    for (int k = 0; k < 9; ++k) bmp.push_back(static_cast<uint8_t>(row * 50 + k));
    bmp.insert(bmp.end(), {0, 0, 0});
  }
  out.push_back(bmp);
  Pcm16 pcm{8000, 2, {}};
  for (int i = 0; i < 64; ++i) pcm.samples.push_back(static_cast<int16_t>(i * 517 - 9000));
  out.push_back(encode_audio(pcm, AudioContainer::kWav));
  out.push_back(encode_audio(pcm, AudioContainer::kFlac));
  return out;
}

TEST(IoTransform, SeedsTakeTheirExactPaths) {
  const std::vector<Bytes> s = seeds();
  const Modality expected[] = {Modality::kImage, Modality::kAudio, Modality::kText,
                               Modality::kImage, Modality::kRaw,   Modality::kImage,
                               Modality::kAudio, Modality::kRaw};
  ASSERT_EQ(s.size(), std::size(expected));
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(flatten(s[i], {}).modality, expected[i]) << "seed " << i;
  }
}

TEST(IoTransform, MutatedInputsAlwaysRoundTrip) {
  std::mt19937 rng(20240601);
  int exact = 0;
  for (const Bytes& seed : seeds()) {
    for (int round = 0; round < 300; ++round) {
      Bytes file = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 4) {
          case 0:  // flip a header byte
          case 1:
            if (!file.empty()) {
              file[rng() % std::min<size_t>(file.size(), 64)] = static_cast<uint8_t>(rng());
            }
            break;
          case 2:  // cut
            file.resize(rng() % (file.size() + 1));
            break;
          default:  // append
            for (int k = static_cast<int>(rng() % 8); k > 0; --k) {
              file.push_back(static_cast<uint8_t>(rng()));
            }
        }
      }
      const Flattened f = flatten(file, {});
      ASSERT_EQ(unflatten(f.modality, f.params, f.stream), file)
          << "seed size " << seed.size() << " round " << round;
      exact += f.modality == Modality::kImage || f.modality == Modality::kAudio;
      // Insisting may fail, but only with mbz::Error, and what it accepts must decode.
      for (int mode = 0; mode < 2; ++mode) {
        FlattenOptions insist;
        insist.pixels = insist.samples = true;
        if (mode == 1) {
          insist.as = detect(file) == Modality::kAudio ? Modality::kAudio : Modality::kImage;
        }
        try {
          const Flattened g = flatten(file, insist);
          const Bytes out = unflatten(g.modality, g.params, g.stream);
          const bool decoded =
              !g.params.empty() && (g.params[0] == uint8_t(TransformKind::kImagePixels) ||
                                    g.params[0] == uint8_t(TransformKind::kAudioSamples));
          if (decoded) {
            EXPECT_FALSE(out.empty());
          } else {
            EXPECT_EQ(out, file);
          }
        } catch (const Error& e) {
          EXPECT_EQ(e.band(), ErrorBand::kUnsupported) << e.what();
        }
      }
    }
  }
  EXPECT_GT(exact, 300);  // the mutations did not simply turn everything into raw
}

TEST(IoTransform, MutatedParamsNeverCrash) {
  std::mt19937 rng(7);
  for (const Bytes& seed : seeds()) {
    FlattenOptions options;
    options.pixels = options.samples = true;
    const Flattened f = flatten(seed, options);
    if (f.params.empty()) continue;
    for (int round = 0; round < 300; ++round) {
      Bytes params = f.params;
      for (int e = 1 + static_cast<int>(rng() % 3); e > 0; --e) {
        params[rng() % std::min<size_t>(params.size(), 24)] = static_cast<uint8_t>(rng());
      }
      try {
        unflatten(f.modality, params, f.stream);
        describe(f.modality, params);
        units(f.modality, params);
      } catch (const Error& e) {
        EXPECT_TRUE(e.band() == ErrorBand::kFormat || e.band() == ErrorBand::kCorrupt ||
                    e.band() == ErrorBand::kUnsupported)
            << e.what();
      }
    }
  }
}

TEST(IoTransform, DescribeAndExtensions) {
  const Flattened pgm = flatten(tiny_pgm(), {});
  EXPECT_EQ(describe(pgm.modality, pgm.params),
            "byte-exact original (PNM, 3x2, 1 channel, 16x16 tiles)");
  EXPECT_EQ(units(pgm.modality, pgm.params).subpixels, 6u);
  EXPECT_FALSE(audio_params(pgm.modality, pgm.params));
  const Flattened wav = flatten(tiny_wav(), {});
  EXPECT_EQ(describe(wav.modality, wav.params),
            "byte-exact original (WAV, 1 channel, 8000 Hz, 2 frames)");
  EXPECT_EQ(output_extension(wav.modality, wav.params), "");
  EXPECT_EQ(units(wav.modality, wav.params).samples, 2u);
  EXPECT_FALSE(image_params(wav.modality, wav.params));
  EXPECT_EQ(output_extension(Modality::kRaw, {}), "");
  EXPECT_TRUE(restores_original(pgm.modality, pgm.params));
  EXPECT_TRUE(restores_original(wav.modality, wav.params));
  EXPECT_TRUE(restores_original(Modality::kText, {}));
  FlattenOptions options;
  options.pixels = true;
  const Flattened png = flatten(encode_png(Image{2, 2, 1, {1, 2, 3, 4}}), options);
  EXPECT_FALSE(restores_original(png.modality, png.params));
  EXPECT_EQ(output_extension(png.modality, png.params), ".png");
}

}  // namespace
}  // namespace mbz::io

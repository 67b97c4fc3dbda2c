// The context mixer's image and audio models (codec/cm/layout.h, image_model.h,
// audio_model.h): exact round trips of image and audio streams through cm::encode, the
// cm and hybrid segment methods and whole archives, with one lane and several, at edge
// sizes; the layout read from an archive header; the revision the writer writes and the
// decoding of revision 1 archives; and that the models pay: a smooth image and a tone
// code clearly smaller with their layout than without.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "codec/archive.h"
#include "codec/checksum.h"
#include "codec/cm/cm_codec.h"
#include "codec/cm/image_model.h"
#include "codec/endian.h"
#include "codec/error.h"
#include "codec/segment_coder.h"
#include "codec_test_util.h"

namespace mbz {
namespace {

using cm::Layout;

// 1 MiB of counters, 16 KiB of match positions.
cm::Config config_with(const Layout& layout) {
  return cm::Config{18, 12, layout};
}

Layout image_layout(uint32_t width, uint32_t height, uint32_t channels, uint32_t tile) {
  Layout l;
  l.kind = Layout::Kind::kImage;
  l.width = width;
  l.height = height;
  l.channels = channels;
  l.tile = tile;
  return l;
}

Layout audio_layout(uint32_t channels) {
  Layout l;
  l.kind = Layout::Kind::kAudio;
  l.channels = channels;
  return l;
}

// A smooth image with a little noise, in tile order: what the layout describes.
std::vector<uint8_t> smooth_image(const Layout& l, uint32_t seed) {
  std::mt19937 rng(seed);
  const cm::ImageModel geometry(l, 8);
  std::vector<uint8_t> tiles(l.image_bytes());
  for (uint32_t y = 0; y < l.height; ++y)
    for (uint32_t x = 0; x < l.width; ++x)
      for (uint32_t c = 0; c < l.channels; ++c) {
        const double v = 128 + 60 * std::sin(x * 0.07 + c) * std::cos(y * 0.05) + 0.3 * x -
                         0.2 * y + static_cast<int>(rng() % 3) - 1;
        tiles[geometry.offset_of(x, y, c)] =
            static_cast<uint8_t>(std::clamp(static_cast<int>(v), 0, 255));
      }
  return tiles;
}

// Interleaved 16-bit little-endian samples: two tones and some noise, `bytes` bytes (an
// odd count cuts the last sample in half).
std::vector<uint8_t> tone(uint32_t channels, size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes / 2; ++i) {
    const size_t t = i / channels, c = i % channels;
    const double v = 9000 * std::sin(t * 0.031 + c) + 3000 * std::sin(t * 0.17) +
                     static_cast<int>(rng() % 61) - 30;
    const auto s = static_cast<uint16_t>(static_cast<int16_t>(v));
    out[2 * i] = static_cast<uint8_t>(s);
    out[2 * i + 1] = static_cast<uint8_t>(s >> 8);
  }
  if (bytes % 2) out.back() = 0x5A;
  return out;
}

void expect_cm_round_trip(const std::vector<uint8_t>& data, const Layout& layout, uint32_t lanes) {
  const cm::Config config = config_with(layout);
  const auto payload = cm::encode(data, nullptr, config, lanes);
  EXPECT_EQ(cm::decode(payload, data.size(), nullptr, config, lanes), data)
      << data.size() << " bytes, " << lanes << " lanes";
}

TEST(CmModality, ImageOffsetsFollowTheTileOrder) {
  // io/TRANSFORMS.md: W = 5, H = 3, C' = 1, T = 4 gives 0 1 2 3 5 6 7 8 10 11 12 13 4 9 14.
  const cm::ImageModel model(image_layout(5, 3, 1, 4), 8);
  const uint64_t raster_at[15] = {0, 1, 2, 3, 12, 4, 5, 6, 7, 13, 8, 9, 10, 11, 14};
  for (uint32_t i = 0; i < 15; ++i) EXPECT_EQ(model.offset_of(i % 5, i / 5, 0), raster_at[i]) << i;
  const cm::ImageModel rgb(image_layout(5, 3, 3, 4), 8);
  EXPECT_EQ(rgb.offset_of(4, 0, 2), 3 * 12 + 2u);
  EXPECT_EQ(rgb.offset_of(4, 2, 1), 3 * 14 + 1u);
}

TEST(CmModality, ImagesRoundTripAtEdgeSizes) {
  struct Case {
    uint32_t width, height, channels, tile;
  };
  for (const Case& c :
       {Case{1, 1, 1, 4}, Case{1, 1, 3, 16}, Case{2, 1, 4, 4}, Case{17, 5, 3, 4},
        Case{33, 9, 1, 16}, Case{13, 11, 4, 8}, Case{40, 23, 2, 8}, Case{1, 50, 3, 4}}) {
    const Layout layout = image_layout(c.width, c.height, c.channels, c.tile);
    const auto data = smooth_image(layout, c.width);
    for (uint32_t lanes : {1u, 2u, 7u}) expect_cm_round_trip(data, layout, lanes);
  }
}

TEST(CmModality, LaterSegmentsAndStreamsLongerThanTheImageRoundTrip) {
  Layout layout = image_layout(37, 29, 3, 8);
  const auto image = smooth_image(layout, 3);
  // The second half of the stream as a segment of its own: neighbours before its start
  // are not known to it.
  layout.offset = 1000;
  const std::vector<uint8_t> tail(image.begin() + 1000, image.end());
  for (uint32_t lanes : {1u, 5u}) expect_cm_round_trip(tail, layout, lanes);
  // A damaged archive may describe less image than its stream holds.
  layout.offset = 0;
  auto longer = image;
  longer.resize(image.size() + 300, 7);
  expect_cm_round_trip(longer, layout, 1);
  expect_cm_round_trip(longer, layout, 3);
}

TEST(CmModality, AudioRoundTripsAtEdgeSizes) {
  for (uint32_t channels : {1u, 2u, 3u, 8u})
    for (size_t bytes : {size_t{1}, size_t{2}, size_t{3}, size_t{17}, size_t{1001}, size_t{6000}}) {
      const auto data = tone(channels, bytes, static_cast<uint32_t>(bytes));
      for (uint32_t lanes : {1u, 2u, 5u}) expect_cm_round_trip(data, audio_layout(channels), lanes);
    }
  // A segment starting at an odd sample.
  Layout layout = audio_layout(2);
  layout.offset = 6;
  expect_cm_round_trip(tone(2, 3001, 9), layout, 3);
}

// A damaged payload decodes to some bytes or throws a corrupt-data error, never more, and
// the same both times: the neighbours and filters read only what was decoded.
TEST(CmModality, MutatedPayloadsNeverCrashAndDecodeTheSameTwice) {
  const Layout image = image_layout(23, 17, 3, 4);
  const std::pair<Layout, std::vector<uint8_t>> cases[] = {{image, smooth_image(image, 4)},
                                                           {audio_layout(2), tone(2, 2001, 4)}};
  std::mt19937 rng(77);
  for (const auto& [layout, data] : cases)
    for (uint32_t lanes : {1u, 3u}) {
      const cm::Config config = config_with(layout);
      const auto payload = cm::encode(data, nullptr, config, lanes);
      for (int trial = 0; trial < 40; ++trial) {
        auto bad = payload;
        for (int flips = 1 + trial % 3; flips > 0; --flips)
          bad[rng() % bad.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
        auto decode = [&] {
          try {
            return cm::decode(bad, data.size(), nullptr, config, lanes);
          } catch (const Error& e) {
            EXPECT_EQ(e.band(), ErrorBand::kCorrupt) << e.what();
            return std::vector<uint8_t>{};
          }
        };
        EXPECT_EQ(decode(), decode());
      }
    }
}

TEST(CmModality, InvalidLayoutsAreRefused) {
  for (const Layout& bad :
       {image_layout(0, 4, 3, 4), image_layout(4, 4, 5, 4), image_layout(4, 4, 3, 5),
        audio_layout(0), audio_layout(Layout::kMaxAudioChannels + 1)}) {
    EXPECT_FALSE(bad.valid());
    EXPECT_THROW(cm::encode(std::vector<uint8_t>(10, 1), nullptr, config_with(bad)), Error);
  }
}

// A segment through every method that predicts, with order2-v1 as the byte model.
TEST(CmModality, SegmentMethodsRoundTripWithLayouts) {
  const auto model = test::order2().create(4);
  const Layout image = image_layout(31, 19, 3, 8);
  const Layout audio = audio_layout(2);
  const std::pair<Layout, std::vector<uint8_t>> cases[] = {{image, smooth_image(image, 5)},
                                                           {audio, tone(2, 5001, 6)}};
  // lanes, and cm's: the same (version 2) or one (version 3; the model's methods are then
  // given up where they cannot beat cm)
  const std::pair<uint32_t, uint32_t> setups[] = {{1, 1}, {4, 4}, {4, 1}};
  for (const auto& [layout, data] : cases)
    for (const auto& [lanes, cm_lanes] : setups) {
      const SegmentSetup setup{lanes, config_with(layout), cm_lanes};
      const SegmentPayloads out = encode_segment(data, setup, model.get(), {}, SIZE_MAX);
      for (ChunkMethod m : {ChunkMethod::kModel, ChunkMethod::kCm, ChunkMethod::kHybrid}) {
        if (cm_lanes != lanes && m != ChunkMethod::kCm && !out.coded[static_cast<int>(m)]) continue;
        ASSERT_TRUE(out.coded[static_cast<int>(m)]) << method_name(m);
        std::vector<uint8_t> back(data.size());
        decode_segment(m, out.payload[static_cast<int>(m)], back, setup, model.get());
        EXPECT_EQ(back, data) << method_name(m) << ", " << lanes << " lanes (cm " << cm_lanes << ")";
      }
    }
}

// Transform parameters as io/ writes them (io/TRANSFORMS.md, kinds 2 and 4).
std::vector<uint8_t> image_params(uint32_t width, uint32_t height, uint8_t channels, uint8_t tile,
                                  uint8_t flags = 0) {
  std::vector<uint8_t> p = {2, 1, 16, tile};
  store_le(p, width, 4);
  store_le(p, height, 4);
  p.insert(p.end(), {channels, flags, 255, 1});
  return p;
}

std::vector<uint8_t> audio_params(uint16_t channels) {
  std::vector<uint8_t> p = {4, 1, 34, 0};
  store_le(p, channels, 2);
  store_le(p, 44100, 4);
  store_le(p, 1000, 8);
  p.insert(p.end(), {1, 16});
  return p;
}

TEST(CmModality, LayoutComesFromTheHeader) {
  Header h = test::header_for(12, 0);
  h.modality = 2;
  h.params = image_params(64, 48, 4, 8, 4);  // constant alpha: 3 channels in the stream
  const Layout image = stream_layout(h);
  EXPECT_EQ(image.kind, Layout::Kind::kImage);
  EXPECT_EQ(image.width, 64u);
  EXPECT_EQ(image.height, 48u);
  EXPECT_EQ(image.channels, 3u);
  EXPECT_EQ(image.tile, 8u);
  EXPECT_EQ(segment_setup(h, 3).cm.layout.offset, 3u << 12);
  EXPECT_EQ(cm_revision_needed(h), 2);

  h.cm_revision = 1;  // revision 1 knew no layouts
  EXPECT_EQ(stream_layout(h).kind, Layout::Kind::kBytes);
  h.cm_revision = kCmRevision;

  h.params[1] = 2;  // a transform version this build does not know
  EXPECT_EQ(stream_layout(h).kind, Layout::Kind::kBytes);
  h.params = image_params(64, 48, 3, 6);  // no such tile
  EXPECT_EQ(stream_layout(h).kind, Layout::Kind::kBytes);

  h.modality = 3;
  h.params = audio_params(2);
  EXPECT_EQ(stream_layout(h).kind, Layout::Kind::kAudio);
  EXPECT_EQ(stream_layout(h).channels, 2u);
  h.params = image_params(64, 48, 3, 8);  // an image transform under the audio modality
  EXPECT_EQ(stream_layout(h).kind, Layout::Kind::kBytes);

  h.modality = 1;
  h.params.clear();
  EXPECT_EQ(stream_layout(h).kind, Layout::Kind::kBytes);
  EXPECT_EQ(cm_revision_needed(h), 1);
}

std::vector<uint8_t> compress(std::span<const uint8_t> stream, uint8_t modality,
                              std::vector<uint8_t> params, uint32_t lanes, uint8_t revision,
                              int chunk_log = 16) {
  Header h = test::header_for(chunk_log, stream.size());
  h.modality = modality;
  h.params = std::move(params);
  h.lanes = lanes;
  h.cm_revision = revision;
  h.cm_context_bits = 18;
  h.cm_match_bits = 12;
  EncodeOptions options;
  options.zstd_level = 0;
  options.verify = true;
  return compress_buffer(stream, h, test::order2(), options);
}

uint8_t revision_of(std::span<const uint8_t> archive) {
  MemoryReader in(archive);
  return ArchiveReader(in).header().cm_revision;
}

TEST(CmModality, ArchivesRoundTripAndNameTheRevisionTheyNeed) {
  const Layout layout = image_layout(70, 60, 3, 16);
  const auto pixels = smooth_image(layout, 8);
  const auto samples = tone(2, 30002, 8);
  const std::vector<uint8_t> text = test::text_bytes(5000, 8);
  DecodeOptions decode;
  for (uint32_t lanes : {1u, 3u}) {
    // An image of several segments (4 KiB each): later ones start mid-image.
    for (int chunk_log : {16, 12}) {
      const auto archive =
          compress(pixels, 2, image_params(70, 60, 3, 16), lanes, kCmRevision, chunk_log);
      EXPECT_EQ(revision_of(archive), 2);
      EXPECT_EQ(decompress_buffer(archive, &test::order2(), decode), pixels);
    }
    const auto audio = compress(samples, 3, audio_params(2), lanes, kCmRevision);
    EXPECT_EQ(revision_of(audio), 2);
    EXPECT_EQ(decompress_buffer(audio, &test::order2(), decode), samples);
    // Text codes as revision 1 did, so the archive says 1: older readers read it.
    const auto plain = compress(text, 1, {}, lanes, kCmRevision);
    EXPECT_EQ(revision_of(plain), 1);
    EXPECT_EQ(decompress_buffer(plain, &test::order2(), decode), text);
  }
}

TEST(CmModality, Revision1ImageArchivesStillDecode) {
  // A writer asked for revision 1 codes an image as revision 1 did: no layout.
  const Layout layout = image_layout(50, 40, 3, 8);
  const auto pixels = smooth_image(layout, 10);
  const auto old = compress(pixels, 2, image_params(50, 40, 3, 8), 1, 1);
  const auto now = compress(pixels, 2, image_params(50, 40, 3, 8), 1, kCmRevision);
  EXPECT_EQ(revision_of(old), 1);
  EXPECT_LT(now.size(), old.size());
  EXPECT_EQ(decompress_buffer(old, &test::order2(), {}), pixels);
}

// The models must pay for themselves, with a margin: without them the context mixer sees
// these streams as bytes. (Measured when written: the image codes to 0.69 (one channel)
// and 0.48 (three) of its size without the layout, the tone to 0.59 and 0.61.)
TEST(CmModality, ImageContextsHelpOnASmoothImage) {
  for (uint32_t channels : {1u, 3u}) {
    const Layout layout = image_layout(160, 120, channels, 16);
    const auto data = smooth_image(layout, 11);
    const size_t with = cm::encode(data, nullptr, config_with(layout)).size();
    const size_t without = cm::encode(data, nullptr, config_with({})).size();
    EXPECT_LT(with, without * 4 / 5) << channels << " channels: " << with << " vs " << without;
  }
}

TEST(CmModality, AudioContextsHelpOnToneAndNoise) {
  for (uint32_t channels : {1u, 2u}) {
    const auto data = tone(channels, 120000, 12);
    const size_t with = cm::encode(data, nullptr, config_with(audio_layout(channels))).size();
    const size_t without = cm::encode(data, nullptr, config_with({})).size();
    EXPECT_LT(with, without * 7 / 10) << channels << " channels: " << with << " vs " << without;
  }
}

// Switching the modality model off (cm::Config::ablate, for benchmarks) codes a stream
// exactly as without its layout, and decodes with the same switch.
TEST(CmModality, AblatedModalityCodesAsPlainBytes) {
  const Layout image = image_layout(37, 29, 3, 8);
  const std::pair<Layout, std::vector<uint8_t>> cases[] = {{image, smooth_image(image, 13)},
                                                           {audio_layout(2), tone(2, 3001, 14)}};
  for (const auto& [layout, data] : cases)
    for (uint32_t lanes : {1u, 3u}) {
      cm::Config off = config_with(layout);
      off.ablate = cm::kAblateModality;
      const auto payload = cm::encode(data, nullptr, off, lanes);
      EXPECT_EQ(payload, cm::encode(data, nullptr, config_with({}), lanes));
      EXPECT_NE(payload, cm::encode(data, nullptr, config_with(layout), lanes));
      EXPECT_EQ(cm::decode(payload, data.size(), nullptr, off, lanes), data);
    }
}

// Format stability of revision 2: the payloads of a fixed image and a fixed stereo stream
// (integer formulas and std::mt19937 only, the same on every machine), pinned. A change to
// the image or audio model changes them: bump kCmRevision and keep the old revision
// decodable (codec/cm/README.md) before updating these.
TEST(CmModality, GoldenPayloadHashes) {
  const Layout image = image_layout(40, 24, 3, 8);
  const cm::ImageModel geometry(image, 8);
  std::mt19937 rng(5);
  std::vector<uint8_t> pixels(image.image_bytes());
  for (uint32_t y = 0; y < image.height; ++y)
    for (uint32_t x = 0; x < image.width; ++x)
      for (uint32_t c = 0; c < image.channels; ++c)
        pixels[geometry.offset_of(x, y, c)] =
            static_cast<uint8_t>((x * 5 + y * 3 + c * 70 + x * y / 16 + rng() % 5) & 255);
  std::vector<uint8_t> samples;
  for (int t = 0; t < 1500; ++t)
    for (int c = 0; c < 2; ++c) {
      const int v = (t * 37 % 4000) - 2000 + c * 500 + static_cast<int>(rng() % 41) - 20;
      samples.push_back(static_cast<uint8_t>(v & 255));
      samples.push_back(static_cast<uint8_t>((v >> 8) & 255));
    }
  const auto image_payload = cm::encode(pixels, nullptr, config_with(image), 2);
  const auto audio_payload = cm::encode(samples, nullptr, config_with(audio_layout(2)), 2);
  EXPECT_EQ(image_payload.size(), 1533u);
  EXPECT_EQ(xxh64(image_payload), 0x13c8c89dd974de84u) << std::hex << xxh64(image_payload);
  EXPECT_EQ(audio_payload.size(), 2839u);
  EXPECT_EQ(xxh64(audio_payload), 0x8e68bd6445b134d8u) << std::hex << xxh64(audio_payload);
}

}  // namespace
}  // namespace mbz

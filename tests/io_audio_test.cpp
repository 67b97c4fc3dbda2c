// Audio: byte-exact 16-bit WAV/AIFF round trips (mono, stereo, odd frame counts, LIST and
// other chunks, lying sizes), samples-exact FLAC through libsndfile, and refusals.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "codec/error.h"
#include "io/audio.h"
#include "io/pcm.h"
#include "io/transform.h"
#include "io_test_util.h"

namespace mbz::io {
namespace {

using namespace test;

std::vector<int16_t> make_samples(size_t frames, uint16_t channels, uint32_t seed = 7) {
  std::vector<int16_t> s(frames * channels);
  uint32_t x = seed;
  for (size_t i = 0; i < s.size(); ++i) {
    x = x * 1103515245 + 12345;
    s[i] = static_cast<int16_t>((i % channels) * 1000 + static_cast<int>(i / channels) * 37 -
                                20000 + (x >> 20));
  }
  return s;
}

struct WavSpec {
  uint16_t channels = 1;
  uint32_t rate = 8000;
  uint16_t bits = 16;
  bool extensible = false;
  std::string before_data;                // whole chunks placed between fmt and data
  std::string after_data;                 // bytes after the data chunk
  std::optional<uint32_t> declared_data;  // a data size that lies
  bool odd_data_byte = false;             // data chunk one byte longer, plus its pad byte
};

// A WAV around `data`, the payload bytes as they are to be stored.
Bytes make_wav_bytes(Bytes data, const WavSpec& spec) {
  if (spec.odd_data_byte) data.push_back(0x5A);
  Bytes b;
  append(b, "RIFF");
  put(b, 0, 4);  // patched below
  append(b, "WAVEfmt ");
  const uint16_t block = static_cast<uint16_t>(spec.channels * spec.bits / 8);
  put(b, spec.extensible ? 40 : 16, 4);
  put(b, spec.extensible ? 0xFFFE : 1, 2);
  put(b, spec.channels, 2);
  put(b, spec.rate, 4);
  put(b, spec.rate * block, 4);
  put(b, block, 2);
  put(b, spec.bits, 2);
  if (spec.extensible) {
    put(b, 22, 2);
    put(b, spec.bits, 2);
    put(b, 0x3, 4);
    const uint8_t guid[16] = {1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71};
    b.insert(b.end(), guid, guid + 16);
  }
  append(b, spec.before_data);
  append(b, "data");
  put(b, spec.declared_data.value_or(static_cast<uint32_t>(data.size())), 4);
  b.insert(b.end(), data.begin(), data.end());
  if (data.size() % 2) b.push_back(0);
  append(b, spec.after_data);
  const uint32_t riff = static_cast<uint32_t>(b.size() - 8);
  for (int i = 0; i < 4; ++i) b[4 + i] = static_cast<uint8_t>(riff >> (8 * i));
  return b;
}

Bytes make_wav(const std::vector<int16_t>& samples, const WavSpec& spec) {
  Bytes data;
  for (int16_t s : samples) put(data, static_cast<uint16_t>(s), 2);
  return make_wav_bytes(data, spec);
}

std::string list_chunk() {
  // LIST/INFO with an odd-sized ISFT string, so the pad byte rule is exercised.
  std::string info = "INFOISFT";
  info += std::string("\x09\0\0\0", 4) + "mbz test" + std::string("\0\0", 2);
  return "LIST" + std::string(1, static_cast<char>(info.size())) + std::string(3, '\0') + info;
}

// The common check of a byte-exact audio transform.
void expect_exact_audio(const Bytes& file, const std::vector<int16_t>& samples, uint16_t channels) {
  const Flattened f = flatten(file, {});
  ASSERT_EQ(f.modality, Modality::kAudio);
  ASSERT_EQ(f.params.at(0), uint8_t(TransformKind::kAudioExact));
  EXPECT_EQ(f.stream, samples_to_bytes(samples));
  const auto p = audio_params(f.modality, f.params);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->channels, channels);
  EXPECT_EQ(p->frames, samples.size() / channels);
  EXPECT_EQ(units(f.modality, f.params).samples, samples.size());
  EXPECT_EQ(unflatten(f.modality, f.params, f.stream), file);
}

TEST(IoAudioWav, MonoStereoOddFramesByteExact) {
  for (uint16_t channels : {1, 2, 6}) {
    for (size_t frames : {0, 1, 3, 1001}) {
      const auto samples = make_samples(frames, channels);
      WavSpec spec;
      spec.channels = channels;
      expect_exact_audio(make_wav(samples, spec), samples, channels);
      spec.extensible = true;
      expect_exact_audio(make_wav(samples, spec), samples, channels);
    }
  }
}

TEST(IoAudioWav, ExtraChunksBeforeAndAfterData) {
  const auto samples = make_samples(333, 2);
  WavSpec spec;
  spec.channels = 2;
  spec.rate = 44100;
  spec.before_data = list_chunk() + std::string("fact\4\0\0\0\x4d\x01\0\0", 12);
  spec.after_data = list_chunk() + std::string("id3 \3\0\0\0ID3\0", 12);
  const Bytes file = make_wav(samples, spec);
  expect_exact_audio(file, samples, 2);
  const Flattened f = flatten(file, {});
  EXPECT_EQ(describe(f.modality, f.params),
            "byte-exact original (WAV, 2 channels, 44100 Hz, 333 frames)");
}

TEST(IoAudioWav, OddDataSizeKeepsTheStrayByte) {
  const auto samples = make_samples(10, 1);
  WavSpec spec;
  spec.odd_data_byte = true;
  expect_exact_audio(make_wav(samples, spec), samples, 1);
}

TEST(IoAudioWav, DataSizeThatLies) {
  const auto samples = make_samples(101, 2);
  WavSpec spec;
  spec.channels = 2;
  // Larger than the file (and the streaming value 0xFFFFFFFF): the frames that are there.
  for (uint32_t declared : {100000u, 0xFFFFFFFFu}) {
    spec.declared_data = declared;
    expect_exact_audio(make_wav(samples, spec), samples, 2);
  }
  // Smaller than the samples: the rest are trailing bytes, still byte-exact.
  spec.declared_data = 40;  // 10 frames
  const Bytes file = make_wav(samples, spec);
  const Flattened f = flatten(file, {});
  ASSERT_EQ(f.modality, Modality::kAudio);
  EXPECT_EQ(audio_params(f.modality, f.params)->frames, 10u);
  EXPECT_EQ(unflatten(f.modality, f.params, f.stream), file);
}

TEST(IoAudioWav, BrokenOrNonSixteenBitFallsBackToRaw) {
  const auto samples = make_samples(50, 2);
  WavSpec spec;
  spec.channels = 2;
  Bytes chunk_past_end = make_wav(samples, spec);
  chunk_past_end[16] = 0xF0;  // fmt chunk size 0xF0 + ...: runs past the end
  chunk_past_end[17] = 0xFF;
  Bytes bad_align = make_wav(samples, spec);
  bad_align[32] = 3;  // block align 3 for 2 channels of 16 bits
  WavSpec wide = spec;
  wide.bits = 24;  // 50 frames of 2 x 16 bits = 33 frames of 2 x 24 bits, plus 2 bytes
  Bytes no_data = make_wav(samples, spec);
  no_data.resize(36);  // header only
  for (const Bytes& file : {chunk_past_end, bad_align, make_wav(samples, wide), no_data}) {
    const Flattened f = flatten(file, {});
    EXPECT_EQ(f.modality, Modality::kRaw);
    EXPECT_EQ(f.stream, file);
    FlattenOptions forced;
    forced.as = Modality::kAudio;
    try {
      flatten(file, forced);
      ADD_FAILURE() << "--as audio accepted a broken WAV";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupportedInput);
      EXPECT_NE(std::string(e.what()).find("WAV"), std::string::npos) << e.what();
    }
  }
}

TEST(IoAudioWav, EveryTruncationRoundTrips) {
  WavSpec spec;
  spec.channels = 2;
  spec.after_data = list_chunk();
  const Bytes file = make_wav(make_samples(40, 2), spec);
  for (size_t n = 0; n <= file.size(); ++n) {
    const Bytes cut(file.begin(), file.begin() + n);
    const Flattened f = flatten(cut, {});
    ASSERT_EQ(unflatten(f.modality, f.params, f.stream), cut) << "cut at " << n;
    if (n >= 44 + 4) {
      ASSERT_EQ(f.modality, Modality::kAudio) << "cut at " << n;
    }
  }
}

// ---- AIFF ---------------------------------------------------------------------------------

Bytes make_aiff(const std::vector<int16_t>& samples, uint16_t channels,
                std::string_view aifc_kind = "") {
  const bool aifc = !aifc_kind.empty();
  const bool little = aifc_kind == "sowt";
  Bytes b;
  append(b, "FORM");
  put(b, 0, 4);
  append(b, aifc ? "AIFC" : "AIFF");
  if (aifc) {
    append(b, "FVER");
    put(b, 4, 4, true);
    put(b, 0xA2805140, 4, true);
  }
  append(b, "COMM");
  put(b, aifc ? 24 : 18, 4, true);
  put(b, channels, 2, true);
  put(b, samples.size() / channels, 4, true);
  put(b, 16, 2, true);
  const uint8_t rate_22050[10] = {0x40, 0x0D, 0xAC, 0x44, 0, 0, 0, 0, 0, 0};
  b.insert(b.end(), rate_22050, rate_22050 + 10);
  if (aifc) {
    append(b, aifc_kind);
    append(b, std::string("\x00\x00", 2));  // empty Pascal string, padded
  }
  append(b, "SSND");
  put(b, 8 + samples.size() * 2, 4, true);
  put(b, 0, 4, true);
  put(b, 0, 4, true);
  for (int16_t s : samples) put(b, static_cast<uint16_t>(s), 2, !little);
  const uint32_t form = static_cast<uint32_t>(b.size() - 8);
  for (int i = 0; i < 4; ++i) b[4 + i] = static_cast<uint8_t>(form >> (8 * (3 - i)));
  return b;
}

TEST(IoAudioAiff, BigAndLittleEndianByteExact) {
  for (uint16_t channels : {1, 2}) {
    const auto samples = make_samples(257, channels);
    for (std::string_view kind : {"", "NONE", "twos", "sowt"}) {
      const Bytes file = make_aiff(samples, channels, kind);
      expect_exact_audio(file, samples, channels);
      EXPECT_EQ(audio_params(Modality::kAudio, flatten(file, {}).params)->sample_rate, 22050u);
    }
  }
  // Compressed AIFC is not PCM: raw bytes.
  const Bytes ulaw = make_aiff(make_samples(10, 1), 1, "ulaw");
  EXPECT_EQ(flatten(ulaw, {}).modality, Modality::kRaw);
}

// ---- libsndfile: FLAC and decoded samples -------------------------------------------------

TEST(IoAudioSamples, GeneratedFlacRoundTripsSamples) {
  for (uint16_t channels : {1, 2}) {
    Pcm16 pcm{44100, channels, make_samples(4097, channels)};
    const Bytes flac = encode_audio(pcm, AudioContainer::kFlac);
    EXPECT_EQ(detect_format(flac), Format::kFlac);
    const Flattened raw = flatten(flac, {});
    EXPECT_EQ(raw.modality, Modality::kRaw);  // byte-exact by default
    EXPECT_EQ(raw.stream, flac);

    FlattenOptions options;
    options.samples = true;
    const Flattened f = flatten(flac, options);
    ASSERT_EQ(f.modality, Modality::kAudio);
    EXPECT_EQ(f.stream, samples_to_bytes(pcm.samples));
    EXPECT_EQ(output_extension(f.modality, f.params), ".flac");
    const Bytes out = unflatten(f.modality, f.params, f.stream);
    const DecodedAudio back = decode_audio(out);
    EXPECT_EQ(back.format, Format::kFlac);
    EXPECT_EQ(back.pcm.sample_rate, 44100u);
    EXPECT_EQ(back.pcm.channels, channels);
    EXPECT_EQ(back.pcm.samples, pcm.samples);
  }
}

TEST(IoAudioSamples, FlacFromTheReferenceEncoderMatchesItsWav) {
  // io_tone.flac is `flac -8 --no-padding io_tone.wav` (sox: 0.1 s of 300 Hz, 16 kHz mono).
  const Bytes flac = read_fixture("io_tone.flac");
  const Bytes wav = read_fixture("io_tone.wav");
  ASSERT_FALSE(flac.empty());
  const Flattened exact = flatten(wav, {});
  ASSERT_EQ(exact.modality, Modality::kAudio);
  EXPECT_EQ(unflatten(exact.modality, exact.params, exact.stream), wav);

  FlattenOptions options;
  options.samples = true;
  const Flattened f = flatten(flac, options);
  ASSERT_EQ(f.modality, Modality::kAudio);
  EXPECT_EQ(f.stream, exact.stream);  // the same 1600 samples as the WAV
  EXPECT_EQ(units(f.modality, f.params).samples, 1600u);
  EXPECT_EQ(describe(f.modality, f.params),
            "FLAC with identical samples (from FLAC, 16-bit, 1 channel, 16000 Hz, 1600 frames)");
  EXPECT_EQ(decode_audio(unflatten(f.modality, f.params, f.stream)).pcm.samples,
            bytes_to_samples(exact.stream));
}

TEST(IoAudioSamples, EightBitWavKeepsEightBitSamples) {
  Bytes data(301);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  WavSpec spec;
  spec.bits = 8;
  const Bytes file = make_wav_bytes(data, spec);
  EXPECT_EQ(flatten(file, {}).modality, Modality::kRaw);
  FlattenOptions options;
  options.samples = true;
  const Flattened f = flatten(file, options);
  ASSERT_EQ(f.modality, Modality::kAudio);
  const auto samples = bytes_to_samples(f.stream);
  ASSERT_EQ(samples.size(), data.size());
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(samples[i], (data[i] - 128) * 256) << i;
  const Bytes out = unflatten(f.modality, f.params, f.stream);
  EXPECT_EQ(output_extension(f.modality, f.params), ".wav");
  // libsndfile writes 8-bit WAV: the payload is the original unsigned bytes.
  EXPECT_EQ(decode_audio(out).bits, 8u);
  EXPECT_EQ(decode_audio(out).pcm.samples, samples);
}

TEST(IoAudioSamples, WideSamplesAndGarbageAreRefused) {
  WavSpec wide;
  wide.bits = 24;
  const Bytes wav24 = make_wav_bytes(Bytes(60, 0x11), wide);  // 20 frames of 24-bit mono
  FlattenOptions options;
  options.samples = true;
  try {
    flatten(wav24, options);
    ADD_FAILURE() << "24-bit accepted as 16-bit samples";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupportedInput);
    EXPECT_NE(std::string(e.what()).find("24"), std::string::npos) << e.what();
  }
  // --samples does not touch input that is not audio.
  const Bytes text = {'a', 'b', 'c', '\n'};
  EXPECT_EQ(flatten(text, options).modality, Modality::kText);
  // --as audio --samples on garbage: a clear error.
  options.as = Modality::kAudio;
  EXPECT_THROW(flatten(text, options), Error);
}

TEST(IoAudioSamples, TruncatedFlacIsRefusedOrExact) {
  Pcm16 pcm{8000, 1, make_samples(5000, 1)};
  const Bytes flac = encode_audio(pcm, AudioContainer::kFlac);
  FlattenOptions options;
  options.samples = true;
  // 42 bytes: the magic and STREAMINFO, declaring 5000 frames, and no audio frames at all.
  for (size_t n : {size_t{42}, size_t{100}, flac.size() / 2, flac.size() - 1}) {
    const Bytes cut(flac.begin(), flac.begin() + n);
    EXPECT_EQ(flatten(cut, {}).stream, cut);
    try {
      const Flattened f = flatten(cut, options);
      ADD_FAILURE() << "truncated FLAC (" << n << " of " << flac.size() << " bytes) decoded to "
                    << f.stream.size() / 2 << " samples";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupportedInput) << e.what();
    }
  }
}

TEST(IoAudioHelpers, SampleBytesAreLittleEndian) {
  const std::vector<int16_t> s = {0, 1, -2, 0x1234, -32768, 32767};
  const Bytes b = samples_to_bytes(s);
  EXPECT_EQ(b, (Bytes{0, 0, 1, 0, 0xFE, 0xFF, 0x34, 0x12, 0x00, 0x80, 0xFF, 0x7F}));
  EXPECT_EQ(bytes_to_samples(b), s);
  EXPECT_THROW(bytes_to_samples(Bytes{1, 2, 3}), Error);
  Bytes swapped = b;
  swap_byte_pairs(swapped);
  EXPECT_EQ(swapped[0 + 2], 0);
  EXPECT_EQ(swapped[3], 1);
}

TEST(IoAudioHelpers, EightBitWriterRefusesLowBits) {
  Pcm16 pcm{8000, 1, {256, 512, 3}};
  EXPECT_THROW(encode_audio(pcm, AudioContainer::kWav, 8), Error);
  pcm.samples[2] = -256;
  EXPECT_EQ(decode_audio(encode_audio(pcm, AudioContainer::kWav, 8)).pcm.samples, pcm.samples);
}

}  // namespace
}  // namespace mbz::io

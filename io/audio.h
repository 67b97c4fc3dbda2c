// Audio through libsndfile: decoding any format it reads (FLAC, Ogg, AIFF, WAV of any
// sample format, ...) into 16-bit samples, and writing WAV and FLAC. Used by `--samples`;
// byte-exact 16-bit WAV/AIFF goes through io/pcm.h instead and never touches libsndfile.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/detect.h"

namespace mbz::io {

// 16-bit PCM in memory: frames of `channels` interleaved samples.
struct Pcm16 {
  uint32_t sample_rate = 0;
  uint16_t channels = 0;
  std::vector<int16_t> samples;

  uint64_t frames() const { return channels ? samples.size() / channels : 0; }
};

// The containers unflatten writes decoded audio into. Stored in transform parameters.
enum class AudioContainer : uint8_t { kWav = 1, kFlac = 2 };

struct DecodedAudio {
  Pcm16 pcm;
  Format format = Format::kUnknown;  // the source container, as detect_format() saw it
  // The narrowest width that holds every source sample exactly: 8 for 8-bit sources (their
  // samples come back shifted left by 8, so writing 8-bit output gives identical samples),
  // 16 otherwise.
  uint32_t bits = 16;
  // Vorbis, Opus and MPEG decode to floating point; their samples are libsndfile's clipped
  // 16-bit rendering of the decoder's output, not something the file stored.
  bool lossy = false;
};

// Decodes with libsndfile. Throws mbz::Error (kUnsupportedInput) saying why: libsndfile
// cannot open it, its samples are wider than 16 bits or floating point (they would not
// survive), it has more than 65535 channels or kMaxSamples samples, or decoding stops
// before the number of frames its header declares.
DecodedAudio decode_audio(std::span<const uint8_t> file);

// Writes WAV (bits 8: unsigned 8-bit PCM, 16: 16-bit PCM) or FLAC (8 or 16 bits) with
// libsndfile. With bits 8, every sample must have a zero low byte (a DecodedAudio with
// bits 8 does). Throws mbz::Error (kUnsupportedFeature) for a combination libsndfile
// refuses, (kIoWrite) when writing fails.
std::vector<uint8_t> encode_audio(const Pcm16& pcm, AudioContainer container, uint32_t bits = 16);

// Whether encode_audio accepts this shape (FLAC, for one, limits channels and sample rates).
bool can_encode(uint32_t sample_rate, uint16_t channels, AudioContainer container, uint32_t bits);

// "WAV" or "FLAC"; "unknown" for a value outside the enum.
const char* container_name(AudioContainer container);

}  // namespace mbz::io

// Audio files whose samples are stored as plain 16-bit PCM, parsed well enough to split a
// file into header bytes, a sample payload and trailing bytes, so that the payload can be
// coded as little-endian samples and the file rebuilt byte for byte:
//   - WAV (RIFF, RF64, BW64) with format tag PCM or EXTENSIBLE/PCM, 16 bits per sample;
//   - AIFF, and AIFC with compression NONE, twos (big-endian) or sowt (little-endian).
// Also the sample-buffer helpers shared with io/audio.h.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/detect.h"

namespace mbz::io {

// The largest number of samples (frames * channels) io/ accepts: 2^28 samples is 512 MiB of
// 16-bit PCM, 47 minutes of 48 kHz 48-channel or 25 hours of 48 kHz stereo.
inline constexpr uint64_t kMaxSamples = uint64_t{1} << 28;

// Where the samples of a 16-bit PCM file are and how they are stored.
struct PcmLayout {
  Format format = Format::kUnknown;  // kWav or kAiff
  uint16_t channels = 0;
  uint32_t sample_rate = 0;  // informational: the header bytes hold the real one
  uint64_t frames = 0;       // whole frames in the payload
  bool big_endian = false;   // AIFF; the stream is always little-endian
  uint64_t header_size = 0;  // the payload starts at this offset in the file

  uint64_t samples() const { return frames * channels; }
  uint64_t payload_size() const { return samples() * 2; }
};

// 16-bit PCM WAV. The payload is the data chunk, cut to whole frames and to the end of the
// file: a data size that overstates the file (streamed WAVs write 0 or 0xFFFFFFFF) is kept
// verbatim in the header and the samples that are there are still coded as audio; bytes
// after the last whole frame (an odd byte, chunks such as LIST after data) are trailing
// bytes. Throws mbz::Error (kUnsupportedInput) saying why for anything else: another
// sample format or width, no fmt chunk before data, a chunk running past the file.
PcmLayout parse_wav(std::span<const uint8_t> file);

// 16-bit PCM AIFF/AIFC, with the same rules (SSND chunk in place of data). COMM must come
// before SSND.
PcmLayout parse_aiff(std::span<const uint8_t> file);

// parse_wav or parse_aiff, whichever the magic bytes call for.
PcmLayout parse_pcm(std::span<const uint8_t> file);

// Byte helpers for sample buffers: 16-bit samples <-> little-endian bytes, and an in-place
// swap of each byte pair (big-endian payload <-> little-endian stream).
std::vector<uint8_t> samples_to_bytes(std::span<const int16_t> samples);
std::vector<int16_t> bytes_to_samples(std::span<const uint8_t> bytes);  // size must be even
void swap_byte_pairs(std::span<uint8_t> bytes);

}  // namespace mbz::io

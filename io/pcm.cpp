#include "io/pcm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "codec/endian.h"
#include "codec/error.h"

namespace mbz::io {
namespace {

[[noreturn]] void unsupported(const char* format, const std::string& message) {
  throw Error(ErrorCode::kUnsupportedInput, std::string(format) + ": " + message);
}

bool is_id(const uint8_t* p, std::string_view id) {
  return std::memcmp(p, id.data(), 4) == 0;
}

std::string chunk_name(const uint8_t* p) {
  std::string s(reinterpret_cast<const char*>(p), 4);
  for (char& c : s) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  return "'" + s + "'";
}

// The payload runs from `start` for `declared` bytes, but never past the end of the file,
// and only whole frames count; what is left is trailing bytes.
void place_payload(const char* format, PcmLayout& layout, uint64_t start, uint64_t declared,
                   size_t file_size) {
  const uint64_t available = file_size - start;
  const uint64_t frame_bytes = uint64_t{layout.channels} * 2;
  layout.header_size = start;
  layout.frames = std::min(declared, available) / frame_bytes;
  if (layout.samples() > kMaxSamples) {
    unsupported(format, std::to_string(layout.samples()) + " samples is over the limit of " +
                            std::to_string(kMaxSamples));
  }
}

// 80-bit IEEE 754 extended (AIFF COMM sample rate) -> nearest integer, clamped to u32.
uint32_t extended_to_u32(const uint8_t* p) {
  const int exponent = ((p[0] & 0x7F) << 8 | p[1]) - 16383 - 63;
  uint64_t mantissa = 0;
  for (int i = 0; i < 8; ++i) mantissa = mantissa << 8 | p[2 + i];
  if (p[0] & 0x80) return 0;
  const double value = std::ldexp(static_cast<double>(mantissa), exponent);
  return value >= 4294967295.0 ? UINT32_MAX : static_cast<uint32_t>(std::llround(value));
}

// Tail of KSDATAFORMAT_SUBTYPE_PCM, {00000001-0000-0010-8000-00aa00389b71}, after the
// 16-bit format tag (mmreg.h).
constexpr uint8_t kPcmGuidTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                      0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

void parse_wav_fmt(const uint8_t* body, uint32_t size, PcmLayout& layout) {
  if (size < 16) {
    unsupported("WAV", "fmt chunk of " + std::to_string(size) + " bytes, expected 16 or more");
  }
  uint16_t tag = le16(body);
  const uint16_t channels = le16(body + 2);
  const uint32_t rate = le32(body + 4);
  const uint16_t block_align = le16(body + 12);
  const uint16_t bits = le16(body + 14);
  if (tag == 0xFFFE) {  // WAVE_FORMAT_EXTENSIBLE: the real tag is in the sub-format GUID
    if (size < 40) {
      unsupported("WAV", "extensible fmt chunk of " + std::to_string(size) + " bytes, expected 40");
    }
    if (std::memcmp(body + 26, kPcmGuidTail, sizeof kPcmGuidTail) != 0) {
      unsupported("WAV", "extensible sub-format is not a standard GUID");
    }
    tag = le16(body + 24);
  }
  if (tag != 1) unsupported("WAV", "format tag " + std::to_string(tag) + " is not PCM (1)");
  if (bits != 16) {
    unsupported("WAV", std::to_string(bits) + "-bit samples (only 16-bit PCM is kept exact)");
  }
  if (channels == 0) unsupported("WAV", "0 channels");
  if (block_align != 2u * channels) {
    unsupported("WAV", "block align " + std::to_string(block_align) + ", expected " +
                           std::to_string(2 * channels) + " for " + std::to_string(channels) +
                           " channels of 16 bits");
  }
  layout.channels = channels;
  layout.sample_rate = rate;
}

}  // namespace

PcmLayout parse_wav(std::span<const uint8_t> file) {
  const uint8_t* f = file.data();
  if (file.size() < 12 || !(is_id(f, "RIFF") || is_id(f, "RF64") || is_id(f, "BW64")) ||
      !is_id(f + 8, "WAVE")) {
    unsupported("WAV", "expected RIFF/RF64/BW64 ... WAVE");
  }
  PcmLayout layout;
  layout.format = Format::kWav;
  bool have_fmt = false;
  std::optional<uint64_t> ds64_data;  // RF64: the real data size when the chunk says 0xFFFFFFFF
  uint64_t pos = 12;
  while (pos + 8 <= file.size()) {
    const uint8_t* id = f + pos;
    const uint32_t size = le32(f + pos + 4);
    const uint64_t body = pos + 8;
    if (is_id(id, "data")) {
      if (!have_fmt) {
        unsupported("WAV", "no fmt chunk before the data chunk at offset " + std::to_string(pos));
      }
      const uint64_t declared = size == 0xFFFFFFFF && ds64_data ? *ds64_data : size;
      place_payload("WAV", layout, body, declared, file.size());
      return layout;
    }
    if (size > file.size() - body) {
      unsupported("WAV", "chunk " + chunk_name(id) + " at offset " + std::to_string(pos) +
                             " declares " + std::to_string(size) +
                             " bytes, past the end of the file");
    }
    if (is_id(id, "fmt ")) {
      parse_wav_fmt(f + body, size, layout);
      have_fmt = true;
    } else if (is_id(id, "ds64") && size >= 16) {
      ds64_data = le64(f + body + 8);  // riffSize (8), dataSize (8), sampleCount (8), ...
    }
    pos = body + size + (size & 1);  // chunks are padded to an even size
  }
  unsupported("WAV", "no data chunk");
}

PcmLayout parse_aiff(std::span<const uint8_t> file) {
  const uint8_t* f = file.data();
  if (file.size() < 12 || !is_id(f, "FORM") || !(is_id(f + 8, "AIFF") || is_id(f + 8, "AIFC"))) {
    unsupported("AIFF", "expected FORM ... AIFF or AIFC");
  }
  const bool aifc = is_id(f + 8, "AIFC");
  PcmLayout layout;
  layout.format = Format::kAiff;
  layout.big_endian = true;
  bool have_comm = false;
  uint64_t pos = 12;
  while (pos + 8 <= file.size()) {
    const uint8_t* id = f + pos;
    const uint32_t size = be32(f + pos + 4);
    const uint64_t body = pos + 8;
    if (is_id(id, "SSND")) {
      if (!have_comm) {
        unsupported("AIFF", "no COMM chunk before the SSND chunk at offset " + std::to_string(pos));
      }
      if (size < 8 || file.size() - body < 8) {
        unsupported("AIFF", "SSND chunk too short for its offset field");
      }
      const uint32_t offset = be32(f + body);
      if (offset > size - 8 || offset > file.size() - body - 8) {
        unsupported("AIFF", "SSND data offset " + std::to_string(offset) + " is past its chunk");
      }
      place_payload("AIFF", layout, body + 8 + offset, size - 8 - offset, file.size());
      return layout;
    }
    if (size > file.size() - body) {
      unsupported("AIFF", "chunk " + chunk_name(id) + " at offset " + std::to_string(pos) +
                              " declares " + std::to_string(size) +
                              " bytes, past the end of the file");
    }
    if (is_id(id, "COMM")) {
      if (size < (aifc ? 22u : 18u)) {
        unsupported("AIFF", "COMM chunk of " + std::to_string(size) + " bytes");
      }
      const uint16_t channels = be16(f + body);
      const uint16_t bits = be16(f + body + 6);
      if (channels == 0 || channels > 0x7FFF) {
        unsupported("AIFF", std::to_string(channels) + " channels");
      }
      if (bits != 16) {
        unsupported("AIFF", std::to_string(bits) + "-bit samples (only 16-bit PCM is kept exact)");
      }
      if (aifc) {
        const uint8_t* kind = f + body + 18;
        if (is_id(kind, "sowt")) {
          layout.big_endian = false;
        } else if (!is_id(kind, "NONE") && !is_id(kind, "twos")) {
          unsupported("AIFF", "AIFC compression " + chunk_name(kind) +
                                  " (only NONE, twos and sowt are PCM)");
        }
      }
      layout.channels = channels;
      layout.sample_rate = extended_to_u32(f + body + 8);
      have_comm = true;
    }
    pos = body + size + (size & 1);
  }
  unsupported("AIFF", "no SSND chunk");
}

PcmLayout parse_pcm(std::span<const uint8_t> file) {
  const Format format = detect_format(file);
  if (format == Format::kWav) return parse_wav(file);
  if (format == Format::kAiff) return parse_aiff(file);
  unsupported("audio", "not a WAV or AIFF file");
}

std::vector<uint8_t> samples_to_bytes(std::span<const int16_t> samples) {
  std::vector<uint8_t> out(samples.size() * 2);
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto u = static_cast<uint16_t>(samples[i]);
    out[2 * i] = static_cast<uint8_t>(u);
    out[2 * i + 1] = static_cast<uint8_t>(u >> 8);
  }
  return out;
}

std::vector<int16_t> bytes_to_samples(std::span<const uint8_t> bytes) {
  if (bytes.size() % 2) {
    throw Error(ErrorCode::kUsageBadArgument, "samples: " + std::to_string(bytes.size()) +
                                                  " bytes is not a whole number of 16-bit samples");
  }
  std::vector<int16_t> out(bytes.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int16_t>(le16(&bytes[2 * i]));
  return out;
}

void swap_byte_pairs(std::span<uint8_t> bytes) {
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) std::swap(bytes[i], bytes[i + 1]);
}

}  // namespace mbz::io

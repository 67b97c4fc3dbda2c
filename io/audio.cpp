#include "io/audio.h"

#include <sndfile.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "codec/error.h"
#include "io/pcm.h"

namespace mbz::io {
namespace {

[[noreturn]] void unsupported(const std::string& what, const std::string& message) {
  throw Error(ErrorCode::kUnsupportedInput, what + ": " + message);
}

// A file in memory for libsndfile's virtual I/O: reads come from `in`, writes grow `out`
// (encoders seek back to patch sizes, so writes may land anywhere).
struct MemoryFile {
  std::span<const uint8_t> in;
  std::vector<uint8_t>* out = nullptr;
  sf_count_t pos = 0;

  sf_count_t size() const {
    return out ? static_cast<sf_count_t>(out->size()) : static_cast<sf_count_t>(in.size());
  }
  const uint8_t* data() const { return out ? out->data() : in.data(); }
};

sf_count_t vio_filelen(void* user) {
  return static_cast<MemoryFile*>(user)->size();
}

sf_count_t vio_seek(sf_count_t offset, int whence, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : f->size();
  const sf_count_t target = base + offset;
  if (target < 0) return -1;
  f->pos = target;
  return f->pos;
}

sf_count_t vio_read(void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  if (count <= 0 || f->pos >= f->size()) return 0;
  const sf_count_t n = std::min(count, f->size() - f->pos);
  std::memcpy(ptr, f->data() + f->pos, static_cast<size_t>(n));
  f->pos += n;
  return n;
}

sf_count_t vio_write(const void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  if (!f->out || count <= 0) return 0;
  const auto end = static_cast<size_t>(f->pos + count);
  if (end > f->out->size()) f->out->resize(end);
  std::memcpy(f->out->data() + f->pos, ptr, static_cast<size_t>(count));
  f->pos += count;
  return count;
}

sf_count_t vio_tell(void* user) {
  return static_cast<MemoryFile*>(user)->pos;
}

SF_VIRTUAL_IO virtual_io() {
  return {vio_filelen, vio_seek, vio_read, vio_write, vio_tell};
}

struct SndfileCloser {
  void operator()(SNDFILE* sf) const { sf_close(sf); }
};
using Sndfile = std::unique_ptr<SNDFILE, SndfileCloser>;

enum class SampleKind { kExact8, kExact16, kLossy, kWide };

// Which libsndfile sub-formats decode to samples that 16 bits hold exactly. Numbers stand in
// for the names that older libsndfile headers lack (sndfile.h of 1.2.0).
SampleKind classify(int subtype) {
  switch (subtype) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8:
    case SF_FORMAT_DPCM_8:
      return SampleKind::kExact8;
    case SF_FORMAT_PCM_16:
    case SF_FORMAT_ULAW:  // 14-bit
    case SF_FORMAT_ALAW:  // 13-bit
    case SF_FORMAT_IMA_ADPCM:
    case SF_FORMAT_MS_ADPCM:
    case SF_FORMAT_GSM610:
    case SF_FORMAT_VOX_ADPCM:
    case SF_FORMAT_G721_32:
    case SF_FORMAT_G723_24:
    case SF_FORMAT_G723_40:
    case SF_FORMAT_DWVW_12:
    case SF_FORMAT_DWVW_16:
    case SF_FORMAT_DPCM_16:
    case SF_FORMAT_ALAC_16:
    case 0x0022:  // SF_FORMAT_NMS_ADPCM_16
    case 0x0023:  // SF_FORMAT_NMS_ADPCM_24
    case 0x0024:  // SF_FORMAT_NMS_ADPCM_32
      return SampleKind::kExact16;
    case SF_FORMAT_VORBIS:
    case 0x0064:  // SF_FORMAT_OPUS
    case 0x0080:  // SF_FORMAT_MPEG_LAYER_I
    case 0x0081:  // SF_FORMAT_MPEG_LAYER_II
    case 0x0082:  // SF_FORMAT_MPEG_LAYER_III
      return SampleKind::kLossy;
    default:
      return SampleKind::kWide;
  }
}

}  // namespace

const char* container_name(AudioContainer container) {
  switch (container) {
    case AudioContainer::kWav:
      return "WAV";
    case AudioContainer::kFlac:
      return "FLAC";
  }
  return "unknown";
}

DecodedAudio decode_audio(std::span<const uint8_t> file) {
  DecodedAudio result;
  result.format = detect_format(file);
  const std::string what = result.format == Format::kUnknown ? "audio" : format_name(result.format);

  MemoryFile mem{file, nullptr, 0};
  SF_VIRTUAL_IO vio = virtual_io();
  SF_INFO info{};
  Sndfile sf(sf_open_virtual(&vio, SFM_READ, &info, &mem));
  if (!sf) {
    unsupported(what, std::string("libsndfile cannot read it (") + sf_strerror(nullptr) + ")");
  }

  if (info.channels < 1 || info.channels > 65535) {
    unsupported(what, std::to_string(info.channels) + " channels (expected 1..65535)");
  }
  if (info.samplerate < 1) unsupported(what, "sample rate " + std::to_string(info.samplerate));
  const int subtype = info.format & SF_FORMAT_SUBMASK;
  const SampleKind kind = classify(subtype);
  if (kind == SampleKind::kWide) {
    SF_FORMAT_INFO name{};
    name.format = subtype;
    const bool named =
        sf_command(sf.get(), SFC_GET_FORMAT_INFO, &name, sizeof name) == 0 && name.name;
    unsupported(what, std::string("samples are ") + (named ? name.name : "wider than 16 bits") +
                          " and would not survive 16-bit samples");
  }
  const uint64_t channels = static_cast<uint64_t>(info.channels);
  // Some streams do not know their length (SF_COUNT_MAX or 0 with data); the loop below caps.
  const bool length_known = info.frames > 0 && info.frames != SF_COUNT_MAX;
  if (length_known && static_cast<uint64_t>(info.frames) * channels > kMaxSamples) {
    unsupported(what, std::to_string(info.frames) + " frames of " + std::to_string(channels) +
                          " channels is over the limit of " + std::to_string(kMaxSamples) +
                          " samples");
  }
  // Lossy decoders produce floats; clip rather than wrap when converting to 16 bits.
  sf_command(sf.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);

  Pcm16& pcm = result.pcm;
  pcm.sample_rate = static_cast<uint32_t>(info.samplerate);
  pcm.channels = static_cast<uint16_t>(info.channels);
  if (length_known) pcm.samples.reserve(static_cast<size_t>(info.frames * channels));
  // About 64 Ki samples per read, whatever the channel count (65535 channels is legal).
  const auto block_frames =
      static_cast<sf_count_t>(std::max<uint64_t>(1, (uint64_t{1} << 16) / channels));
  std::vector<int16_t> block(static_cast<size_t>(block_frames * channels));
  while (true) {
    const sf_count_t got = sf_readf_short(sf.get(), block.data(), block_frames);
    if (got <= 0) break;
    if (pcm.samples.size() + static_cast<uint64_t>(got) * channels > kMaxSamples) {
      unsupported(what, "decodes to more than " + std::to_string(kMaxSamples) + " samples");
    }
    pcm.samples.insert(pcm.samples.end(), block.begin(),
                       block.begin() + static_cast<ptrdiff_t>(got * channels));
  }
  if (const int err = sf_error(sf.get()); err != SF_ERR_NO_ERROR) {
    unsupported(what, std::string("decoding failed after ") + std::to_string(pcm.frames()) +
                          " frames (" + sf_error_number(err) + ")");
  }
  // Lossy decoders may only estimate the length; a lossless one that stops short was cut.
  if (length_known && kind != SampleKind::kLossy &&
      pcm.frames() != static_cast<uint64_t>(info.frames)) {
    unsupported(what, "header declares " + std::to_string(info.frames) + " frames, decoding gave " +
                          std::to_string(pcm.frames()));
  }
  result.bits = kind == SampleKind::kExact8 ? 8 : 16;
  result.lossy = kind == SampleKind::kLossy;
  return result;
}

bool can_encode(uint32_t sample_rate, uint16_t channels, AudioContainer container, uint32_t bits) {
  try {
    encode_audio(Pcm16{sample_rate, channels, {}}, container, bits);  // header only: cheap
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::vector<uint8_t> encode_audio(const Pcm16& pcm, AudioContainer container, uint32_t bits) {
  const std::string what = std::string(container_name(container)) + " writer";
  if (bits != 8 && bits != 16) {
    throw Error(ErrorCode::kUnsupportedFeature,
                what + ": " + std::to_string(bits) + "-bit samples (8 or 16)");
  }
  if (pcm.channels == 0 || pcm.samples.size() % pcm.channels != 0) {
    throw Error(ErrorCode::kUsageBadArgument, what + ": " + std::to_string(pcm.samples.size()) +
                                                  " samples is not a whole number of " +
                                                  std::to_string(pcm.channels) + "-channel frames");
  }
  if (bits == 8) {
    for (size_t i = 0; i < pcm.samples.size(); ++i) {
      if (pcm.samples[i] & 0xFF) {
        throw Error(ErrorCode::kUsageBadArgument,
                    what + ": sample " + std::to_string(i) +
                        " has a nonzero low byte, 8 bits would lose it");
      }
    }
  }
  SF_INFO info{};
  info.samplerate = static_cast<int>(std::min<uint32_t>(pcm.sample_rate, INT32_MAX));
  info.channels = pcm.channels;
  if (container == AudioContainer::kFlac) {
    info.format = SF_FORMAT_FLAC | (bits == 8 ? SF_FORMAT_PCM_S8 : SF_FORMAT_PCM_16);
  } else if (container == AudioContainer::kWav) {
    info.format = SF_FORMAT_WAV | (bits == 8 ? SF_FORMAT_PCM_U8 : SF_FORMAT_PCM_16);
  } else {
    throw Error(ErrorCode::kUnsupportedFeature,
                "audio writer: unknown container " + std::to_string(static_cast<int>(container)));
  }
  if (!sf_format_check(&info)) {
    throw Error(ErrorCode::kUnsupportedFeature,
                what + ": libsndfile refuses " + std::to_string(pcm.channels) + " channels at " +
                    std::to_string(pcm.sample_rate) + " Hz, " + std::to_string(bits) + " bits");
  }
  std::vector<uint8_t> out;
  MemoryFile mem{{}, &out, 0};
  SF_VIRTUAL_IO vio = virtual_io();
  Sndfile sf(sf_open_virtual(&vio, SFM_WRITE, &info, &mem));
  if (!sf) {  // e.g. "flac does not support this sample rate": a combination, not an I/O failure
    throw Error(ErrorCode::kUnsupportedFeature,
                what + ": libsndfile refuses it (" + sf_strerror(nullptr) + ")");
  }
  const auto frames = static_cast<sf_count_t>(pcm.frames());
  if (frames > 0 && sf_writef_short(sf.get(), pcm.samples.data(), frames) != frames) {
    throw Error(ErrorCode::kIoWrite, what + ": " + sf_strerror(sf.get()));
  }
  if (const int err = sf_close(sf.release()); err != 0) {
    throw Error(ErrorCode::kIoWrite, what + ": closing failed (" + sf_error_number(err) + ")");
  }
  return out;
}

}  // namespace mbz::io

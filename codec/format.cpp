#include "codec/format.h"

#include <cstring>

#include "codec/checksum.h"
#include "codec/endian.h"
#include "codec/error.h"

namespace mbz {
namespace {

std::string hex8(uint64_t value) {
  return "0x" + hex64(value).substr(14);
}
std::string hex32(uint64_t value) {
  return "0x" + hex64(value).substr(8);
}

[[noreturn]] void format_error(ErrorCode code, const std::string& what) {
  throw Error(code, what);
}

}  // namespace

std::string hex64(uint64_t value) {
  static const char* kDigits = "0123456789abcdef";
  std::string hex(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) hex[i] = kDigits[value & 15];
  return hex;
}

const char* method_name(ChunkMethod method) {
  switch (method) {
    case ChunkMethod::kStored:
      return "stored";
    case ChunkMethod::kZstd:
      return "zstd";
    case ChunkMethod::kModel:
      return "model";
    case ChunkMethod::kCm:
      return "cm";
    case ChunkMethod::kHybrid:
      return "hybrid";
  }
  return "unknown";
}

const char* modality_name(uint8_t modality) {
  static const char* kNames[] = {"raw", "text", "image", "audio"};
  return modality <= kMaxModality ? kNames[modality] : "unknown";
}

namespace {

// The fixed part of a header of `version`: all but the parameters and the model name.
size_t fixed_header_size(uint8_t version) {
  return version == 1 ? 41 : 46;
}

void check_segment_fields(uint32_t lanes, int revision, int context_bits, int match_bits,
                          ErrorCode code, size_t at) {
  auto fail = [&](const std::string& what) {
    format_error(
        code, what + (code == ErrorCode::kUsageBadArgument ? std::string()
                                                           : " at offset " + std::to_string(at)));
  };
  if (lanes < 1 || lanes > kMaxLanes)
    fail("lane count must be 1 to " + std::to_string(kMaxLanes) + ", found " +
         std::to_string(lanes));
  if (revision < kOldestCmRevision || revision > kCmRevision)
    fail("context mixer revision " + std::to_string(revision) + " is unknown (this mbz reads " +
         std::to_string(kOldestCmRevision) + " to " + std::to_string(kCmRevision) + ")");
  if (context_bits < kMinCmContextBits || context_bits > kMaxCmContextBits ||
      match_bits < kMinCmMatchBits || match_bits > kMaxCmMatchBits)
    fail("context mixer table sizes " + std::to_string(context_bits) + "/" +
         std::to_string(match_bits) + " bits outside " + std::to_string(kMinCmContextBits) + ".." +
         std::to_string(kMaxCmContextBits) + "/" + std::to_string(kMinCmMatchBits) + ".." +
         std::to_string(kMaxCmMatchBits));
}

}  // namespace

std::vector<uint8_t> serialize_header(const Header& h) {
  check_segment_fields(h.lanes, h.cm_revision, h.cm_context_bits, h.cm_match_bits,
                       ErrorCode::kUsageBadArgument, 0);
  if (h.model.name.empty() || h.model.name.size() > kMaxModelName)
    format_error(ErrorCode::kUsageBadArgument, "model name must be 1 to 64 bytes");
  if (h.params.size() > kMaxHeaderParams)
    format_error(ErrorCode::kUsageBadArgument,
                 "transform parameters exceed " + std::to_string(kMaxHeaderParams) + " bytes");
  if (h.chunk_log < kMinChunkLog || h.chunk_log > kMaxChunkLog)
    format_error(ErrorCode::kUsageBadArgument, "chunk size must be 2^10 to 2^26 bytes");
  std::vector<uint8_t> out(kMagic.begin(), kMagic.end());
  out.push_back(kFormatVersion);
  out.push_back(0);  // flags
  store_le(out, fixed_header_size(kFormatVersion) + h.params.size() + h.model.name.size(), 2);
  store_le(out, h.original_size, 8);
  out.push_back(static_cast<uint8_t>(h.chunk_log));
  out.push_back(h.modality);
  store_le(out, h.params.size(), 2);
  out.insert(out.end(), h.params.begin(), h.params.end());
  out.push_back(static_cast<uint8_t>(h.model.name.size()));
  out.insert(out.end(), h.model.name.begin(), h.model.name.end());
  out.insert(out.end(), h.model.id.begin(), h.model.id.end());
  store_le(out, h.lanes, 2);
  out.push_back(h.cm_revision);
  out.push_back(h.cm_context_bits);
  out.push_back(h.cm_match_bits);
  store_le(out, static_cast<uint32_t>(xxh64(out)), 4);
  return out;
}

Header read_header(Reader& in) {
  uint8_t fixed[20];
  const size_t got = in.read({fixed, 4});
  if (got < 4 || std::memcmp(fixed, kMagic.data(), 4) != 0) {
    std::string found;
    for (size_t i = 0; i < got; ++i) {
      if (i) found += ' ';
      found += hex8(fixed[i]).substr(2);
    }
    format_error(ErrorCode::kFormatMagic,
                 "not an mbz archive: expected magic 89 4d 42 5a at offset 0, found " +
                     (got ? found : std::string("no data")));
  }
  read_exact(in, {fixed + 4, 1}, "header (version)");
  const uint8_t version = fixed[4];
  if (version < kOldestFormatVersion || version > kFormatVersion)
    format_error(ErrorCode::kFormatVersion,
                 "unsupported format version " + std::to_string(version) +
                     " at offset 4: this mbz reads versions " +
                     std::to_string(kOldestFormatVersion) + " to " +
                     std::to_string(kFormatVersion) +
                     (version > kFormatVersion ? " (the archive was written by a newer mbz)" : ""));
  read_exact(in, {fixed + 5, 15}, "header");
  const size_t header_size = load_le(fixed + 6, 2);
  const size_t params_size = load_le(fixed + 18, 2);
  // F + P + N with 1 <= N <= 64: anything else cannot be a header of this version.
  const size_t fixed_size = fixed_header_size(version);
  if (header_size < fixed_size + 1 + params_size ||
      header_size > fixed_size + params_size + kMaxModelName)
    format_error(ErrorCode::kFormatField,
                 "header size " + std::to_string(header_size) + " at offset 6 is impossible with " +
                     std::to_string(params_size) + " bytes of parameters (expected " +
                     std::to_string(fixed_size + 1 + params_size) + " to " +
                     std::to_string(fixed_size + params_size + kMaxModelName) + ")");
  std::vector<uint8_t> bytes(fixed, fixed + 20);
  bytes.resize(header_size);
  read_exact(in, {bytes.data() + 20, header_size - 20}, "header");
  const uint32_t stored = static_cast<uint32_t>(load_le(bytes.data() + header_size - 4, 4));
  const uint32_t computed = static_cast<uint32_t>(xxh64({bytes.data(), header_size - 4}));
  if (stored != computed)
    format_error(ErrorCode::kCorruptHeaderChecksum,
                 "header checksum mismatch at offset " + std::to_string(header_size - 4) +
                     ": stored " + hex32(stored) + ", computed " + hex32(computed));
  if (bytes[5] != 0)
    format_error(ErrorCode::kFormatReservedBits, "reserved flags at offset 5 must be 0, found " +
                                                     hex8(bytes[5]) + " (written by a newer mbz?)");

  Header h;
  h.version = version;
  h.original_size = load_le(bytes.data() + 8, 8);
  h.chunk_log = bytes[16];
  if (h.chunk_log < kMinChunkLog || h.chunk_log > kMaxChunkLog)
    format_error(ErrorCode::kFormatField,
                 "chunk log at offset 16 must be 10 to 26, found " + std::to_string(h.chunk_log));
  h.modality = bytes[17];
  if (h.modality > kMaxModality)
    format_error(ErrorCode::kFormatField, "unknown modality " + std::to_string(h.modality) +
                                              " at offset 17 (expected 0 to 3)");
  h.params.assign(bytes.begin() + 20, bytes.begin() + 20 + params_size);
  const size_t name_size = bytes[20 + params_size];
  if (name_size == 0 || header_size != fixed_size + params_size + name_size)
    format_error(ErrorCode::kFormatField, "model name size " + std::to_string(name_size) +
                                              " at offset " + std::to_string(20 + params_size) +
                                              " disagrees with header size " +
                                              std::to_string(header_size));
  const uint8_t* name = bytes.data() + 21 + params_size;
  for (size_t i = 0; i < name_size; ++i)
    if (name[i] < 0x20 || name[i] > 0x7E)
      format_error(
          ErrorCode::kFormatField,
          "model name at offset " + std::to_string(21 + params_size) + " is not printable ASCII");
  h.model.name.assign(name, name + name_size);
  std::memcpy(h.model.id.data(), name + name_size, 16);
  if (version >= 2) {
    const uint8_t* segment = name + name_size + 16;
    const size_t at = static_cast<size_t>(segment - bytes.data());
    h.lanes = static_cast<uint32_t>(load_le(segment, 2));
    h.cm_revision = segment[2];
    h.cm_context_bits = segment[3];
    h.cm_match_bits = segment[4];
    check_segment_fields(h.lanes, h.cm_revision, h.cm_context_bits, h.cm_match_bits,
                         ErrorCode::kFormatField, at);
  }
  return h;
}

uint32_t chunk_checksum(std::span<const uint8_t> raw, uint64_t index) {
  return static_cast<uint32_t>(xxh64(raw, index));
}

void serialize_chunk_header(const ChunkHeader& c, std::vector<uint8_t>& out) {
  out.push_back(static_cast<uint8_t>(c.method));
  store_le(out, c.raw_size, 4);
  store_le(out, c.payload_size, 4);
  store_le(out, c.checksum, 4);
}

std::optional<ChunkHeader> read_chunk_header(Reader& in, const Header& header, uint64_t index) {
  const uint64_t at = in.offset();
  const std::string where =
      "chunk " + std::to_string(index) + " (offset " + std::to_string(at) + ")";
  uint8_t b[kChunkHeaderSize];
  read_exact(in, {b, 1}, "chunk header or end marker");
  if (b[0] == kEndMarker) return std::nullopt;
  const auto last = header.version == 1 ? ChunkMethod::kModel : ChunkMethod::kHybrid;
  if (b[0] > static_cast<uint8_t>(last))
    format_error(ErrorCode::kCorruptChunk,
                 where + ": unknown method " + hex8(b[0]) +
                     (header.version == 1
                          ? " (expected 0 stored, 1 zstd, 2 model or ff end)"
                          : " (expected 0 stored, 1 zstd, 2 model, 3 cm, 4 hybrid or ff end)"));
  read_exact(in, {b + 1, kChunkHeaderSize - 1}, "chunk header");
  ChunkHeader c{static_cast<ChunkMethod>(b[0]), static_cast<uint32_t>(load_le(b + 1, 4)),
                static_cast<uint32_t>(load_le(b + 5, 4)), static_cast<uint32_t>(load_le(b + 9, 4))};
  if (c.raw_size == 0 || c.raw_size > header.chunk_size())
    format_error(ErrorCode::kCorruptChunk, where + ": raw size " + std::to_string(c.raw_size) +
                                               " outside 1.." +
                                               std::to_string(header.chunk_size()));
  const bool stored = c.method == ChunkMethod::kStored;
  if (stored ? c.payload_size != c.raw_size : c.payload_size >= c.raw_size)
    format_error(ErrorCode::kCorruptChunk, where + ": " + method_name(c.method) + " payload size " +
                                               std::to_string(c.payload_size) +
                                               (stored ? " must equal" : " must be below") +
                                               " raw size " + std::to_string(c.raw_size));
  return c;
}

void serialize_trailer(const Trailer& t, std::vector<uint8_t>& out) {
  out.push_back(kEndMarker);
  store_le(out, t.stream_size, 8);
  store_le(out, t.stream_checksum, 8);
  store_le(out, t.content_checksum, 8);
}

Trailer read_trailer(Reader& in) {
  uint8_t b[kTrailerSize];
  read_exact(in, b, "trailer");
  return {load_le(b, 8), load_le(b + 8, 8), load_le(b + 16, 8)};
}

void expect_end(Reader& in) {
  uint8_t extra[1];
  const uint64_t at = in.offset();
  if (in.read(extra) != 0)
    format_error(ErrorCode::kCorruptTrailingData,
                 "unexpected data after the archive's trailer at offset " + std::to_string(at));
}

}  // namespace mbz

// The archive's byte layout, exactly as codec/FORMAT.md specifies it: header, chunk
// headers, end marker and trailer, with every rule a reader checks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/byte_model.h"
#include "codec/stream.h"

namespace mbz {

inline constexpr std::array<uint8_t, 4> kMagic = {0x89, 'M', 'B', 'Z'};
inline constexpr uint8_t kFormatVersion = 4;        // what the writer writes
inline constexpr uint8_t kOldestFormatVersion = 1;  // the oldest a reader reads
inline constexpr uint64_t kUnknownSize = ~uint64_t{0};
inline constexpr int kMinChunkLog = 10, kMaxChunkLog = 26, kDefaultChunkLog = 20;
inline constexpr size_t kMaxModelName = 64;
// The header size (41 + P + N) is a 16-bit field, so parameters can take at most this much.
inline constexpr size_t kMaxHeaderParams = 0xFFFF - 41 - kMaxModelName;
inline constexpr uint8_t kMaxModality = 3;
inline constexpr size_t kChunkHeaderSize = 13;
inline constexpr uint8_t kEndMarker = 0xFF;
inline constexpr size_t kTrailerSize = 24;

// Version 2's segment coding (FORMAT.md, "Lanes"): at most this many lanes, the context
// mixer's revision and the bounds on its table sizes that a header may ask for.
inline constexpr uint32_t kMaxLanes = 4096;
// Revision 2 adds the image and audio models (codec/cm/layout.h) and codes everything
// else exactly as revision 1; a reader reads both.
inline constexpr uint8_t kCmRevision = 2;
inline constexpr uint8_t kOldestCmRevision = 1;
inline constexpr int kMinCmContextBits = 8, kMaxCmContextBits = 28;
inline constexpr int kMinCmMatchBits = 4, kMaxCmMatchBits = 28;

// Methods 3 and 4 exist from version 2 on. Version 3 codes method 3 (cm) in one lane
// whatever the header's lanes; version 4 codes method 2 (model) with a range coder a lane
// (FORMAT.md "Lanes").
enum class ChunkMethod : uint8_t { kStored = 0, kZstd = 1, kModel = 2, kCm = 3, kHybrid = 4 };
inline constexpr int kMethodCount = 5;
const char* method_name(ChunkMethod method);
// The modality byte's meaning: "raw", "text", "image" or "audio".
const char* modality_name(uint8_t modality);

struct Header {
  uint8_t version = kFormatVersion;       // as read; the writer always writes kFormatVersion
  uint64_t original_size = kUnknownSize;  // of the restored file; kUnknownSize from a pipe
  int chunk_log = kDefaultChunkLog;
  uint8_t modality = 0;         // io::Modality; 0 = raw
  std::vector<uint8_t> params;  // transform parameters (io/TRANSFORMS.md)
  ModelIdentity model;
  // Version 2: how chunks (segments) are cut into lanes, and the context mixer's revision
  // and maximum table sizes (codec/cm/predictor.h: Config). A version 1 archive reads as
  // one lane, which is what its model chunks are.
  uint32_t lanes = 1;
  // The writer writes the oldest revision that codes the archive's stream as this one
  // would (codec/segment_coder.h: cm_revision_needed), at most this.
  uint8_t cm_revision = kCmRevision;
  uint8_t cm_context_bits = 24;
  uint8_t cm_match_bits = 22;

  uint32_t chunk_size() const { return uint32_t{1} << chunk_log; }
  size_t size() const { return (version == 1 ? 41 : 46) + params.size() + model.name.size(); }
};

// The header's bytes, checksum included. Throws kUsageBadArgument for a header that
// breaks a rule (a too-long model name, say): the writer never writes what a reader refuses.
std::vector<uint8_t> serialize_header(const Header& header);
// Reads and checks a header (FORMAT.md, "Reader order").
Header read_header(Reader& in);

struct ChunkHeader {
  ChunkMethod method;
  uint32_t raw_size;
  uint32_t payload_size;
  uint32_t checksum;
};

uint32_t chunk_checksum(std::span<const uint8_t> raw, uint64_t index);
void serialize_chunk_header(const ChunkHeader& chunk, std::vector<uint8_t>& out);
// Reads the next chunk header, or nullopt at the end marker. `index` and `offset` are for
// messages; checks the method and size rules against `header`.
std::optional<ChunkHeader> read_chunk_header(Reader& in, const Header& header, uint64_t index);

struct Trailer {
  uint64_t stream_size = 0;
  uint64_t stream_checksum = 0;
  uint64_t content_checksum = 0;
};
void serialize_trailer(const Trailer& trailer, std::vector<uint8_t>& out);  // with end marker
Trailer read_trailer(Reader& in);                                           // after the end marker
// Throws kCorruptTrailingData unless `in` is at its end.
void expect_end(Reader& in);

std::string hex64(uint64_t value);

}  // namespace mbz

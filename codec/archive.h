// The container: cuts a stream into chunks (segments), codes each with every method and
// keeps the smallest, and reads them back, checking everything FORMAT.md promises. Chunks
// are independent, so groups of them are coded across threads. The writer writes format
// version 2, where a chunk is a segment cut into lanes that one model instance advances
// in lockstep (codec/segment_coder.h); the reader also reads version 1, where a thread's
// model instance advances a batch of whole chunks in lockstep.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "codec/checksum.h"
#include "codec/format.h"

namespace mbz {

// Called after each group of chunks with the stream bytes and archive bytes so far.
using ProgressFn = std::function<void(uint64_t stream_bytes, uint64_t archive_bytes)>;

// What the writer tries on each chunk. The lanes and the context mixer's table sizes are
// the header's (Header::lanes, cm_*): they change the bytes, so the archive records them.
struct EncodeOptions {
  unsigned threads = 1;  // changes speed, never bytes
  int zstd_level = 19;   // 0 leaves zstd out
  // The methods that predict (codec/segment_coder.h); stored is always possible.
  bool try_model = true;   // the byte model alone
  bool try_cm = true;      // the context mixer alone
  bool try_hybrid = true;  // both
  bool verify = false;     // decode every chunk again after coding it and compare
  ProgressFn progress;
};

struct MethodStats {
  uint64_t chunks[kMethodCount] = {};  // by ChunkMethod
  uint64_t raw_bytes[kMethodCount] = {};
  uint64_t payload_bytes[kMethodCount] = {};

  void add(ChunkMethod method, uint64_t raw, uint64_t payload) {
    const auto m = static_cast<size_t>(method);
    ++chunks[m];
    raw_bytes[m] += raw;
    payload_bytes[m] += payload;
  }
};

class ArchiveWriter {
 public:
  // Writes the header at once (always format version 2, whatever header.version says; the
  // context mixer revision lowered to cm_revision_needed() when that is older).
  // `model` must match header.model and outlive the writer.
  ArchiveWriter(Writer& out, const Header& header, const ModelFactory& model,
                EncodeOptions options);
  ~ArchiveWriter();
  // Appends stream bytes; whole groups of chunks are coded and written as they fill.
  void write(std::span<const uint8_t> bytes);
  // Codes what is left and writes the trailer. The content checksum defaults to the
  // stream's (raw and text, where the stream is the file).
  void finish(std::optional<uint64_t> content_checksum = std::nullopt);

  const MethodStats& stats() const { return stats_; }
  uint64_t archive_bytes() const { return archive_bytes_; }

 private:
  void flush_group(bool final);
  void code_segment(unsigned thread, std::span<const uint8_t> raw, uint64_t index,
                    ChunkMethod& method, std::vector<uint8_t>& payload);
  struct Workers;

  Writer& out_;
  Header header_;
  EncodeOptions options_;
  std::unique_ptr<Workers> workers_;
  std::vector<uint8_t> pending_;  // stream bytes not yet coded
  StreamHash hash_;
  uint64_t chunk_index_ = 0, stream_bytes_ = 0, archive_bytes_ = 0;
  MethodStats stats_;
};

struct DecodeOptions {
  unsigned threads = 1;  // changes speed, never bytes
  size_t batch = 0;      // version 1: chunks a model instance decodes in lockstep; 0: the
                         // model's preferred (speed only; version 2's lanes are its batch)
  ProgressFn progress;
};

struct ChunkInfo {
  uint64_t offset;  // of the chunk header in the archive
  ChunkHeader header;
};

class ArchiveReader {
 public:
  // Reads and checks the header.
  explicit ArchiveReader(Reader& in);
  ~ArchiveReader();
  const Header& header() const { return header_; }

  // Decodes every chunk into `out`, then reads the trailer and checks the stream's size and
  // checksum and that nothing follows. `model` may be null when no chunk uses it; it must
  // have the header's identity. The caller checks the content checksum of what it restores.
  Trailer decode(Writer& out, const ModelFactory* model, DecodeOptions options);
  // Walks the chunk headers without decoding (payloads are read and skipped).
  std::vector<ChunkInfo> list(Trailer* trailer);

 private:
  Reader& in_;
  Header header_;
};

// Checks what decompression restored against the trailer's content checksum and the
// header's original size; throws kCorruptContentChecksum or kCorruptTrailer.
void check_content(const Header& header, const Trailer& trailer, uint64_t content_checksum,
                   uint64_t content_size);

// Whole-buffer helpers for tests and tools.
std::vector<uint8_t> compress_buffer(std::span<const uint8_t> data, const Header& header,
                                     const ModelFactory& model, const EncodeOptions& options);
std::vector<uint8_t> decompress_buffer(std::span<const uint8_t> archive, const ModelFactory* model,
                                       const DecodeOptions& options);

}  // namespace mbz

#include "codec/archive.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "codec/chunk_coder.h"
#include "codec/error.h"
#include "codec/parallel.h"
#include "codec/segment_coder.h"

namespace mbz {
namespace {

// zstd at `level`; when a quick level-1 probe saves less than 1/64, that probe is the
// answer: high levels take seconds a megabyte on incompressible data and gain nothing.
std::vector<uint8_t> zstd_compress(std::span<const uint8_t> raw, int level) {
  auto run = [&](int l) {
    std::vector<uint8_t> z(ZSTD_compressBound(raw.size()));
    const size_t n = ZSTD_compress(z.data(), z.size(), raw.data(), raw.size(), l);
    if (ZSTD_isError(n)) throw Error(ErrorCode::kUnsupportedFeature, ZSTD_getErrorName(n));
    z.resize(n);
    return z;
  };
  if (level > 1) {
    std::vector<uint8_t> probe = run(1);
    if (probe.size() * 64 >= raw.size() * 63) return probe;
  }
  return run(level);
}

std::string chunk_where(uint64_t index, uint64_t offset) {
  return "chunk " + std::to_string(index) + " (offset " + std::to_string(offset) + ")";
}

}  // namespace

// Per-thread model instances, made on first use and reused for every later group.
struct ArchiveWriter::Workers {
  const ModelFactory& factory;
  uint32_t lanes;
  uint8_t modality;
  std::vector<std::unique_ptr<BatchByteModel>> models;
  unsigned share = 1;  // threads a segment's model may use: those no other segment has

  BatchByteModel& model(unsigned t) {
    if (!models[t]) {
      models[t] = factory.create(lanes);
      models[t]->set_modality(modality);
    }
    return *models[t];
  }
};

ArchiveWriter::ArchiveWriter(Writer& out, const Header& header, const ModelFactory& model,
                             EncodeOptions options)
    : out_(out), header_(header), options_(std::move(options)) {
  if (model.identity().id != header.model.id)
    throw Error(ErrorCode::kUsageBadArgument, "header names model " + header.model.name +
                                                  " but the coder was given " +
                                                  model.identity().name);
  header_.version = kFormatVersion;
  header_.cm_revision = std::min(header_.cm_revision, cm_revision_needed(header_));
  options_.threads = std::max(1u, options_.threads);
  if (options_.try_model || options_.try_hybrid)  // no more segments at once than fit
    options_.threads = std::clamp(model.max_instances(header_.lanes), 1u, options_.threads);
  const std::vector<uint8_t> bytes = serialize_header(header_);
  workers_ = std::make_unique<Workers>(Workers{model, header_.lanes, header_.modality, {}});
  workers_->models.resize(options_.threads);
  out_.write(bytes);
  archive_bytes_ = bytes.size();
}

ArchiveWriter::~ArchiveWriter() = default;

void ArchiveWriter::write(std::span<const uint8_t> bytes) {
  const size_t group = size_t{header_.chunk_size()} * options_.threads;
  while (!bytes.empty()) {
    const size_t take = std::min(bytes.size(), group - pending_.size());
    pending_.insert(pending_.end(), bytes.begin(), bytes.begin() + take);
    bytes = bytes.subspan(take);
    if (pending_.size() == group) flush_group(false);
  }
}

// One segment: zstd, then one pass of the methods that predict (segment_coder.h); the
// smallest wins, ties going to the lower method number (the simpler method).
void ArchiveWriter::code_segment(unsigned thread, std::span<const uint8_t> raw, uint64_t index,
                                 ChunkMethod& method, std::vector<uint8_t>& payload) {
  method = ChunkMethod::kStored;
  size_t best = raw.size();
  if (options_.zstd_level > 0) {
    std::vector<uint8_t> z = zstd_compress(raw, options_.zstd_level);
    if (z.size() < best) {
      best = z.size();
      payload = std::move(z);
      method = ChunkMethod::kZstd;
    }
  }
  const SegmentSetup setup = segment_setup(header_, index);
  const SegmentMethods methods{options_.try_model, options_.try_cm, options_.try_hybrid};
  BatchByteModel* model = methods.model || methods.hybrid ? &workers_->model(thread) : nullptr;
  if (model) model->set_threads(workers_->share);
  if (methods.model || methods.cm || methods.hybrid) {
    SegmentPayloads coded = encode_segment(raw, setup, model, methods, best);
    for (int m = 0; m < kMethodCount; ++m)
      if (coded.coded[m] && coded.payload[m].size() < best) {
        best = coded.payload[m].size();
        payload = std::move(coded.payload[m]);
        method = static_cast<ChunkMethod>(m);
      }
  }
  if (!options_.verify || method == ChunkMethod::kStored) return;
  std::vector<uint8_t> back(raw.size());
  if (method == ChunkMethod::kZstd) {
    const size_t n = ZSTD_decompress(back.data(), back.size(), payload.data(), payload.size());
    if (ZSTD_isError(n) || n != back.size()) back.clear();
  } else {
    decode_segment(method, payload, back, setup, model);
  }
  if (!std::ranges::equal(back, raw))
    throw Error(ErrorCode::kCorruptChunk, std::string("verify failed: ") + method_name(method) +
                                              " " + chunk_where(index, 0) +
                                              " decodes to different bytes");
}

void ArchiveWriter::flush_group(bool final) {
  const size_t chunk = header_.chunk_size();
  const size_t n_chunks = final ? (pending_.size() + chunk - 1) / chunk : pending_.size() / chunk;
  if (n_chunks == 0) return;
  std::vector<std::span<const uint8_t>> raw(n_chunks);
  for (size_t k = 0; k < n_chunks; ++k)
    raw[k] = std::span<const uint8_t>(pending_).subspan(
        k * chunk, std::min(chunk, pending_.size() - k * chunk));
  std::vector<ChunkMethod> method(n_chunks, ChunkMethod::kStored);
  std::vector<std::vector<uint8_t>> payload(n_chunks);
  workers_->share = std::max<unsigned>(1, unsigned(options_.threads / n_chunks));
  parallel_for(options_.threads, n_chunks, [&](unsigned t, size_t k) {
    code_segment(t, raw[k], chunk_index_ + k, method[k], payload[k]);
  });

  std::vector<uint8_t> bytes;
  for (size_t k = 0; k < n_chunks; ++k) {
    const std::span<const uint8_t> body = method[k] == ChunkMethod::kStored ? raw[k] : payload[k];
    bytes.clear();
    serialize_chunk_header(
        {method[k], static_cast<uint32_t>(raw[k].size()), static_cast<uint32_t>(body.size()),
         chunk_checksum(raw[k], chunk_index_)},
        bytes);
    out_.write(bytes);
    out_.write(body);
    hash_.update(raw[k]);
    ++chunk_index_;
    stream_bytes_ += raw[k].size();
    archive_bytes_ += bytes.size() + body.size();
    stats_.add(method[k], raw[k].size(), body.size());
  }
  pending_.erase(pending_.begin(), pending_.begin() + std::min(pending_.size(), n_chunks * chunk));
  if (options_.progress) options_.progress(stream_bytes_, archive_bytes_);
}

void ArchiveWriter::finish(std::optional<uint64_t> content_checksum) {
  flush_group(true);
  Trailer trailer{stream_bytes_, hash_.digest(), 0};
  trailer.content_checksum = content_checksum.value_or(trailer.stream_checksum);
  std::vector<uint8_t> bytes;
  serialize_trailer(trailer, bytes);
  out_.write(bytes);
  out_.flush();
  archive_bytes_ += bytes.size();
}

ArchiveReader::ArchiveReader(Reader& in) : in_(in), header_(read_header(in)) {}
ArchiveReader::~ArchiveReader() = default;

Trailer ArchiveReader::decode(Writer& out, const ModelFactory* model, DecodeOptions options) {
  if (model && model->identity().id != header_.model.id)
    throw Error(ErrorCode::kModelMismatch, "archive needs model " + header_.model.name + " (id " +
                                               header_.model.id_hex() + "), given " +
                                               model->identity().name + " (id " +
                                               model->identity().id_hex() + ")");
  options.threads = std::max(1u, options.threads);
  // Version 1 decodes a batch of model chunks in lockstep on each thread; version 2 one
  // segment, whose lanes are the model's batch.
  const bool segments = header_.version >= 2;
  const size_t batch =
      model && !segments
          ? std::max<size_t>(1, options.batch ? options.batch : model->preferred_batch())
          : 1;
  const size_t streams = segments ? header_.lanes : batch;  // of a model instance
  size_t group = options.threads * batch;
  bool limited = false;  // threads held to the model's max_instances, at its first chunk
  std::vector<std::unique_ptr<BatchByteModel>> models(options.threads);
  unsigned share = 1;  // threads a segment's model may use: those no other segment has
  auto model_of = [&](unsigned t) -> BatchByteModel& {
    if (!models[t]) {
      models[t] = model->create(streams);
      models[t]->set_modality(header_.modality);
    }
    models[t]->set_threads(share);
    return *models[t];
  };

  StreamHash hash;
  uint64_t index = 0, stream_bytes = 0;
  bool short_seen = false, ended = false;
  while (!ended) {
    // Read a group of chunks; the payloads stay in memory while they are decoded. A
    // framing error is held back until the chunks read before it are decoded, so that
    // errors come out in stream order whatever the group size.
    std::vector<ChunkInfo> info;
    std::vector<std::vector<uint8_t>> payload;
    std::exception_ptr framing_error;
    try {
      while (info.size() < group) {
        const uint64_t at = in_.offset();
        const auto chunk = read_chunk_header(in_, header_, index + info.size());
        if (!chunk) {
          ended = true;
          break;
        }
        if (short_seen)
          throw Error(ErrorCode::kCorruptChunk,
                      chunk_where(index + info.size(), at) +
                          ": follows a chunk shorter than the chunk size");
        short_seen = chunk->raw_size < header_.chunk_size();
        if ((chunk->method == ChunkMethod::kModel || chunk->method == ChunkMethod::kHybrid) &&
            !model)
          throw Error(ErrorCode::kModelUnknown, chunk_where(index + info.size(), at) +
                                                    ": coded with model " + header_.model.name +
                                                    ", which is not available");
        std::vector<uint8_t> body(chunk->payload_size);
        read_exact(in_, body, "chunk payload");
        info.push_back({at, *chunk});
        payload.push_back(std::move(body));
      }
    } catch (const Error&) {
      framing_error = std::current_exception();
    }
    const size_t n = info.size();
    const bool uses_model = std::ranges::any_of(info, [](const ChunkInfo& c) {
      return c.header.method == ChunkMethod::kModel || c.header.method == ChunkMethod::kHybrid;
    });
    if (model && uses_model && !limited) {  // no more model instances at once than fit (asked
      limited = true;  // only here: asking may start a device)
      options.threads =
          std::clamp(model->max_instances(streams), 1u, options.threads);
      group = options.threads * batch;
    }
    std::vector<std::vector<uint8_t>> raw(n);
    for (size_t k = 0; k < n; ++k) raw[k].resize(info[k].header.raw_size);
    const size_t n_batches = (n + batch - 1) / batch;
    share = std::max<unsigned>(1, unsigned(options.threads / std::max<size_t>(1, n_batches)));
    parallel_for(options.threads, n_batches, [&](unsigned t, size_t b) {
      const size_t first = b * batch, count = std::min(batch, n - first);
      std::vector<std::span<const uint8_t>> model_in;
      std::vector<std::span<uint8_t>> model_out;
      for (size_t k = first; k < first + count; ++k) {
        switch (info[k].header.method) {
          case ChunkMethod::kStored:
            raw[k] = std::move(payload[k]);
            break;
          case ChunkMethod::kZstd: {
            const size_t got =
                ZSTD_decompress(raw[k].data(), raw[k].size(), payload[k].data(), payload[k].size());
            if (ZSTD_isError(got) || got != raw[k].size())
              throw Error(ErrorCode::kCorruptChunk,
                          chunk_where(index + k, info[k].offset) + ": zstd payload is damaged (" +
                              (ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                                 : "decodes to " + std::to_string(got) + " bytes") +
                              ")");
            // FORMAT.md: exactly one frame (ZSTD_decompress would also take several).
            if (ZSTD_findFrameCompressedSize(payload[k].data(), payload[k].size()) !=
                payload[k].size())
              throw Error(ErrorCode::kCorruptChunk, chunk_where(index + k, info[k].offset) +
                                                        ": zstd payload is not exactly one frame");
            break;
          }
          case ChunkMethod::kModel:
            if (!segments) {
              model_in.push_back(payload[k]);
              model_out.push_back(raw[k]);
              break;
            }
            [[fallthrough]];
          case ChunkMethod::kCm:
          case ChunkMethod::kHybrid: {
            const ChunkMethod method = info[k].header.method;
            try {
              decode_segment(method, payload[k], raw[k], segment_setup(header_, index + k),
                             method == ChunkMethod::kCm ? nullptr : &model_of(t));
            } catch (const Error& e) {
              if (e.band() != ErrorBand::kCorrupt) throw;
              throw Error(e.code(), chunk_where(index + k, info[k].offset) + ": " +
                                        method_name(method) + " payload is damaged (" + e.what() +
                                        ")");
            }
            break;
          }
        }
      }
      if (!model_in.empty()) model_decode(model_of(t), model_in, model_out);
      for (size_t k = first; k < first + count; ++k) {
        const uint32_t computed = chunk_checksum(raw[k], index + k);
        if (computed != info[k].header.checksum)
          throw Error(ErrorCode::kCorruptChunk,
                      chunk_where(index + k, info[k].offset) + ": checksum mismatch: stored 0x" +
                          hex64(info[k].header.checksum).substr(8) + ", decoded " +
                          method_name(info[k].header.method) + " data gives 0x" +
                          hex64(computed).substr(8));
      }
    });
    for (size_t k = 0; k < n; ++k) {
      out.write(raw[k]);
      hash.update(raw[k]);
      stream_bytes += raw[k].size();
    }
    index += n;
    if (framing_error) std::rethrow_exception(framing_error);
    if (options.progress) options.progress(stream_bytes, in_.offset());
  }
  const uint64_t trailer_at = in_.offset();
  const Trailer trailer = read_trailer(in_);
  if (trailer.stream_size != stream_bytes)
    throw Error(ErrorCode::kCorruptTrailer, "trailer at offset " + std::to_string(trailer_at) +
                                                " gives stream size " +
                                                std::to_string(trailer.stream_size) +
                                                ", chunks hold " + std::to_string(stream_bytes));
  if (trailer.stream_checksum != hash.digest())
    throw Error(ErrorCode::kCorruptContentChecksum,
                "stream checksum mismatch: trailer at offset " + std::to_string(trailer_at) +
                    " has " + hex64(trailer.stream_checksum) + ", decoded data gives " +
                    hex64(hash.digest()));
  expect_end(in_);
  out.flush();
  return trailer;
}

std::vector<ChunkInfo> ArchiveReader::list(Trailer* trailer) {
  std::vector<ChunkInfo> chunks;
  std::vector<uint8_t> scratch;
  for (uint64_t index = 0;; ++index) {
    const uint64_t at = in_.offset();
    const auto chunk = read_chunk_header(in_, header_, index);
    if (!chunk) break;
    chunks.push_back({at, *chunk});
    scratch.resize(chunk->payload_size);
    read_exact(in_, scratch, "chunk payload");
  }
  const Trailer t = read_trailer(in_);
  expect_end(in_);
  if (trailer) *trailer = t;
  return chunks;
}

void check_content(const Header& header, const Trailer& trailer, uint64_t content_checksum,
                   uint64_t content_size) {
  if (trailer.content_checksum != content_checksum)
    throw Error(ErrorCode::kCorruptContentChecksum,
                "content checksum mismatch: trailer has " + hex64(trailer.content_checksum) +
                    ", restored data gives " + hex64(content_checksum));
  if (header.original_size != kUnknownSize && header.original_size != content_size)
    throw Error(ErrorCode::kCorruptTrailer,
                "header gives original size " + std::to_string(header.original_size) +
                    ", restored " + std::to_string(content_size) + " bytes");
}

std::vector<uint8_t> compress_buffer(std::span<const uint8_t> data, const Header& header,
                                     const ModelFactory& model, const EncodeOptions& options) {
  MemoryWriter out;
  ArchiveWriter writer(out, header, model, options);
  writer.write(data);
  writer.finish();
  return std::move(out.data);
}

std::vector<uint8_t> decompress_buffer(std::span<const uint8_t> archive, const ModelFactory* model,
                                       const DecodeOptions& options) {
  MemoryReader in(archive);
  ArchiveReader reader(in);
  MemoryWriter out;
  const Trailer trailer = reader.decode(out, model, options);
  check_content(reader.header(), trailer, xxh64(out.data), out.data.size());
  return std::move(out.data);
}

}  // namespace mbz

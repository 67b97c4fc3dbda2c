#include "cli/commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <exception>
#include <memory>
#include <thread>

#include "cli/json.h"
#include "cli/model_registry.h"
#include "cli/output_file.h"
#include "cli/progress.h"
#include "codec/archive.h"
#include "codec/error.h"
#include "io/transform.h"

namespace mbz::cli {
namespace {

constexpr const char* kSuffix = ".mbz";
constexpr size_t kReadBlock = 1 << 20;
constexpr int kInternalErrorStatus = 70;   // documented in main.cpp's exit status list
constexpr size_t kDetectBytes = 64 << 10;  // what detection looks at

unsigned thread_count(const Options& o) {
  if (o.threads > 0) return o.threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool show_progress(const Options& o) {
  return !o.quiet && !o.no_progress && (o.progress || is_terminal(stderr));
}

void print_error(const std::string& message) {
  std::fprintf(stderr, "mbz: %s\n", message.c_str());
}

std::string display(const std::string& path) {
  return path == "-" ? "stdin" : path;
}

// Runs `one` on every input (standard input when there are none), reporting each failure
// and going on with the next; the status is that of the first failure.
template <class Fn>
int for_each_input(const Options& o, Fn one) {
  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty()) inputs.push_back("-");
  if (!o.output.empty() && o.output != "-" && inputs.size() > 1)
    throw Error(ErrorCode::kUsageBadArgument,
                "-o takes one input, " + std::to_string(inputs.size()) + " given");
  int status = 0;
  for (const std::string& input : inputs) {
    try {
      one(input);
    } catch (const Error& e) {
      // I/O messages start with the path at fault; the codec's say where in the archive
      // (offset, chunk) but not which file, which matters as soon as there are several.
      std::string message = e.what();
      if (e.band() != ErrorBand::kIo && message.rfind(display(input) + ": ", 0) != 0)
        message = display(input) + ": " + message;
      print_error(std::string(band_name(e.band())) + ": " + message);
      if (status == 0) status = static_cast<int>(e.band());
    } catch (const std::exception& e) {
      // Out of memory, no threads: say so and go on with the next input.
      print_error("internal error: " + display(input) + ": " + e.what());
      if (status == 0) status = kInternalErrorStatus;
    }
  }
  return status;
}

struct Input {
  std::FILE* file;
  explicit Input(const std::string& path) : file(open_input(path)) {}
  ~Input() {
    if (file != stdin) std::fclose(file);
  }
};

// --rm, after success. Not when the output went to stdout, as zstd does (and gzip and xz
// keep inputs with -c): that output may not have been kept anywhere.
void remove_input(const std::string& path, const std::string& output) {
  if (path != "-" && output != "-" && unlink(path.c_str()) != 0)
    throw Error(ErrorCode::kIoWrite, path + ": cannot remove input after success");
}

// Even with -f: the result would replace its own input, and --rm would then delete both.
void check_distinct(const std::string& input, const std::string& output) {
  struct stat in, out;
  if (input != "-" && output != "-" && stat(input.c_str(), &in) == 0 &&
      stat(output.c_str(), &out) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
    throw Error(ErrorCode::kUsageBadArgument,
                input + ": input and output are the same file (" + output + ")");
}

}  // namespace

io::FlattenOptions flatten_options(const Options& o) {
  io::FlattenOptions f;
  if (!o.as.empty()) {
    f.as = io::parse_modality(o.as);
    if (!f.as)
      throw Error(ErrorCode::kUsageBadArgument,
                  "--as must be raw, text, image or audio, got '" + o.as + "'");
  }
  f.pixels = o.pixels;
  f.samples = o.samples;
  f.tile = o.tile;
  return f;
}

const Level& level(int number) {
  // Speeds: one thread of the 2-core development machine on 2 MB of text (200 KB at
  // level 3), loading the bundled model aside (bench/results/hybrid-s4.md); images and
  // audio: whole valid splits, whole processes (README, "Measured"); level 3 on CUDA:
  // bench/results/levels-gpu-s10.tsv (2 MB of valid text, the former bundled model). Two
  // lanes at level 3: the CPU decoder runs each lane's step on a thread of its own (on one
  // thread, it reads each weight once for both), 1.5 times one lane's speed on 2 cores for
  // 1.3 % more bytes with the context mixer, 0.3 % without (bench/results/model-s13.md).
  static const Level kLevels[] = {
      {0, false, false, 1, 24, 19, "zstd -19 only (about 1 MB/s compressing)"},
      {1, false, true, 1, 22, 3,
       "context mixing, 16 MiB tables (about 0.9 MB/s each way on text, 0.3 on images and "
       "audio)"},
      {2, false, true, 1, 24, 19,
       "context mixing, 64 MiB tables (about 0.65 MB/s compressing, 0.8 MB/s decompressing "
       "text; 0.35 MB/s images, 0.25 MB/s audio)"},
      {3, true, true, 2, 24, 19,
       "the byte model mixed with context mixing (about 30 KB/s each way with the bundled "
       "model on 2 CPU cores; the model alone, --no-cm, on an H200 with --device cuda "
       "--lanes 4096: about 2.0 MB/s compressing, 1.35 MB/s decompressing text)"},
  };
  return kLevels[std::clamp(number, kMinLevel, kMaxLevel)];
}

namespace {

void compress_one(const Options& o, const std::string& input) {
  if (input != "-" && ends_with(input, kSuffix) && !o.force)
    throw Error(ErrorCode::kUsageBadArgument, input + ": already has the " + std::string(kSuffix) +
                                                  " suffix; skipped (-f compresses it anyway)");
  const std::string output = !o.output.empty()               ? o.output
                             : (o.to_stdout || input == "-") ? "-"
                                                             : input + kSuffix;
  check_distinct(input, output);
  if (output == "-" && is_terminal(stdout) && !o.force)
    throw Error(ErrorCode::kUsageTerminal,
                "refusing to write compressed data to a terminal; use -o FILE, a pipe, or -f");
  Input in(input);
  const std::optional<uint64_t> size = regular_file_size(in.file);
  const ModelFactory& model = o.model.empty() ? default_model() : model_by_name(o.model);
  FileReader reader(in.file, display(input));

  // The head decides the modality. Images and audio are read whole and flattened by io/;
  // raw and text stream through in blocks, so their size is not limited by memory.
  std::vector<uint8_t> data(kDetectBytes);
  data.resize(reader.read(data));
  const io::FlattenOptions flat_options = flatten_options(o);
  const io::Modality detected = flat_options.as.value_or(io::detect(data));
  const bool whole =
      detected == io::Modality::kImage || detected == io::Modality::kAudio || o.pixels || o.samples;
  uint64_t total = data.size();
  std::vector<uint8_t> block(kReadBlock);
  if (whole)
    for (size_t n; (n = reader.read(block)) > 0; total += n)
      data.insert(data.end(), block.begin(), block.begin() + n);
  io::Flattened flat;
  if (whole)
    flat = io::flatten(data, flat_options);
  else
    flat.modality = detected;

  const Level& lv = level(o.level >= 0      ? o.level
                          : o.model.empty() ? kDefaultLevel
                                            : kDefaultModelLevel);
  Header header;
  header.chunk_log = std::countr_zero(o.chunk_size ? o.chunk_size : kDefaultSegment);
  header.model = model.identity();
  // Lanes buy speed, not ratio: an input known to be small enough that a lane would get
  // less than kMinLaneBytes is coded in one.
  // (a first read shorter than asked for is the whole input: its size is known then too)
  const bool small = whole                        ? flat.stream.size() < 2 * kMinLaneBytes
                     : size                       ? size.value() < 2 * kMinLaneBytes
                     : data.size() < kDetectBytes ? data.size() < 2 * kMinLaneBytes
                                                  : false;
  header.lanes = o.lanes ? o.lanes : small ? 1 : lv.lanes;
  header.cm_context_bits = static_cast<uint8_t>(lv.cm_context_bits);
  header.modality = static_cast<uint8_t>(flat.modality);
  header.params = flat.params;
  // A PNG or WAV rebuilt from pixels or samples is a new file whose size and bytes depend
  // on the encoder's version: such archives record neither (codec/FORMAT.md).
  const bool exact = io::restores_original(flat.modality, flat.params);
  header.original_size = exact ? size.value_or(kUnknownSize) : kUnknownSize;

  Progress progress(show_progress(o), display(input),
                    whole ? std::optional<uint64_t>(flat.stream.size()) : size);
  EncodeOptions options;
  options.threads = thread_count(o);
  options.zstd_level = o.zstd_level >= 0 ? o.zstd_level : lv.zstd_level;
  options.try_model = lv.byte_model && !o.no_model;
  options.try_cm = lv.cm && !o.no_cm;
  options.try_hybrid = options.try_model && options.try_cm;
  options.verify = o.verify;
  options.progress = [&](uint64_t in_bytes, uint64_t out_bytes) {
    progress.update(in_bytes, out_bytes);
  };

  OutputFile out(output, o.force);
  ArchiveWriter writer(out.writer(), header, model, options);
  std::optional<uint64_t> content_checksum;
  if (whole) {
    writer.write(flat.stream);
    if (exact) content_checksum = xxh64(data);
  } else {
    writer.write(data);
    for (size_t n; (n = reader.read(block)) > 0; total += n) writer.write({block.data(), n});
  }
  if (size && total != *size)
    throw Error(ErrorCode::kIoRead, display(input) + ": changed size while being read (" +
                                        std::to_string(*size) + " bytes, then " +
                                        std::to_string(total) + ")");
  writer.finish(content_checksum);
  out.commit();
  if (o.remove_input && !out.is_direct()) remove_input(input, output);
  progress.clear();

  if (!o.quiet) {
    const uint64_t packed = writer.archive_bytes();
    std::fprintf(stderr, "%s: %llu => %llu bytes (%.2f%%, %.3f bits/byte)%s%s\n",
                 display(input).c_str(), static_cast<unsigned long long>(total),
                 static_cast<unsigned long long>(packed), total ? 100.0 * packed / total : 0.0,
                 total ? 8.0 * packed / total : 0.0, output == "-" ? "" : ", ",
                 output == "-" ? "" : output.c_str());
    if (o.verbose > 0 || flat.modality == io::Modality::kImage ||
        flat.modality == io::Modality::kAudio)
      std::fprintf(stderr, "  coded as %s: %s\n", io::modality_name(flat.modality),
                   io::describe(flat.modality, flat.params).c_str());
    if (o.verbose > 0) {
      const MethodStats& s = writer.stats();
      for (int m = 0; m < kMethodCount; ++m)
        if (s.chunks[m])
          std::fprintf(stderr, "  %-6s %llu chunks, %llu => %llu bytes\n",
                       method_name(static_cast<ChunkMethod>(m)),
                       static_cast<unsigned long long>(s.chunks[m]),
                       static_cast<unsigned long long>(s.raw_bytes[m]),
                       static_cast<unsigned long long>(s.payload_bytes[m]));
    }
  }
}

void decompress_one(const Options& o, const std::string& input) {
  std::string output = o.output;
  if (output.empty()) {
    if (o.to_stdout || input == "-")
      output = "-";
    else if (ends_with(input, kSuffix) && input.size() > 4)
      output = input.substr(0, input.size() - 4);
    else
      throw Error(ErrorCode::kUsageBadArgument,
                  input + ": unknown suffix (expected " + kSuffix + "); use -o FILE or -c");
  }
  check_distinct(input, output);
  if (input == "-" && is_terminal(stdin))
    throw Error(ErrorCode::kUsageTerminal, "refusing to read compressed data from a terminal");
  Input in(input);
  FileReader reader(in.file, display(input));
  ArchiveReader archive(reader);
  const Header& header = archive.header();
  const auto modality = static_cast<io::Modality>(header.modality);
  const bool transformed = modality == io::Modality::kImage || modality == io::Modality::kAudio;
  const bool exact = io::restores_original(modality, header.params);
  if (!exact && o.output.empty() && output != "-") {
    // Pixels or samples come back as a PNG, WAV or FLAC: name the file for what it is.
    const std::string ext = io::output_extension(modality, header.params);
    const size_t slash = output.find_last_of('/'), dot = output.find_last_of('.');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) output.resize(dot);
    output += ext;
  }
  // A model that is not at hand is no error until a chunk needs it (cm, zstd and stored
  // chunks do not); then it is the error that finding the model gave.
  const ModelFactory* model = nullptr;
  std::exception_ptr model_error;
  try {
    model = &model_for(header.model, o.model);
  } catch (const Error& e) {
    if (!o.model.empty() || e.code() != ErrorCode::kModelUnknown) throw;
    model_error = std::current_exception();
  }

  Progress progress(show_progress(o), display(input), regular_file_size(in.file));
  DecodeOptions options;
  options.threads = thread_count(o);
  options.batch = o.batch;
  options.progress = [&](uint64_t out_bytes, uint64_t in_bytes) {
    progress.update(in_bytes, out_bytes);
  };

  auto decode = [&](Writer& to) {
    try {
      return archive.decode(to, model, options);
    } catch (const Error& e) {
      if (model_error && e.code() == ErrorCode::kModelUnknown) std::rethrow_exception(model_error);
      throw;
    }
  };

  OutputFile out(output, o.force);
  uint64_t restored = 0;
  if (!transformed) {
    HashingWriter content(out.writer());
    const Trailer trailer = decode(content);
    check_content(header, trailer, content.digest(), content.size());
    restored = content.size();
  } else {
    // The whole stream first: io/ rebuilds the file from it and the parameters.
    MemoryWriter stream;
    const Trailer trailer = decode(stream);
    const std::vector<uint8_t> file = io::unflatten(modality, header.params, stream.data);
    if (exact) check_content(header, trailer, xxh64(file), file.size());
    out.writer().write(file);
    restored = file.size();
  }
  out.commit();
  if (o.remove_input && !out.is_direct()) remove_input(input, output);
  progress.clear();
  if (!o.quiet && o.verbose > 0)
    std::fprintf(stderr, "%s: %llu bytes%s%s\n", display(input).c_str(),
                 static_cast<unsigned long long>(restored), output == "-" ? "" : " => ",
                 output == "-" ? "" : output.c_str());
}

void info_one(const Options& o, const std::string& input, Json* json) {
  Input in(input);
  FileReader reader(in.file, display(input));
  ArchiveReader archive(reader);
  const Header& h = archive.header();
  Trailer trailer;
  const std::vector<ChunkInfo> chunks = archive.list(&trailer);
  const uint64_t archive_size = reader.offset();
  MethodStats s;
  for (const ChunkInfo& c : chunks)
    s.add(c.header.method, c.header.raw_size, c.header.payload_size);
  const bool known = h.original_size != kUnknownSize;
  const std::string restores = io::describe(static_cast<io::Modality>(h.modality), h.params);
  if (json) {
    json->begin_object();
    json->field("file", display(input));
    json->field("format_version", uint64_t{h.version});
    if (known)
      json->field("original_size", h.original_size);
    else
      json->null_field("original_size");
    json->field("archive_size", archive_size);
    json->field("chunk_size", uint64_t{h.chunk_size()});
    json->field("modality", modality_name(h.modality));
    json->field("params_size", uint64_t{h.params.size()});
    json->field("restores", restores);
    json->key("model")
        .begin_object()
        .field("name", h.model.name)
        .field("id", h.model.id_hex())
        .end_object();
    json->field("lanes", uint64_t{h.lanes});
    json->key("cm")
        .begin_object()
        .field("revision", uint64_t{h.cm_revision})
        .field("context_bits", uint64_t{h.cm_context_bits})
        .field("match_bits", uint64_t{h.cm_match_bits})
        .end_object();
    json->field("stream_size", trailer.stream_size);
    json->field("stream_xxh64", hex64(trailer.stream_checksum));
    json->field("content_xxh64", hex64(trailer.content_checksum));
    json->key("methods").begin_object();
    for (int m = 0; m < kMethodCount; ++m)
      json->key(method_name(static_cast<ChunkMethod>(m)))
          .begin_object()
          .field("chunks", s.chunks[m])
          .field("raw_bytes", s.raw_bytes[m])
          .field("payload_bytes", s.payload_bytes[m])
          .end_object();
    json->end_object();
    json->key("chunks").begin_array();
    for (const ChunkInfo& c : chunks)
      json->begin_object()
          .field("offset", c.offset)
          .field("method", method_name(c.header.method))
          .field("raw_size", uint64_t{c.header.raw_size})
          .field("payload_size", uint64_t{c.header.payload_size})
          .end_object();
    json->end_array();
    json->end_object();
    return;
  }
  std::printf("%s\n", display(input).c_str());
  std::printf("  format version  %u\n", h.version);
  std::printf("  original size   %s\n", known ? std::to_string(h.original_size).c_str()
                                              : "not recorded (input from a pipe, or re-encoded)");
  std::printf("  archive size    %llu (%.3f bits/byte)\n",
              static_cast<unsigned long long>(archive_size),
              trailer.stream_size ? 8.0 * archive_size / trailer.stream_size : 0.0);
  std::printf("  modality        %s\n", modality_name(h.modality));
  std::printf("  restores        %s\n", restores.c_str());
  std::printf("  chunk size      %u\n", h.chunk_size());
  std::printf("  model           %s (id %s)\n", h.model.name.c_str(), h.model.id_hex().c_str());
  if (h.version >= 2)
    std::printf("  lanes           %u (context mixer revision %u, tables 2^%u and 2^%u)\n", h.lanes,
                h.cm_revision, h.cm_context_bits, h.cm_match_bits);
  std::printf("  content xxh64   %s\n", hex64(trailer.content_checksum).c_str());
  std::printf("  chunks          %zu\n", chunks.size());
  for (int m = 0; m < kMethodCount; ++m)
    if (s.chunks[m])
      std::printf("    %-6s %6llu chunks, %llu => %llu bytes\n",
                  method_name(static_cast<ChunkMethod>(m)),
                  static_cast<unsigned long long>(s.chunks[m]),
                  static_cast<unsigned long long>(s.raw_bytes[m]),
                  static_cast<unsigned long long>(s.payload_bytes[m]));
  if (o.verbose > 0)
    for (size_t i = 0; i < chunks.size(); ++i)
      std::printf("    chunk %zu at %llu: %s %u => %u\n", i,
                  static_cast<unsigned long long>(chunks[i].offset),
                  method_name(chunks[i].header.method), chunks[i].header.raw_size,
                  chunks[i].header.payload_size);
}

}  // namespace

uint64_t chunk_size_for(const Options& o, const ModelFactory& model) {
  if (o.chunk_size) return o.chunk_size;
  if (model.preferred_chunk())
    return std::clamp<uint64_t>(model.preferred_chunk(), 1 << 10, 1 << 26);
  return kDefaultChunk;
}

int run_compress(const Options& o) {
  // Archives written back to back on stdout would not decode: the format ends at its trailer.
  if ((o.to_stdout || o.output == "-") && o.inputs.size() > 1)
    throw Error(ErrorCode::kUsageBadArgument, "compressing " + std::to_string(o.inputs.size()) +
                                                  " inputs to standard output would give one "
                                                  "stream that does not decode; give one input");
  return for_each_input(o, [&](const std::string& input) { compress_one(o, input); });
}

int run_decompress(const Options& o) {
  return for_each_input(o, [&](const std::string& input) { decompress_one(o, input); });
}

int run_info(const Options& o) {
  if (!o.json)
    return for_each_input(o, [&](const std::string& input) { info_one(o, input, nullptr); });
  // Each file's object joins the array only when complete, so a failure leaves valid JSON.
  Json json;
  json.begin_array();
  const int status = for_each_input(o, [&](const std::string& input) {
    Json one;
    info_one(o, input, &one);
    json.raw(one.str());
  });
  json.end_array();
  std::printf("%s\n", json.str().c_str());
  return status;
}

}  // namespace mbz::cli

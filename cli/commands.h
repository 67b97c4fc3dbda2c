// The subcommands. Each takes its parsed options, prints results to stdout and messages to
// stderr, and returns an exit status (cli/main.cpp documents them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/byte_model.h"
#include "io/transform.h"

namespace mbz::cli {

inline constexpr uint64_t kDefaultChunk = 1 << 20;
// compress: the segment (chunk) size of a format 2 archive when --chunk-size is not given.
// Segments are coded independently, so large ones keep the most context; 16 MiB lets two
// threads share inputs from 32 MiB on.
inline constexpr uint64_t kDefaultSegment = 1 << 24;

// A compression level: which methods compress tries, and how (codec/archive.h).
struct Level {
  int level;
  bool byte_model;      // try the model and hybrid methods
  bool cm;              // try the context mixer (cm and hybrid)
  uint32_t lanes;       // lanes of a segment (the byte model's batch)
  int cm_context_bits;  // the context mixer's hashed tables, 2^bits counters of 4 bytes
  int zstd_level;       // 0: none
  const char* help;     // what it does and how fast it is (measured: bench/results/hybrid-s4.md)
};
inline constexpr int kMinLevel = 0, kMaxLevel = 3;
// Without --lanes, an input known to be under twice this is coded in one lane.
inline constexpr uint64_t kMinLaneBytes = 32768;
inline constexpr int kDefaultLevel = 2;       // no --model given
inline constexpr int kDefaultModelLevel = 3;  // --model given: the model is wanted
const Level& level(int number);

struct Options {
  std::vector<std::string> inputs;  // empty or "-": standard input
  std::string output;               // -o; empty: derived from the input name
  bool to_stdout = false;           // -c
  bool force = false;               // -f
  bool keep = true;                 // -k: the default; accepted for zstd/xz habits
  bool remove_input = false;        // --rm: remove inputs after success
  bool quiet = false;               // -q
  int verbose = 0;                  // -v
  bool progress = false;            // --progress: even when stderr is not a terminal
  bool no_progress = false;         // --no-progress
  unsigned threads = 0;             // 0: all cores
  size_t batch = 0;                 // --batch: chunks per model step; 0: the model's preferred
  // compress
  bool verify = false;
  uint64_t chunk_size = 0;  // 0: the model's preferred chunk, else kDefaultChunk
  int zstd_level = -1;      // -1: the level's
  std::string model;        // empty: the default model
  bool no_model = false;
  bool no_cm = false;  // --no-cm: the byte model alone (and zstd, stored)
  int level = -1;      // --level; -1: kDefaultLevel, or kDefaultModelLevel with --model
  uint32_t lanes = 0;  // --lanes; 0: the level's
  // compress, score: how io/ reads the input
  std::string as;        // --as raw|text|image|audio; empty: detect from the content
  bool pixels = false;   // --pixels: code decoded pixels of PNG, JPEG, ...
  bool samples = false;  // --samples: code decoded samples of FLAC, Ogg, ...
  int tile = 0;          // --tile 4|8|16; 0: io::kDefaultTile
  // info, score
  bool json = false;
  // score with a float checkpoint (--model PATH): window stride in bytes; 0: disjoint windows
  int64_t stride = 0;
  int64_t window = 0;          // ... window in bytes; 0: the model's context
  std::string device = "cpu";  // ... and model files: cpu, cuda, or auto (cuda when there is one)
  bool no_zstd = false;        // score --no-zstd: leave out zstd -19's sizes
};

// The chunk size compress and score use: --chunk-size, else the model's preference (at
// least the format's 1 KiB: a smaller context restarts inside chunks), else kDefaultChunk.
uint64_t chunk_size_for(const Options& options, const ModelFactory& model);

// The io/ options that compress and score share; throws kUsageBadArgument for a bad --as.
io::FlattenOptions flatten_options(const Options& options);

int run_compress(const Options& options);
int run_decompress(const Options& options);
int run_info(const Options& options);
int run_score(const Options& options);

}  // namespace mbz::cli

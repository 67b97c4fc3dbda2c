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
  int zstd_level = 19;
  std::string model;  // empty: the default model
  bool no_model = false;
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

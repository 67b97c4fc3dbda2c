// `mbz sample` continues an image, a sound or a text with the model (model/sample.h), or
// makes one from nothing, with a seed that gives the same bytes on every machine.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace mbz::cli {

struct SampleCommand {
  std::string model;   // --model: empty, "default" or the bundled name, else an exact model file
  std::string prompt;  // --prompt FILE ('-': standard input); empty: no prompt
  std::string output;  // -o OUT ('-': standard output)
  bool force = false;  // -f
  uint64_t seed = 0;   // --seed
  double temperature = 1;
  double top_p = 1;
  // How much to add; exactly one is given, and it names the modality.
  int64_t tiles = 0;     // --tiles: rows of tiles below an image
  int64_t height = 0;    // --height: pixel rows below an image
  double seconds = 0;    // --seconds: of audio
  int64_t bytes = 0;     // --bytes: of text (or raw bytes)
  std::string modality;  // --modality text|raw|image|audio
  // Without a prompt: the shape of what is made.
  int64_t width = 0;     // --width: image width in pixels
  int64_t channels = 0;  // --channels: image (default 3) or audio (default 1) channels
  int64_t rate = 0;      // --rate: audio sample rate (default 16000)
  std::string crop;      // --crop WxH[+X+Y]: the part of an image prompt to continue
  int tile = 0;          // --tile 4|8|16: image tile side (default io::kDefaultTile)
  int64_t overlap = 0;   // --overlap: bytes kept when the window restarts (0: half the context)
  std::string device = "cpu";
  bool quiet = false, progress = false, no_progress = false;
  int verbose = 0;
};

CLI::App* add_sample_command(CLI::App& app, SampleCommand& command);
int run_sample(const SampleCommand& command);

}  // namespace mbz::cli

// mbz: the command line. Parses arguments with CLI11, runs a subcommand, and turns
// mbz::Error into one line on stderr and an exit status.
#include <functional>
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>

#include "cli/commands.h"
#include "cli/model_registry.h"
#include "cli/output_file.h"
#include "cli/sample.h"
#include "cli/train.h"
#include "codec/error.h"
#include "codec/format.h"
#include "io/tiles.h"
#include "model/runtime.h"

namespace {

constexpr const char* kExitCodes = R"(Exit status:
  0  success
  1  I/O error (cannot read or write a file; output exists without -f)
  2  format error (not an mbz archive, or a version or feature this mbz does not read)
  3  corrupt archive (truncated, checksum mismatch, damaged chunk)
  4  model error (the archive needs a model that is missing or different)
  5  unsupported input
  6  usage error (bad arguments, binary data to a terminal)
  70  internal error (out of memory, cannot start threads)
  130, 143  interrupted by SIGINT or SIGTERM (no partial output is left behind)
With several files, mbz goes on after a failure and exits with the first failure's status.)";

// "1M", "64K", "1048576": a power of two from 1 KiB to 64 MiB.
uint64_t parse_chunk_size(const std::string& text) {
  size_t pos = 0;
  uint64_t value = 0;
  try {
    // stoull alone takes " 1K" and wraps "-18446744073709550592" around to 1024.
    if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0])))
      value = std::stoull(text, &pos);
  } catch (...) {
    pos = 0;
  }
  const std::string unit = text.substr(pos);
  int shift = 0;
  if (unit == "K" || unit == "k" || unit == "KiB")
    shift = 10;
  else if (unit == "M" || unit == "m" || unit == "MiB")
    shift = 20;
  else if (!unit.empty() || pos == 0)
    value = 0;
  // Shifting a value beyond the range could wrap around to a power of two within it.
  value = value <= (1u << mbz::kMaxChunkLog) ? value << shift : 0;
  if (value < (1u << mbz::kMinChunkLog) || value > (1u << mbz::kMaxChunkLog) ||
      (value & (value - 1)))
    throw mbz::Error(mbz::ErrorCode::kUsageBadArgument,
                     "--chunk-size must be a power of two from 1K to 64M, got '" + text + "'");
  return value;
}

void add_common(CLI::App* cmd, mbz::cli::Options& o) {
  cmd->add_option("files", o.inputs, "Input files; none or '-' means standard input");
  cmd->add_flag("-q,--quiet", o.quiet, "Print nothing but errors");
  cmd->add_flag("-v,--verbose", o.verbose, "Print more detail (repeatable)");
  cmd->add_option("-T,--threads", o.threads,
                  "Threads, 1 to 1024 (default: all cores); never changes the output")
      ->check(CLI::Range(1, 1024));
}

// How io/ reads inputs: shared by compress and score.
void add_reading(CLI::App* cmd, mbz::cli::Options& o) {
  cmd->add_option("--as", o.as,
                  "Code inputs as raw, text, image or audio (default: from the content)");
  cmd->add_flag("--pixels", o.pixels,
                "Code the decoded pixels of PNG, JPEG, GIF, TGA: decompression gives a PNG with "
                "identical pixels, not the original bytes");
  cmd->add_flag("--samples", o.samples,
                "Code the decoded samples of FLAC, Ogg and other audio: decompression gives a "
                "WAV or FLAC with identical samples, not the original bytes");
  cmd->add_option(
         "--tile", o.tile,
         "Image tile side, 4, 8 or 16 (default: " + std::to_string(mbz::io::kDefaultTile) + ")")
      ->check(CLI::IsMember({4, 8, 16}));
}

void add_output(CLI::App* cmd, mbz::cli::Options& o) {
  cmd->add_option("-o,--output", o.output, "Output file ('-' for standard output); one input only");
  cmd->add_flag("-c,--stdout", o.to_stdout, "Write to standard output");
  cmd->add_flag("-f,--force", o.force,
                "Overwrite existing outputs; allow binary output to a terminal");
  auto* keep = cmd->add_flag("-k,--keep", o.keep,
                             "Keep input files (the default; accepted for zstd/xz habits)");
  cmd->add_flag("--rm", o.remove_input,
                "Remove each input file after it was processed successfully (not with output to "
                "standard output)")
      ->excludes(keep);
  cmd->add_flag("--progress", o.progress, "Show progress even when stderr is not a terminal");
  cmd->add_flag("--no-progress", o.no_progress, "Never show progress");
}

}  // namespace

int main(int argc, char** argv) {
  mbz::cli::install_signal_handlers();
  mbz::cli::Options o;
  std::string chunk_size;  // empty: the model's preference, else 1M

  CLI::App app{
      "mbz: lossless compression with a learned byte model (MEGABYTE) and classical context "
      "models"};
  app.footer(kExitCodes);
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", std::function<std::string()>([] {
    std::string text = "mbz " MBZ_VERSION " (archive format " +
                       std::to_string(mbz::kFormatVersion) + ", LibTorch " +
                       mbz::model::libtorch_version() + ")\nbuilt-in models:";
    const mbz::ModelFactory& bundled = mbz::cli::bundled_model();
    text += "\n  " + bundled.identity().name + "  id " + bundled.identity().id_hex() + "  (default)";
    for (const mbz::ModelFactory* m : mbz::cli::builtin_models())
      text += "\n  " + m->identity().name + "  id " + m->identity().id_hex();
    return text;
  }));

  auto* compress = app.add_subcommand("compress", "Compress files to FILE.mbz (inputs are kept)");
  add_common(compress, o);
  add_output(compress, o);
  compress->add_flag("--verify", o.verify, "Decode every chunk again after coding it and compare");
  compress->add_option("--chunk-size", chunk_size,
                       "Segment size, a power of two from 1K to 64M (default 16M); segments are "
                       "coded independently, and decoded in parallel");
  std::string level_help = "Speed against ratio (default " +
                           std::to_string(mbz::cli::kDefaultLevel) + ", or " +
                           std::to_string(mbz::cli::kDefaultModelLevel) + " with --model):";
  for (int l = mbz::cli::kMinLevel; l <= mbz::cli::kMaxLevel; ++l)
    level_help += "\n  " + std::to_string(l) + ": " + mbz::cli::level(l).help;
  compress->add_option("--level", o.level, level_help)
      ->check(CLI::Range(mbz::cli::kMinLevel, mbz::cli::kMaxLevel));
  compress
      ->add_option("--lanes", o.lanes,
                   "Lanes a segment is cut into, 1 to 4096 (default: the level's): the byte "
                   "model's batch, so more run faster on a GPU (256 to 4096 there) at some cost "
                   "in ratio; each lane keeps model caches (about 2 MiB with the bundled model), "
                   "which coding and decoding need on any device")
      ->check(CLI::Range(1, 4096));
  compress->add_option("--model", o.model,
                       "Built-in model by name, or an exact model file from mbz quantize "
                       "(default: the bundled default)");
  compress
      ->add_option("--zstd-level", o.zstd_level,
                   "zstd level tried on every segment (0: don't try zstd; default: the level's)")
      ->check(CLI::Range(0, 22));
  compress->add_flag("--no-model", o.no_model,
                     "Don't use the byte model, whatever the level (context mixing, zstd and "
                     "stored only)");
  compress->add_flag("--no-cm", o.no_cm,
                     "Don't use the context mixer, whatever the level (the byte model alone, "
                     "zstd and stored only: the model's own speed on a GPU)");
  add_reading(compress, o);

  auto* decompress =
      app.add_subcommand("decompress", "Restore FILE from FILE.mbz (inputs are kept)");
  add_common(decompress, o);
  add_output(decompress, o);
  for (CLI::App* cmd : {compress, decompress}) {
    cmd->add_option("--device", o.device,
                    "Where a model file runs: cpu, cuda, or auto (cuda when there is one; "
                    "default cpu); never changes the bytes")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    cmd->add_option("--batch", o.batch,
                    "Chunks a model decodes together in one step in archives of format 1 "
                    "(default: the model's choice, 8 on the CPU, 256 on CUDA; formats 2 and 3 "
                    "use their lanes); never changes the bytes")
        ->check(CLI::Range(1, 65536));
  }
  decompress->add_option("--model", o.model,
                         "Model file the archive was made with (else found by its identity in "
                         "$MBZ_MODEL_PATH, then ~/.local/share/mbz/models)");

  auto* info = app.add_subcommand("info", "Describe archives: header, model identity, chunks");
  add_common(info, o);
  info->add_flag("--json", o.json, "Print JSON");

  auto* score =
      app.add_subcommand("score", "Bits per byte of files or directories under the model");
  add_common(score, o);
  score->add_option("--model", o.model,
                    "Built-in model by name (default: the bundled default), or a float checkpoint "
                    "from mbz train");
  score->add_option("--stride", o.stride,
                    "(checkpoint) windows of the model's context advance by this many bytes and "
                    "score only their last ones (default: disjoint windows)");
  score->add_option("--window", o.window,
                    "With a checkpoint: window in bytes, at most its context (default: the window it was trained on, else its context)");
  score->add_option("--device", o.device,
                    "Where a checkpoint or model file runs: cpu, cuda or auto (default cpu)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  score->add_option("--chunk-size", chunk_size, "Chunk size the model restarts at (default: as compress)");
  score->add_option("--batch", o.batch,
                    "Chunks a model scores together in one step (default: the model's choice, "
                    "8 on the CPU, 256 on CUDA); never changes the figures")
      ->check(CLI::Range(1, 65536));
  score->add_flag("--json", o.json, "Print JSON");
  score->add_flag("--no-zstd", o.no_zstd,
                  "Leave out the zstd -19 column (each file compressed by libzstd, as `zstd -19`)");
  add_reading(score, o);

  mbz::cli::TrainCommand train_command;
  auto* train = mbz::cli::add_train_command(app, train_command);
  mbz::cli::QuantizeCommand quantize_command;
  auto* quantize = mbz::cli::add_quantize_command(app, quantize_command);
  mbz::cli::SampleCommand sample_command;
  auto* sample = mbz::cli::add_sample_command(app, sample_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(mbz::ErrorBand::kUsage);
  }
  try {
    o.chunk_size = chunk_size.empty() ? 0 : parse_chunk_size(chunk_size);
    if (o.device == "auto") o.device = mbz::model::cuda_available() ? "cuda" : "cpu";
    mbz::cli::set_model_device(o.device);
    if (o.to_stdout && !o.output.empty())
      throw mbz::Error(mbz::ErrorCode::kUsageBadArgument, "-c and -o exclude each other");
    int status = static_cast<int>(mbz::ErrorBand::kUsage);
    if (compress->parsed())
      status = mbz::cli::run_compress(o);
    else if (decompress->parsed())
      status = mbz::cli::run_decompress(o);
    else if (info->parsed())
      status = mbz::cli::run_info(o);
    else if (score->parsed())
      status = mbz::cli::run_score(o);
    else if (train->parsed())
      status = mbz::cli::run_train(train_command, std::vector<std::string>(argv, argv + argc));
    else if (quantize->parsed())
      status = mbz::cli::run_quantize(quantize_command);
    else if (sample->parsed())
      status = mbz::cli::run_sample(sample_command);
    // Results on stdout that did not all arrive (disk full, closed pipe) are a failure.
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      throw mbz::Error(mbz::ErrorCode::kIoWrite, "stdout: write failed");
    return status;
  } catch (const mbz::Error& e) {
    std::fprintf(stderr, "mbz: %s: %s\n", mbz::band_name(e.band()), e.what());
    return static_cast<int>(e.band());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mbz: internal error: %s\n", e.what());
    return 70;
  }
}

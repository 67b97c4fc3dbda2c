// `mbz sample`: a prompt (or nothing) becomes a stream as io/ flattens files of its modality
// (images as tiled pixels, audio as 16-bit little-endian samples, text as it is), the
// model draws the bytes that follow (model/sample.h), and the stream becomes a PNG, a WAV
// or the bytes again.
#include "cli/sample.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>

#include "cli/output_file.h"
#include "cli/progress.h"
#include "codec/error.h"
#include "io/audio.h"
#include "io/image.h"
#include "io/transform.h"
#include "model/bundled.h"
#include "model/runtime.h"
#include "model/sample.h"

namespace mbz::cli {
namespace {

// The most bytes one run draws: 64 MiB, about an hour on a 2-core CPU (model/EXACT.md
// engine, ~24 KB/s). More is almost surely a mistake in a flag (--height in bytes, ...).
constexpr uint64_t kMaxDrawn = uint64_t{1} << 26;

constexpr uint32_t kDefaultImageChannels = 3;
constexpr uint32_t kDefaultAudioChannels = 1;
constexpr uint32_t kDefaultRate = 16000;

constexpr const char* kHelp =
    R"(Continues a prompt with the model, or makes something from nothing (no --prompt),
in the modality that the size flag names:
  --tiles N / --height N  image: N rows of tiles / pixels below the prompt, at its width
                          and channels, drawn in the tile order of io/ (io/TRANSFORMS.md);
                          output a PNG of the prompt and its continuation
  --seconds S             audio: S seconds after the prompt (WAV, FLAC, anything libsndfile
                          reads), at its rate and channels; output a 16-bit WAV
  --bytes N               text: N bytes after the prompt; output the prompt and its
                          continuation (-o - for standard output)
Sampling runs the exact engine (model/EXACT.md) and draws with a seeded integer generator
(xoshiro256**), temperature and top-p in fixed point (multiples of 2^-16), so a seed gives
the same bytes on every machine, on the CPU and on CUDA alike.
Windows: the model sees at most its context (8 KiB for the bundled model). When its window
is full it restarts from the modality's start patch with the last --overlap bytes (default
half the context; for an image whose row of tiles fits in 7/8 of the context, that row and
one tile, so that the pixels above stay in view) fed to it again, and sampling goes on; a
prompt as long as the context or longer conditions on its last --overlap bytes.
Exit status as for every mbz command (mbz --help): 1 an unreadable prompt, or an output that
exists without -f; 4 a model file that is not an exact model; 5 a prompt that is empty or
not of the modality; 6 bad flags or an absurd size (more than 64 MiB of stream to draw).)";

// "WxH" or "WxH+X+Y" (ImageMagick's geometry): a rectangle of the prompt image.
struct Crop {
  uint32_t width = 0, height = 0, x = 0, y = 0;
};

Crop parse_crop(const std::string& text) {
  Crop c;
  unsigned long long v[4] = {0, 0, 0, 0};
  char tail = 0;
  const int n =
      std::sscanf(text.c_str(), "%llux%llu+%llu+%llu%c", &v[0], &v[1], &v[2], &v[3], &tail);
  const bool digits = !text.empty() && text.find_first_not_of("0123456789x+") == std::string::npos;
  if (!digits || (n != 2 && n != 4) || v[0] < 1 || v[1] < 1 || v[0] > UINT32_MAX ||
      v[1] > UINT32_MAX || v[2] > UINT32_MAX || v[3] > UINT32_MAX ||
      (n == 2 && text.find('+') != std::string::npos))
    throw Error(ErrorCode::kUsageBadArgument,
                "--crop: expected WIDTHxHEIGHT or WIDTHxHEIGHT+X+Y, got '" + text + "'");
  c.width = uint32_t(v[0]), c.height = uint32_t(v[1]), c.x = uint32_t(v[2]), c.y = uint32_t(v[3]);
  return c;
}

// The rectangle `c` of a raster of `g`'s shape; kUsageBadArgument when it does not fit.
std::vector<uint8_t> crop_raster(const io::TileGeometry& g, const std::vector<uint8_t>& raster,
                                 const Crop& c, const std::string& text) {
  if (uint64_t{c.x} + c.width > g.width || uint64_t{c.y} + c.height > g.height)
    throw Error(ErrorCode::kUsageBadArgument, "--crop " + text + " is not inside the prompt's " +
                                                  std::to_string(g.width) + "x" +
                                                  std::to_string(g.height) + " pixels");
  const size_t row = size_t{c.width} * g.channels;
  std::vector<uint8_t> out;
  out.reserve(row * c.height);
  for (uint32_t y = c.y; y < c.y + c.height; ++y) {
    const auto from = raster.begin() + (size_t{y} * g.width + c.x) * g.channels;
    out.insert(out.end(), from, from + row);
  }
  return out;
}

std::vector<uint8_t> read_prompt(const std::string& path) {
  std::FILE* file = open_input(path);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> owner(file == stdin ? nullptr : file,
                                                        &std::fclose);
  FileReader reader(file, path == "-" ? "stdin" : path);
  std::vector<uint8_t> data, block;
  block.resize(1 << 20);
  for (size_t n; (n = reader.read(block)) > 0;)
    data.insert(data.end(), block.begin(), block.begin() + n);
  return data;
}

// What to draw and how the finished stream becomes the output file.
struct Plan {
  model::SampleRequest request;
  std::function<std::vector<uint8_t>(const std::vector<uint8_t>&)> output;
  bool binary = true;  // refused on a terminal without -f
  // Bytes back that the model should see when a window restarts: an image's row of tiles
  // above and one tile; 0: nothing in particular (default_overlap).
  uint64_t in_view = 0;
  std::string summary;  // for -v
};

void check_drawn(uint64_t drawn, const char* flag) {
  if (drawn == 0) throw Error(ErrorCode::kUsageBadArgument, std::string(flag) + " adds nothing");
  if (drawn > kMaxDrawn)
    throw Error(ErrorCode::kUsageBadArgument,
                std::string(flag) + " asks for " + std::to_string(drawn) +
                    " bytes of stream; mbz sample draws at most " + std::to_string(kMaxDrawn) +
                    " (64 MiB, about an hour on a CPU)");
}

// A prompt of `modality` from the file, or a clear error for an empty one.
io::Flattened flatten_prompt(const std::vector<uint8_t>& file, const std::string& path,
                             io::Modality modality, uint32_t tile, const char* shape_flags) {
  if (file.empty())
    throw Error(ErrorCode::kUnsupportedInput,
                path + ": the prompt is empty; an " + io::modality_name(modality) +
                    " prompt gives the shape of what follows (without --prompt, give " +
                    shape_flags + ")");
  io::FlattenOptions options;
  options.as = modality;
  options.pixels = options.samples = true;
  options.tile = int(tile);
  try {
    return io::flatten(file, options);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

Plan image_plan(const SampleCommand& c, const std::optional<std::vector<uint8_t>>& prompt) {
  const uint32_t tile = c.tile ? uint32_t(c.tile) : io::kDefaultTile;
  io::TileGeometry given{0, 0, 0, tile};  // the prompt's shape
  std::optional<uint8_t> alpha;
  std::vector<uint8_t> prompt_raster;
  if (prompt) {
    if (c.width || c.channels)
      throw Error(
          ErrorCode::kUsageBadArgument,
          "--width and --channels are for sampling without a prompt; the prompt gives them");
    const io::Flattened f =
        flatten_prompt(*prompt, c.prompt, io::Modality::kImage, tile, "--width");
    const std::optional<io::ImageParams> p = io::image_params(f.modality, f.params);
    given = {p->width, p->height, p->channels, p->tile};
    alpha = p->alpha;
    prompt_raster = io::raster_from_tiles(given, f.stream);
    if (!c.crop.empty()) {
      const Crop crop = parse_crop(c.crop);
      prompt_raster = crop_raster(given, prompt_raster, crop, c.crop);
      given.width = crop.width;
      given.height = crop.height;
    }
  } else {
    if (!c.crop.empty())
      throw Error(ErrorCode::kUsageBadArgument, "--crop needs an image --prompt");
    if (c.width < 1 || c.width > int64_t(io::kMaxPixels))
      throw Error(ErrorCode::kUsageBadArgument, "an image without a prompt needs --width, 1 to " +
                                                    std::to_string(io::kMaxPixels));
    if (c.channels < 0 || c.channels > 4)
      throw Error(ErrorCode::kUsageBadArgument, "--channels of an image: 1 to 4");
    given.width = uint32_t(c.width);
    given.channels = c.channels ? uint32_t(c.channels) : kDefaultImageChannels;
  }
  const int64_t added =
      c.tiles ? std::min<int64_t>(c.tiles, int64_t(io::kMaxPixels)) * int64_t(tile) : c.height;
  const char* flag = c.tiles ? "--tiles" : "--height";
  if (added < 1 || added > int64_t(io::kMaxPixels))
    throw Error(ErrorCode::kUsageBadArgument,
                std::string(flag) + " must add 1 to " + std::to_string(io::kMaxPixels) + " rows");
  io::TileGeometry g = given;
  g.height = given.height + uint32_t(added);
  if (uint64_t{g.width} * g.height > io::kMaxPixels)
    throw Error(ErrorCode::kUsageBadArgument,
                std::string(flag) + ": an image of " + std::to_string(g.width) + "x" +
                    std::to_string(g.height) + " is over the " + std::to_string(io::kMaxPixels) +
                    " pixels io/ allows");
  check_drawn(uint64_t{g.width} * uint64_t(added) * g.channels, flag);
  io::check_geometry(g);

  // The prompt's rows on top, known; the rows below drawn. In tile order the prompt's last
  // row of tiles is partial when its height is not a multiple of the tile: its known pixels
  // are then fed to the model among the drawn ones.
  std::vector<uint8_t> raster = prompt_raster, known;
  raster.resize(g.size(), 0);
  known.assign(prompt_raster.size(), 1);
  known.resize(g.size(), 0);
  Plan plan;
  plan.request.modality = uint8_t(io::Modality::kImage);
  plan.request.bytes = io::tiles_from_raster(g, raster);
  plan.request.known = io::tiles_from_raster(g, known);
  plan.in_view = (uint64_t{g.width} + tile) * tile * g.channels;
  plan.output = [g, alpha](const std::vector<uint8_t>& stream) {
    io::Image image{g.width, g.height, g.channels, io::raster_from_tiles(g, stream)};
    if (alpha) {
      image.pixels = io::add_last_channel(image.pixels, g.channels, *alpha);
      ++image.channels;
    }
    return io::encode_png(image);
  };
  plan.summary = "image " + std::to_string(g.width) + "x" + std::to_string(given.height) + " + " +
                 std::to_string(added) + " rows, " + std::to_string(g.channels) +
                 (alpha ? " channels + constant alpha" : " channels") + ", tiles of " +
                 std::to_string(tile);
  return plan;
}

Plan audio_plan(const SampleCommand& c, const std::optional<std::vector<uint8_t>>& prompt) {
  if (!c.crop.empty()) throw Error(ErrorCode::kUsageBadArgument, "--crop is for image prompts");
  uint32_t rate = c.rate ? uint32_t(c.rate) : kDefaultRate;
  uint16_t channels = c.channels ? uint16_t(c.channels) : kDefaultAudioChannels;
  std::vector<uint8_t> stream;
  if (prompt) {
    if (c.rate || c.channels)
      throw Error(ErrorCode::kUsageBadArgument,
                  "--rate and --channels are for sampling without a prompt; the prompt gives them");
    io::Flattened f =
        flatten_prompt(*prompt, c.prompt, io::Modality::kAudio, 0, "--rate and --channels");
    const std::optional<io::AudioParams> p = io::audio_params(f.modality, f.params);
    rate = p->sample_rate;
    channels = p->channels;
    stream = std::move(f.stream);
  } else if (c.rate < 0 || c.rate > 1000000 || c.channels < 0 || c.channels > 255) {
    throw Error(ErrorCode::kUsageBadArgument,
                "audio without a prompt: --rate 1 to 1000000, --channels 1 to 255");
  }
  if (!(std::isfinite(c.seconds) && c.seconds > 0))
    throw Error(ErrorCode::kUsageBadArgument, "--seconds must be a positive number");
  if (c.seconds * rate * channels * 2 > double(kMaxDrawn))  // before the conversion can overflow
    throw Error(ErrorCode::kUsageBadArgument,
                "--seconds " + std::to_string(c.seconds) + " at " + std::to_string(rate) +
                    " Hz and " + std::to_string(channels) + " channels is over the " +
                    std::to_string(kMaxDrawn) + " bytes mbz sample draws at most");
  const uint64_t frames = uint64_t(std::llround(c.seconds * rate));
  check_drawn(frames * channels * 2, "--seconds");
  if (!io::can_encode(rate, channels, io::AudioContainer::kWav, 16))
    throw Error(ErrorCode::kUnsupportedFeature, "a WAV of " + std::to_string(channels) +
                                                    " channels at " + std::to_string(rate) +
                                                    " Hz cannot be written");
  Plan plan;
  plan.request.modality = uint8_t(io::Modality::kAudio);
  plan.request.known.assign(stream.size(), 1);
  plan.request.known.resize(stream.size() + frames * channels * 2, 0);
  plan.request.bytes = std::move(stream);
  plan.request.bytes.resize(plan.request.known.size(), 0);
  plan.output = [rate, channels](const std::vector<uint8_t>& s) {
    io::Pcm16 pcm;
    pcm.sample_rate = rate;
    pcm.channels = channels;
    pcm.samples.resize(s.size() / 2);
    for (size_t i = 0; i < pcm.samples.size(); ++i)
      pcm.samples[i] = int16_t(uint16_t(s[2 * i] | (s[2 * i + 1] << 8)));
    return io::encode_audio(pcm, io::AudioContainer::kWav, 16);
  };
  plan.summary = "audio " + std::to_string(rate) + " Hz, " + std::to_string(channels) +
                 " channels, " + std::to_string(frames) + " frames added";
  return plan;
}

Plan text_plan(const SampleCommand& c, const std::optional<std::vector<uint8_t>>& prompt) {
  if (c.width || c.channels || c.rate)
    throw Error(ErrorCode::kUsageBadArgument,
                "--width, --channels and --rate are for images and audio");
  if (!c.crop.empty()) throw Error(ErrorCode::kUsageBadArgument, "--crop is for image prompts");
  if (c.bytes < 1) throw Error(ErrorCode::kUsageBadArgument, "--bytes must be at least 1");
  check_drawn(uint64_t(c.bytes), "--bytes");
  Plan plan;
  io::Modality modality = io::Modality::kText;
  if (!c.modality.empty())
    modality = *io::parse_modality(c.modality);
  else if (prompt && !prompt->empty() && io::detect(*prompt) != io::Modality::kText)
    modality = io::Modality::kRaw;
  plan.request.modality = uint8_t(modality);
  plan.request.bytes = prompt ? *prompt : std::vector<uint8_t>();
  plan.request.known.assign(plan.request.bytes.size(), 1);
  plan.request.known.resize(plan.request.bytes.size() + uint64_t(c.bytes), 0);
  plan.request.bytes.resize(plan.request.known.size(), 0);
  plan.output = [](const std::vector<uint8_t>& s) { return s; };
  plan.binary = modality != io::Modality::kText;
  plan.summary =
      std::string(io::modality_name(modality)) + ", " + std::to_string(c.bytes) + " bytes added";
  return plan;
}

// Half the context, or what the plan wants in view when that is more and costs at most
// eight times the bytes drawn (an overlap of 7/8 of the context feeds 7 bytes again for each
// byte drawn). In tile order the pixels above a tile are a row of tiles back, so an image
// whose row of tiles fits keeps it in view; a wider one could not afford it.
int64_t default_overlap(const Plan& plan, int64_t context) {
  const uint64_t half = uint64_t(context) / 2, most = uint64_t(context) / 8 * 7;
  return int64_t(plan.in_view <= most ? std::max(half, plan.in_view) : half);
}

// One throttled line on stderr: how far, how fast, how long still.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), start_(Clock::now()), last_(start_) {}
  ~ProgressLine() { clear(); }
  void update(uint64_t done, uint64_t total) {
    const auto now = Clock::now();
    if (!enabled_ || now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? done / seconds : 0;
    std::fprintf(stderr, "\r\033[Kmbz sample: %3d%% %s of %s, %.1f KB/s, %.0f s left",
                 total ? int(done * 100 / total) : 100, human_bytes(done).c_str(),
                 human_bytes(total).c_str(), rate / 1e3, rate > 0 ? (total - done) / rate : 0.0);
    std::fflush(stderr);
    drawn_ = true;
  }
  void clear() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  Clock::time_point start_, last_;
  bool drawn_ = false;
};

}  // namespace

CLI::App* add_sample_command(CLI::App& app, SampleCommand& c) {
  CLI::App* cmd = app.add_subcommand(
      "sample", "Continue an image, a sound or a text with the model (or make one from nothing)");
  cmd->footer(kHelp);
  cmd->add_option("--model", c.model,
                  "Exact model file from mbz quantize (default: the bundled model); a float "
                  "checkpoint is refused: quantize it first");
  cmd->add_option("--prompt", c.prompt,
                  "File to continue ('-': standard input); without it, sampling starts from "
                  "the modality's start patch");
  cmd->add_option("-o,--output", c.output, "Output file ('-' for standard output)")->required();
  cmd->add_flag("-f,--force", c.force, "Overwrite the output; allow binary output to a terminal");
  cmd->add_option("--seed", c.seed, "Seed of the integer generator (default 0)");
  auto* tiles = cmd->add_option("--tiles", c.tiles, "Image: rows of tiles to add below");
  auto* height = cmd->add_option("--height", c.height, "Image: rows of pixels to add below");
  auto* seconds = cmd->add_option("--seconds", c.seconds, "Audio: seconds to add");
  auto* bytes = cmd->add_option("--bytes", c.bytes, "Text: bytes to add");
  tiles->excludes(height)->excludes(seconds)->excludes(bytes);
  height->excludes(seconds)->excludes(bytes);
  seconds->excludes(bytes);
  cmd->add_option("--temperature", c.temperature,
                  "Divides each byte's distance from the most likely one (default 1: the "
                  "model's own distribution; 0: always the most likely byte), at most 64");
  cmd->add_option("--top-p", c.top_p,
                  "Draw only among the most likely bytes whose probabilities reach this sum "
                  "(default 1: all)");
  cmd->add_option("--modality", c.modality,
                  "text, raw, image or audio; must agree with the size flag (--bytes: text, or "
                  "raw; default text, or raw for a prompt that is not text)")
      ->check(CLI::IsMember({"text", "raw", "image", "audio"}));
  cmd->add_option("--crop", c.crop,
                  "Image prompt: continue only this rectangle of it, WIDTHxHEIGHT or "
                  "WIDTHxHEIGHT+X+Y (pixels, from the top left)");
  cmd->add_option("--width", c.width, "Image without a prompt: width in pixels");
  cmd->add_option(
      "--channels", c.channels,
      "Without a prompt: image channels 1 to 4 (default 3), audio channels (default 1)");
  cmd->add_option("--rate", c.rate, "Audio without a prompt: sample rate in Hz (default 16000)");
  cmd->add_option("--tile", c.tile, "Image tile side, 4, 8 or 16 (default 16, as compress)")
      ->check(CLI::IsMember({4, 8, 16}));
  cmd->add_option("--overlap", c.overlap,
                  "Bytes the model sees again when its window is full and restarts (default: "
                  "half its context, or more for images: below)");
  cmd->add_option(
         "--device", c.device,
         "cpu, cuda, or auto (cuda when there is one; default cpu); never changes the bytes")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_flag("-q,--quiet", c.quiet, "Print nothing but errors");
  cmd->add_flag("-v,--verbose", c.verbose, "Print what was made, and how fast");
  cmd->add_flag("--progress", c.progress, "Show progress even when stderr is not a terminal");
  cmd->add_flag("--no-progress", c.no_progress, "Never show progress");
  return cmd;
}

int run_sample(const SampleCommand& c) {
  // The size flag names the modality; --modality may only agree.
  const std::string kind = c.tiles || c.height ? "image"
                           : c.seconds != 0    ? "audio"
                           : c.bytes           ? "text"
                                               : "";
  if (kind.empty())
    throw Error(
        ErrorCode::kUsageBadArgument,
        "say how much to add: --tiles or --height (image), --seconds (audio) or --bytes (text)");
  if (!c.modality.empty() && c.modality != kind && !(kind == "text" && c.modality == "raw"))
    throw Error(ErrorCode::kUsageBadArgument,
                "--modality " + c.modality + " disagrees with the size flag, which makes " + kind);
  model::SampleSettings settings;
  settings.seed = c.seed;
  settings.temperature = model::to_fixed(c.temperature, model::kMaxTemperature, "--temperature");
  settings.top_p = model::to_fixed(c.top_p, 1.0, "--top-p");
  if (c.overlap < 0) throw Error(ErrorCode::kUsageBadArgument, "--overlap must be positive");
  settings.overlap = c.overlap;
  const std::string device =
      c.device == "auto" ? (model::cuda_available() ? "cuda" : "cpu") : c.device;

  std::optional<std::vector<uint8_t>> prompt;
  if (!c.prompt.empty()) prompt = read_prompt(c.prompt);
  const Plan plan = kind == "image"   ? image_plan(c, prompt)
                    : kind == "audio" ? audio_plan(c, prompt)
                                      : text_plan(c, prompt);
  if (c.output == "-" && plan.binary && !c.force && is_terminal(stdout))
    throw Error(ErrorCode::kUsageTerminal,
                "refusing to write binary data to a terminal; use -o FILE, or -f");

  const bool bundled =
      c.model.empty() || c.model == "default" || c.model == model::kBundledModelName;
  const std::string model_name = bundled ? model::kBundledModelName : c.model;
  const std::shared_ptr<const model::ExactModel> model =
      bundled ? model::load_sample_model(model::bundled_model_bytes(), model_name,
                                         plan.request.modality, device)
              : model::load_sample_model(c.model, plan.request.modality, device);
  if (!settings.overlap) settings.overlap = default_overlap(plan, model::sample_context(*model));
  // The output opens before the long part, so that an existing file fails now (without -f).
  OutputFile out(c.output, c.force);
  ProgressLine line((c.progress || is_terminal(stderr)) && !c.no_progress && !c.quiet);
  const std::vector<uint8_t> stream =
      model::sample(*model, plan.request, settings,
                    [&](uint64_t done, uint64_t total) { line.update(done, total); });
  line.clear();
  const std::vector<uint8_t> file = plan.output(stream);
  out.writer().write(file);
  out.commit();
  if (c.verbose && !c.quiet) {
    uint64_t drawn = 0;
    for (uint8_t k : plan.request.known) drawn += k == 0;
    const double seconds = line.seconds();
    std::fprintf(stderr,
                 "mbz sample: %s; %llu bytes drawn of %llu, model %s on %s, seed %llu, "
                 "%.1f s (%.1f KB/s)\n",
                 plan.summary.c_str(), static_cast<unsigned long long>(drawn),
                 static_cast<unsigned long long>(stream.size()), model_name.c_str(), device.c_str(),
                 static_cast<unsigned long long>(c.seed), seconds,
                 seconds > 0 ? drawn / seconds / 1e3 : 0.0);
  }
  return 0;
}

}  // namespace mbz::cli

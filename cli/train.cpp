// `mbz train`: reads and flattens the corpora, runs model::train, prints progress on stderr
// and appends one CSV row per logged step for bench/ to plot.
#include "cli/train.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "cli/output_file.h"
#include "codec/error.h"
#include "io/transform.h"
#include "model/exact_codec.h"
#include "model/megabyte.h"
#include "model/train.h"

namespace mbz::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModalityNames[4] = {"raw", "text", "image", "audio"};

// Every file under the directories, flattened (images as tiled pixels, audio as 16-bit
// samples), concatenated per modality up to `max_bytes` each.
model::Corpus load_corpus(const std::vector<std::string>& dirs, uint64_t max_bytes, bool quiet,
                          const char* command = "train") {
  model::Corpus corpus;
  size_t files = 0;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    std::vector<fs::path> paths;
    if (fs::is_regular_file(dir, ec)) paths.push_back(dir);
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec)) paths.push_back(it->path());
    if (ec || paths.empty())
      throw Error(ErrorCode::kIoRead, dir + ": no files to train on" +
                                          (ec ? " (" + ec.message() + ")" : std::string()));
    std::sort(paths.begin(), paths.end());
    for (const fs::path& path : paths) {
      std::ifstream in(path, std::ios::binary);
      const std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)),
                                      std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) throw Error(ErrorCode::kIoRead, path.string() + ": cannot read");
      io::Flattened flat;
      io::FlattenOptions decode;
      decode.pixels = decode.samples = true;
      try {
        flat = io::flatten(data, decode);
      } catch (const Error&) {  // not decodable exactly (16-bit PNG, ...): its bytes as they are
        flat = io::flatten(data, {});
      }
      std::vector<uint8_t>& s = corpus.streams[static_cast<size_t>(flat.modality) & 3];
      if (max_bytes && s.size() >= max_bytes) continue;
      const size_t take = max_bytes ? std::min<uint64_t>(flat.stream.size(), max_bytes - s.size())
                                    : flat.stream.size();
      corpus.file_starts[static_cast<size_t>(flat.modality) & 3].push_back(s.size());
      s.insert(s.end(), flat.stream.begin(), flat.stream.begin() + take);
      ++files;
    }
  }
  if (!quiet) {
    std::fprintf(stderr, "mbz %s: %zu files:", command, files);
    for (size_t m = 0; m < 4; ++m)
      if (!corpus.streams[m].empty())
        std::fprintf(stderr, " %s %.1f MB", kModalityNames[m], corpus.streams[m].size() / 1e6);
    std::fprintf(stderr, "\n");
  }
  return corpus;
}

// "text=1,image=0.5" -> weights by modality; unnamed modalities keep weight 1.
std::array<double, 4> parse_weights(const std::string& text) {
  std::array<double, 4> w = {1, 1, 1, 1};
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, end - pos);
    const size_t eq = item.find('=');
    size_t m = 0;
    while (m < 4 && (eq == std::string::npos || item.substr(0, eq) != kModalityNames[m])) ++m;
    double value = -1;
    try {
      if (m < 4) value = std::stod(item.substr(eq + 1));
    } catch (...) {
    }
    if (m == 4 || !(value >= 0))
      throw Error(
          ErrorCode::kUsageBadArgument,
          "--weights: expected MODALITY=WEIGHT (raw, text, image, audio), got '" + item + "'");
    w[m] = value;
    pos = end + 1;
  }
  return w;
}

std::string duration(double seconds) {
  char buf[32];
  const long s = std::lround(seconds);
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

}  // namespace

CLI::App* add_train_command(CLI::App& app, TrainCommand& c) {
  CLI::App* cmd = app.add_subcommand(
      "train", "Train the MEGABYTE byte model; checkpoints go to --out (model/CHECKPOINT.md)");
  cmd->add_option("--config", c.config, "tiny, small, medium, base or a JSON file (default tiny)");
  cmd->add_option("--data", c.data, "Training directory (repeatable)")->required();
  cmd->add_option("--valid", c.valid, "Validation directory (repeatable)");
  cmd->add_option("--steps", c.steps, "Total optimizer steps")->required();
  cmd->add_option("--device", c.device, "cpu or cuda (default cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--gpus", c.gpus,
                  "Data parallel: this many processes, rank r on cuda:r (on the CPU, all on the "
                  "CPU), each step's --batch split between them (default 1)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--rank", c.rank)->group("")->check(CLI::Range(1, 63));
  cmd->add_option("--collective", c.collective)->group("");
  cmd->add_option("--file-starts", c.file_starts,
                  "Share of windows that begin at a file's first byte (default 0)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--out", c.out, "Directory for checkpoints and train.csv")->required();
  cmd->add_option("--resume", c.resume, "Continue from this checkpoint (its config wins)");
  cmd->add_option("--weights", c.weights,
                  "Sampling weights by modality, e.g. text=1,image=1,audio=1 (default 1 each)");
  cmd->add_option("--batch", c.batch, "Windows per step (default 16)");
  cmd->add_option("--window", c.window, "Bytes per window (default: the model's context)");
  cmd->add_option("--lr", c.lr, "Peak learning rate (default 2e-3)");
  cmd->add_option("--warmup", c.warmup, "Warm-up steps (default 100)");
  cmd->add_option("--seed", c.seed, "Seed of initialisation and sampling (default 1)");
  cmd->add_option("--eval-every", c.eval_every, "Validate every N steps (default 100)");
  cmd->add_option("--eval-windows", c.eval_windows, "Validation windows per modality (default 8)");
  cmd->add_option("--checkpoint-every", c.checkpoint_every,
                  "Checkpoint every N steps and at the end (default 1000)");
  cmd->add_option("--log-every", c.log_every, "Print and log every N steps (default 10)");
  cmd->add_option("--max-bytes", c.max_bytes, "Load at most this many bytes per modality");
  cmd->add_option("--csv", c.csv, "CSV log (default OUT/train.csv)");
  cmd->add_flag("--no-optimizer-state", c.no_optimizer_state,
                "Checkpoints without AdamW moments (a third of the size; resuming restarts "
                "the moments at zero)");
  cmd->add_flag("--bf16-weights", c.bf16_weights,
                "Store weights in bfloat16 (half the size; for moving a model between machines)");
  cmd->add_option("--peak-tflops", c.peak_tflops,
                  "Device peak in TFLOP/s for the MFU figure (default on cuda: 989.4, the dense "
                  "bf16 peak of an H100 or H200 SXM)");
  cmd->add_option("--time-limit", c.time_limit,
                  "Stop with a checkpoint after this many seconds; the schedule stays that of "
                  "--steps, so --resume continues it");
  cmd->add_flag("--qat", c.qat,
                "Quantization-aware training (model/EXACT.md): train against the int8 rounding "
                "of the exact engine, usually fine-tuning a float checkpoint given to --resume; "
                "checkpoints stay float checkpoints, and the last is also written as an exact "
                "model file, OUT/step-NNNNNNNN.mbzq, with the activation ranges it trained "
                "against. Experimental: its ranges are shared by all modalities, and so far "
                "mbz quantize (ranges per modality) gives the better exact model "
                "(bench/results/model-s4.md)");
  cmd->add_flag("-q,--quiet", c.quiet, "Print nothing but errors");
  return cmd;
}

// The processes of ranks 1..N-1 of `mbz train --gpus N`: this program again, with the same
// arguments and --rank R --collective NAME. They share this process group, so Ctrl-C
// stops them too; their output is only errors (they are quiet and write no CSV).
class Ranks {
 public:
  Ranks(int count, const std::vector<std::string>& argv, const std::string& collective) {
    for (int r = 1; r < count; ++r) {
      std::vector<std::string> args = argv;
      for (const char* extra : {"--rank", "", "--collective", "", "--quiet"}) args.push_back(extra);
      args[args.size() - 4] = std::to_string(r);
      args[args.size() - 2] = collective;
      std::vector<char*> pointers;
      for (std::string& a : args) pointers.push_back(a.data());
      pointers.push_back(nullptr);
      pid_t pid = 0;
      const int error = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, pointers.data(), environ);
      if (error != 0) {
        stop();
        throw Error(ErrorCode::kIoOpen,
                    "train: cannot start rank " + std::to_string(r) + ": " + std::strerror(error));
      }
      pids_.push_back(pid);
    }
  }
  ~Ranks() { stop(); }

  // False once any of them has ended.
  bool alive() {
    for (pid_t& pid : pids_) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        failed_ = failed_ || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
      }
      if (pid < 0) return false;
    }
    return true;
  }
  // Waits for all of them; throws if one failed.
  void join() {
    for (pid_t& pid : pids_) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, 0) == pid)
        failed_ = failed_ || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
      pid = -1;
    }
    if (failed_) throw Error(ErrorCode::kIoRead, "train: a rank's process failed");
  }

 private:
  void stop() {
    for (pid_t& pid : pids_)
      if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, nullptr, 0);
        pid = -1;
      }
  }
  std::vector<pid_t> pids_;
  bool failed_ = false;
};

int run_train(const TrainCommand& c, const std::vector<std::string>& argv) {
  model::TrainOptions o;
  o.config = c.config;
  o.steps = c.steps;
  o.batch = c.batch;
  o.window = c.window;
  o.lr = c.lr;
  o.warmup = c.warmup;
  o.seed = c.seed;
  o.device = c.device;
  o.ranks = int(c.gpus);
  o.rank = c.rank;
  o.file_start_share = c.file_starts;
  o.weights = parse_weights(c.weights);
  o.eval_every = c.eval_every;
  o.eval_windows = c.eval_windows;
  o.checkpoint_every = c.checkpoint_every;
  o.out_dir = c.out;
  o.resume = c.resume;
  o.save_optimizer = !c.no_optimizer_state;
  o.bf16_weights = c.bf16_weights;
  o.time_limit = c.time_limit;
  o.qat = c.qat;
  o.peak_flops = 1e12 * (c.peak_tflops > 0 ? c.peak_tflops : c.device == "cuda" ? 989.4 : 0);
  // Fail on a bad --config now, not after loading hundreds of megabytes.
  if (c.resume.empty()) model::load_config(c.config);
  // Data parallel: this process is rank 0 and starts the others, which load their corpus
  // while this one does.
  std::unique_ptr<Ranks> ranks;
  if (c.gpus > 1 && c.rank == 0) {
    o.collective = "/mbz-train-" + std::to_string(getpid());
    remove_on_signal_shm(o.collective);
    ranks = std::make_unique<Ranks>(int(c.gpus), argv, o.collective);
    o.peers_alive = [&ranks] { return ranks->alive(); };
  } else if (c.rank > 0) {
    o.collective = c.collective;
    o.peers_alive = [parent = getppid()] { return getppid() == parent; };
  }
  const model::Corpus train_data = load_corpus(c.data, c.max_bytes, c.quiet);
  const model::Corpus valid_data =
      c.valid.empty() ? model::Corpus() : load_corpus(c.valid, c.max_bytes, c.quiet);

  std::error_code ec;
  fs::create_directories(c.out, ec);
  const std::string csv_path = c.csv.empty() ? (fs::path(c.out) / "train.csv").string() : c.csv;
  const bool fresh = !fs::exists(csv_path, ec) || c.resume.empty();
  std::FILE* csv = c.rank > 0 ? std::fopen("/dev/null", "w")
                             : std::fopen(csv_path.c_str(), fresh ? "w" : "a");
  if (!csv) throw Error(ErrorCode::kIoWrite, csv_path + ": cannot write the CSV log");
  if (fresh)
    std::fprintf(csv,
                 "step,lr,train_bpb,valid_raw_bpb,valid_text_bpb,valid_image_bpb,valid_audio_bpb,"
                 "bytes_per_second,seconds_left,model_tflops,mfu\n");
  bool first = true;
  const std::string last = model::train(o, train_data, valid_data, [&](const model::Progress& p) {
    if (first && !c.quiet)
      std::fprintf(stderr, "mbz train: %lld parameters, device %s\n",
                   static_cast<long long>(p.parameters), c.device.c_str());
    first = false;
    if (p.step % std::max<int64_t>(1, c.log_every) != 0 && !p.evaluated && p.checkpoint.empty())
      return;
    std::fprintf(csv, "%lld,%.6g,%.5f", static_cast<long long>(p.step), p.lr, p.train_bpb);
    for (double v : p.valid_bpb)
      std::isnan(v) ? std::fprintf(csv, ",") : std::fprintf(csv, ",%.5f", v);
    std::fprintf(csv, ",%.0f,%.0f,%.3f,%.4f\n", p.bytes_per_second, p.seconds_left,
                 p.flops_per_second / 1e12, p.mfu);
    std::fflush(csv);
    if (c.quiet) return;
    std::string valid;
    for (size_t m = 0; m < 4; ++m)
      if (p.evaluated && !std::isnan(p.valid_bpb[m]))
        valid += std::string("  valid ") + kModalityNames[m] + " " +
                 std::to_string(p.valid_bpb[m]).substr(0, 5);
    char mfu[32] = "";
    if (p.mfu > 0) std::snprintf(mfu, sizeof mfu, " (%.1f%% MFU)", 100 * p.mfu);
    std::fprintf(stderr,
                 "step %lld/%lld  lr %.2e  train %.4f bpb%s  %.1f KB/s  %.2f TFLOP/s%s  left %s%s%s\n",
                 static_cast<long long>(p.step), static_cast<long long>(p.steps), p.lr, p.train_bpb,
                 valid.c_str(), p.bytes_per_second / 1e3, p.flops_per_second / 1e12, mfu,
                 duration(p.seconds_left).c_str(),
                 p.checkpoint.empty() ? "" : "  saved ", p.checkpoint.c_str());
  });
  std::fclose(csv);
  if (ranks) ranks->join();
  remove_on_signal_shm("");
  if (c.rank > 0) return 0;
  if (!c.quiet) std::fprintf(stderr, "mbz train: final checkpoint %s\n", last.c_str());
  if (!c.quiet && c.qat)
    std::fprintf(stderr, "mbz train: exact model %s\n",
                 fs::path(last).replace_extension(".mbzq").c_str());
  return 0;
}

CLI::App* add_quantize_command(CLI::App& app, QuantizeCommand& c) {
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Make an exact model file (int8, model/EXACT.md) from a checkpoint of mbz train");
  cmd->add_option("checkpoint", c.checkpoint, "Float checkpoint from mbz train")->required();
  cmd->add_option("-o,--output", c.out, "Model file to write")->required();
  cmd->add_option("--calibrate", c.calibrate,
                  "Directory of files whose activation ranges set the scales (repeatable; "
                  "use training data)")
      ->required();
  cmd->add_option("--windows", c.windows, "Calibration windows per modality (default 8)");
  cmd->add_flag("-q,--quiet", c.quiet, "Print nothing but errors");
  return cmd;
}

int run_quantize(const QuantizeCommand& c) {
  if (c.windows < 1) throw Error(ErrorCode::kUsageBadArgument, "quantize: --windows must be >= 1");
  const model::Corpus calibration = load_corpus(c.calibrate, 0, c.quiet, "quantize");
  const std::vector<std::string> files =
      model::quantize_checkpoint(c.checkpoint, calibration, c.windows, c.out);
  if (!c.quiet)
    for (const std::string& f : files) std::fprintf(stderr, "mbz quantize: wrote %s\n", f.c_str());
  return 0;
}

}  // namespace mbz::cli

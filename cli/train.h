// `mbz train` trains the MEGABYTE model (model/train.h) on corpora flattened by io/;
// `mbz quantize` turns a checkpoint into an exact model file (model/exact_codec.h).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace mbz::cli {

struct TrainCommand {
  std::string config = "tiny";     // --config tiny|small|base|FILE.json
  std::vector<std::string> data;   // --data DIR (repeatable): training files, any modality
  std::vector<std::string> valid;  // --valid DIR (repeatable): validation files
  int64_t steps = 1000;            // --steps
  std::string device = "cpu";      // --device cpu|cuda
  int64_t gpus = 1;                // --gpus N: data-parallel over cuda:0..N-1
  int rank = 0;                    // hidden --rank: set for the processes --gpus starts
  std::string collective;          // hidden --collective NAME: their shared memory
  double file_starts = 0;          // --file-starts F: share of windows at a file's start
  std::string out;                 // --out DIR: checkpoints and train.csv
  std::string resume;              // --resume CKPT
  std::string weights;             // --weights text=1,image=1,audio=1,raw=0
  std::string csv;                 // --csv FILE (default OUT/train.csv)
  int64_t batch = 16, window = 0, warmup = 100, eval_every = 100, eval_windows = 8;
  int64_t checkpoint_every = 1000, log_every = 10;
  uint64_t max_bytes = 0;  // per modality; 0: all
  double lr = 2e-3;
  uint64_t seed = 1;
  bool no_optimizer_state = false;
  bool bf16_weights = false;  // --bf16-weights
  // --peak-tflops: the device's dense bf16 peak for MFU; 0 on CUDA means 989.4, the H100 and
  // H200 SXM figure; MFU is not reported on the CPU unless given.
  double peak_tflops = 0;
  double time_limit = 0;  // --time-limit SECONDS
  bool qat = false;       // --qat: quantization-aware training, then OUT/step-N.mbzq
  bool quiet = false;
};

struct QuantizeCommand {
  std::string checkpoint;              // CKPT: a float checkpoint from mbz train
  std::string out;                     // -o MODEL
  std::vector<std::string> calibrate;  // --calibrate DIR (repeatable)
  int64_t windows = 8;                 // --windows: calibration windows per modality
  bool quiet = false;
};

// Adds the `train` subcommand and its flags to `app`.
CLI::App* add_train_command(CLI::App& app, TrainCommand& command);
// `argv`: the whole command line, with which --gpus N starts ranks 1..N-1 (adding --rank
// and --collective).
int run_train(const TrainCommand& command, const std::vector<std::string>& argv);

// `mbz quantize CKPT -o MODEL --calibrate DIR`: the exact model file (model/EXACT.md).
CLI::App* add_quantize_command(CLI::App& app, QuantizeCommand& command);
int run_quantize(const QuantizeCommand& command);

}  // namespace mbz::cli

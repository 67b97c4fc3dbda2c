// Training the MEGABYTE model: AdamW with warm-up and cosine decay, gradient clipping,
// bf16 autocast on CUDA and fp32 on CPU, random windows sampled by modality, validation
// bits per byte per modality, checkpoints every N steps and at the end, and resuming.
// Deterministic given the seed on one device: batch k depends only on (seed, k), so a run
// resumed from a checkpoint with optimizer state takes the same steps as one never stopped.
// No torch in this header: cli/ includes it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mbz::model {

// Flattened streams (io/), one concatenation per modality, numbered as io::Modality:
// raw, text, image, audio. Windows may cross file boundaries.
struct Corpus {
  std::array<std::vector<uint8_t>, 4> streams;
  // Where each file begins in its modality's stream, ascending (empty when unknown).
  std::array<std::vector<uint64_t>, 4> file_starts;
  uint64_t bytes() const;
};

struct TrainOptions {
  std::string config = "tiny";  // preset or JSON file (ignored when resuming: the file's)
  int64_t steps = 1000;         // total optimizer steps, counting those before a resume
  int64_t batch = 16;           // windows per step
  int64_t window = 0;           // bytes per window; 0: the model's whole context
  double lr = 2e-3;             // peak learning rate
  double min_lr_ratio = 0.1;    // the cosine decays to lr * min_lr_ratio at the last step
  int64_t warmup = 100;         // linear warm-up steps (capped at steps / 10)
  double weight_decay = 0.1;    // AdamW decoupled decay, on matrices only (not norms)
  double beta1 = 0.9, beta2 = 0.95;
  double clip = 1.0;                             // gradient norm clip; 0: off
  uint64_t seed = 1;                             // model initialisation and batch sampling
  std::string device = "cpu";                    // "cpu" or "cuda"
  // Data parallelism over processes (model/collective.h): this process is rank `rank` of
  // `ranks`, summing gradients with the others in the shared memory named `collective`
  // (rank 0 creates it; `mbz train --gpus N` starts ranks 1..N-1). On CUDA rank r trains on
  // cuda:r. Each step's windows are split between the ranks in order and the sum does not
  // depend on timing, so a run is deterministic for a given seed and rank count. Only rank
  // 0 validates, reports and writes checkpoints. `peers_alive` (optional) says whether the
  // other ranks' processes still run, so that a crashed rank ends the run.
  int ranks = 1, rank = 0;
  std::string collective;
  std::function<bool()> peers_alive;
  // The share of windows that begin at a file's first byte (a file drawn uniformly from the
  // modality's files), the rest at a uniformly random byte. Files are scored from their
  // first byte with nothing before them, and most files are short (the valid text split's
  // median is 2.3 KB), so a model that never saw a file begin pays for it there.
  double file_start_share = 0;
  std::array<double, 4> weights = {1, 1, 1, 1};  // how often each modality is sampled
  int64_t eval_every = 100;      // validation every N steps (and at the end); 0: only the end
  int64_t eval_windows = 8;      // fixed validation windows per modality
  int64_t checkpoint_every = 0;  // checkpoint every N steps (and at the end); 0: the end only
  std::string out_dir;           // checkpoints go here as step-NNNNNNNN.mbzm
  std::string resume;            // a checkpoint to continue from
  bool save_optimizer = true;    // keep AdamW moments in checkpoints (3x the size)
  bool bf16_weights = false;     // store weights in bfloat16: half the size, for moving models
  double peak_flops = 0;  // one device's peak FLOP/s, for MFU (of all replicas); 0: none
  double time_limit = 0;  // stop (with a checkpoint) after this many seconds; the schedule
                          // stays that of `steps`, so --resume continues it; 0: no limit
  // Quantization-aware training (model/EXACT.md): train with fake quantization on, usually
  // fine-tuning a float checkpoint (`resume`). Checkpoints stay float checkpoints; the last
  // one is also converted to an exact model file beside it (.mbzq) with the activation
  // ranges the run trained against (if no step ran: calibrated on `qat_windows` windows of
  // each modality of the training data, as mbz quantize does).
  bool qat = false;
  int64_t qat_windows = 8;
};

struct Progress {
  int64_t step = 0;  // steps done
  int64_t steps = 0;
  double lr = 0;
  double train_bpb = 0;               // this step's batch, bits per byte
  std::array<double, 4> valid_bpb{};  // per modality; NaN when not measured this step
  bool evaluated = false;             // valid_bpb holds fresh values
  double bytes_per_second = 0;        // training bytes, averaged since the start of this run
  double flops_per_second = 0;        // model FLOP/s (3x the forward pass's), same average
  double mfu = 0;                     // flops_per_second / peak_flops; 0 when no peak given
  double seconds_left = 0;
  int64_t parameters = 0;
  std::string checkpoint;  // the file written at this step, if any
};

// One training window: `window` bytes of corpus.streams[modality] from `start`.
struct Window {
  size_t modality;
  uint64_t start;
};
// The windows of batch `step` of a run, options.batch of them: modalities by weight
// (stratified), starts uniformly random or, for options.file_start_share of them, at a
// file's first byte. Depends only on (options.seed, step), so a resumed run sees the same
// batches. Throws mbz::Error when no modality with weight > 0 holds a window.
std::vector<Window> batch_windows(const TrainOptions& options, const Corpus& corpus,
                                  int64_t window, int64_t step);

// Runs training to options.steps, calling `report` after every step. Returns the last
// checkpoint's path (with options.qat, the exact model file has its name, ending .mbzq).
// Throws mbz::Error (bad options, no data, I/O, a checkpoint that does not fit the config).
std::string train(const TrainOptions& options, const Corpus& train_data, const Corpus& valid_data,
                  const std::function<void(const Progress&)>& report);

}  // namespace mbz::model

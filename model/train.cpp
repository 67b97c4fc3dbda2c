// The training loop: batches, AdamW, schedule, validation, checkpoints.
#include "model/train.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/collective.h"
#include "model/exact.h"
#include "model/exact_codec.h"
#include "model/megabyte.h"
#include "model/profile.h"
#include "model/torch_compat.h"

namespace mbz::model {

uint64_t Corpus::bytes() const {
  uint64_t n = 0;
  for (const auto& s : streams) n += s.size();
  return n;
}

namespace {

// A uniform double in [0, 1) from a 64-bit generator, the same on every platform
// (std::uniform_real_distribution is implementation-defined).
double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Warm-up from 0, then a cosine from lr down to lr * min_lr_ratio at the last step.
double learning_rate(const TrainOptions& o, int64_t step) {
  const int64_t warmup = std::min(o.warmup, o.steps / 10);
  if (step < warmup) return o.lr * (step + 1) / warmup;
  const double progress =
      o.steps > warmup ? double(step - warmup) / double(std::max<int64_t>(1, o.steps - warmup))
                       : 1.0;
  const double cosine = 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress)));
  return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * cosine);
}

// AdamW (Loshchilov & Hutter), written out rather than torch::optim::AdamW so that its
// state is plain named tensors for checkpoints, identical across LibTorch versions.
struct AdamW {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params, exp_avg, exp_avg_sq;
  std::vector<bool> decay;  // matrices decay; norm weights, positions, start patches don't
  // Updates folded into exp_avg and exp_avg_sq. The bias correction counts these, not the
  // run's steps, so that moments restarted at zero in the middle of a run (a checkpoint
  // without optimizer state) are corrected as new ones. Corrected by the run's step k
  // instead, the first update after such a restart was (0.1 / (1 - 0.9^k)) /
  // sqrt(0.001 / (1 - 0.999^k)) lr a weight: 0.5 lr at step 21, 3.2 lr from step ~3000.
  int64_t moment_steps = 0;

  void init(Megabyte& model) {
    for (const auto& item : model->named_parameters()) {
      names.push_back(item.key());
      params.push_back(item.value());
      exp_avg.push_back(torch::zeros_like(item.value()));
      exp_avg_sq.push_back(torch::zeros_like(item.value()));
      decay.push_back(item.value().dim() == 2 && item.key().find("position") == std::string::npos);
    }
  }
  void update(const TrainOptions& o, double lr) {
    torch::NoGradGuard no_grad;
    ++moment_steps;
    const double bias1 = 1 - std::pow(o.beta1, double(moment_steps));
    const double bias2 = 1 - std::pow(o.beta2, double(moment_steps));
    // The parameters that have a gradient, as lists for the _foreach ops: on CUDA each op
    // below is a few multi-tensor kernels instead of one kernel per parameter.
    std::vector<torch::Tensor> p, g, m, v, decayed;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) continue;
      p.push_back(params[i]);
      g.push_back(params[i].grad());
      m.push_back(exp_avg[i]);
      v.push_back(exp_avg_sq[i]);
      if (decay[i]) decayed.push_back(params[i]);
    }
    if (p.empty()) return;
    if (!decayed.empty()) at::_foreach_mul_(decayed, 1 - lr * o.weight_decay);
    at::_foreach_mul_(m, o.beta1);
    at::_foreach_add_(m, g, 1 - o.beta1);
    at::_foreach_mul_(v, o.beta2);
    at::_foreach_addcmul_(v, g, g, 1 - o.beta2);
    std::vector<torch::Tensor> denom = at::_foreach_div(v, bias2);
    at::_foreach_sqrt_(denom);
    at::_foreach_add_(denom, 1e-8);
    at::_foreach_addcdiv_(p, m, denom, -lr / bias1);
  }
  void save(std::vector<NamedTensor>& out) const {
    for (size_t i = 0; i < names.size(); ++i) {
      out.push_back({"optim." + names[i] + ".exp_avg", exp_avg[i]});
      out.push_back({"optim." + names[i] + ".exp_avg_sq", exp_avg_sq[i]});
    }
    out.push_back({"optim.moment_steps", torch::tensor({moment_steps}, torch::kLong)});
  }
  // Returns false when the checkpoint has no optimizer state (the moments restart at 0).
  // `step` is the checkpoint's step: the moments' count in files written before
  // optim.moment_steps existed, whose moments never restarted.
  bool load(const std::vector<NamedTensor>& tensors, int64_t step) {
    std::map<std::string, const torch::Tensor*> by_name;
    for (const NamedTensor& t : tensors) by_name[t.name] = &t.tensor;
    torch::NoGradGuard no_grad;
    bool any = false;
    for (size_t i = 0; i < names.size(); ++i) {
      for (auto [suffix, dst] :
           {std::pair{".exp_avg", &exp_avg[i]}, {".exp_avg_sq", &exp_avg_sq[i]}}) {
        const auto found = by_name.find("optim." + names[i] + suffix);
        if (found == by_name.end()) continue;
        if (found->second->sizes() != dst->sizes())
          throw Error(ErrorCode::kModelMismatch,
                      "optimizer state " + found->first + " does not match its parameter's shape");
        dst->copy_(*found->second);
        any = true;
      }
    }
    const auto count = by_name.find("optim.moment_steps");
    moment_steps = !any ? 0 : count != by_name.end() ? count->second->item<int64_t>() : step;
    if (moment_steps < 0 || moment_steps > step)
      throw Error(ErrorCode::kModelMismatch,
                  "optimizer state: optim.moment_steps is " + std::to_string(moment_steps) +
                      " in a checkpoint of step " + std::to_string(step));
    return any;
  }
};

struct Batch {
  torch::Tensor bytes;     // [B, T] int64
  torch::Tensor modality;  // [B] int64
};

}  // namespace

std::vector<Window> batch_windows(const TrainOptions& o, const Corpus& corpus, int64_t window,
                                  int64_t step) {
  std::seed_seq seq{uint32_t(o.seed), uint32_t(o.seed >> 32), uint32_t(step), uint32_t(step >> 32)};
  std::mt19937_64 rng(seq);
  std::array<double, 4> w{};
  double sum = 0;
  for (size_t m = 0; m < 4; ++m) {
    w[m] = corpus.streams[m].size() >= uint64_t(window) ? std::max(0.0, o.weights[m]) : 0.0;
    sum += w[m];
  }
  if (sum <= 0)
    throw Error(ErrorCode::kUsageBadArgument,
                "train: no modality with weight > 0 has a window's worth of data (" +
                    std::to_string(window) + " bytes)");
  // Stratified: each modality gets floor(batch * weight share) windows, and the rest are
  // drawn by weight, so a small batch does not swing between all-text and all-audio steps.
  std::vector<size_t> modalities;
  for (size_t m = 0; m < 4; ++m)
    modalities.insert(modalities.end(), size_t(std::floor(double(o.batch) * w[m] / sum)), m);
  while (int64_t(modalities.size()) < o.batch) {
    double u = uniform(rng) * sum;
    size_t m = 0;
    while (m < 3 && (u >= w[m] || w[m] == 0)) u -= w[m++];
    while (w[m] == 0) --m;  // rounding at the top end
    modalities.push_back(m);
  }
  std::vector<Window> windows;
  for (const size_t m : modalities) {
    const uint64_t last_start = corpus.streams[m].size() - window;
    uint64_t start = rng() % (last_start + 1);
    if (o.file_start_share > 0 && uniform(rng) < o.file_start_share) {
      // A file drawn uniformly among those whose window fits before the stream's end.
      const std::vector<uint64_t>& starts = corpus.file_starts[m];
      const auto fitting = std::upper_bound(starts.begin(), starts.end(), last_start);
      if (fitting != starts.begin()) start = starts[rng() % uint64_t(fitting - starts.begin())];
    }
    windows.push_back({m, start});
  }
  return windows;
}

namespace {

// Batch `step` of the run (batch_windows), as tensors.
Batch sample_batch(const TrainOptions& o, const Corpus& corpus, int64_t window, int64_t step) {
  const std::vector<Window> windows = batch_windows(o, corpus, window, step);
  torch::Tensor bytes = torch::empty({o.batch, window}, torch::kUInt8);
  torch::Tensor modality = torch::empty({o.batch}, torch::kLong);
  for (int64_t b = 0; b < o.batch; ++b) {
    std::memcpy(bytes[b].data_ptr(), corpus.streams[windows[b].modality].data() + windows[b].start,
                window);
    modality[b] = int64_t(windows[b].modality);
  }
  return {bytes.to(torch::kLong), modality};
}

// One step's forward and backward on this rank's share of the batch (rows
// [r B / N, (r + 1) B / N) on rank r of N), then, with several ranks, the gradient summed
// over all ranks (Collective::sum) into the model's parameters. Returns the batch's mean
// loss in nats.
class DataParallel {
 public:
  DataParallel(const TrainOptions& o, Megabyte& model)
      : model_(model), rank_(o.rank), ranks_(o.ranks) {
    if (ranks_ == 1) return;
    collective_ = std::make_unique<Collective>(o.collective, o.rank, o.ranks,
                                               size_t(model->parameter_count()), o.peers_alive);
    // Rank 0's parameters on every rank (a sum of them and zeros), whatever each drew.
    torch::NoGradGuard no_grad;
    torch::Tensor input = shared(collective_->input());
    if (rank_ == 0)
      input.copy_(flat(model_->parameters(), [](const torch::Tensor& p) { return p; }));
    else
      input.zero_();
    double unused = 0;
    scatter(shared(collective_->sum(&unused)).to(model_->global_start.device()),
            [](torch::Tensor& p, const torch::Tensor& value) { p.copy_(value); });
  }

  double step(const Batch& batch, bool autocast) {
    const int64_t rows = batch.bytes.size(0);
    const int64_t begin = rows * rank_ / ranks_, end = rows * (rank_ + 1) / ranks_;
    const double share = double(end - begin) / double(rows);
    const torch::Device device = model_->global_start.device();
    torch::Tensor loss;
    {
      compat::CudaAutocast on(autocast);
      loss = model_->loss(batch.bytes.slice(0, begin, end).to(device),
                          batch.modality.slice(0, begin, end).to(device));
    }
    if (ranks_ == 1) {
      loss.backward();
      return loss.item<double>();
    }
    (loss * share).backward();
    double total = loss.item<double>() * share;
    torch::NoGradGuard no_grad;
    shared(collective_->input()).copy_(flat(model_->parameters(), [](const torch::Tensor& p) {
      return p.grad().defined() ? p.grad() : torch::zeros_like(p);
    }));
    // A copy also on the CPU: the shared sum is every rank's, and clipping scales in place.
    scatter(shared(collective_->sum(&total)).to(device, torch::kFloat, false, true),
            [](torch::Tensor& p, const torch::Tensor& value) { p.mutable_grad() = value; });
    return total;
  }

  // Rank 0's decision (e.g. to stop), on every rank.
  bool agree(bool value) { return collective_ ? collective_->agree(value) : value; }

 private:
  // get(p) of every parameter, concatenated in one float vector on the model's device.
  template <class Get>
  static torch::Tensor flat(const std::vector<torch::Tensor>& params, Get get) {
    std::vector<torch::Tensor> parts;
    for (const torch::Tensor& p : params) parts.push_back(get(p).reshape(-1).to(torch::kFloat));
    return torch::cat(parts);
  }
  // A vector of the shared region (Collective::floats() values) as a CPU tensor; devices
  // copy to and from it directly.
  torch::Tensor shared(const float* values) const {
    return torch::from_blob(const_cast<float*>(values), {int64_t(collective_->floats())},
                            torch::kFloat);
  }
  // set(p, slice of `values` shaped as p) for every parameter, in flat()'s order.
  template <class Set>
  void scatter(const torch::Tensor& values, Set set) {
    int64_t offset = 0;
    for (torch::Tensor& p : model_->parameters()) {
      set(p, values.narrow(0, offset, p.numel()).view_as(p));
      offset += p.numel();
    }
  }

  Megabyte& model_;
  int rank_, ranks_;
  std::unique_ptr<Collective> collective_;
};

// Mean bits per byte on fixed windows of each modality (evenly spaced, the same every time).
std::array<double, 4> validate(Megabyte& model, const TrainOptions& o, const Corpus& corpus,
                               int64_t window, torch::Device device) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::array<double, 4> bpb;
  bpb.fill(std::numeric_limits<double>::quiet_NaN());
  for (size_t m = 0; m < 4; ++m) {
    const std::vector<uint8_t>& s = corpus.streams[m];
    if (s.empty()) continue;
    const int64_t len = std::min<int64_t>(window, s.size());
    const int64_t n = std::min<int64_t>(o.eval_windows, s.size() - len + 1);
    torch::Tensor bytes = torch::empty({n, len}, torch::kUInt8);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t start = n > 1 ? (s.size() - len) * i / (n - 1) : 0;
      std::memcpy(bytes[i].data_ptr(), s.data() + start, len);
    }
    double nats = 0;
    for (int64_t i = 0; i < n; i += o.batch) {
      const int64_t k = std::min(o.batch, n - i);
      const torch::Tensor x = bytes.narrow(0, i, k).to(torch::kLong).to(device);
      const torch::Tensor mod = torch::full({k}, int64_t(m), x.options());
      compat::CudaAutocast autocast(device.is_cuda());
      nats += model->loss(x, mod).item<double>() * k;
    }
    bpb[m] = nats / n / std::log(2.0);
  }
  model->train();
  return bpb;
}

// `window`: the bytes of a training window, which `mbz score` reads with by default (a
// model is worse, not better, at global positions it never trained).
std::string train_json(const TrainOptions& o, int64_t window) {
  std::ostringstream s;
  s << "{\"seed\": " << o.seed << ", \"steps\": " << o.steps << ", \"batch\": " << o.batch
    << ", \"lr\": " << o.lr << ", \"window\": " << window << ", \"device\": \"" << o.device
    << "\"";
  if (o.qat) s << ", \"qat\": true";
  s << "}";
  return s.str();
}

}  // namespace

std::string train(const TrainOptions& o, const Corpus& train_data, const Corpus& valid_data,
                  const std::function<void(const Progress&)>& report) {
  if (o.device != "cpu" && o.device != "cuda")
    throw Error(ErrorCode::kUsageBadArgument, "--device must be cpu or cuda, got " + o.device);
  if (o.device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::kUnsupportedFeature, "--device cuda: LibTorch sees no CUDA device");
  if (o.steps < 1 || o.batch < 1)
    throw Error(ErrorCode::kUsageBadArgument, "train: --steps and --batch must be at least 1");
  if (o.out_dir.empty()) throw Error(ErrorCode::kUsageBadArgument, "train: --out is required");
  if (o.ranks < 1 || o.rank < 0 || o.rank >= o.ranks ||
      (o.device == "cuda" && o.ranks > int(torch::cuda::device_count())))
    throw Error(ErrorCode::kUsageBadArgument,
                "train: rank " + std::to_string(o.rank) + " of " + std::to_string(o.ranks) +
                    (o.device == "cuda"
                         ? " on " + std::to_string(torch::cuda::device_count()) + " CUDA devices"
                         : std::string()));
  if (o.batch < o.ranks)
    throw Error(ErrorCode::kUsageBadArgument,
                "train: --batch " + std::to_string(o.batch) + " is smaller than the " +
                    std::to_string(o.ranks) + " ranks");
  if (o.qat && o.ranks > 1)
    throw Error(ErrorCode::kUsageBadArgument,
                "train --qat: one device only (activation ranges are not shared between ranks)");
  const torch::Device device = o.device == "cuda" ? torch::Device(torch::kCUDA, int8_t(o.rank))
                                                  : torch::Device(torch::kCPU);
  const bool lead = o.rank == 0;  // validates, reports and saves
  if (device.is_cuda()) compat::avoid_cudnn_attention();
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) throw Error(ErrorCode::kIoWrite, o.out_dir + ": cannot create: " + ec.message());

  // Model and optimizer, fresh or from a checkpoint. Seeding and initialisation hold a lock,
  // so that runs in threads of one process (ranks in tests) start from the same weights.
  Checkpoint resumed;
  if (!o.resume.empty()) resumed = read_checkpoint(o.resume);
  Megabyte model = [&] {
    static std::mutex initialising;
    const std::lock_guard<std::mutex> lock(initialising);
    torch::manual_seed(o.seed);
    return Megabyte(o.resume.empty() ? load_config(o.config)
                                     : config_from_json(resumed.config_json));
  }();
  if (!o.resume.empty()) load_model_tensors(model, resumed.tensors);
  if (o.qat && model->config.activation != "relu2")
    throw Error(ErrorCode::kUsageBadArgument,
                "train --qat: the exact engine has only the relu2 activation, not " +
                    model->config.activation);
  model->fake_quant->on = o.qat;
  model->to(device);
  model->train();
  AdamW optimizer;
  optimizer.init(model);
  int64_t step = 0;
  if (!o.resume.empty()) {
    step = resumed.step;
    // Without optimizer state the moments restart from zero (and their bias correction
    // with them): the run continues, but its next steps differ from an uninterrupted run's.
    optimizer.load(resumed.tensors, step);
    resumed = Checkpoint();
  }
  const int64_t window =
      o.window ? std::min(o.window, model->config.context_bytes()) : model->config.context_bytes();

  auto save = [&](int64_t at) {
    Checkpoint c;
    c.config_json = model->config.to_json();
    c.train_json = train_json(o, window);
    c.step = at;
    c.tensors = model_tensors(model);
    if (o.bf16_weights)
      for (NamedTensor& t : c.tensors) t.tensor = t.tensor.detach().to(torch::kBFloat16);
    if (o.save_optimizer) optimizer.save(c.tensors);
    char name[32];
    std::snprintf(name, sizeof name, "step-%08lld.mbzm", static_cast<long long>(at));
    const std::string path = (std::filesystem::path(o.out_dir) / name).string();
    write_checkpoint(path, c);
    return path;
  };

  DataParallel parallel(o, model);
  const double flops_per_byte = model->config.forward_flops_per_byte(window);
  Progress p;
  p.steps = o.steps;
  p.parameters = model->parameter_count();
  std::string last;
  const auto started = std::chrono::steady_clock::now();
  const int64_t first = step;
  if (step >= o.steps && lead) last = save(step);
  // MBZ_PROFILE=FILE: GPU kernel times of a few steps after the first ones (model/profile.h).
  const char* profile_env = std::getenv("MBZ_PROFILE");
  const std::string profile = profile_env && lead && device.is_cuda() ? profile_env : "";
  constexpr int64_t kProfileFrom = 5, kProfileSteps = 5;
  std::chrono::steady_clock::time_point profile_started;
  for (; step < o.steps; ++step) {
    if (!profile.empty() && step == first + kProfileFrom) {
      torch::cuda::synchronize();
      profile_started = std::chrono::steady_clock::now();
      start_kernel_profile();
    }
    const double lr = learning_rate(o, step);
    const Batch batch = sample_batch(o, train_data, window, step);
    // Every rank takes the same optimizer step from the same summed gradient, so their
    // parameters stay equal without being sent.
    const double loss = parallel.step(batch, device.is_cuda());
    if (o.clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip);
    optimizer.update(o, lr);
    for (torch::Tensor& param : optimizer.params) param.mutable_grad() = torch::Tensor();
    if (!profile.empty() && step + 1 == first + kProfileFrom + kProfileSteps) {
      torch::cuda::synchronize();
      stop_kernel_profile(profile,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                        profile_started)
                              .count(),
                          kProfileSteps);
    }

    p.step = step + 1;
    p.lr = lr;
    p.train_bpb = loss / std::log(2.0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    p.bytes_per_second = (p.step - first) * o.batch * window / std::max(seconds, 1e-9);
    p.flops_per_second = 3 * flops_per_byte * p.bytes_per_second;
    p.mfu = o.peak_flops > 0 ? p.flops_per_second / (o.peak_flops * double(o.ranks)) : 0;
    p.seconds_left = seconds / (p.step - first) * (o.steps - p.step);
    p.evaluated = (o.eval_every > 0 && p.step % o.eval_every == 0) || p.step == o.steps;
    p.valid_bpb.fill(std::numeric_limits<double>::quiet_NaN());
    if (p.evaluated && valid_data.bytes() > 0 && lead)
      p.valid_bpb = validate(model, o, valid_data, window, device);
    p.checkpoint.clear();
    const bool out_of_time = parallel.agree(o.time_limit > 0 && seconds >= o.time_limit);
    if (lead && ((o.checkpoint_every > 0 && p.step % o.checkpoint_every == 0) ||
                 p.step == o.steps || out_of_time))
      p.checkpoint = last = save(p.step);
    if (report && lead) report(p);
    if (out_of_time) break;
  }
  // The exact model file of the last checkpoint, with the activation ranges the network
  // trained against (one set for every modality), or, if no step ran, calibrated as
  // `mbz quantize` calibrates.
  if (o.qat && lead) {
    const std::string exact_file = std::filesystem::path(last).replace_extension(".mbzq").string();
    if (model->global->norm_range.defined())
      write_checkpoint(exact_file, ExactModel::quantize_trained(model).to_checkpoint());
    else
      quantize_checkpoint(last, train_data, o.qat_windows, exact_file);
  }
  return last;
}

}  // namespace mbz::model

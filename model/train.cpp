// The training loop: batches, AdamW, schedule, validation, checkpoints.
#include "model/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/exact.h"
#include "model/exact_codec.h"
#include "model/megabyte.h"
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

  void init(Megabyte& model) {
    for (const auto& item : model->named_parameters()) {
      names.push_back(item.key());
      params.push_back(item.value());
      exp_avg.push_back(torch::zeros_like(item.value()));
      exp_avg_sq.push_back(torch::zeros_like(item.value()));
      decay.push_back(item.value().dim() == 2 && item.key().find("position") == std::string::npos);
    }
  }
  // `step` counts from 1.
  void update(const TrainOptions& o, double lr, int64_t step) {
    torch::NoGradGuard no_grad;
    const double bias1 = 1 - std::pow(o.beta1, double(step));
    const double bias2 = 1 - std::pow(o.beta2, double(step));
    for (size_t i = 0; i < params.size(); ++i) {
      const torch::Tensor& g = params[i].grad();
      if (!g.defined()) continue;
      if (decay[i]) params[i].mul_(1 - lr * o.weight_decay);
      exp_avg[i].mul_(o.beta1).add_(g, 1 - o.beta1);
      exp_avg_sq[i].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
      const torch::Tensor denom = (exp_avg_sq[i] / bias2).sqrt_().add_(1e-8);
      params[i].addcdiv_(exp_avg[i], denom, -lr / bias1);
    }
  }
  void save(std::vector<NamedTensor>& out) const {
    for (size_t i = 0; i < names.size(); ++i) {
      out.push_back({"optim." + names[i] + ".exp_avg", exp_avg[i]});
      out.push_back({"optim." + names[i] + ".exp_avg_sq", exp_avg_sq[i]});
    }
  }
  // Returns false when the checkpoint has no optimizer state (the moments restart at 0).
  bool load(const std::vector<NamedTensor>& tensors) {
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

// One training step's forward and backward, on one model or on copies of it on several
// devices (TrainOptions::replicas). With copies, the batch is split in order (copy i takes
// rows [i B / N, (i + 1) B / N)), each copy's loss is weighted by its share of the rows,
// and the gradients are flattened on their devices and summed into the first copy's in
// the order of the copies: the same sum for a given seed and copy count. The optimizer
// then steps the first copy alone, and broadcast() hands its parameters to the others.
class Replicas {
 public:
  Replicas(Megabyte& first, torch::Device device, int64_t count) {
    if (count < 1 || (device.is_cuda() && count > int64_t(torch::cuda::device_count())))
      throw Error(ErrorCode::kUsageBadArgument,
                  "train: " + std::to_string(count) + " replicas asked for, " +
                      std::to_string(device.is_cuda() ? torch::cuda::device_count() : 0) +
                      " CUDA devices seen");
    models_.push_back(first);
    devices_.push_back(device);
    for (int64_t i = 1; i < count; ++i) {
      const torch::Device d = device.is_cuda() ? torch::Device(torch::kCUDA, int(i)) : device;
      Megabyte copy(first->config);
      copy->to(d);
      copy->train();
      models_.push_back(copy);
      devices_.push_back(d);
    }
    broadcast();
  }

  // Returns the batch's mean loss in nats; the first copy's parameters hold its gradient.
  double step(const Batch& batch, bool autocast) {
    const int64_t n = int64_t(models_.size()), rows = batch.bytes.size(0);
    if (n == 1) return backward(0, batch.bytes, batch.modality, 1.0, autocast);
    if (rows < n)
      throw Error(ErrorCode::kUsageBadArgument,
                  "train: --batch " + std::to_string(rows) + " is smaller than the " +
                      std::to_string(n) + " replicas");
    std::vector<double> losses(n);
    std::vector<torch::Tensor> flat(n);
    std::vector<std::exception_ptr> errors(n);
    std::vector<std::thread> threads;
    for (int64_t i = 0; i < n; ++i)
      threads.emplace_back([&, i] {
        try {
          const int64_t begin = rows * i / n, end = rows * (i + 1) / n;
          losses[i] = backward(i, batch.bytes.slice(0, begin, end),
                               batch.modality.slice(0, begin, end), double(end - begin) / rows,
                               autocast);
          flat[i] = flat_gradient(models_[i]);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      });
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
    torch::NoGradGuard no_grad;
    for (int64_t i = 1; i < n; ++i) flat[0].add_(flat[i].to(devices_[0]));
    int64_t offset = 0;
    for (torch::Tensor& p : models_[0]->parameters()) {
      p.mutable_grad() = flat[0].narrow(0, offset, p.numel()).view_as(p);
      offset += p.numel();
    }
    double loss = 0;
    for (double l : losses) loss += l;
    return loss;
  }

  // The first copy's parameters, copied to every other.
  void broadcast() {
    if (models_.size() == 1) return;
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (const torch::Tensor& p : models_[0]->parameters()) parts.push_back(p.reshape(-1));
    const torch::Tensor flat = torch::cat(parts);
    for (size_t i = 1; i < models_.size(); ++i) {
      const torch::Tensor here = flat.to(devices_[i]);
      int64_t offset = 0;
      for (torch::Tensor& p : models_[i]->parameters()) {
        p.copy_(here.narrow(0, offset, p.numel()).view_as(p));
        p.mutable_grad() = torch::Tensor();
        offset += p.numel();
      }
    }
  }

 private:
  // Loss of copy i on its rows, its backward pass scaled by the rows' share of the batch.
  double backward(int64_t i, const torch::Tensor& bytes, const torch::Tensor& modality,
                  double share, bool autocast) {
    torch::Tensor loss;
    {
      compat::CudaAutocast on(autocast);  // autocast state is per thread
      loss = models_[i]->loss(bytes.to(devices_[i]), modality.to(devices_[i]));
    }
    (loss * share).backward();
    return loss.item<double>() * share;
  }

  static torch::Tensor flat_gradient(Megabyte& model) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (const torch::Tensor& p : model->parameters())
      parts.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options()));
    return torch::cat(parts);
  }

  std::vector<Megabyte> models_;
  std::vector<torch::Device> devices_;
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

std::string train_json(const TrainOptions& o) {
  std::ostringstream s;
  s << "{\"seed\": " << o.seed << ", \"steps\": " << o.steps << ", \"batch\": " << o.batch
    << ", \"lr\": " << o.lr << ", \"device\": \"" << o.device << "\"";
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
  const torch::Device device(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) throw Error(ErrorCode::kIoWrite, o.out_dir + ": cannot create: " + ec.message());

  // Model and optimizer, fresh or from a checkpoint.
  torch::manual_seed(o.seed);
  Checkpoint resumed;
  if (!o.resume.empty()) resumed = read_checkpoint(o.resume);
  Megabyte model(o.resume.empty() ? load_config(o.config) : config_from_json(resumed.config_json));
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
    // Without optimizer state the moments restart from zero: the run continues, but its
    // next steps differ from those of an uninterrupted run.
    optimizer.load(resumed.tensors);
    resumed = Checkpoint();
  }
  const int64_t window =
      o.window ? std::min(o.window, model->config.context_bytes()) : model->config.context_bytes();

  auto save = [&](int64_t at) {
    Checkpoint c;
    c.config_json = model->config.to_json();
    c.train_json = train_json(o);
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

  if (o.qat && o.replicas > 1)
    throw Error(ErrorCode::kUsageBadArgument,
                "train --qat: one device only (the activation ranges are not shared yet)");
  Replicas replicas(model, device, o.replicas);
  const double flops_per_byte = model->config.forward_flops_per_byte(window);
  Progress p;
  p.steps = o.steps;
  p.parameters = model->parameter_count();
  std::string last;
  const auto started = std::chrono::steady_clock::now();
  const int64_t first = step;
  if (step >= o.steps) last = save(step);
  for (; step < o.steps; ++step) {
    const double lr = learning_rate(o, step);
    const Batch batch = sample_batch(o, train_data, window, step);
    const double loss = replicas.step(batch, device.is_cuda());
    if (o.clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip);
    optimizer.update(o, lr, step + 1);
    for (torch::Tensor& param : optimizer.params) param.mutable_grad() = torch::Tensor();
    replicas.broadcast();

    p.step = step + 1;
    p.lr = lr;
    p.train_bpb = loss / std::log(2.0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    p.bytes_per_second = (p.step - first) * o.batch * window / std::max(seconds, 1e-9);
    p.flops_per_second = 3 * flops_per_byte * p.bytes_per_second;
    p.mfu = o.peak_flops > 0 ? p.flops_per_second / (o.peak_flops * double(o.replicas)) : 0;
    p.seconds_left = seconds / (p.step - first) * (o.steps - p.step);
    p.evaluated = (o.eval_every > 0 && p.step % o.eval_every == 0) || p.step == o.steps;
    p.valid_bpb.fill(std::numeric_limits<double>::quiet_NaN());
    if (p.evaluated && valid_data.bytes() > 0)
      p.valid_bpb = validate(model, o, valid_data, window, device);
    p.checkpoint.clear();
    const bool out_of_time = o.time_limit > 0 && seconds >= o.time_limit;
    if ((o.checkpoint_every > 0 && p.step % o.checkpoint_every == 0) || p.step == o.steps ||
        out_of_time)
      p.checkpoint = last = save(p.step);
    if (report) report(p);
    if (out_of_time) break;
  }
  // The exact model file of the last checkpoint, with the activation ranges the network
  // trained against (one set for every modality), or, if no step ran, calibrated as
  // `mbz quantize` calibrates.
  if (o.qat) {
    const std::string exact_file = std::filesystem::path(last).replace_extension(".mbzq").string();
    if (model->global->norm_range.defined())
      write_checkpoint(exact_file, ExactModel::quantize_trained(model).to_checkpoint());
    else
      quantize_checkpoint(last, train_data, o.qat_windows, exact_file);
  }
  return last;
}

}  // namespace mbz::model

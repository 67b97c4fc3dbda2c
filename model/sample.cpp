// Sampling from the exact engine: an integer generator, fixed point temperature and top-p
// on the engine's integer weights, and the window that slides when the context is full.
#include "model/sample.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/exact.h"
#include "model/exact_cpu.h"

namespace mbz::model {

// ---- The generator ------------------------------------------------------------------------

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

}  // namespace

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = std::rotl(s_[3], 45);
  return result;
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw Error(ErrorCode::kUsageBadArgument, "rng: below(0)");
  const uint64_t reject = (0 - n) % n;  // 2^64 mod n: the draws that would favour small values
  for (;;) {
    const uint64_t r = next();
    if (r >= reject) return r % n;
  }
}

uint32_t to_fixed(double value, double max, const char* what) {
  if (!(value >= 0 && value <= max)) {  // NaN fails both
    char text[96];
    std::snprintf(text, sizeof text, " must be from 0 to %g, got %g", max, value);
    throw Error(ErrorCode::kUsageBadArgument, what + std::string(text));
  }
  // One IEEE multiplication and rounding: the same on every machine for the same input.
  return static_cast<uint32_t>(std::llround(value * kFixedOne));
}

// ---- Temperature, top-p and the draw ------------------------------------------------------

ByteChooser::ByteChooser(std::span<const int64_t> head_table, const SampleSettings& settings)
    : table_(head_table.begin(), head_table.end()), settings_(settings) {
  if (table_.empty() || table_[0] < 1)
    throw Error(ErrorCode::kModelMismatch, "sample: the model's output table is empty or zero");
  if (settings.temperature != 0 && settings.temperature != kFixedOne &&
      !std::is_sorted(table_.begin(), table_.end(), std::greater<>()))
    throw Error(ErrorCode::kModelMismatch,
                "sample: the model's output table is not non-increasing, so a temperature "
                "other than 0 and 1 cannot read distances back from its weights");
}

int64_t ByteChooser::distance(int64_t weight) const {
  // The first entry below `weight` in the non-increasing table, less one: the largest t
  // whose entry equals it (all engine weights are entries).
  const auto after = std::upper_bound(table_.begin(), table_.end(), weight, std::greater<>());
  return std::max<int64_t>(after - table_.begin() - 1, 0);
}

namespace {

// The most likely byte; the lowest value among equal weights.
uint8_t argmax(std::span<const int64_t, 256> w) {
  return static_cast<uint8_t>(std::max_element(w.begin(), w.end()) - w.begin());
}

}  // namespace

std::array<int64_t, 256> ByteChooser::shape(std::span<const int64_t, 256> weights) const {
  std::array<int64_t, 256> w{};
  const uint32_t temp = settings_.temperature;
  if (temp == 0) {
    w[argmax(weights)] = 1;
    return w;
  }
  const int64_t last = int64_t(table_.size()) - 1;
  for (size_t o = 0; o < 256; ++o) {
    if (temp == kFixedOne) {
      w[o] = weights[o];
      continue;
    }
    // round(t / T) with T = temp / 2^16, half up; t <= last < 2^16, so no overflow.
    const int64_t u = (distance(weights[o]) * kFixedOne + temp / 2) / temp;
    w[o] = table_[size_t(std::min(u, last))];
  }
  if (settings_.top_p < kFixedOne) {
    std::array<uint8_t, 256> order;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](uint8_t a, uint8_t b) { return w[a] > w[b]; });
    // Weights are at most 2^30 each (EXACT.md bounds), so total * 2^16 < 2^54.
    const int64_t total = std::accumulate(w.begin(), w.end(), int64_t{0});
    int64_t cum = 0;
    size_t kept = 0;
    while (kept < 256) {
      cum += w[order[kept++]];
      if ((cum << kFixedBits) >= int64_t{settings_.top_p} * total) break;
    }
    for (size_t i = kept; i < 256; ++i) w[order[i]] = 0;
  }
  return w;
}

uint8_t ByteChooser::choose(std::span<const int64_t, 256> weights, Rng& rng) const {
  if (settings_.temperature == 0) return argmax(weights);
  const std::array<int64_t, 256> w = shape(weights);
  const int64_t total = std::accumulate(w.begin(), w.end(), int64_t{0});
  if (total <= 0) return argmax(weights);  // no engine weights do this (the best is >= 1)
  uint64_t r = rng.below(uint64_t(total));
  for (size_t o = 0; o < 256; ++o) {
    if (r < uint64_t(w[o])) return static_cast<uint8_t>(o);
    r -= uint64_t(w[o]);
  }
  return 255;  // unreachable: r < total
}

// ---- The engine, on either decoder --------------------------------------------------------

namespace {

// One stream through the plain C++ decoder (CPU) or the LibTorch one (CUDA, or tests).
class Engine {
 public:
  Engine(const ExactModel& model, uint8_t modality, bool torch_engine)
      : model_(model), modality_(modality) {
    if (model.device().is_cpu() && !torch_engine)
      cpu_model_ = std::make_unique<CpuExactModel>(model);
  }
  void restart() {
    if (cpu_model_) {
      cpu_ =
          std::make_unique<CpuExactDecoder>(*cpu_model_, std::span<const uint8_t>(&modality_, 1));
    } else {
      torch_ = std::make_unique<ExactDecoder>(
          model_,
          torch::full({1}, int64_t(modality_), torch::dtype(torch::kLong).device(model_.device())));
    }
  }
  std::span<const int64_t, 256> weights() {
    if (cpu_) {
      cpu_->next_weights(weights_);
    } else {
      const torch::Tensor w = torch_->next_weights().to(torch::kCPU).contiguous();
      std::copy_n(w.data_ptr<int64_t>(), 256, weights_.begin());
    }
    return weights_;
  }
  void push(uint8_t byte) {
    if (cpu_)
      cpu_->push(std::span<const uint8_t>(&byte, 1));
    else
      torch_->push(
          torch::full({1}, int64_t(byte), torch::dtype(torch::kLong).device(model_.device())));
  }

 private:
  const ExactModel& model_;
  uint8_t modality_;
  std::unique_ptr<CpuExactModel> cpu_model_;
  std::unique_ptr<CpuExactDecoder> cpu_;
  std::unique_ptr<ExactDecoder> torch_;
  std::array<int64_t, 256> weights_{};
};

}  // namespace

int64_t sample_context(const ExactModel& model) {
  return model.config.context_bytes();
}

std::vector<uint8_t> sample(const ExactModel& model, const SampleRequest& request,
                            const SampleSettings& settings, const SampleProgress& progress) {
  const uint64_t length = request.bytes.size();
  if (request.known.size() != length)
    throw Error(ErrorCode::kUsageBadArgument, "sample: " + std::to_string(length) + " bytes but " +
                                                  std::to_string(request.known.size()) +
                                                  " known flags");
  if (request.modality > 3)
    throw Error(ErrorCode::kUsageBadArgument,
                "sample: modality " + std::to_string(request.modality) + ", expected 0 to 3");
  const uint64_t context = uint64_t(sample_context(model));
  const uint64_t overlap = settings.overlap ? uint64_t(settings.overlap) : context / 2;
  if (settings.overlap < 0 || overlap >= context)
    throw Error(ErrorCode::kUsageBadArgument, "sample: overlap must be from 1 to " +
                                                  std::to_string(context - 1) +
                                                  " bytes (less than the model's context), got " +
                                                  std::to_string(settings.overlap));
  std::vector<uint8_t> out = request.bytes;
  const uint64_t first =
      std::find(request.known.begin(), request.known.end(), 0) - request.known.begin();
  if (first == length) return out;

  const torch::Tensor table = model.head_table.to(torch::kCPU).contiguous();
  const ByteChooser chooser({table.data_ptr<int64_t>(), size_t(table.numel())}, settings);
  Rng rng(settings.seed);
  Engine engine(model, request.modality, settings.torch_engine);
  // A fresh window holding out[start, end): its bytes fed again, their weights unused.
  auto open_window = [&](uint64_t start, uint64_t end) {
    engine.restart();
    for (uint64_t i = start; i < end; ++i) {
      engine.weights();
      engine.push(out[i]);
    }
  };
  uint64_t window = first < context ? 0 : first - overlap;
  open_window(window, first);
  for (uint64_t pos = first; pos < length; ++pos) {
    if (pos - window == context) {
      window = pos - overlap;
      open_window(window, pos);
    }
    const std::span<const int64_t, 256> w = engine.weights();
    if (!request.known[pos]) out[pos] = chooser.choose(w, rng);
    engine.push(out[pos]);
    if (progress && (pos % 256 == 0)) progress(pos, length);
  }
  if (progress) progress(length, length);
  return out;
}

// ---- Model files --------------------------------------------------------------------------

namespace {

std::shared_ptr<const ExactModel> from_file(const std::string& name, uint8_t modality,
                                            const std::string& device,
                                            const std::function<Checkpoint()>& read) {
  if (modality > 3)
    throw Error(ErrorCode::kUsageBadArgument, "sample: modality " + std::to_string(modality));
  if (device != "cpu" && device != "cuda")
    throw Error(ErrorCode::kUsageBadArgument, "device must be cpu or cuda, got " + device);
  if (device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::kUnsupportedFeature, "device cuda: LibTorch sees no CUDA device");
  Checkpoint file;
  try {
    file = read();
  } catch (const Error& e) {  // a file that fails its own checks is a model error (exit 4)
    if (e.band() != ErrorBand::kFormat && e.band() != ErrorBand::kCorrupt) throw;
    throw Error(ErrorCode::kModelMismatch, name + " is not a usable model file: " + e.what());
  }
  if (file.train_json != kExactKind)
    throw Error(ErrorCode::kModelMismatch,
                name +
                    " is a float checkpoint (mbz train), not an exact model file; sampling "
                    "runs the exact engine, so that a seed gives the same bytes on every "
                    "machine: make one with `mbz quantize " +
                    name + " -o MODEL.mbzq --calibrate DIR` and give that to --model");
  const torch::Device where(device == "cuda" ? torch::kCUDA : torch::kCPU);
  return std::make_shared<const ExactModel>(
      ExactModel::from_checkpoint(checkpoint_for_modality(file, modality)).to(where));
}

}  // namespace

std::shared_ptr<const ExactModel> load_sample_model(const std::string& path, uint8_t modality,
                                                    const std::string& device) {
  return from_file(path, modality, device, [&] { return read_checkpoint(path); });
}

std::shared_ptr<const ExactModel> load_sample_model(std::span<const uint8_t> bytes,
                                                    const std::string& name, uint8_t modality,
                                                    const std::string& device) {
  return from_file(name, modality, device, [&] { return parse_checkpoint(bytes, name); });
}

}  // namespace mbz::model

// An exact model file as a ModelFactory: tables from ExactDecoder, through cdf_from_weights.
#include "model/exact_codec.h"

#include <algorithm>
#include <array>
#include <map>
#include <bit>
#include <filesystem>
#include <vector>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/exact.h"
#include "model/exact_cpu.h"

namespace mbz::model {

namespace {

// One modality's engine: the model with that modality's activation scales, and on the CPU
// the plain C++ decoder of it (the same integers, faster; null on CUDA, where ExactDecoder
// runs through LibTorch).
struct Engine {
  std::shared_ptr<const ExactModel> model;
  std::shared_ptr<const CpuExactModel> cpu;
};
using Engines = std::array<Engine, 4>;  // by modality: raw, text, image, audio

// N streams in step through one ExactDecoder; streams that have ended (not in `ids`) are
// fed byte 0, which no later table of a live stream can see.
class ExactByteModel : public BatchByteModel {
 public:
  ExactByteModel(const Engines& engines, size_t max_streams)
      : engines_(engines), model_(engines[0].model), cpu_(engines[0].cpu), max_(max_streams) {}

  void reset(size_t n) override {
    if (n > max_) throw Error(ErrorCode::kUsageBadArgument, "exact model: more streams than it was made for");
    n_ = n;
    live_.assign(n, true);
    position_ = 0;
    decoder_.reset();
    cpu_decoder_.reset();
  }
  size_t max_streams() const override { return max_; }
  void set_modality(uint8_t modality) override {
    if (modality >= engines_.size())
      throw Error(ErrorCode::kUsageBadArgument, "exact model: modality " + std::to_string(modality));
    modality_ = modality;
    model_ = engines_[modality].model;
    cpu_ = engines_[modality].cpu;
    decoder_.reset();
    cpu_decoder_.reset();
  }

  void predict(std::span<const uint32_t> ids, std::span<Cdf> tables) override {
    // Lockstep (codec/chunk_coder.cpp): every stream in a round is at position_, and one
    // that left never returns.
    for (uint32_t id : ids)
      if (id >= n_ || !live_[id])
        throw Error(ErrorCode::kUsageBadArgument, "exact model: stream " + std::to_string(id) +
                                                      " is not in step with the others");
    std::fill(live_.begin(), live_.end(), false);
    for (uint32_t id : ids) live_[id] = true;
    if (modality_ > 3)
      throw Error(ErrorCode::kUsageBadArgument, "exact model: modality " + std::to_string(modality_));
    if (position_ % model_->config.context_bytes() == 0) {
      // A stream's first byte, or one context further on: a fresh window.
      decoder_.reset();
      cpu_decoder_.reset();
      if (cpu_) {
        cpu_decoder_ = std::make_unique<CpuExactDecoder>(*cpu_, std::vector<uint8_t>(n_, modality_));
      } else {
        const torch::Tensor modality = torch::full(
            {int64_t(n_)}, int64_t(modality_), torch::dtype(torch::kLong).device(model_->device()));
        decoder_ = std::make_unique<ExactDecoder>(*model_, modality);
      }
    }
    torch::Tensor weights;  // [N, 256]
    if (cpu_) {
      weights_.resize(n_ * kByteValues);
      cpu_decoder_->next_weights(weights_);
    } else {
      weights = decoder_->next_weights().cpu().contiguous();
    }
    const int64_t* w = cpu_ ? weights_.data() : weights.data_ptr<int64_t>();
    for (size_t j = 0; j < ids.size(); ++j) {
      const auto* row = reinterpret_cast<const uint64_t*>(w + size_t(ids[j]) * kByteValues);
      cdf_from_weights(std::span<const uint64_t, 256>(row, 256), tables[j]);
    }
  }

  void update(std::span<const uint32_t> ids, std::span<const uint8_t> bytes) override {
    next_.assign(n_, 0);
    for (size_t j = 0; j < ids.size(); ++j) next_[ids[j]] = bytes[j];
    if (cpu_)
      cpu_decoder_->push(next_);
    else
      decoder_->push(torch::tensor(std::vector<int64_t>(next_.begin(), next_.end()))
                         .to(model_->device()));
    ++position_;
  }

 private:
  const Engines& engines_;
  std::shared_ptr<const ExactModel> model_;
  std::shared_ptr<const CpuExactModel> cpu_;
  size_t max_, n_ = 0;
  std::vector<int64_t> weights_;
  std::vector<uint8_t> next_;
  std::unique_ptr<CpuExactDecoder> cpu_decoder_;
  uint64_t position_ = 0;
  uint8_t modality_ = 0;
  std::vector<bool> live_;  // streams still in step
  std::unique_ptr<ExactDecoder> decoder_;
};

class ExactFactory : public ModelFactory {
 public:
  ExactFactory(ModelIdentity identity, Engines engines)
      : identity_(std::move(identity)), engines_(std::move(engines)) {}
  const ModelIdentity& identity() const override { return identity_; }
  std::unique_ptr<BatchByteModel> create(size_t max_streams) const override {
    return std::make_unique<ExactByteModel>(engines_, max_streams);
  }
  size_t preferred_batch() const override {
    return engines_[0].model->device().is_cuda() ? 256 : 8;
  }
  uint64_t preferred_chunk() const override {  // the largest power of two in the context
    const uint64_t context = uint64_t(engines_[0].model->config.context_bytes());
    return uint64_t{1} << (63 - std::countl_zero(context));
  }

 private:
  ModelIdentity identity_;
  Engines engines_;
};

// Activation scales by modality (model/EXACT.md): the file holds one whole exact model, and
// for a modality calibrated on its own, the tensors whose values differ from it (its
// multipliers and norm gains) under "modality<M>/<name>". M = 0 raw, 1 text, 2 image,
// 3 audio.
std::string modality_prefix(size_t m) {
  return "modality" + std::to_string(m) + "/";
}

// The checkpoint of modality m: the shared tensors with m's own in their place.
Checkpoint for_modality(const Checkpoint& file, size_t m, bool* has_own) {
  Checkpoint c;
  c.config_json = file.config_json;
  c.train_json = file.train_json;
  c.step = file.step;
  std::map<std::string, torch::Tensor> own;
  const std::string prefix = modality_prefix(m);
  for (const NamedTensor& t : file.tensors)
    if (t.name.starts_with(prefix)) own[t.name.substr(prefix.size())] = t.tensor;
  *has_own = !own.empty();
  for (const NamedTensor& t : file.tensors) {
    if (t.name.starts_with("modality")) continue;
    const auto found = own.find(t.name);
    c.tensors.push_back({t.name, found == own.end() ? t.tensor : found->second});
  }
  return c;
}

}  // namespace

bool is_exact_model_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) &&
      !std::filesystem::is_regular_file(path + ".000", ec))
    return false;
  try {
    return read_checkpoint(path).train_json == kExactKind;
  } catch (const Error&) {
    return false;
  }
}

namespace {

std::unique_ptr<ModelFactory> exact_factory(const Checkpoint& checkpoint, std::string name,
                                            const std::string& device) {
  if (device != "cpu" && device != "cuda")
    throw Error(ErrorCode::kUsageBadArgument, "device must be cpu or cuda, got " + device);
  if (device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::kUnsupportedFeature, "device cuda: LibTorch sees no CUDA device");
  const torch::Device where(device == "cuda" ? torch::kCUDA : torch::kCPU);
  auto engine = [&](const Checkpoint& c) {
    Engine e;
    e.model = std::make_shared<const ExactModel>(ExactModel::from_checkpoint(c).to(where));
    if (where.is_cpu()) e.cpu = std::make_shared<const CpuExactModel>(*e.model);
    return e;
  };
  bool has_own = false;
  const Engine shared = engine(for_modality(checkpoint, 0, &has_own));
  Engines engines;
  for (size_t m = 0; m < engines.size(); ++m) {
    const Checkpoint own = for_modality(checkpoint, m, &has_own);
    engines[m] = has_own ? engine(own) : shared;
  }
  // The identity hashes what the model computes with, not how the file is cut into parts.
  std::string descriptor = checkpoint.config_json + '\n' + checkpoint.train_json + '\n';
  for (const NamedTensor& t : checkpoint.tensors) {
    const torch::Tensor c = t.tensor.contiguous();
    descriptor += t.name + '\n';
    descriptor.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  }
  return std::make_unique<ExactFactory>(builtin_identity(std::move(name), descriptor),
                                        std::move(engines));
}

}  // namespace

std::unique_ptr<ModelFactory> load_exact_model(const std::string& path, const std::string& device) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".000") == 0) name.resize(name.size() - 4);
  return exact_factory(read_checkpoint(path), std::move(name), device);
}

std::unique_ptr<ModelFactory> load_exact_model(std::span<const uint8_t> bytes,
                                               const std::string& name, const std::string& device) {
  return exact_factory(parse_checkpoint(bytes, name), name, device);
}

std::vector<std::string> quantize_checkpoint(const std::string& checkpoint,
                                             const Corpus& calibration, int64_t windows,
                                             const std::string& out) {
  Megabyte model = model_from_checkpoint(read_checkpoint(checkpoint), torch::kCPU);
  const int64_t len = model->config.context_bytes();
  // Each modality with a window's worth of data is calibrated on its own windows.
  std::vector<std::pair<size_t, ExactModel>> by_modality;
  for (size_t m = 0; m < calibration.streams.size(); ++m) {
    const std::vector<uint8_t>& s = calibration.streams[m];
    if (s.size() < uint64_t(len)) continue;
    const int64_t n = std::min<int64_t>(windows, s.size() / len);
    std::vector<torch::Tensor> rows;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t start = n > 1 ? (s.size() - len) * i / (n - 1) : 0;
      rows.push_back(torch::from_blob(const_cast<uint8_t*>(s.data() + start), {1, len},
                                      torch::kUInt8)
                         .to(torch::kLong));
    }
    by_modality.emplace_back(
        m, ExactModel::quantize(model, torch::cat(rows, 0), torch::full({n}, int64_t(m), torch::kLong)));
  }
  if (by_modality.empty())
    throw Error(ErrorCode::kUsageBadArgument,
                "quantize: the calibration data has no modality with " + std::to_string(len) +
                    " bytes (the model's context)");
  // The text model (else the first calibrated) is the shared one; the others keep the
  // tensors that differ. Modalities without calibration data use the shared model.
  size_t base = 0;
  for (size_t i = 0; i < by_modality.size(); ++i)
    if (by_modality[i].first == 1) base = i;
  Checkpoint file = by_modality[base].second.to_checkpoint();
  for (size_t i = 0; i < by_modality.size(); ++i) {
    if (i == base) continue;
    const Checkpoint own = by_modality[i].second.to_checkpoint();
    for (size_t k = 0; k < own.tensors.size(); ++k) {
      const torch::Tensor& mine = own.tensors[k].tensor;
      const torch::Tensor& shared = file.tensors[k].tensor;
      if (mine.sizes() != shared.sizes() || !torch::equal(mine, shared))
        file.tensors.push_back(
            {modality_prefix(by_modality[i].first) + own.tensors[k].name, mine});
    }
  }
  return write_checkpoint(out, file);
}

}  // namespace mbz::model

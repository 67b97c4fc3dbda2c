// An exact model file as a ModelFactory: tables from ExactDecoder, through cdf_from_weights.
#include "model/exact_codec.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <bit>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/exact.h"
#include "model/cpu_team.h"
#include "model/exact_cpu.h"

namespace mbz::model {

namespace {

// The encoder's pass with exact_cuda.h's kernels: positions a sub-batch, and about what its
// tensors take of device memory a position.
constexpr int64_t kPassPositions = int64_t{1} << 20;
constexpr int64_t kPassBytesPerPosition = 3072;

// The plain C++ decoder's arrays of a model, made when a stream first needs them: most
// archives use one modality of the four, and making them is most of loading a model file.
class LazyCpuModel {
 public:
  explicit LazyCpuModel(std::shared_ptr<const ExactModel> model) : model_(std::move(model)) {}
  const CpuExactModel& get() const {
    std::call_once(made_, [this] { cpu_ = std::make_unique<const CpuExactModel>(*model_); });
    return *cpu_;
  }

 private:
  std::shared_ptr<const ExactModel> model_;
  mutable std::once_flag made_;
  mutable std::unique_ptr<const CpuExactModel> cpu_;
};

// One modality's engine: the model with that modality's activation scales, and on the CPU
// the plain C++ decoder of it (the same integers, faster; null on CUDA, where ExactDecoder
// runs through LibTorch).
struct Engine {
  std::shared_ptr<const ExactModel> model;
  std::shared_ptr<const LazyCpuModel> cpu;
};
using Engines = std::array<Engine, 4>;  // by modality: raw, text, image, audio

// N streams in step through one ExactDecoder; streams that have ended (not in `ids`) are
// fed byte 0, which no later table of a live stream can see.
class ExactByteModel : public BatchByteModel {
 public:
  ExactByteModel(const Engines& engines, size_t max_streams, bool lookahead_on_cpu)
      : engines_(engines),
        model_(engines[0].model),
        cpu_(engines[0].cpu),
        max_(max_streams),
        lookahead_on_cpu_(lookahead_on_cpu) {}
  ~ExactByteModel() override {
    if (!timing_) return;
    const double life = std::chrono::duration<double>(Clock::now() - born_).count();
    std::fprintf(stderr, "exact model: %llu rounds, %.3f s in the model (device work and transfers), %.3f s alive\n",
                 (unsigned long long)rounds_, model_seconds_, life);
  }

  void reset(size_t n) override {
    if (n > max_) throw Error(ErrorCode::kUsageBadArgument, "exact model: more streams than it was made for");
    n_ = n;
    ahead_.clear();
    window_tables_ = torch::Tensor();
    slice_ = torch::Tensor();
    window_intervals_ = torch::Tensor();
    tables_window_ = intervals_window_ = -1;
    targets_host_ = found_host_ = found_ = tables_host_ = torch::Tensor();
    live_.assign(n, true);
    position_ = 0;
    cpu_decoder_.reset();  // decoder_ stays: start_window() restarts it if it fits
  }
  size_t max_streams() const override { return max_; }
  // On the CPU a team of this many threads shares each step's products, from the next
  // window's start (the decoder made there is the team's only user).
  void set_threads(unsigned threads) override { threads_ = std::max(1u, threads); }
  void set_modality(uint8_t modality) override {
    if (modality >= engines_.size())
      throw Error(ErrorCode::kUsageBadArgument, "exact model: modality " + std::to_string(modality));
    if (modality != modality_ || engines_[modality].model != model_) {
      decoder_.reset();
      cpu_decoder_.reset();
    }
    modality_ = modality;
    model_ = engines_[modality].model;
    cpu_ = engines_[modality].cpu;
  }

  // On CUDA the encoder's tables come from one forward pass per window (ExactModel::forward,
  // the same integers as the decoder's steps). On the CPU the plain decoder is 20 times
  // faster than LibTorch's int64 forward pass (measured), so there only tests ask for it.
  void lookahead(std::span<const std::span<const uint8_t>> streams) override {
    if (streams.size() != n_ || (cpu_ && !lookahead_on_cpu_)) return;
    ahead_.assign(streams.begin(), streams.end());
  }

  void predict(std::span<const uint32_t> ids, std::span<Cdf> tables) override {
    const Timer timer(*this);
    in_step(ids);
    if (!ahead_.empty()) return predict_ahead(ids, tables);
    start_window();
    if (!cpu_) {
      // On the device: the tables are built there, and only they come across, into a
      // pinned buffer (a pageable copy is several times slower).
      const torch::Tensor t = decoder_->next_tables();
      if (!tables_host_.defined() || tables_host_.sizes() != t.sizes())
        tables_host_ = torch::empty(t.sizes(), torch::dtype(torch::kInt).pinned_memory(true));
      tables_host_.copy_(t);
      const int32_t* c = tables_host_.data_ptr<int32_t>();
      for (size_t j = 0; j < ids.size(); ++j)
        std::copy_n(c + size_t(ids[j]) * 257, 257, tables[j].c.begin());
      return;
    }
    weights_.resize(n_ * kByteValues);
    cpu_decoder_->next_weights(weights_);
    for (size_t j = 0; j < ids.size(); ++j) {
      const auto* row =
          reinterpret_cast<const uint64_t*>(weights_.data() + size_t(ids[j]) * kByteValues);
      cdf_from_weights(std::span<const uint64_t, 256>(row, 256), tables[j]);
    }
  }

  // After lookahead: the intervals of one forward pass per window, computed on the device;
  // 8 bytes a position come to the host, a window at a time.
  bool intervals(std::span<const uint32_t> ids, std::span<uint32_t> start,
                 std::span<uint32_t> freq) override {
    if (ahead_.empty()) return false;
    const Timer timer(*this);
    in_step(ids);
    const int64_t context = model_->config.context_bytes();
    const int64_t offset = int64_t(position_ % uint64_t(context));
    // Computed at the window's start, or at the first call within it (a coder may switch
    // from predict() to intervals() midway, when it gives the hybrid method up).
    const int64_t window = int64_t(position_ / uint64_t(context));
    if (intervals_window_ != window) {
      intervals_window_ = window;
      window_intervals_ = window_pass(pass_positions(), [&](const torch::Tensor& b,
                                                            const torch::Tensor& modality) {
                            return pass_intervals(b, modality);
                          }).to(torch::kCPU).contiguous();
    }
    const int64_t width = window_intervals_.size(1);
    const int32_t* t = window_intervals_.data_ptr<int32_t>();
    for (size_t j = 0; j < ids.size(); ++j) {
      const int32_t* c = t + (int64_t(ids[j]) * width + offset) * 2;
      start[j] = uint32_t(c[0]);
      freq[j] = uint32_t(c[1]);
    }
    return true;
  }

  // After lookahead: every position's interval, a window and a sub-batch of streams at a
  // time. With exact_cuda.h's kernels the device computes the next sub-batch (of this
  // window or the next) while `take` codes this one: they go to the host in ExactPass's
  // two slots in turn.
  bool all_intervals(const IntervalTaker& take) override {
    if (ahead_.empty()) return false;
    const Timer timer(*this);
    const uint64_t context = uint64_t(model_->config.context_bytes());
    uint64_t longest = 0;
    for (const auto& s : ahead_) longest = std::max<uint64_t>(longest, s.size());
    const int64_t positions = pass_positions();
    struct Piece {
      uint64_t position;
      int64_t first, width;
    };
    auto give = [&](const Piece& p, const torch::Tensor& intervals) {
      return take({uint32_t(p.first), uint32_t(intervals.size(0)), p.position, uint32_t(p.width),
                   reinterpret_cast<const uint32_t*>(intervals.data_ptr<int32_t>())});
    };
    std::optional<Piece> pending;  // on its way to the host, in slot ^ 1
    int slot = 0;
    for (position_ = 0; position_ < longest; position_ += context) {
      int64_t width = 0;
      const torch::Tensor bytes = window_bytes(width);
      const torch::Tensor modality = torch::full({int64_t(n_)}, int64_t(modality_),
                                                 torch::dtype(torch::kLong).device(bytes.device()));
      if (!pass_) {  // LibTorch's forward pass: a window at a time, in turn
        const torch::Tensor all = window_pass(positions, [&](const torch::Tensor& b,
                                                             const torch::Tensor& m) {
                                    return pass_intervals(b, m);
                                  }).to(torch::kCPU).contiguous();
        if (!give({position_, 0, width}, all)) return true;
        continue;
      }
      const int64_t step = std::max<int64_t>(1, positions / width);
      for (int64_t k = 0; k < int64_t(n_); k += step, slot ^= 1) {
        const int64_t m = std::min<int64_t>(step, int64_t(n_) - k);
        pass_->start_to_host(bytes.narrow(0, k, m), modality.narrow(0, k, m), slot);
        if (pending && !give(*pending, pass_->wait(slot ^ 1))) {
          pass_->wait(slot);  // the copy in flight lands before anything goes
          return true;
        }
        pending = Piece{position_, k, width};
      }
    }
    if (pending) give(*pending, pass_->wait(slot ^ 1));
    return true;
  }

  // On CUDA: the symbols are found where the tables are; targets go over, and the symbols
  // with their intervals (12 bytes a stream) come back.
  bool find(std::span<const uint32_t> ids, std::span<const uint32_t> targets,
            std::span<uint8_t> symbols, std::span<uint32_t> start,
            std::span<uint32_t> freq) override {
    if (cpu_ || !ahead_.empty()) return false;  // no plain CPU engine: the model is on CUDA
    const Timer timer(*this);
    in_step(ids);
    start_window();
    if (!targets_host_.defined()) {
      const auto pinned = torch::dtype(torch::kInt).pinned_memory(true);
      targets_host_ = torch::zeros({int64_t(n_)}, pinned);
      found_host_ = torch::zeros({int64_t(n_), 3}, pinned);
    }
    int32_t* t = targets_host_.data_ptr<int32_t>();
    std::fill_n(t, n_, 0);  // streams that have ended: symbol 0
    for (size_t j = 0; j < ids.size(); ++j) t[ids[j]] = int32_t(targets[j]);
    found_ = decoder_->next_symbols(
        targets_host_.to(torch::TensorOptions().device(model_->device()), /*non_blocking=*/true));
    found_host_.copy_(found_);
    const int32_t* f = found_host_.data_ptr<int32_t>();
    for (size_t j = 0; j < ids.size(); ++j) {
      const int32_t* c = f + size_t(ids[j]) * 3;
      symbols[j] = uint8_t(c[0]);
      start[j] = uint32_t(c[1]);
      freq[j] = uint32_t(c[2]);
    }
    return true;
  }

 private:
  // Lockstep (codec/chunk_coder.cpp): every stream in a round is at position_, and one
  // that left never returns.
  void in_step(std::span<const uint32_t> ids) {
    for (uint32_t id : ids)
      if (id >= n_ || !live_[id])
        throw Error(ErrorCode::kUsageBadArgument, "exact model: stream " + std::to_string(id) +
                                                      " is not in step with the others");
    std::fill(live_.begin(), live_.end(), false);
    for (uint32_t id : ids) live_[id] = true;
    if (modality_ > 3)
      throw Error(ErrorCode::kUsageBadArgument, "exact model: modality " + std::to_string(modality_));
  }

  // A stream's first byte, or one context further on: a fresh window, fresh decoders.
  void start_window() {
    if (position_ % model_->config.context_bytes() == 0) {
      // A stream's first byte, or one context further on: a fresh window. A decoder of as
      // many streams starts again, keeping its CUDA graphs.
      if (decoder_ && decoder_->streams() == int64_t(n_)) {
        decoder_->restart();
        return;
      }
      decoder_.reset();
      cpu_decoder_.reset();
      if (cpu_) {
        if (threads_ == 1)
          team_.reset();
        else if (!team_ || team_->size() != threads_)
          team_ = std::make_unique<CpuTeam>(threads_);
        cpu_decoder_ = std::make_unique<CpuBatchDecoder>(
            cpu_->get(), std::vector<uint8_t>(n_, modality_), team_.get());
      } else {
        const torch::Tensor modality = torch::full(
            {int64_t(n_)}, int64_t(modality_), torch::dtype(torch::kLong).device(model_->device()));
        decoder_ = std::make_unique<ExactDecoder>(*model_, modality);
      }
    }
  }

 public:
  void update(std::span<const uint32_t> ids, std::span<const uint8_t> bytes) override {
    if (!ahead_.empty()) {
      for (size_t j = 0; j < ids.size(); ++j)
        if (position_ >= ahead_[ids[j]].size() || ahead_[ids[j]][position_] != bytes[j])
          throw Error(ErrorCode::kUsageBadArgument,
                      "exact model: update() differs from the bytes given to lookahead()");
      ++position_;
      return;
    }
    if (found_.defined()) {  // find() left the symbols on the device
      decoder_->push(found_.select(1, 0));
      found_ = torch::Tensor();
      ++position_;
      return;
    }
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
  // Tables from lookahead: at each window start, one forward pass over the window of every
  // stream (bytes past a stream's end are 0: no earlier position sees them), tables built
  // on the device; they come to the host a slice of positions at a time.
  void predict_ahead(std::span<const uint32_t> ids, std::span<Cdf> tables) {
    const int64_t context = model_->config.context_bytes();
    const int64_t offset = int64_t(position_ % uint64_t(context));
    const int64_t window = int64_t(position_ / uint64_t(context));
    if (tables_window_ != window) {
      tables_window_ = window;
      // [N, width, 257] int32 on the device
      window_tables_ = window_pass(int64_t{1} << 18,
                                   [&](const torch::Tensor& b, const torch::Tensor& modality) {
                                     return cdf_tables(model_->forward(b, modality));
                                   });
      slice_ = torch::Tensor();
    }
    constexpr int64_t kSlice = 512;  // positions brought to the host at once
    const int64_t first = offset - offset % kSlice;
    if (!slice_.defined() || slice_first_ != first) {
      slice_first_ = first;
      const int64_t m = std::min<int64_t>(kSlice, window_tables_.size(1) - first);
      slice_ = window_tables_.narrow(1, first, m).to(torch::kCPU).contiguous();
    }
    const int64_t row = offset - first, m = slice_.size(1);
    const int32_t* t = slice_.data_ptr<int32_t>();
    for (size_t j = 0; j < ids.size(); ++j) {
      const int32_t* c = t + (int64_t(ids[j]) * m + row) * 257;
      std::copy_n(c, 257, tables[j].c.begin());
    }
  }

  // The positions of one of the encoder's sub-batches, and their intervals: with
  // exact_cuda.h's kernels (ExactPass) sub-batches four times larger (kPassBytesPerPosition)
  // than through LibTorch's forward pass.
  int64_t pass_positions() {
    if (pass_model_ != model_.get()) {  // made once a model, nullptr included
      pass_ = ExactPass::make(*model_);
      pass_model_ = model_.get();
    }
    return pass_ ? kPassPositions : int64_t{1} << 18;
  }
  // bytes [m, width] int64 and modality [m] on the device -> [m, width, 2] int32 there.
  torch::Tensor pass_intervals(const torch::Tensor& bytes, const torch::Tensor& modality) {
    if (pass_) return pass_->intervals(bytes, modality);
    const torch::Tensor t = cdf_tables(model_->forward(bytes, modality));
    const torch::Tensor at = bytes.unsqueeze(-1);
    const torch::Tensor lo = t.gather(2, at), hi = t.gather(2, at + 1);
    return torch::cat({lo, hi - lo}, 2);
  }

  // At a window's start: one pass over the window of every stream, in sub-batches of about
  // `positions` positions: pass(bytes [m, width], modality [m]) of each, on the device,
  // concatenated over the streams.
  template <class Pass>
  torch::Tensor window_pass(int64_t positions, Pass pass) {
    int64_t width = 0;
    const torch::Tensor bytes = window_bytes(width);
    const torch::Tensor modality = torch::full({int64_t(n_)}, int64_t(modality_),
                                               torch::dtype(torch::kLong).device(bytes.device()));
    // Sub-batches keep the pass's own tensors to a few GB; their results go straight into
    // place (joining parts would hold the window's results twice: 34 GB of tables for the
    // hybrid at 4096 lanes of 4 KiB).
    torch::Tensor all;
    const int64_t step = std::max<int64_t>(1, positions / std::max<int64_t>(width, 1));
    for (int64_t k = 0; k < int64_t(n_); k += step) {
      const int64_t m = std::min<int64_t>(step, int64_t(n_) - k);
      const torch::Tensor part = pass(bytes.narrow(0, k, m), modality.narrow(0, k, m));
      if (!all.defined()) {
        std::vector<int64_t> shape = part.sizes().vec();
        shape[0] = int64_t(n_);
        all = torch::empty(shape, part.options());
      }
      all.narrow(0, k, m).copy_(part);
    }
    return all;
  }

  // The window of every stream that holds position_ (bytes past a stream's end are 0: no
  // earlier position sees them): [N, width] int64 on the model's device.
  torch::Tensor window_bytes(int64_t& width) const {
    const int64_t context = model_->config.context_bytes();
    const uint64_t start = position_ - position_ % uint64_t(context);
    width = 0;
    for (const auto& s : ahead_)
      width = std::max<int64_t>(width, std::min<int64_t>(context, int64_t(s.size()) - int64_t(start)));
    std::vector<uint8_t> window(n_ * size_t(width), 0);
    for (size_t k = 0; k < n_; ++k)
      if (ahead_[k].size() > start)
        std::copy_n(ahead_[k].begin() + start, std::min<uint64_t>(width, ahead_[k].size() - start),
                    window.begin() + k * width);
    return torch::from_blob(window.data(), {int64_t(n_), width}, torch::kUInt8)
        .to(model_->device(), torch::kLong);
  }

  // MBZ_TIMING=1: the time spent in the model's calls, against the instance's lifetime
  // (the rest is the coder's), printed when the instance goes.
  using Clock = std::chrono::steady_clock;
  struct Timer {
    ExactByteModel& m;
    Clock::time_point t0 = Clock::now();
    explicit Timer(ExactByteModel& model) : m(model) {}
    ~Timer() {
      m.model_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
      ++m.rounds_;
    }
  };
  const bool timing_ = [] {
    const char* t = std::getenv("MBZ_TIMING");
    return t && std::string(t) == "1";
  }();
  const Clock::time_point born_ = Clock::now();
  double model_seconds_ = 0;
  uint64_t rounds_ = 0;

  const Engines& engines_;
  std::shared_ptr<const ExactModel> model_;
  std::shared_ptr<const LazyCpuModel> cpu_;
  size_t max_, n_ = 0;
  bool lookahead_on_cpu_;
  std::vector<int64_t> weights_;
  std::vector<uint8_t> next_;
  unsigned threads_ = 1;
  std::unique_ptr<CpuTeam> team_;  // before cpu_decoder_, which uses it
  std::unique_ptr<CpuBatchDecoder> cpu_decoder_;
  uint64_t position_ = 0;
  uint8_t modality_ = 0;
  std::vector<bool> live_;  // streams still in step
  std::unique_ptr<ExactDecoder> decoder_;
  std::unique_ptr<ExactPass> pass_;        // intervals() with exact_cuda.h's kernels
  const ExactModel* pass_model_ = nullptr;  // the model pass_ was made for
  std::vector<std::span<const uint8_t>> ahead_;  // lookahead's streams
  torch::Tensor window_tables_, slice_;       // predict() after lookahead
  int64_t tables_window_ = -1, slice_first_ = 0;  // the window and first position they hold
  torch::Tensor window_intervals_;            // intervals(): [N, width, 2] int32, on the host
  int64_t intervals_window_ = -1;             // the window it holds
  torch::Tensor targets_host_, found_host_;   // find(): pinned host buffers
  torch::Tensor tables_host_;                 // predict() on the device: pinned [N, 257]
  torch::Tensor found_;                       // find()'s symbols on the device, for update()
};

// The engines are built on first use: an archive header needs only the identity, so a
// level that never runs the model (levels 0-2) does not pay for converting it (a third of
// a second for the bundled model, most of `mbz compress`'s own start-up).
class ExactFactory : public ModelFactory {
 public:
  // On CUDA, as many instances as a 1.25 share each of the device's free memory allows (a
  // 256 MiB archive's 16 segments of 4096 lanes once took all of an H200's 140 GB).
  unsigned max_instances(size_t streams) const override {
    if (!on_cuda_) return UINT_MAX;
    const int64_t free = cuda_free_bytes();
    if (free < 0) return UINT_MAX;
    const double need = 1.25 * std::max(double(kPassPositions * kPassBytesPerPosition),
                                        double(streams) * double(decoder_bytes_per_stream_));
    return unsigned(std::clamp(double(free) / need, 1.0, double(UINT_MAX)));
  }
  ExactFactory(ModelIdentity identity, const Config& config, bool on_cuda,
               std::function<Engines()> build, bool lookahead_on_cpu)
      : identity_(std::move(identity)),
        context_bytes_(uint64_t(config.context_bytes())),
        // The decoder's int8 key and value caches, and some 16 KB of rows and tables.
        decoder_bytes_per_stream_(2 * (config.global_layers * config.global_width * config.context +
                                       config.local_layers * config.local_width * config.patch) +
                                  16384),
        on_cuda_(on_cuda),
        build_(std::move(build)),
        lookahead_on_cpu_(lookahead_on_cpu) {}
  const ModelIdentity& identity() const override { return identity_; }
  std::unique_ptr<BatchByteModel> create(size_t max_streams) const override {
    return std::make_unique<ExactByteModel>(engines(), max_streams, lookahead_on_cpu_);
  }
  size_t preferred_batch() const override { return on_cuda_ ? 256 : 8; }
  uint64_t preferred_chunk() const override {  // the largest power of two in the context
    return uint64_t{1} << (63 - std::countl_zero(context_bytes_));
  }
  const Engines& engines() const {
    std::call_once(built_, [this] {
      engines_ = build_();
      build_ = nullptr;  // frees the checkpoint it held
    });
    return engines_;
  }

 private:
  ModelIdentity identity_;
  uint64_t context_bytes_;
  int64_t decoder_bytes_per_stream_;
  bool on_cuda_;
  mutable std::function<Engines()> build_;
  mutable std::once_flag built_;
  mutable Engines engines_;
  bool lookahead_on_cpu_;
};

// Activation scales by modality (model/EXACT.md): the file holds one whole exact model, and
// for a modality calibrated on its own, the tensors whose values differ from it (its
// multipliers and norm gains) under "modality<M>/<name>" (checkpoint_for_modality in
// model/exact.h). M = 0 raw, 1 text, 2 image, 3 audio.

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

// The identity hashes what the model computes with, not how the file is cut into parts:
// builtin_identity(name, descriptor) with the descriptor its config, kind, and every
// tensor's name and bytes, each piece fed to XXH3-128 in turn (the same digest as of their
// concatenation) rather than first copied into one string of the model's size.
ModelIdentity exact_identity(std::string name, const Checkpoint& checkpoint) {
  const std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(XXH3_createState(),
                                                                              XXH3_freeState);
  if (!state || XXH3_128bits_reset(state.get()) != XXH_OK) throw std::bad_alloc();
  auto add = [&](const void* data, size_t size) { XXH3_128bits_update(state.get(), data, size); };
  auto add_line = [&](const std::string& s) {
    add(s.data(), s.size());
    add("\n", 1);
  };
  add_line(checkpoint.config_json);
  add_line(checkpoint.train_json);
  for (const NamedTensor& t : checkpoint.tensors) {
    const torch::Tensor c = t.tensor.contiguous();
    add_line(t.name);
    add(c.data_ptr(), c.numel() * c.element_size());
  }
  ModelIdentity identity{std::move(name), {}};
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state.get()));
  std::copy_n(canonical.digest, identity.id.size(), identity.id.begin());
  return identity;
}

// `lazy`: build the engines when the model first runs, not now (the bundled model; a model
// file is checked whole at once, so a bad one is reported as the model error it is).
std::unique_ptr<ModelFactory> exact_factory(std::shared_ptr<const Checkpoint> checkpoint,
                                            std::string name, const std::string& device,
                                            bool lookahead_on_cpu, bool lazy) {
  if (device != "cpu" && device != "cuda")
    throw Error(ErrorCode::kUsageBadArgument, "device must be cpu or cuda, got " + device);
  if (device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::kUnsupportedFeature, "device cuda: LibTorch sees no CUDA device");
  const torch::Device where(device == "cuda" ? torch::kCUDA : torch::kCPU);
  auto build = [checkpoint, where, lookahead_on_cpu] {
    // Every modality's model is loaded (and so checked) here, the CPU decoder's arrays when
    // first used. On the CPU the tensors stay as the file has them, shared with the
    // checkpoint: only lookahead's forward passes need them converted.
    auto engine = [&](const Checkpoint& c) {
      Engine e;
      const bool as_stored = where.is_cpu() && !lookahead_on_cpu;
      e.model = std::make_shared<const ExactModel>(
          ExactModel::from_checkpoint(c, as_stored).to(where));
      if (where.is_cpu()) e.cpu = std::make_shared<const LazyCpuModel>(e.model);
      return e;
    };
    bool has_own = false;
    const Engine shared = engine(checkpoint_for_modality(*checkpoint, 0, &has_own));
    Engines engines;
    for (size_t m = 0; m < engines.size(); ++m) {
      const Checkpoint own = checkpoint_for_modality(*checkpoint, m, &has_own);
      engines[m] = has_own ? engine(own) : shared;
    }
    return engines;
  };
  auto factory = std::make_unique<ExactFactory>(exact_identity(std::move(name), *checkpoint),
                                                config_from_json(checkpoint->config_json),
                                                where.is_cuda(), build, lookahead_on_cpu);
  if (!lazy) factory->engines();
  return factory;
}

}  // namespace

std::unique_ptr<ModelFactory> load_exact_model(const std::string& path, const std::string& device,
                                               bool lookahead_on_cpu) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".000") == 0) name.resize(name.size() - 4);
  return exact_factory(std::make_shared<const Checkpoint>(read_checkpoint(path)), std::move(name),
                       device, lookahead_on_cpu, /*lazy=*/false);
}

std::unique_ptr<ModelFactory> load_exact_model(std::span<const uint8_t> bytes,
                                               const std::string& name, const std::string& device) {
  return exact_factory(std::make_shared<const Checkpoint>(parse_checkpoint(bytes, name)), name,
                       device, false, /*lazy=*/true);
}

std::vector<std::string> quantize_checkpoint(const std::string& checkpoint,
                                             const Corpus& calibration, int64_t windows,
                                             const std::string& out) {
  Checkpoint source = read_checkpoint(checkpoint);
  // The exact model codes in windows of its context: a checkpoint trained on shorter
  // windows becomes a model of that context (global positions past it never trained).
  if (const int64_t window = trained_window(source)) {
    Config config = config_from_json(source.config_json);
    const int64_t patches = (window + config.patch - 1) / config.patch;
    if (patches < config.context) {
      config.context = patches;
      source.config_json = config.to_json();
      for (NamedTensor& t : source.tensors)
        if (t.name == "global_position") t.tensor = t.tensor.narrow(0, 0, patches).clone();
    }
  }
  Megabyte model = model_from_checkpoint(source, torch::kCPU);
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
      if (mine.sizes() != shared.sizes() || mine.scalar_type() != shared.scalar_type() ||
          !torch::equal(mine, shared))
        file.tensors.push_back(
            {modality_tensor_name(by_modality[i].first, own.tensors[k].name), mine});
    }
  }
  return write_checkpoint(out, file);
}

}  // namespace mbz::model

// Sampling from the exact engine (model/exact.h): the next byte is drawn from the engine's
// integer weights by an integer generator, with temperature and top-p in fixed point, so a
// seed gives the same bytes on every machine and device (the CPU engine and the CUDA
// engine give the same integers, model/EXACT.md). `mbz sample` (cli/sample.cpp) builds the
// streams; this file knows bytes and modalities, not images or audio.
//
// No torch in this header (cli/ includes it): the engine is an ExactModel, declared here and
// defined in model/exact.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mbz::model {

class ExactModel;  // model/exact.h

// xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number generators",
// 2018), its state filled by splitmix64 from the seed as the authors recommend. Only
// integer operations: the same seed gives the same numbers everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  // Uniform in [0, n) for n >= 1, without modulo bias: draws below 2^64 mod n are
  // rejected and drawn again (at most a chance of n / 2^64 each).
  uint64_t below(uint64_t n);

 private:
  std::array<uint64_t, 4> s_;
};

// Temperature and top-p are fixed point numbers in units of 2^-kFixedBits.
inline constexpr int kFixedBits = 16;
inline constexpr uint32_t kFixedOne = uint32_t{1} << kFixedBits;
inline constexpr double kMaxTemperature = 64;

// A real number in [0, max] to fixed point, rounded to the nearest unit; throws
// kUsageBadArgument naming `what` outside the range (NaN included).
uint32_t to_fixed(double value, double max, const char* what);

struct SampleSettings {
  uint64_t seed = 0;
  // 0: always the most likely byte (argmax, the lowest byte value among equals);
  // kFixedOne: the model's own distribution, the weights the coder sees; t: each byte's
  // distance from the most likely one, in the engine's 1/64 nat steps, divided by t.
  uint32_t temperature = kFixedOne;
  // Nucleus sampling (Holtzman et al. 2020): only the most likely bytes whose weights
  // together reach this share of the total (after the temperature); kFixedOne keeps all.
  uint32_t top_p = kFixedOne;
  // Bytes of the stream the model sees again when its window (its context) is full and
  // restarts from the modality's start patch; 0: half the context. Less than the context.
  int64_t overlap = 0;
  // Run the LibTorch engine (ExactDecoder, the one CUDA runs) even on the CPU, where the
  // plain C++ one (CpuExactDecoder) is the default. Same bytes, slower: for tests.
  bool torch_engine = false;
};

// Turns the engine's 256 weights into one byte: temperature, then top-p, then a draw.
class ByteChooser {
 public:
  // `head_table`: the model's output table (ExactModel::head_table, EXP_H of EXACT.md);
  // with a temperature other than 0 and kFixedOne it must be non-increasing (every model
  // file made by mbz quantize is), else kModelMismatch.
  ByteChooser(std::span<const int64_t> head_table, const SampleSettings& settings);

  // The weights the draw uses: zero for bytes outside the top-p set. The engine's weight
  // is head_table[t] for the byte's integer distance t; a temperature T gives
  // head_table[min(round(t / T), last)], where t is read back from the weight as the
  // largest t with that table value (exact for every t below 1076, where the table
  // strictly decreases: all bytes within e^-16.8 of the most likely one).
  std::array<int64_t, 256> shape(std::span<const int64_t, 256> weights) const;
  // One byte: argmax for temperature 0 (no draw), else a draw of rng.below(total of the
  // shaped weights), bytes taken in increasing value.
  uint8_t choose(std::span<const int64_t, 256> weights, Rng& rng) const;

 private:
  int64_t distance(int64_t weight) const;  // the t behind a weight
  std::vector<int64_t> table_;
  SampleSettings settings_;
};

// The stream to produce: `bytes` holds the known bytes (the prompt) at their offsets, and
// `known` is 1 there and 0 where a byte is to be drawn. Images put the prompt's last,
// partial row of tiles among drawn bytes, so known bytes need not be a prefix.
struct SampleRequest {
  uint8_t modality = 1;  // io::Modality: 0 raw, 1 text, 2 image, 3 audio
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> known;
};

// Called now and then with the stream offset reached and the stream's length.
using SampleProgress = std::function<void(uint64_t done, uint64_t total)>;

// The stream with every unknown byte drawn, in order, each given all the bytes before it
// that fit in the model's window. Windows: the model sees at most its context C; bytes are
// fed from the stream's start while they fit. When the window is full, a fresh one starts
// with the last `overlap` bytes (fed again, from the modality's start patch) and sampling
// goes on; a known prefix longer than the context starts in such a window, its last
// `overlap` bytes. Runs on the model's device. Throws kUsageBadArgument for a malformed
// request or an overlap outside [0, C).
std::vector<uint8_t> sample(const ExactModel& model, const SampleRequest& request,
                            const SampleSettings& settings, const SampleProgress& progress = {});

// An exact model file (model/EXACT.md) with the activation scales of `modality` where the
// file has its own, on "cpu" or "cuda". A float checkpoint of mbz train is refused
// (kModelMismatch) with the mbz quantize command that makes an exact model of it; a file
// that is no model at all gives the checkpoint reader's errors (kIoOpen, kFormat*, ...).
std::shared_ptr<const ExactModel> load_sample_model(const std::string& path, uint8_t modality,
                                                    const std::string& device);
// The same from a whole model file in memory (the bundled model), named `name` in errors.
std::shared_ptr<const ExactModel> load_sample_model(std::span<const uint8_t> bytes,
                                                    const std::string& name, uint8_t modality,
                                                    const std::string& device);
// The model's window in bytes (its context): what `overlap` is measured against.
int64_t sample_context(const ExactModel& model);

}  // namespace mbz::model

// Scoring with the network's float probabilities: ideal code lengths of a byte stream under
// a checkpoint from `mbz train`, for `mbz score --model CKPT`. Not what an archive codes
// with (that needs the integer-exact engine of a later issue), but the figure training aims
// at. No torch in this header: cli/ includes it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mbz::model {

class FloatScorer {
 public:
  // Loads a checkpoint (model/CHECKPOINT.md) onto "cpu" or "cuda". Throws mbz::Error.
  FloatScorer(const std::string& path, const std::string& device = "cpu");
  ~FloatScorer();
  FloatScorer(const FloatScorer&) = delete;
  FloatScorer& operator=(const FloatScorer&) = delete;

  // Bits to code `stream` (modality numbered as io::Modality) with the model's float
  // probabilities. Read in windows of C bytes: the window the checkpoint trained on where
  // it records one (a model is worse at global positions it never trained), else the
  // model's context. stride 0 or >= C: disjoint
  // windows, each starting from the modality's start patch. stride S < C: the paper's
  // strided scoring: windows of C bytes advance by S and score only their last S bytes, so
  // every byte past the first window sees at least C - S bytes of context. window W > 0
  // (at most the context) reads in windows of W bytes instead, to measure what context buys.
  double bits(std::span<const uint8_t> stream, int modality, int64_t stride = 0,
              int64_t window = 0);
  // bits() of many streams at once, in their order. Their windows share forward passes
  // (windows of short streams padded to a common length, about 8 KiB to a pass), which is
  // what makes a directory of small files fast: one call per small file is one small
  // forward pass each. Same bits as one call per stream, up to float rounding.
  struct Stream {
    std::span<const uint8_t> bytes;
    int modality = 0;
  };
  std::vector<double> bits(std::span<const Stream> streams, int64_t stride = 0, int64_t window = 0);
  // The window bits() reads with for a requested `window` (0: the trained one, else the
  // context).
  int64_t window(int64_t requested) const;

  int64_t context_bytes() const;
  int64_t step() const;  // training steps of the checkpoint
  std::string config_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mbz::model

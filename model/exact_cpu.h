// The exact engine's decoder in plain C++ integer loops for the CPU: the same arithmetic as
// ExactDecoder (model/EXACT.md), without a LibTorch operation per step, so a byte costs
// what its multiply-adds cost. Gives exactly ExactDecoder's weights (tested).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/exact.h"


namespace mbz::model {

class CpuTeam;

// The decoder's products run as AVX-512 VNNI loops where the CPU has them, else as plain
// loops; both give the same integers. on = false forces the plain ones (for tests); returns
// whether the vector ones exist here. Not to be called while a decoder runs.
bool use_vector_kernels(bool on);

// An ExactModel's tensors as plain arrays.
struct CpuExactModel {
  // Weights in blocks of 16 outputs and groups of four inputs, [blocks, groups, 16, 4]
  // (zero beyond out and in), so that one vector instruction takes four inputs of 16
  // outputs at once.
  struct Linear {
    static constexpr int64_t kMaxIn = int64_t{1} << 16;  // keeps every sum below 2^31
    int64_t out = 0, in = 0;
    std::vector<int8_t> weight;
    std::vector<int32_t> row_sum;  // [16 blocks]: 128 * sum_i weight[o][i] (see the .cpp)
    std::vector<int64_t> mult;     // [out]
    int64_t blocks() const { return (out + 15) / 16; }
    int64_t groups() const { return (in + 3) / 4; }
    // Where weight [o][i] sits in `weight`.
    size_t at(int64_t o, int64_t i) const {
      return size_t(((o / 16 * groups() + i / 4) * 16 + o % 16) * 4 + i % 4);
    }
  };
  struct Block {
    std::vector<int64_t> norm1, norm2;
    Linear qkv, attn_out, up, down;
    int64_t score_mult = 0, value_mult = 0;
  };
  struct Stack {
    int64_t width = 0, heads = 1;
    std::vector<Block> blocks;
    std::vector<int64_t> norm;
  };

  explicit CpuExactModel(const ExactModel& model);

  Config config;
  std::vector<int64_t> global_bytes, global_start, global_position, local_bytes, local_position;
  Stack global, local;
  Linear global_to_local, head;
  std::vector<int32_t> attn_table;  // values at most 2^kAttnBits
  std::vector<int64_t> head_table;
};

// N streams in step, as ExactDecoder: next_weights() then push() for every byte.
class CpuExactDecoder {
 public:
  // With a team of several threads, the larger products and the attention heads of a step
  // are shared out over it (the same integers, sooner).
  CpuExactDecoder(const CpuExactModel& model, std::span<const uint8_t> modality,
                  CpuTeam* team = nullptr);
  // Frequency weights of the next byte of every stream into out[N * 256].
  void next_weights(std::span<int64_t> out);
  void push(std::span<const uint8_t> bytes);
  int64_t position() const { return position_; }
  // Throws what next_weights() would refuse with an output of out_size weights.
  void check_next(size_t out_size) const;

 private:
  // Keys and values of every stream and head, [N, H, ...] in the layout of HeadLayout in
  // the .cpp, made for the vector kernels; key_sum [N, H, pitch] is 128 times each key's
  // sum. The pitch is the capacity rounded up to 64 keys.
  struct Cache {
    std::vector<int8_t> k, v;
    std::vector<int32_t> key_sum;
    int64_t capacity = 0, pitch = 0, length = 0;
  };
  // One position of every stream through `stack`: r [N, D] residuals in, int8 [N, D] out.
  void stack_step(const CpuExactModel::Stack& stack, std::vector<Cache>& caches,
                  std::vector<int64_t>& r, std::vector<int8_t>& out);

  struct Scratch {
    std::vector<int8_t> a, qkv, attended, hidden;
    std::vector<uint8_t> flipped;  // a product's input, as dot_rows takes it
    std::vector<int32_t> sums;
    // A step's stack input (residuals), output (int8) and logits, kept between bytes.
    std::vector<int64_t> residual, logits;
    std::vector<int8_t> stack_out;
    struct Part {  // one thread's attention scratch
      std::vector<int32_t> scores;
      std::vector<uint8_t> lo, hi;  // attention weights, low and high bytes
      std::vector<int64_t> num;
    };
    std::vector<Part> parts;
  };

  const CpuExactModel& model_;
  CpuTeam* team_;
  Scratch scratch_;
  std::vector<uint8_t> modality_;
  int64_t n_, position_ = 0;
  bool pending_ = false;
  std::vector<Cache> global_caches_, local_caches_;
  std::vector<uint8_t> patch_;       // [N, P]
  std::vector<int32_t> previous_;    // [N]: the previous byte's id
  std::vector<int64_t> condition_;   // [N, P, Dl]
};

// CpuExactDecoder's streams split over a team's threads: with N >= 2 streams, groups of
// streams (as many as threads, at most N), each a decoder of its own whose whole step one
// thread runs, so threads meet once a byte instead of at every product; with one stream
// (or one thread), a single decoder that shares its products over the team. The same
// integers either way.
class CpuBatchDecoder {
 public:
  CpuBatchDecoder(const CpuExactModel& model, std::span<const uint8_t> modality,
                  CpuTeam* team = nullptr);
  void next_weights(std::span<int64_t> out);
  void push(std::span<const uint8_t> bytes);

 private:
  CpuTeam* team_;
  std::vector<int64_t> first_;  // each group's first stream, then N
  std::vector<std::unique_ptr<CpuExactDecoder>> groups_;
};

}  // namespace mbz::model

// N hashed byte contexts in a ContextTable of their own, looked up once a nibble as
// ContextModel's are (context_table.h): the modality models (image_model.h,
// audio_model.h) set each context's hash at a byte's start, and before each bit get the
// stretched probability of the context's counter for that bit.
#pragma once

#include <array>
#include <cstdint>

#include "codec/cm/context_table.h"
#include "codec/cm/counter.h"
#include "codec/cm/history.h"
#include "codec/cm/logistic.h"

namespace mbz::cm {

template <int N>
class NibbleContexts {
 public:
  // A table of 2^table_bits buckets; counters forget at 1/(limit + 1.2) past `limit`.
  NibbleContexts(int table_bits, uint32_t limit) : table_(table_bits), limit_(limit) {}

  // Context i of the next byte (kinds told apart by the caller's seeds).
  void set(int i, uint64_t hash) { hashes_[i] = hash; }

  // Writes N stretched probabilities for the next bit: c0 the partial byte with a leading
  // 1, bitpos its known bits.
  void predict(int c0, int bitpos, int16_t* inputs) {
    if (bitpos == 0 || bitpos == 4)
      for (int i = 0; i < N; ++i)
        buckets_[i] = &table_.find(finalize(bitpos == 0 ? hashes_[i] : combine(hashes_[i], c0)));
    const int node = bitpos < 4 ? c0 : (c0 & ((1 << (bitpos - 4)) - 1)) | 1 << (bitpos - 4);
    for (int i = 0; i < N; ++i) {
      counters_[i] = &buckets_[i]->counters[node - 1];
      inputs[i] = static_cast<int16_t>(stretch(Counter::p(*counters_[i])));
    }
  }
  void update(int bit) {
    for (uint32_t* counter : counters_) Counter::update(*counter, bit, limit_);
  }

 private:
  ContextTable table_;
  uint32_t limit_;
  std::array<uint64_t, N> hashes_{};
  std::array<Bucket*, N> buckets_{};
  std::array<uint32_t*, N> counters_{};
};

}  // namespace mbz::cm

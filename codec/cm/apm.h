// An adaptive probability map (APM, or SSE: secondary symbol estimation, as in paq8 and
// lpaq1): refines a probability p given a small context. For each context, 33 counters
// sit at stretch(p) = -2048, -1920, .., 2048; the output interpolates linearly between the
// two around stretch(p), and both learn from the bit (0.4 % better on text than only the
// nearer, as lpaq1 does). The counters start on the identity (counter j holds
// squash((j - 16) × 128)) with a count that makes their first updates gentle, so an
// untrained map passes p through nearly unchanged.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "codec/cm/counter.h"
#include "codec/cm/logistic.h"
#include "codec/cm/zeroed_memory.h"

namespace mbz::cm {

class Apm {
 public:
  // `contexts` contexts; counters adapt at 1/(n + 1.2), n from `initial_count` (>= 1) to
  // `limit`.
  Apm(int contexts, uint32_t initial_count, uint32_t limit)
      : memory_(sizeof(uint32_t) * 33 * static_cast<size_t>(contexts), false),
        words_(static_cast<uint32_t*>(memory_.data())),
        initial_count_(std::max<uint32_t>(initial_count, 1)),
        limit_(limit) {}

  // The refined 12-bit probability of p (0..4095) in context cx (< contexts).
  int p(int p, int cx) {
    const int s = stretch(p) + 2048;  // 1..4095
    const int w = s & 127;
    uint32_t* row = words_ + static_cast<size_t>(cx) * 33;
    if (row[0] == 0) start(row);
    index_ = static_cast<size_t>(row - words_) + (s >> 7);
    const uint64_t mixed = uint64_t{Counter::p22(words_[index_])} * (128 - w) +
                           uint64_t{Counter::p22(words_[index_ + 1])} * w;
    weight_ = w;  // of the upper counter
    return static_cast<int>(mixed >> (7 + Counter::kBits - kProbBits));
  }
  void update(int bit) {
    if (weight_ < 128) Counter::update(words_[index_], bit, limit_);
    if (weight_ > 0) Counter::update(words_[index_ + 1], bit, limit_);
  }

 private:
  // Rows start on the identity when first used, so that a large map costs nothing (not
  // even the zeroing of its memory) until its contexts occur. A started counter's count
  // is never below initial_count_ >= 1, so a row whose first word is 0 has not started.
  // (Starting each counter on its own instead measured 9 % slower overall.)
  void start(uint32_t* row) const {
    for (int j = 0; j < 33; ++j) {
      const auto p = static_cast<uint32_t>(squash((j - 16) * 128));
      row[j] = Counter::make(p << (Counter::kBits - kProbBits), initial_count_);
    }
  }

  ZeroedMemory memory_;  // 4 KiB pages: a small input starts few rows
  uint32_t* words_;      // 33 counters a context
  uint32_t initial_count_;
  uint32_t limit_;
  size_t index_ = 0;
  int weight_ = 0;
};

}  // namespace mbz::cm

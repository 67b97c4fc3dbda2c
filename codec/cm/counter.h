// Adaptive probability counters: one 32-bit word holds a 22-bit probability that the next
// bit is 1 and a 10-bit count of the updates it has had. The count sets the rate: an
// update after n others moves the probability by 1/(n + 1.2) of its error, so a young
// counter holds about (ones + 0.1) / (n + 0.2), nearly the frequency of ones it has seen,
// and one that has reached its limit L keeps adapting at 1/(L + 1.2) (a limit says how
// nonstationary a context is taken to be). Integer only: the reciprocals are a table, the
// shifts arithmetic.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/cm/logistic.h"

namespace mbz::cm {

namespace detail {

// 65536 / (n + 1.2), rounded down: the rate of the update after n others. The offset 1.2
// measured best on every 4th file of data/corpora/text/valid: 1.5 costs 0.2 %, 2 0.6 %,
// 1.05 0.15 % (so close to 1 the first update all but decides the counter).
constexpr std::array<int32_t, 1024> reciprocal_table() {
  std::array<int32_t, 1024> t{};
  for (int n = 0; n < 1024; ++n) t[n] = 655360 / (10 * n + 12);
  return t;
}
inline constexpr auto kReciprocal = reciprocal_table();

}  // namespace detail

class Counter {
 public:
  static constexpr int kBits = 22;  // probability bits
  static constexpr uint32_t kCountMask = 1023;
  static constexpr uint32_t kMaxLimit = 1023;
  // A counter that has seen nothing: probability 1/2, count 0. The probability is stored
  // as a signed offset from 1/2, so that this is the word 0 and a table of fresh counters
  // is zeroed memory.
  static constexpr uint32_t kFresh = 0;

  // A word with probability p (kBits-bit) and count n.
  static constexpr uint32_t make(uint32_t p, uint32_t n) { return (p - kHalf) << 10 | n; }

  // The kBits-bit probability that the next bit is 1.
  static uint32_t p22(uint32_t word) { return static_cast<uint32_t>(offset(word) + kHalf); }
  // 12-bit probability that the next bit is 1, in [0, 4095].
  static int p(uint32_t word) {
    return (static_cast<int32_t>(word) >> (32 - kProbBits)) + kProbOne / 2;
  }
  static int count(uint32_t word) { return static_cast<int>(word & kCountMask); }

  // Moves the probability toward `bit` at rate 1/(n + 1.2) and counts the update, up to
  // `limit` (<= 1023). The step error × rate / 2^16 is rounded to nearest (halves up), so
  // a counter fed only ones (zeros) stops within 2^15 / rate units of 2^22 (of 0), its
  // bound, and never passes it.
  static void update(uint32_t& word, int bit, uint32_t limit) {
    const uint32_t n = word & kCountMask;
    const int32_t q = offset(word);
    const int64_t error = (bit ? int32_t{kHalf} : -int32_t{kHalf}) - q;
    const int32_t next = q + static_cast<int32_t>((error * detail::kReciprocal[n] + 0x8000) >> 16);
    word = static_cast<uint32_t>(next) << 10 | (n < limit ? n + 1 : limit);
  }

 private:
  static constexpr uint32_t kHalf = uint32_t{1} << (kBits - 1);
  // p - 1/2, in [-2^21, 2^21).
  static int32_t offset(uint32_t word) { return static_cast<int32_t>(word) >> 10; }
};

// A table of counters addressed directly by a small context (an adaptive probability map,
// as paq's StateMap without the bit-history states).
class CounterMap {
 public:
  // `size` counters that forget at 1/(limit + 1.5) once past `limit` updates.
  CounterMap(size_t size, uint32_t limit) : words_(size, Counter::kFresh), limit_(limit) {}

  // 12-bit probability that the next bit is 1 in context cx (< size).
  int p(size_t cx) const { return Counter::p(words_[cx]); }
  void update(size_t cx, int bit) { Counter::update(words_[cx], bit, limit_); }

 private:
  std::vector<uint32_t> words_;
  uint32_t limit_;
};

}  // namespace mbz::cm

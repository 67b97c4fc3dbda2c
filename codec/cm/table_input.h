// The external input of the context mixer: a 256-symbol frequency table for the current
// byte (mbz::Cdf, the interface every byte model gives the coder; the neural model enters
// the mixer this way). Before each bit, the symbols still possible are those whose high
// bits equal the bits already coded, a contiguous range [lo, hi) whose lower half has the
// next bit 0, so
//
//     P(bit = 1) = (cdf[hi] - cdf[mid]) / (cdf[hi] - cdf[lo]),   mid = (lo + hi) / 2,
//
// computed exactly in integers and rounded to 12 bits (then kept within [1, 4095]). Every
// frequency is >= 1, so the denominator is never 0. The stretched probability reaches the mixer
// split in two at ±kSplit (x = a + b with a = clamp(x, -kSplit, kSplit)), so that the mixer weighs
// a confident table and a hesitant one separately.
#pragma once

#include <cstdint>

#include "codec/range_coder.h"

namespace mbz::cm {

class TableInput {
 public:
  static constexpr int kInputs = 2;
  static constexpr int kSplit = 512;  // stretch units: p = 0.88

  // The table of the current byte, or nullptr for none; it must stay valid until the
  // byte's last bit has been predicted.
  void set(const Cdf* table) { table_ = table; }

  // 12-bit probability that the next bit is 1, in [1, 4095] (table present).
  int p(int c0, int bitpos) const;
  // Writes kInputs inputs for the next bit (zeros without a table).
  void predict(int c0, int bitpos, int16_t* inputs);
  // How confident the table is about the next bit: 0 (no table), 1..3 (|stretch| rising).
  int confidence() const { return confidence_; }

 private:
  const Cdf* table_ = nullptr;
  int confidence_ = 0;
};

}  // namespace mbz::cm

#include "codec/cm/table_input.h"

#include <algorithm>
#include <cstdlib>

#include "codec/cm/logistic.h"

namespace mbz::cm {

int TableInput::p(int c0, int bitpos) const {
  const int width = 256 >> bitpos;
  const int lo = (c0 - (1 << bitpos)) * width;  // the symbols whose high bits are c0's
  const int hi = lo + width, mid = lo + width / 2;
  const uint64_t ones = table_->c[hi] - table_->c[mid];
  const uint64_t all = table_->c[hi] - table_->c[lo];
  if (all == 0) return kProbOne / 2;  // only an invalid table (a frequency of 0) gets here
  const uint64_t p = (ones * kProbOne + all / 2) / all;
  return static_cast<int>(std::clamp<uint64_t>(p, 1, kProbOne - 1));
}

void TableInput::predict(int c0, int bitpos, int16_t* inputs) {
  if (table_ == nullptr) {
    inputs[0] = inputs[1] = 0;
    confidence_ = 0;
    return;
  }
  const int x = stretch(p(c0, bitpos));
  inputs[0] = static_cast<int16_t>(std::clamp(x, -kSplit, kSplit));
  inputs[1] = static_cast<int16_t>(x - inputs[0]);
  const int magnitude = std::abs(x);
  confidence_ = magnitude < 256 ? 1 : magnitude < 1024 ? 2 : 3;
}

}  // namespace mbz::cm

#include "codec/range_coder.h"

namespace mbz {

bool cdf_is_valid(const Cdf& cdf) {
  if (cdf.c[0] != 0 || cdf.c[256] != kTotal) return false;
  for (int s = 0; s < 256; ++s)
    if (cdf.c[s + 1] <= cdf.c[s]) return false;
  return true;
}

void cdf_from_weights(std::span<const uint64_t, 256> weights, Cdf& out) {
  uint64_t sum = 0;
  int heaviest = 0;
  for (int s = 0; s < 256; ++s) {
    sum += weights[s];
    if (weights[s] > weights[heaviest]) heaviest = s;
  }
  // Keep the sum below 2^32, so that the reciprocal below is off by less than one unit.
  int shift = 0;
  while ((sum >> shift) >= (uint64_t{1} << 32)) ++shift;
  if (shift > 0) {
    sum = 0;
    for (int s = 0; s < 256; ++s) sum += weights[s] >> shift;
  }
  constexpr uint64_t kSpare = kTotal - 256;  // what is left after every symbol's 1
  std::array<uint32_t, 256> freq;
  uint32_t given = 0;
  if (sum == 0) {
    freq.fill(kTotal / 256);
    given = kTotal;
  } else {
    // Fixed-point reciprocal: scale = kSpare * 2^32 / sum. Since w <= sum, the product
    // w * scale is at most kSpare * 2^32 < 2^48, and the floors add up to at most kSpare.
    // With sum < 2^32 each share comes out as its exact floor or one below it.
    const uint64_t scale = (kSpare << 32) / sum;
    for (int s = 0; s < 256; ++s) {
      freq[s] = 1 + static_cast<uint32_t>(((weights[s] >> shift) * scale) >> 32);
      given += freq[s];
    }
  }
  freq[heaviest] += kTotal - given;
  out.c[0] = 0;
  for (int s = 0; s < 256; ++s) out.c[s + 1] = out.c[s] + freq[s];
}

}  // namespace mbz

// The logistic domain of the context mixer: stretch(p) = ln(p / (1 - p)) and its inverse
// squash, on fixed-point integers. Probabilities are 12-bit (0..4095 stands for 0..1);
// stretched values are in 1/256 units, clamped to [-2047, 2047] (about ±8 nats).
//
// Both tables are built at compile time by integer arithmetic alone (a fixed-point
// exponential, then a division), so every machine holds the same bytes in them, which
// is what keeps the encoder and the decoder in step.
#pragma once

#include <array>
#include <cstdint>

namespace mbz::cm {

inline constexpr int kProbBits = 12;
inline constexpr int kProbOne = 1 << kProbBits;  // probability 1.0
inline constexpr int kStretchMax = 2047;         // |stretch(p)| <= this

namespace detail {

// e^(-x/256) for x = 0..2047 in Q31, by repeated multiplication with e^(-1/256). That
// constant is summed from its Taylor series in Q62; the 2047 products lose at most 2047
// units of 2^-31, far below the 2^-12 the tables are rounded to.
constexpr std::array<uint64_t, kStretchMax + 1> exp_table() {
  uint64_t term = uint64_t{1} << 62, sum = term;
  for (int k = 1; k < 12; ++k) {
    term /= 256u * k;
    sum = (k & 1) ? sum - term : sum + term;
  }
  const uint64_t step = sum >> 31;  // e^(-1/256) in Q31
  std::array<uint64_t, kStretchMax + 1> e{};
  e[0] = uint64_t{1} << 31;
  for (int x = 1; x <= kStretchMax; ++x) e[x] = (e[x - 1] * step + (uint64_t{1} << 30)) >> 31;
  return e;
}

// squash(x) = 4096 / (1 + e^(-x/256)), rounded to nearest, kept in [1, 4095]; index x + 2047.
constexpr std::array<int16_t, 2 * kStretchMax + 1> squash_table() {
  const auto e = exp_table();
  std::array<int16_t, 2 * kStretchMax + 1> t{};
  for (int x = 0; x <= kStretchMax; ++x) {
    const uint64_t one = uint64_t{1} << 31;
    int p = static_cast<int>((uint64_t{kProbOne} * one + (one + e[x]) / 2) / (one + e[x]));
    if (p > kProbOne - 1) p = kProbOne - 1;
    t[kStretchMax + x] = static_cast<int16_t>(p);
    t[kStretchMax - x] = static_cast<int16_t>(kProbOne - p);  // squash(-x) = 1 - squash(x)
  }
  return t;
}

// stretch(p) = the smallest x with squash(x) >= p, so that squash(stretch(p)) ~ p and the
// table is monotone; p above squash(2047) maps to 2047.
constexpr std::array<int16_t, kProbOne> stretch_table() {
  const auto sq = squash_table();
  std::array<int16_t, kProbOne> t{};
  int p = 0;
  for (int x = -kStretchMax; x <= kStretchMax; ++x)
    for (const int v = sq[x + kStretchMax]; p <= v; ++p) t[p] = static_cast<int16_t>(x);
  for (; p < kProbOne; ++p) t[p] = kStretchMax;
  return t;
}

inline constexpr auto kSquash = squash_table();
inline constexpr auto kStretch = stretch_table();

}  // namespace detail

// 12-bit probability of x (1/256 units); x outside [-2047, 2047] is clamped.
inline int squash(int x) {
  if (x > kStretchMax) x = kStretchMax;
  if (x < -kStretchMax) x = -kStretchMax;
  return detail::kSquash[x + kStretchMax];
}

// ln(p / (1 - p)) in 1/256 units for a 12-bit probability 0 <= p < 4096.
inline int stretch(int p) {
  return detail::kStretch[p];
}

}  // namespace mbz::cm

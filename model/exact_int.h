// The exact engine's constants and its scalar integer steps (model/EXACT.md), without
// LibTorch, for the plain CPU decoder (exact_cpu.cpp) and the CUDA kernels (exact_cuda.cu)
// alike: one definition of each rounding, so the two cannot drift apart.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define MBZ_HOST_DEVICE __host__ __device__
#else
#define MBZ_HOST_DEVICE
#endif

namespace mbz::model {

inline constexpr int kResidualBits = 12;          // residual fixed point: 1/4096
inline constexpr int64_t kResidualMax = 1 << 25;  // |r| <= 2^25, so sums of r^2 fit int64
inline constexpr int kMultBits = 24;              // requantization multipliers
inline constexpr int kNormBits = 16;              // RMSNorm gains
inline constexpr int kReluBits = 8;               // ReLU input precision before squaring
inline constexpr int64_t kExactChunk = 1024;      // 1024 * 127 * 127 < 2^24
inline constexpr int64_t kAttnSteps = 16;         // attention table: entries per nat
inline constexpr int64_t kAttnLength = 16 * 12 + 1;  // e^-12 and below count as 0
inline constexpr int kAttnBits = 12;                 // attention table values: round(2^12 e^-t)
inline constexpr int64_t kHeadSteps = 64;            // output table: entries per nat
inline constexpr int64_t kHeadLength = 64 * 24 + 1;  // e^-24 and below count as 0
inline constexpr int kHeadBits = 30;                 // output table values: round(2^30 e^-t)

namespace exact {

// floor(a / 2^bits + 1/2): a / 2^bits rounded half up (>> of a negative is floor in C++20
// and in CUDA).
MBZ_HOST_DEVICE inline int64_t round_shift(int64_t a, int bits) {
  return (a + (int64_t(1) << (bits - 1))) >> bits;
}

// floor(num / den) for den > 0 (C++'s division truncates toward zero).
MBZ_HOST_DEVICE inline int64_t floor_div(int64_t num, int64_t den) {
  const int64_t q = num / den;
  return q * den > num ? q - 1 : q;
}

MBZ_HOST_DEVICE inline int8_t clamp8(int64_t a) {
  return static_cast<int8_t>(a < -127 ? -127 : a > 127 ? 127 : a);
}

MBZ_HOST_DEVICE inline int64_t add_residual(int64_t r, int64_t delta) {
  const int64_t s = r + delta;
  return s < -kResidualMax ? -kResidualMax : s > kResidualMax ? kResidualMax : s;
}

// floor(sqrt(n)) for 0 <= n <= 2^50 + 1: the double root (correctly rounded on every IEEE
// machine), then integer steps that make it exact whatever it was.
MBZ_HOST_DEVICE inline int64_t isqrt(int64_t n) {
  int64_t q = static_cast<int64_t>(::sqrt(static_cast<double>(n)));
  while (q * q > n) --q;
  while ((q + 1) * (q + 1) <= n) ++q;
  return q;
}

// ReLU² after `up`, from the product's exact sum and the output's multiplier: the ReLU
// before the multiplier (the sum's sign decides), the value at 2^kReluBits per unit of the
// square root of the output scale, at most 2^12, then squared and shifted, at most 127.
MBZ_HOST_DEVICE inline int8_t relu_squared(int64_t sum, int64_t mult) {
  int64_t t = round_shift((sum > 0 ? sum : 0) * mult, kMultBits);
  if (t > (int64_t(1) << (kReluBits + 4))) t = int64_t(1) << (kReluBits + 4);
  const int64_t h = round_shift(t * t, 2 * kReluBits);
  return static_cast<int8_t>(h < 127 ? h : 127);
}

// The attention table index of a key whose score is `delta` below the best one:
// floor(min(delta, 2^31) * mult / 2^kMultBits), at most kAttnLength - 1.
MBZ_HOST_DEVICE inline int64_t attention_index(int64_t delta, int64_t mult) {
  const int64_t d = delta < (int64_t(1) << 31) ? delta : int64_t(1) << 31;
  const int64_t index = (d * mult) >> kMultBits;
  return index < kAttnLength - 1 ? index : kAttnLength - 1;
}

}  // namespace exact
}  // namespace mbz::model

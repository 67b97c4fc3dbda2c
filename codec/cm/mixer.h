// A gated linear mixer in the logistic domain (paq8, lpaq1): the mix of stretched inputs
// x_i is squash(Σ w_i x_i), with one weight vector per value of a small selecting context,
// trained online to minimise coding cost: after the bit y, w_i += lr × (y - p) × x_i.
//
// Fixed point as paq8's, on 16-bit lanes so that SSE2 (every x86-64) does 8 at a time:
//   inputs  x_i: stretch units (1/256), |x_i| <= 2047
//   weights w_i: 1/8192 units (8192 = 1.0), saturating at ±32767 (about ±4.0)
//   mix:    dot = Σ x_i w_i exactly in 32 bits; output clamp(dot >> 13, ±2047)
//   update: e = ((4096 y - p) × rate) >> 2 (|e| < 2^15 for rate <= 32), then
//           w_i = sat16(w_i + ((((8 x_i × e) >> 16) + 1) >> 1)),
//           that is w_i += x_i × e / 2^14 rounded: lr = rate / 512 per unit of x and y - p.
// All shifts are arithmetic (floor). The SSE2 path and the portable one compute the same
// integers step by step (pmaddwd, pmulhw, paddsw are exactly the scalar formulas), so
// every machine gives the same weights; tests/codec_cm_test.cpp checks one against the
// other.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "codec/cm/logistic.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mbz::cm {

namespace detail {

inline constexpr int kMaxMixerRate = 32;

// The portable definitions; n is a multiple of 8, |x| <= 2047.
inline int32_t dot_scalar(const int16_t* x, const int16_t* w, int n) {
  int32_t dot = 0;
  for (int i = 0; i < n; ++i) dot += int32_t{x[i]} * w[i];
  return dot;
}
inline void train_scalar(const int16_t* x, int16_t* w, int n, int e) {
  for (int i = 0; i < n; ++i) {
    const int32_t high = (int32_t{x[i]} * 8 * e) >> 16;  // pmulhw(8x, e)
    const int32_t step = static_cast<int16_t>(high + 1) >> 1;
    w[i] = static_cast<int16_t>(std::clamp(int32_t{w[i]} + step, -32768, 32767));
  }
}

inline int32_t dot(const int16_t* x, const int16_t* w, int n) {
#if defined(__SSE2__)
  __m128i sum = _mm_setzero_si128();
  for (int i = 0; i < n; i += 8) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
    sum = _mm_add_epi32(sum, _mm_madd_epi16(a, b));
  }
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4E));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xB1));
  return _mm_cvtsi128_si32(sum);
#else
  return dot_scalar(x, w, n);
#endif
}

inline void train(const int16_t* x, int16_t* w, int n, int e) {
#if defined(__SSE2__)
  const __m128i err = _mm_set1_epi16(static_cast<int16_t>(e));
  const __m128i one = _mm_set1_epi16(1);
  for (int i = 0; i < n; i += 8) {
    const __m128i a = _mm_slli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)), 3);
    __m128i* wp = reinterpret_cast<__m128i*>(w + i);
    const __m128i step = _mm_srai_epi16(_mm_add_epi16(_mm_mulhi_epi16(a, err), one), 1);
    _mm_storeu_si128(wp, _mm_adds_epi16(_mm_loadu_si128(wp), step));
  }
#else
  train_scalar(x, w, n, e);
#endif
}

}  // namespace detail

// N inputs, a multiple of 8 (pad with zero inputs).
template <int N>
class Mixer {
 public:
  // Whole SSE2 lanes; and 32 terms of at most 2047 × 32768 keep the dot inside 31 bits.
  static_assert(N % 8 == 0 && N <= 32);
  static constexpr int kMaxRate = detail::kMaxMixerRate;
  static constexpr int16_t kOne = 8192;  // weight 1.0

  // `contexts` weight sets, every weight starting at `initial_weight`.
  Mixer(int contexts, int16_t initial_weight)
      : weights_(static_cast<size_t>(N) * contexts, initial_weight) {}
  // `contexts` weight sets, each starting as `initial`.
  Mixer(int contexts, const std::array<int16_t, N>& initial)
      : weights_(static_cast<size_t>(N) * contexts) {
    for (size_t i = 0; i < weights_.size(); ++i) weights_[i] = initial[i % N];
  }

  // Selects the weight set of `context` (< contexts) and returns the stretched mix of
  // x[0 .. N); p() is its probability until the next mix().
  int mix(const int16_t* x, int context) {
    selected_ = static_cast<size_t>(context) * N;
    const int out =
        std::clamp(detail::dot(x, &weights_[selected_], N) >> 13, -kStretchMax, kStretchMax);
    p_ = squash(out);
    return out;
  }
  int p() const { return p_; }

  // Trains the weight set of the last mix() on the bit that occurred; `x` must be the same
  // inputs, 0 <= rate <= kMaxRate.
  void update(const int16_t* x, int bit, int rate) {
    const int e = (((bit << kProbBits) - p_) * rate) >> 2;
    if (e != 0) detail::train(x, &weights_[selected_], N, e);
  }

 private:
  std::vector<int16_t> weights_;
  size_t selected_ = 0;  // offset of the weight set of the last mix()
  int p_ = kProbOne / 2;
};

}  // namespace mbz::cm

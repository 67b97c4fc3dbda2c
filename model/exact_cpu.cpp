// ExactDecoder's arithmetic (model/EXACT.md) in plain loops. Names follow exact.cpp.
#include "model/exact_cpu.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#endif

#include "codec/error.h"
#include "model/cpu_team.h"

namespace mbz::model {

namespace {

// An integer tensor's values, int64 or int32 (as a model file may store them) widened as
// they are copied, not through an int64 tensor first.
std::vector<int64_t> longs(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU).contiguous();
  if (c.scalar_type() == torch::kInt)
    return std::vector<int64_t>(c.data_ptr<int32_t>(), c.data_ptr<int32_t>() + c.numel());
  const torch::Tensor l = c.to(torch::kLong);
  return std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
}

std::vector<int32_t> ints(const torch::Tensor& t) {
  const std::vector<int64_t> l = longs(t);
  return std::vector<int32_t>(l.begin(), l.end());
}

CpuExactModel::Linear linear_of(const ExactLinear& l) {
  using Linear = CpuExactModel::Linear;
  Linear out;
  out.out = l.weight.size(0);
  out.in = l.weight.size(1);
  if (out.in > Linear::kMaxIn)
    throw Error(ErrorCode::kUnsupportedFeature, "exact model: a product of more than " +
                                                    std::to_string(Linear::kMaxIn) +
                                                    " inputs is not supported on the CPU");
  const torch::Tensor w = l.weight.to(torch::kCPU).to(torch::kChar).contiguous();
  const int8_t* rows = w.data_ptr<int8_t>();
  out.weight.assign(size_t(out.blocks() * out.groups() * 64), 0);
  out.row_sum.assign(size_t(out.blocks() * 16), 0);
  for (int64_t o = 0; o < out.out; ++o)
    for (int64_t i = 0; i < out.in; ++i) {
      const int8_t v = rows[o * out.in + i];
      out.weight[out.at(o, i)] = v;
      out.row_sum[size_t(o)] += 128 * int32_t(v);
    }
  out.mult = longs(l.mult);
  return out;
}

CpuExactModel::Stack stack_of(const ExactStack& s) {
  CpuExactModel::Stack out;
  out.heads = s.heads;
  out.norm = longs(s.norm);
  out.width = static_cast<int64_t>(out.norm.size());
  for (const ExactBlock& b : s.blocks)
    out.blocks.push_back({longs(b.norm1), longs(b.norm2), linear_of(b.qkv), linear_of(b.out),
                          linear_of(b.up), linear_of(b.down), longs(b.score_mult)[0],
                          longs(b.value_mult)[0]});
  return out;
}

using exact::add_residual;
using exact::clamp8;
using exact::isqrt;
using exact::round_shift;

// floor(num / den) for den > 0, given inverse = 1.0 / den: the estimate through the
// reciprocal, then integer steps until it is the floor, so exact for any num (a 64-bit
// division is tens of cycles, and these run for every element of a row).
inline int64_t floor_div_by(int64_t num, int64_t den, double inverse) {
  int64_t f = static_cast<int64_t>(std::floor(double(num) * inverse));
  while (f * den > num) --f;
  while ((f + 1) * den <= num) ++f;
  return f;
}

// The products below take their int8 input x as the bytes x XOR 0x80 = x + 128 read as
// unsigned (zero beyond its length), since AVX-512 VNNI's vpdpbusd multiplies unsigned
// bytes by signed ones: sum w x = sum w (x + 128) - 128 sum w, and 128 sum w is a constant
// of the weights (Linear::row_sum, Cache::key_sum). No step saturates (vpdpbusd wraps,
// and every partial sum stays below 2^31), so each version gives the plain loop's integer
// to the bit. The versions are compiled for AVX-512 VNNI and the baseline and picked at
// run time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MBZ_CPU_VERSIONS __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#define MBZ_VNNI 1
#else
#define MBZ_CPU_VERSIONS
#endif

constexpr int64_t kVector = 64;          // bytes of an AVX-512 register
constexpr int64_t kMaxHeadWidth = 4096;  // the widest a model file may have (EXACT.md)

int64_t padded(int64_t in) { return (in + kVector - 1) / kVector * kVector; }

// Four bytes at a as one 32-bit word (the buffers here are bytes).
inline int32_t word(const uint8_t* a) {
  int32_t w;
  std::memcpy(&w, a, sizeof w);
  return w;
}

// x [n, in] -> xs [n, 4 groups()]: x + 128 as unsigned bytes, zero beyond in, so that
// each group of four is one 32-bit word.
void flip_inputs(const CpuExactModel::Linear& l, const int8_t* x, int64_t n,
                 std::vector<uint8_t>& xs) {
  const int64_t pitch = 4 * l.groups();
  xs.assign(size_t(n * pitch), 0);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < l.in; ++i) xs[size_t(s * pitch + i)] = uint8_t(x[s * l.in + i]) ^ 0x80;
}

// out[s * out_pitch + o] = sum_i w[o][i] x_s[i] for the outputs o of the blocks [first,
// last) of 16 and every stream s < n, x flipped as above (outputs past l.out are 0).
using DotRows = void (*)(const CpuExactModel::Linear& l, int64_t first, int64_t last,
                         const uint8_t* xs, int64_t n, int32_t* out, int64_t out_pitch);

MBZ_CPU_VERSIONS void dot_rows_plain(const CpuExactModel::Linear& l, int64_t first, int64_t last,
                                     const uint8_t* xs, int64_t n, int32_t* out,
                                     int64_t out_pitch) {
  const int64_t pitch = 4 * l.groups();
  for (int64_t s = 0; s < n; ++s)
    for (int64_t o = first * 16; o < last * 16; ++o) {
      int32_t sum = 0;
      for (int64_t i = 0; i < l.in; ++i)
        sum += int32_t(l.weight[l.at(o, i)]) * (int32_t(xs[s * pitch + i]) - 128);
      out[s * out_pitch + o] = sum;
    }
}

#ifdef MBZ_VNNI
// GCC 12's AVX-512 headers trip -Wuninitialized on their own internal placeholders (a
// known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define MBZ_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

// K blocks of 16 outputs (K <= 4) for streams s and s + 1 (or s alone): per group of
// four inputs, each stream's four bytes broadcast to every lane, times each block's 16
// rows of four weights, one output a lane (no sums across lanes).
template <int K, bool kTwo>
MBZ_VNNI_TARGET inline void dot_blocks(const int8_t* w, const int32_t* row_sum, int64_t groups,
                                       const uint8_t* x0, const uint8_t* x1, int32_t* out0,
                                       int32_t* out1) {
  __m512i a[K], b[K];
  for (int k = 0; k < K; ++k) a[k] = b[k] = _mm512_setzero_si512();
  const int64_t stride = groups * kVector;  // bytes from one block of 16 rows to the next
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i u = _mm512_set1_epi32(word(x0 + 4 * g));
    const __m512i v = kTwo ? _mm512_set1_epi32(word(x1 + 4 * g)) : u;
    for (int k = 0; k < K; ++k) {
      const __m512i wk = _mm512_loadu_si512(w + k * stride + g * kVector);
      a[k] = _mm512_dpbusd_epi32(a[k], u, wk);
      if (kTwo) b[k] = _mm512_dpbusd_epi32(b[k], v, wk);
    }
  }
  for (int k = 0; k < K; ++k) {
    const __m512i c = _mm512_loadu_si512(row_sum + 16 * k);
    _mm512_storeu_si512(out0 + 16 * k, _mm512_sub_epi32(a[k], c));
    if (kTwo) _mm512_storeu_si512(out1 + 16 * k, _mm512_sub_epi32(b[k], c));
  }
}

template <int K>
MBZ_VNNI_TARGET inline void dot_streams(const CpuExactModel::Linear& l, int64_t block,
                                        const uint8_t* xs, int64_t n, int32_t* out,
                                        int64_t out_pitch) {
  const int64_t groups = l.groups();
  const int8_t* w = l.weight.data() + block * groups * kVector;
  const int32_t* row_sum = l.row_sum.data() + block * 16;
  const int64_t pitch = 4 * groups;  // bytes of one stream's input
  int64_t s = 0;
  for (; s + 2 <= n; s += 2)
    dot_blocks<K, true>(w, row_sum, groups, xs + s * pitch, xs + (s + 1) * pitch,
                        out + s * out_pitch + block * 16, out + (s + 1) * out_pitch + block * 16);
  if (s < n)
    dot_blocks<K, false>(w, row_sum, groups, xs + s * pitch, nullptr,
                         out + s * out_pitch + block * 16, nullptr);
}

// Four blocks (64 outputs) at a time: the weights stream through once for every pair of
// streams, and each weight vector loaded serves both.
MBZ_VNNI_TARGET void dot_rows_vnni(const CpuExactModel::Linear& l, int64_t first, int64_t last,
                                   const uint8_t* xs, int64_t n, int32_t* out,
                                   int64_t out_pitch) {
  int64_t b = first;
  for (; b + 4 <= last; b += 4) dot_streams<4>(l, b, xs, n, out, out_pitch);
  switch (last - b) {
    case 3: dot_streams<3>(l, b, xs, n, out, out_pitch); break;
    case 2: dot_streams<2>(l, b, xs, n, out, out_pitch); break;
    case 1: dot_streams<1>(l, b, xs, n, out, out_pitch); break;
    default: break;
  }
}

#pragma GCC diagnostic pop
#endif

bool has_vnni() {
#ifdef MBZ_VNNI
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}
// Where one head's keys and values sit in a Cache, both laid out so that a step appends
// to a few adjacent cache lines and the kernels read them in one sequential pass:
//   keys in blocks of 16 and groups of four dimensions, [pitch / 16, kd / 4, 16, 4];
//   values in groups of four keys, [pitch / 4, vd, 4];
// with kd, vd the head width rounded up to 4 and to 16 (unused bytes are zero).
struct HeadLayout {
  int64_t hd, kd, vd;
  explicit HeadLayout(int64_t width) : hd(width), kd((width + 3) / 4 * 4), vd((width + 15) / 16 * 16) {}
  int64_t key_at(int64_t j, int64_t d) const { return (j / 16 * kd + d / 4 * 4) * 16 + j % 16 * 4 + d % 4; }
  int64_t value_at(int64_t j, int64_t d) const { return (j / 4 * vd + d) * 4 + j % 4; }
};

// scores[j] = sum_d q[d] k_j[d] for the keys j < len of one head, q int8 [hd]. The VNNI
// version writes scores up to len rounded up to 16.
using KeyScores = void (*)(const int8_t* keys, const int32_t* key_sum, const HeadLayout& at,
                           int64_t len, const int8_t* q, int32_t* scores);

MBZ_CPU_VERSIONS void key_scores_plain(const int8_t* keys, const int32_t*, const HeadLayout& at,
                                       int64_t len, const int8_t* q, int32_t* scores) {
  for (int64_t j = 0; j < len; ++j) {
    int32_t sum = 0;
    for (int64_t d = 0; d < at.hd; ++d) sum += int32_t(q[d]) * int32_t(keys[at.key_at(j, d)]);
    scores[j] = sum;
  }
}

// The softmax numerators of one head, e[j] = table[min((best - s_j) * mult >> kMultBits,
// kAttnLength - 1)] with best the largest score (exact.cpp's floor division by 2^kMultBits,
// as a shift), as bytes e = 256 hi + lo, zero from len to padded(len); returns their sum.
MBZ_CPU_VERSIONS int64_t attention_weights(const int32_t* scores, int64_t len, int64_t mult,
                                           const int32_t* table, uint8_t* lo, uint8_t* hi) {
  int32_t best = INT32_MIN;
  for (int64_t j = 0; j < len; ++j) best = std::max(best, scores[j]);
  int64_t total = 0;
  for (int64_t j = 0; j < len; ++j) {
    const int32_t e = table[exact::attention_index(int64_t(best) - scores[j], mult)];
    lo[j] = uint8_t(e & 255);
    hi[j] = uint8_t(e >> 8);
    total += e;
  }
  std::fill(lo + len, lo + padded(len), uint8_t{0});
  std::fill(hi + len, hi + padded(len), uint8_t{0});
  return total;
}

// The attention's weighted sum of values: num[d] = sum over keys j < len of e[j] v_j[d]
// for d < hd, with e[j] = 256 hi[j] + lo[j] < 2^(kAttnBits + 1) split into unsigned bytes.
// Every version gives the exact integer: the plain one in int32 pieces of 1024 keys (8191
// * 127 * 1024 < 2^31), the VNNI one as two byte dot products (255 * 127 * len < 2^31 for
// any cache this engine holds: kMaxKeys).
static_assert(kAttnBits + 1 <= 16, "attention weights must split into two bytes");
constexpr int64_t kMaxKeys = 65536;
using WeightedValues = void (*)(const uint8_t* lo, const uint8_t* hi, const int8_t* v,
                                const HeadLayout& at, int64_t len, int64_t* num);

MBZ_CPU_VERSIONS void weighted_values_plain(const uint8_t* lo, const uint8_t* hi, const int8_t* v,
                                            const HeadLayout& at, int64_t len, int64_t* num) {
  for (int64_t d = 0; d < at.hd; ++d) {
    int64_t sum = 0;
    for (int64_t j0 = 0; j0 < len; j0 += 1024) {
      int32_t part = 0;
      for (int64_t j = j0; j < std::min<int64_t>(len, j0 + 1024); ++j)
        part += (int32_t(hi[j]) * 256 + int32_t(lo[j])) * int32_t(v[at.value_at(j, d)]);
      sum += part;
    }
    num[d] = sum;
  }
}

#ifdef MBZ_VNNI
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// A block of 16 keys a vector (four dimensions of each), four blocks at a time while they
// last: a key's score is a lane of the sum, with no sum across lanes.
MBZ_VNNI_TARGET void key_scores_vnni(const int8_t* keys, const int32_t* key_sum,
                                     const HeadLayout& at, int64_t len, const int8_t* q,
                                     int32_t* scores) {
  const int64_t groups = at.kd / 4, block = at.kd * 16;
  std::array<uint8_t, kMaxHeadWidth> qb;  // q + 128 as unsigned bytes, then zeros up to kd
  for (int64_t d = 0; d < at.kd; ++d) qb[size_t(d)] = d < at.hd ? uint8_t(q[d]) ^ 0x80 : 0;
  int64_t j = 0;
  for (; j + 64 <= len; j += 64) {
    const int8_t* k = keys + j / 16 * block;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t g = 0; g < groups; ++g) {
      const __m512i u = _mm512_set1_epi32(word(qb.data() + 4 * g));
      a0 = _mm512_dpbusd_epi32(a0, u, _mm512_loadu_si512(k + g * kVector));
      a1 = _mm512_dpbusd_epi32(a1, u, _mm512_loadu_si512(k + block + g * kVector));
      a2 = _mm512_dpbusd_epi32(a2, u, _mm512_loadu_si512(k + 2 * block + g * kVector));
      a3 = _mm512_dpbusd_epi32(a3, u, _mm512_loadu_si512(k + 3 * block + g * kVector));
    }
    const int32_t* c = key_sum + j;
    _mm512_storeu_si512(scores + j, _mm512_sub_epi32(a0, _mm512_loadu_si512(c)));
    _mm512_storeu_si512(scores + j + 16, _mm512_sub_epi32(a1, _mm512_loadu_si512(c + 16)));
    _mm512_storeu_si512(scores + j + 32, _mm512_sub_epi32(a2, _mm512_loadu_si512(c + 32)));
    _mm512_storeu_si512(scores + j + 48, _mm512_sub_epi32(a3, _mm512_loadu_si512(c + 48)));
  }
  for (; j < len; j += 16) {
    const int8_t* k = keys + j / 16 * block;
    __m512i a0 = _mm512_setzero_si512();
    for (int64_t g = 0; g < groups; ++g)
      a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(word(qb.data() + 4 * g)),
                               _mm512_loadu_si512(k + g * kVector));
    _mm512_storeu_si512(scores + j, _mm512_sub_epi32(a0, _mm512_loadu_si512(key_sum + j)));
  }
}

// K blocks of 16 dimensions from d0: per group of four keys, their weights' four low and
// four high bytes broadcast to every lane, times four keys of 16 dimensions, one
// dimension a lane. Keys from len to the next multiple of 4 have weight 0.
template <int K>
MBZ_VNNI_TARGET inline void weighted_blocks(const uint8_t* lo, const uint8_t* hi, const int8_t* v,
                                            const HeadLayout& at, int64_t len, int64_t d0,
                                            int64_t* num) {
  __m512i low[K], high[K];
  for (int k = 0; k < K; ++k) low[k] = high[k] = _mm512_setzero_si512();
  const int64_t group = at.vd * 4;  // bytes from one group of four keys to the next
  for (int64_t j = 0; j < len; j += 4) {
    const __m512i l = _mm512_set1_epi32(word(lo + j)), h = _mm512_set1_epi32(word(hi + j));
    const int8_t* g = v + j / 4 * group + d0 * 4;
    for (int k = 0; k < K; ++k) {
      const __m512i values = _mm512_loadu_si512(g + k * kVector);
      low[k] = _mm512_dpbusd_epi32(low[k], l, values);
      high[k] = _mm512_dpbusd_epi32(high[k], h, values);
    }
  }
  alignas(64) int32_t l32[16 * K], h32[16 * K];
  for (int k = 0; k < K; ++k) {
    _mm512_store_si512(l32 + 16 * k, low[k]);
    _mm512_store_si512(h32 + 16 * k, high[k]);
  }
  for (int64_t d = d0; d < std::min(d0 + 16 * K, at.hd); ++d)
    num[d] = 256 * int64_t(h32[d - d0]) + l32[d - d0];
}

MBZ_VNNI_TARGET void weighted_values_vnni(const uint8_t* lo, const uint8_t* hi, const int8_t* v,
                                          const HeadLayout& at, int64_t len, int64_t* num) {
  int64_t d0 = 0;
  for (; d0 + 64 <= at.vd; d0 += 64) weighted_blocks<4>(lo, hi, v, at, len, d0, num);
  switch ((at.vd - d0) / 16) {
    case 3: weighted_blocks<3>(lo, hi, v, at, len, d0, num); break;
    case 2: weighted_blocks<2>(lo, hi, v, at, len, d0, num); break;
    case 1: weighted_blocks<1>(lo, hi, v, at, len, d0, num); break;
    default: break;
  }
}
#pragma GCC diagnostic pop
#endif

// The kernels in use: the vector ones where the CPU has them (use_vector_kernels).
struct Kernels {
  DotRows dot_rows;
  KeyScores key_scores;
  WeightedValues weighted_values;
};

constexpr Kernels kPlainKernels{dot_rows_plain, key_scores_plain, weighted_values_plain};
#ifdef MBZ_VNNI
constexpr Kernels kVnniKernels{dot_rows_vnni, key_scores_vnni, weighted_values_vnni};
#else
constexpr Kernels kVnniKernels = kPlainKernels;
#endif
std::atomic<const Kernels*> active_kernels{has_vnni() ? &kVnniKernels : &kPlainKernels};
const Kernels& active() { return *active_kernels.load(std::memory_order_relaxed); }

// fn(begin, end) over the rows [0, rows) of a product of `work` multiply-adds: shared out
// over the team when it is large enough.
template <class Fn>
void over_rows(CpuTeam* team, int64_t rows, int64_t work, Fn&& fn) {
  if (team && team->worth_sharing(work))
    team->run(rows, [&](unsigned, int64_t b, int64_t e) { fn(b, e); });
  else
    fn(int64_t{0}, rows);
}

// What a product's sums become, output by output (o < count from the pointers given), in
// loops the compiler vectorizes: the sum times the output's multiplier, rounded by
// 2^kMultBits, ...
MBZ_CPU_VERSIONS void scaled_out(const int32_t* sum, const int64_t* mult, int64_t count,
                                 int64_t* out) {
  for (int64_t o = 0; o < count; ++o) out[o] = round_shift(int64_t(sum[o]) * mult[o], kMultBits);
}

// ... clamped to int8 ...
MBZ_CPU_VERSIONS void int8_out(const int32_t* sum, const int64_t* mult, int64_t count, int8_t* out) {
  for (int64_t o = 0; o < count; ++o) out[o] = clamp8(round_shift(int64_t(sum[o]) * mult[o], kMultBits));
}

// ... added to the residual stream ...
MBZ_CPU_VERSIONS void residual_out(const int32_t* sum, const int64_t* mult, int64_t count,
                                   int64_t* r) {
  for (int64_t o = 0; o < count; ++o)
    r[o] = add_residual(r[o], round_shift(int64_t(sum[o]) * mult[o], kMultBits));
}

// ... or through ReLU², the ReLU before the multiplier as exact.cpp (the product's sign
// decides).
MBZ_CPU_VERSIONS void relu_squared_out(const int32_t* sum, const int64_t* mult, int64_t count,
                                       int8_t* out) {
  for (int64_t o = 0; o < count; ++o) out[o] = exact::relu_squared(sum[o], mult[o]);
}

// x [n, in] int8 through a Linear, the sums (x W^T)[s][o] exact, then
// finish(sum, mult, count, out) for each stream's outputs [o, o + count) with `out` at
// that stream's row of `y` [n, out] plus o. Blocks of 16 outputs are shared over the
// team, and each weight is read once for every two streams.
template <class T, class Finish>
void product(const CpuExactModel::Linear& l, const int8_t* x, int64_t n, T* y,
             std::vector<uint8_t>& xs, std::vector<int32_t>& sums, CpuTeam* team, Finish finish) {
  flip_inputs(l, x, n, xs);
  const int64_t pitch = 16 * l.blocks();
  sums.resize(size_t(n * pitch));
  over_rows(team, l.blocks(), n * l.out * l.in, [&](int64_t b, int64_t e) {
    active().dot_rows(l, b, e, xs.data(), n, sums.data(), pitch);
    const int64_t first = 16 * b, count = std::min(16 * e, l.out) - first;
    for (int64_t s = 0; s < n; ++s)
      finish(sums.data() + s * pitch + first, l.mult.data() + first, count, y + s * l.out + first);
  });
}

// RMSNorm of r [N, D] to int8 [N, D].
void rms_norm(const int64_t* r, int64_t n, int64_t d, const std::vector<int64_t>& gain, int8_t* a) {
  for (int64_t s = 0; s < n; ++s) {
    const int64_t* rs = r + s * d;
    int64_t sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += rs[i] * rs[i];
    const int64_t q = isqrt(sum / d + 1) << kNormBits;
    // x / q rounded half up, floor((2x + q) / 2q), for the whole row
    const int64_t den = 2 * q;
    const double inverse = 1.0 / double(den);
    for (int64_t i = 0; i < d; ++i)
      a[s * d + i] = clamp8(floor_div_by(2 * rs[i] * gain[i] + q, den, inverse));
  }
}

}  // namespace

bool use_vector_kernels(bool on) {
  active_kernels.store(on && has_vnni() ? &kVnniKernels : &kPlainKernels, std::memory_order_relaxed);
  return has_vnni();
}

CpuExactModel::CpuExactModel(const ExactModel& m)
    : config(m.config),
      global_bytes(longs(m.global_bytes)),
      global_start(longs(m.global_start)),
      global_position(longs(m.global_position)),
      local_bytes(longs(m.local_bytes)),
      local_position(longs(m.local_position)),
      global(stack_of(m.global)),
      local(stack_of(m.local)),
      global_to_local(linear_of(m.global_to_local)),
      head(linear_of(m.head)),
      attn_table(ints(m.attn_table)),
      head_table(longs(m.head_table)) {
  for (const Stack* s : {&global, &local})
    if (s->width / s->heads > kMaxHeadWidth)
      throw Error(ErrorCode::kUnsupportedFeature,
                  "exact model: attention heads wider than " + std::to_string(kMaxHeadWidth) +
                      " are not supported on the CPU");
}

CpuExactDecoder::CpuExactDecoder(const CpuExactModel& model, std::span<const uint8_t> modality,
                                 CpuTeam* team)
    : model_(model),
      team_(team && team->size() > 1 ? team : nullptr),
      modality_(modality.begin(), modality.end()),
      n_(int64_t(modality.size())) {
  // Attention scratch for the longest cache and the widest head of either stack.
  const int64_t keys = padded(std::max(model.config.context, model.config.patch));
  if (keys > kMaxKeys)
    throw Error(ErrorCode::kUnsupportedFeature, "exact model: a context of more than " +
                                                    std::to_string(kMaxKeys) +
                                                    " patches is not supported on the CPU");
  const int64_t head_width = std::max(model.global.width / model.global.heads,
                                      model.local.width / model.local.heads);
  scratch_.parts.resize(team_ ? team_->size() : 1);
  for (Scratch::Part& part : scratch_.parts) {
    part.scores.resize(size_t(keys));
    part.lo.resize(size_t(keys));
    part.hi.resize(size_t(keys));
    part.num.resize(size_t(head_width));
  }
  const Config& c = model.config;
  auto caches = [&](const CpuExactModel::Stack& s, int64_t capacity) {
    std::vector<Cache> out(s.blocks.size());
    for (Cache& cache : out) {
      cache.capacity = capacity;
      cache.pitch = padded(capacity);
      const HeadLayout layout(s.width / s.heads);
      cache.k.assign(size_t(n_ * s.heads * layout.kd * cache.pitch), 0);
      cache.v.assign(size_t(n_ * s.heads * layout.vd * cache.pitch), 0);
      cache.key_sum.assign(size_t(n_ * s.heads * cache.pitch), 0);
    }
    return out;
  };
  global_caches_ = caches(model.global, c.context);
  local_caches_ = caches(model.local, c.patch);
  patch_.assign(size_t(n_ * c.patch), 0);
  previous_.assign(size_t(n_), int32_t(kStartId));
  condition_.assign(size_t(n_ * c.patch * c.local_width), 0);
}

void CpuExactDecoder::stack_step(const CpuExactModel::Stack& stack, std::vector<Cache>& caches,
                                 std::vector<int64_t>& r, std::vector<int8_t>& out) {
  const int64_t d = stack.width, h = stack.heads, hd = d / h;
  const HeadLayout layout(hd);
  // Scratch space kept between steps: this runs once per byte.
  std::vector<int8_t>& a = scratch_.a;
  std::vector<int8_t>& qkv = scratch_.qkv;
  std::vector<int8_t>& attended = scratch_.attended;
  std::vector<int8_t>& hid = scratch_.hidden;
  std::vector<uint8_t>& flipped = scratch_.flipped;
  std::vector<int32_t>& sums = scratch_.sums;
  a.resize(size_t(n_ * d));
  qkv.resize(size_t(n_ * 3 * d));
  attended.resize(size_t(n_ * d));
  for (size_t layer = 0; layer < stack.blocks.size(); ++layer) {
    const CpuExactModel::Block& b = stack.blocks[layer];
    Cache& c = caches[layer];
    if (c.length >= c.capacity)
      throw Error(ErrorCode::kUsageBadArgument, "exact decoder: the context is full");
    rms_norm(r.data(), n_, d, b.norm1, a.data());
    product(b.qkv, a.data(), n_, qkv.data(), flipped, sums, team_, int8_out);
    const int64_t len = ++c.length, pos = len - 1, pitch = c.pitch;
    // The new key and value of every stream and head into the cache (layout: HeadLayout).
    for (int64_t s = 0; s < n_; ++s)
      for (int64_t head = 0; head < h; ++head) {
        const int64_t at = (s * h + head) * pitch;
        const int8_t* key = qkv.data() + s * 3 * d + d + head * hd;  // [3, H, hd]: q, k, v
        const int8_t* value = key + d;
        int8_t* keys = c.k.data() + at * layout.kd;
        int8_t* values = c.v.data() + at * layout.vd;
        int32_t sum = 0;
        for (int64_t i = 0; i < hd; ++i) {
          keys[layout.key_at(pos, i)] = key[i];
          values[layout.value_at(pos, i)] = value[i];
          sum += key[i];
        }
        c.key_sum[size_t(at + pos)] = 128 * sum;
      }
    // Every stream's heads, shared out over the team.
    auto heads = [&](unsigned part, int64_t first, int64_t last) {
      auto& [scores, lo, hi, num] = scratch_.parts[part];
      for (int64_t sh = first; sh < last; ++sh) {
        const int64_t s = sh / h, head = sh % h, at = sh * pitch;
        const int8_t* q = qkv.data() + s * 3 * d + head * hd;
        active().key_scores(c.k.data() + at * layout.kd, c.key_sum.data() + at, layout, len, q,
                          scores.data());
        const int64_t total = attention_weights(scores.data(), len, b.score_mult,
                                                model_.attn_table.data(), lo.data(), hi.data());
        active().weighted_values(lo.data(), hi.data(), c.v.data() + at * layout.vd, layout, len,
                               num.data());
        // num * value_mult / (total << kMultBits) rounded half up: floor((2a + t) / 2t)
        const int64_t den = 2 * (total << kMultBits);
        const double inverse = 1.0 / double(den);
        for (int64_t i = 0; i < hd; ++i)
          attended[s * d + head * hd + i] =
              clamp8(floor_div_by(2 * num[i] * b.value_mult + den / 2, den, inverse));
      }
    };
    if (team_ && team_->worth_sharing(2 * len * d * n_))
      team_->run(n_ * h, heads);
    else
      heads(0, 0, n_ * h);
    product(b.attn_out, attended.data(), n_, r.data(), flipped, sums, team_, residual_out);
    rms_norm(r.data(), n_, d, b.norm2, a.data());
    hid.resize(size_t(n_ * b.up.out));
    product(b.up, a.data(), n_, hid.data(), flipped, sums, team_, relu_squared_out);
    product(b.down, hid.data(), n_, r.data(), flipped, sums, team_, residual_out);
  }
  out.resize(size_t(n_ * d));
  rms_norm(r.data(), n_, d, stack.norm, out.data());
}

void CpuExactDecoder::check_next(size_t out_size) const {
  const Config& c = model_.config;
  if (pending_)
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: next_weights() twice without push()");
  if (position_ >= c.context_bytes())
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: streams end at the context, " +
                                                  std::to_string(c.context_bytes()) + " bytes");
  if (out_size != size_t(n_ * kByteValues))
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: output must hold N x 256 weights");
}

void CpuExactDecoder::next_weights(std::span<int64_t> out) {
  const Config& c = model_.config;
  const int64_t p = c.patch, dg = c.global_width, dl = c.local_width, piece = dg / p;
  const int64_t j = position_ % p, k = position_ / p;
  check_next(out.size());
  std::vector<int64_t>& r = scratch_.residual;
  std::vector<int8_t>& y = scratch_.stack_out;
  if (j == 0) {
    r.resize(size_t(n_ * dg));
    for (int64_t s = 0; s < n_; ++s)
      for (int64_t i = 0; i < dg; ++i) {
        const int64_t in =
            k == 0 ? model_.global_start[size_t(modality_[s] * dg + i)]
                   : model_.global_bytes[size_t(patch_[s * p + i / piece] * piece + i % piece)];
        r[s * dg + i] = add_residual(in, model_.global_position[size_t(k * dg + i)]);
      }
    stack_step(model_.global, global_caches_, r, y);
    // y [N, P, piece] as N * P inputs of one piece each, to [N, P, Dl]
    product(model_.global_to_local, y.data(), n_ * p, condition_.data(), scratch_.flipped,
            scratch_.sums, team_, scaled_out);
    for (Cache& cache : local_caches_) cache.length = 0;
  }
  r.resize(size_t(n_ * dl));
  for (int64_t s = 0; s < n_; ++s)
    for (int64_t i = 0; i < dl; ++i)
      r[s * dl + i] = add_residual(
          add_residual(condition_[size_t((s * p + j) * dl + i)],
                       model_.local_bytes[size_t(previous_[s] * dl + i)]),
          model_.local_position[size_t(j * dl + i)]);
  stack_step(model_.local, local_caches_, r, y);
  std::vector<int64_t>& z = scratch_.logits;
  z.resize(size_t(n_ * kByteValues));
  product(model_.head, y.data(), n_, z.data(), scratch_.flipped, scratch_.sums, team_, scaled_out);
  for (int64_t s = 0; s < n_; ++s) {
    int64_t* zs = z.data() + s * kByteValues;
    int64_t best = INT64_MIN;
    for (int64_t o = 0; o < kByteValues; ++o) best = std::max(best, zs[o]);
    for (int64_t o = 0; o < kByteValues; ++o)
      out[size_t(s * kByteValues + o)] =
          model_.head_table[size_t(std::min<int64_t>(best - zs[o], kHeadLength - 1))];
  }
  pending_ = true;
}

void CpuExactDecoder::push(std::span<const uint8_t> bytes) {
  if (!pending_)
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: push() without next_weights()");
  const int64_t p = model_.config.patch, j = position_ % p;
  for (int64_t s = 0; s < n_; ++s) {
    patch_[size_t(s * p + j)] = bytes[size_t(s)];
    previous_[size_t(s)] = bytes[size_t(s)];
  }
  pending_ = false;
  ++position_;
  if (position_ % p == 0) std::fill(previous_.begin(), previous_.end(), int32_t(kStartId));
}

CpuBatchDecoder::CpuBatchDecoder(const CpuExactModel& model, std::span<const uint8_t> modality,
                                 CpuTeam* team)
    : team_(team) {
  const int64_t n = int64_t(modality.size());
  const int64_t groups = team && n >= 2 ? std::min<int64_t>(team->size(), n) : 1;
  for (int64_t g = 0; g <= groups; ++g) first_.push_back(g * n / groups);
  for (int64_t g = 0; g < groups; ++g)
    groups_.push_back(std::make_unique<CpuExactDecoder>(
        model, modality.subspan(size_t(first_[g]), size_t(first_[g + 1] - first_[g])),
        groups == 1 ? team : nullptr));
}

void CpuBatchDecoder::next_weights(std::span<int64_t> out) {
  // The groups step together: what one would refuse, all would; refused here, before any
  // of them moves.
  if (out.size() != size_t(first_.back() * kByteValues))
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: output must hold N x 256 weights");
  for (size_t g = 0; g < groups_.size(); ++g)
    groups_[g]->check_next(size_t((first_[g + 1] - first_[g]) * kByteValues));
  auto run = [&](unsigned, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g)
      groups_[size_t(g)]->next_weights(out.subspan(size_t(first_[g] * kByteValues),
                                                   size_t((first_[g + 1] - first_[g]) * kByteValues)));
  };
  if (groups_.size() == 1)
    run(0, 0, 1);
  else
    team_->run(int64_t(groups_.size()), run);
}

void CpuBatchDecoder::push(std::span<const uint8_t> bytes) {
  if (bytes.size() != size_t(first_.back()))
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: push() takes a byte per stream");
  for (size_t g = 0; g < groups_.size(); ++g)
    groups_[g]->push(bytes.subspan(size_t(first_[g]), size_t(first_[g + 1] - first_[g])));
}

}  // namespace mbz::model

// ExactDecoder's arithmetic (model/EXACT.md) in plain loops. Names follow exact.cpp.
#include "model/exact_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

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
  CpuExactModel::Linear out;
  out.out = l.weight.size(0);
  out.in = l.weight.size(1);
  const torch::Tensor w = l.weight.to(torch::kCPU).to(torch::kChar).contiguous();
  out.weight.assign(w.data_ptr<int8_t>(), w.data_ptr<int8_t>() + w.numel());
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

// floor(a / 2^bits + 1/2), as round_shift in exact.cpp (>> of a negative is floor in C++20).
inline int64_t round_shift(int64_t a, int bits) {
  return (a + (int64_t(1) << (bits - 1))) >> bits;
}

// floor(num / den) for den > 0, given inverse = 1.0 / den: the estimate through the
// reciprocal, then integer steps until it is the floor, so exact for any num (a 64-bit
// division is tens of cycles, and these run for every element of a row).
inline int64_t floor_div_by(int64_t num, int64_t den, double inverse) {
  int64_t f = static_cast<int64_t>(std::floor(double(num) * inverse));
  while (f * den > num) --f;
  while ((f + 1) * den <= num) ++f;
  return f;
}

inline int8_t clamp8(int64_t a) {
  return static_cast<int8_t>(std::clamp<int64_t>(a, -127, 127));
}

inline int64_t add_residual(int64_t r, int64_t delta) {
  return std::clamp<int64_t>(r + delta, -kResidualMax, kResidualMax);
}

int64_t isqrt(int64_t n) {
  int64_t q = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while (q * q > n) --q;
  while ((q + 1) * (q + 1) <= n) ++q;
  return q;
}

// sum a[i] b[i] of int8 vectors (|sum| < 2^31 for n <= 2^17). Compiled for AVX-512, AVX2
// and the baseline and picked at run time: integer sums are the same in every version.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MBZ_CPU_VERSIONS __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#define MBZ_VNNI 1
#else
#define MBZ_CPU_VERSIONS
#endif
MBZ_CPU_VERSIONS int32_t dot8(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += int32_t(a[i]) * int32_t(b[i]);
  return sum;
}

// out[o] = sum_i w[o][i] x[i] for o < rows: one stream through a Linear's int8 weights.
void dot_rows_plain(const int8_t* w, int64_t rows, int64_t in, const int8_t* x, int32_t* out) {
  for (int64_t o = 0; o < rows; ++o) out[o] = dot8(w + o * in, x, in);
}

#ifdef MBZ_VNNI
// GCC 12's _mm512_set1_epi8 and _mm512_maskz_loadu_epi8 trip -Wuninitialized on their own
// internal placeholder (a known false positive in its headers).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define MBZ_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
// 64 bytes of p from i: a whole load below `whole`, else the masked tail (zeros beyond).
MBZ_VNNI_TARGET inline __m512i load64(const int8_t* p, int64_t i, int64_t whole, __mmask64 tail) {
  return i < whole ? _mm512_loadu_si512(p + i) : _mm512_maskz_loadu_epi8(tail, p + i);
}

// dot_rows with AVX-512 VNNI, whose vpdpbusd multiplies unsigned by signed bytes: with
// w' = w + 128 (w XOR 0x80 read as unsigned), sum w x = sum w' x - 128 sum x, and sum x is
// one more vpdpbusd against ones, once a call. No step saturates (vpdpbusd wraps, and
// every partial sum stays below 2^31), so the result is the plain loop's to the bit. Four
// rows at a time against one load of x. A masked-off weight byte reads as 0 ^ 0x80 = 128
// but meets x's 0 there.
MBZ_VNNI_TARGET void dot_rows_vnni(const int8_t* w, int64_t rows, int64_t in, const int8_t* x,
                                   int32_t* out) {
  const __m512i flip = _mm512_set1_epi8(char(0x80)), ones = _mm512_set1_epi8(1);
  const int64_t whole = in / 64 * 64;
  const __mmask64 tail = (uint64_t(1) << (in - whole)) - 1;  // in - whole < 64
  __m512i xsum = _mm512_setzero_si512();
  for (int64_t i = 0; i < in; i += 64)
    xsum = _mm512_dpbusd_epi32(xsum, ones, load64(x, i, whole, tail));
  const int32_t correction = 128 * _mm512_reduce_add_epi32(xsum);
  int64_t o = 0;
  for (; o + 4 <= rows; o += 4) {
    const int8_t* r = w + o * in;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i < in; i += 64) {
      const __m512i vx = load64(x, i, whole, tail);
      s0 = _mm512_dpbusd_epi32(s0, _mm512_xor_si512(load64(r, i, whole, tail), flip), vx);
      s1 = _mm512_dpbusd_epi32(s1, _mm512_xor_si512(load64(r + in, i, whole, tail), flip), vx);
      s2 = _mm512_dpbusd_epi32(s2, _mm512_xor_si512(load64(r + 2 * in, i, whole, tail), flip), vx);
      s3 = _mm512_dpbusd_epi32(s3, _mm512_xor_si512(load64(r + 3 * in, i, whole, tail), flip), vx);
    }
    // The four sums at once: within each 128-bit lane, unpacking pairs and adding leaves
    // (s0, s1, s2, s3) partial sums; then the four lanes are added.
    const __m512i x01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s0, s1), _mm512_unpackhi_epi32(s0, s1));
    const __m512i x23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3), _mm512_unpackhi_epi32(s2, s3));
    const __m512i y = _mm512_add_epi32(_mm512_unpacklo_epi64(x01, x23), _mm512_unpackhi_epi64(x01, x23));
    const __m256i z = _mm256_add_epi32(_mm512_castsi512_si256(y), _mm512_extracti64x4_epi64(y, 1));
    const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(z), _mm256_extracti128_si256(z, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + o),
                     _mm_sub_epi32(sums, _mm_set1_epi32(correction)));
  }
  for (; o < rows; ++o) {
    __m512i s0 = _mm512_setzero_si512();
    for (int64_t i = 0; i < in; i += 64)
      s0 = _mm512_dpbusd_epi32(s0, _mm512_xor_si512(load64(w + o * in, i, whole, tail), flip),
                               load64(x, i, whole, tail));
    out[o] = _mm512_reduce_add_epi32(s0) - correction;
  }
}
#pragma GCC diagnostic pop
#endif

using DotRows = void (*)(const int8_t*, int64_t, int64_t, const int8_t*, int32_t*);
DotRows pick_dot_rows() {
#ifdef MBZ_VNNI
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
    return dot_rows_vnni;
#endif
  return dot_rows_plain;
}
const DotRows dot_rows = pick_dot_rows();

// The softmax numerators of one head, e[j] = table[min((best - s_j) * mult >> kMultBits,
// kAttnLength - 1)] with best the largest score (exact.cpp's floor division by 2^kMultBits,
// as a shift), as bytes e = 256 hi + lo; returns their sum.
MBZ_CPU_VERSIONS int64_t attention_weights(const int32_t* scores, int64_t len, int64_t mult,
                                           const int32_t* table, uint8_t* lo, uint8_t* hi) {
  int32_t best = INT32_MIN;
  for (int64_t j = 0; j < len; ++j) best = std::max(best, scores[j]);
  int64_t total = 0;
  for (int64_t j = 0; j < len; ++j) {
    const int64_t delta = std::min<int64_t>(int64_t(best) - scores[j], int64_t(1) << 31);
    const int32_t e = table[std::min<int64_t>((delta * mult) >> kMultBits, kAttnLength - 1)];
    lo[j] = uint8_t(e & 255);
    hi[j] = uint8_t(e >> 8);
    total += e;
  }
  return total;
}

// The attention's weighted sum of values: num[i] = sum over keys j < len of e[j] v[i][j]
// for i < hd, with the values transposed (row i, one per dimension, at v + i * pitch) and
// e[j] = 256 hi[j] + lo[j] < 2^(kAttnBits + 1) split into unsigned bytes. Every version
// gives the exact integer: the plain one in int32 pieces of 1024 keys (8191 * 127 * 1024
// < 2^31), the VNNI one as two byte dot products per row (255 * 127 * len < 2^31 for any
// cache this engine holds).
static_assert(kAttnBits + 1 <= 16, "attention weights must split into two bytes");
using WeightedValues = void (*)(const uint8_t* lo, const uint8_t* hi, const int8_t* v, int64_t hd,
                                int64_t len, int64_t pitch, int64_t* num);

MBZ_CPU_VERSIONS void weighted_values_plain(const uint8_t* lo, const uint8_t* hi, const int8_t* v,
                                            int64_t hd, int64_t len, int64_t pitch, int64_t* num) {
  for (int64_t i = 0; i < hd; ++i) {
    const int8_t* row = v + i * pitch;
    int64_t sum = 0;
    for (int64_t j0 = 0; j0 < len; j0 += 1024) {
      int32_t part = 0;
      for (int64_t j = j0; j < std::min<int64_t>(len, j0 + 1024); ++j)
        part += (int32_t(hi[j]) * 256 + int32_t(lo[j])) * int32_t(row[j]);
      sum += part;
    }
    num[i] = sum;
  }
}

#ifdef MBZ_VNNI
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// vpdpbusd multiplies the weights' unsigned bytes by the values' signed ones, as it is.
MBZ_VNNI_TARGET void weighted_values_vnni(const uint8_t* lo, const uint8_t* hi, const int8_t* v,
                                          int64_t hd, int64_t len, int64_t pitch, int64_t* num) {
  const int64_t whole = len / 64 * 64;
  const __mmask64 tail = (uint64_t(1) << (len - whole)) - 1;  // len - whole < 64
  const int8_t* l = reinterpret_cast<const int8_t*>(lo);
  const int8_t* h = reinterpret_cast<const int8_t*>(hi);
  for (int64_t i = 0; i < hd; ++i) {
    const int8_t* row = v + i * pitch;
    __m512i low = _mm512_setzero_si512(), high = low;
    for (int64_t j = 0; j < len; j += 64) {
      const __m512i values = load64(row, j, whole, tail);
      low = _mm512_dpbusd_epi32(low, load64(l, j, whole, tail), values);
      high = _mm512_dpbusd_epi32(high, load64(h, j, whole, tail), values);
    }
    num[i] = 256 * int64_t(_mm512_reduce_add_epi32(high)) + _mm512_reduce_add_epi32(low);
  }
}
#pragma GCC diagnostic pop
#endif

WeightedValues pick_weighted_values() {
#ifdef MBZ_VNNI
  if (dot_rows == dot_rows_vnni) return weighted_values_vnni;
#endif
  return weighted_values_plain;
}
const WeightedValues weighted_values = pick_weighted_values();

// fn(begin, end) over the rows [0, rows) of a product of rows x in multiply-adds: shared
// out over the team when it is large enough.
template <class Fn>
void over_rows(CpuTeam* team, int64_t rows, int64_t in, Fn&& fn) {
  if (team && team->worth_sharing(rows * in))
    team->run(rows, [&](unsigned, int64_t b, int64_t e) { fn(b, e); });
  else
    fn(int64_t{0}, rows);
}

// x [N, in] int8 -> acc [N, out] = (x W^T)[n][o] * mult[o], exactly.
void linear(const CpuExactModel::Linear& l, const int8_t* x, int64_t n, int64_t* acc,
            std::vector<int32_t>& sums, CpuTeam* team) {
  sums.resize(size_t(l.out));
  for (int64_t s = 0; s < n; ++s)
    over_rows(team, l.out, l.in, [&](int64_t b, int64_t e) {
      dot_rows(l.weight.data() + b * l.in, e - b, l.in, x + s * l.in, sums.data() + b);
      for (int64_t o = b; o < e; ++o) acc[s * l.out + o] = int64_t(sums[size_t(o)]) * l.mult[o];
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
      head_table(longs(m.head_table)) {}

CpuExactDecoder::CpuExactDecoder(const CpuExactModel& model, std::span<const uint8_t> modality,
                                 CpuTeam* team)
    : model_(model),
      team_(team && team->size() > 1 ? team : nullptr),
      modality_(modality.begin(), modality.end()),
      n_(int64_t(modality.size())) {
  // Attention scratch for the longest cache and the widest head of either stack.
  const int64_t keys = std::max(model.config.context, model.config.patch);
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
      cache.k.assign(size_t(n_ * s.width * capacity), 0);
      cache.v.assign(cache.k.size(), 0);
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
  // Scratch space kept between steps: this runs once per byte.
  auto& [a, qkv, attended, hid, acc, sums, parts] = scratch_;
  a.resize(size_t(n_ * d));
  qkv.resize(size_t(n_ * 3 * d));
  attended.resize(size_t(n_ * d));
  for (size_t layer = 0; layer < stack.blocks.size(); ++layer) {
    const CpuExactModel::Block& b = stack.blocks[layer];
    Cache& c = caches[layer];
    if (c.length >= c.capacity)
      throw Error(ErrorCode::kUsageBadArgument, "exact decoder: the context is full");
    rms_norm(r.data(), n_, d, b.norm1, a.data());
    acc.resize(size_t(n_ * 3 * d));
    linear(b.qkv, a.data(), n_, acc.data(), sums, team_);
    for (size_t i = 0; i < acc.size(); ++i) qkv[i] = clamp8(round_shift(acc[i], kMultBits));
    const int64_t len = ++c.length, pos = len - 1;
    for (int64_t s = 0; s < n_; ++s) {
      const int8_t* q = qkv.data() + s * 3 * d;  // [3, H, hd]: q, k, v
      for (int64_t head = 0; head < h; ++head) {
        int8_t* keys = c.k.data() + ((s * h + head) * c.capacity) * hd;
        int8_t* values = c.v.data() + ((s * h + head) * c.capacity) * hd;  // transposed
        std::copy_n(q + d + head * hd, hd, keys + pos * hd);
        for (int64_t i = 0; i < hd; ++i) values[i * c.capacity + pos] = q[2 * d + head * hd + i];
      }
      auto heads = [&](unsigned part, int64_t first, int64_t last) {
        auto& [scores, lo, hi, num] = scratch_.parts[part];
        for (int64_t head = first; head < last; ++head) {
          const int8_t* keys = c.k.data() + ((s * h + head) * c.capacity) * hd;
          const int8_t* values = c.v.data() + ((s * h + head) * c.capacity) * hd;
          dot_rows(keys, len, hd, q + head * hd, scores.data());  // q . k_j for every key
          const int64_t total = attention_weights(scores.data(), len, b.score_mult,
                                                  model_.attn_table.data(), lo.data(), hi.data());
          weighted_values(lo.data(), hi.data(), values, hd, len, c.capacity, num.data());
          // num * value_mult / (total << kMultBits) rounded half up: floor((2a + t) / 2t)
          const int64_t den = 2 * (total << kMultBits);
          const double inverse = 1.0 / double(den);
          for (int64_t i = 0; i < hd; ++i)
            attended[s * d + head * hd + i] =
                clamp8(floor_div_by(2 * num[i] * b.value_mult + den / 2, den, inverse));
        }
      };
      if (team_ && team_->worth_sharing(2 * len * d))
        team_->run(h, heads);
      else
        heads(0, 0, h);
    }
    acc.resize(size_t(n_ * d));
    linear(b.attn_out, attended.data(), n_, acc.data(), sums, team_);
    for (size_t i = 0; i < acc.size(); ++i) r[i] = add_residual(r[i], round_shift(acc[i], kMultBits));
    rms_norm(r.data(), n_, d, b.norm2, a.data());
    const int64_t hidden = b.up.out;
    acc.resize(size_t(n_ * hidden));
    // ReLU before the multiplier, as exact.cpp: the product's sign decides.
    hid.resize(size_t(n_ * hidden));
    {
      const CpuExactModel::Linear& up = b.up;
      sums.resize(size_t(up.out));
      for (int64_t s = 0; s < n_; ++s)
        over_rows(team_, up.out, up.in, [&](int64_t first, int64_t last) {
          dot_rows(up.weight.data() + first * up.in, last - first, up.in, a.data() + s * d,
                   sums.data() + first);
          for (int64_t o = first; o < last; ++o) {
          const int32_t sum = sums[size_t(o)];
          const int64_t t = std::min<int64_t>(
              round_shift(std::max<int64_t>(sum, 0) * up.mult[o], kMultBits),
              int64_t(1) << (kReluBits + 4));
          hid[s * hidden + o] =
              static_cast<int8_t>(std::min<int64_t>(round_shift(t * t, 2 * kReluBits), 127));
          }
        });
    }
    acc.resize(size_t(n_ * d));
    linear(b.down, hid.data(), n_, acc.data(), sums, team_);
    for (size_t i = 0; i < acc.size(); ++i) r[i] = add_residual(r[i], round_shift(acc[i], kMultBits));
  }
  out.resize(size_t(n_ * d));
  rms_norm(r.data(), n_, d, stack.norm, out.data());
}

void CpuExactDecoder::next_weights(std::span<int64_t> out) {
  const Config& c = model_.config;
  const int64_t p = c.patch, dg = c.global_width, dl = c.local_width, piece = dg / p;
  const int64_t j = position_ % p, k = position_ / p;
  if (pending_)
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: next_weights() twice without push()");
  if (position_ >= c.context_bytes())
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: streams end at the context, " +
                                                  std::to_string(c.context_bytes()) + " bytes");
  if (out.size() != size_t(n_ * kByteValues))
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: output must hold N x 256 weights");
  if (j == 0) {
    std::vector<int64_t> r(size_t(n_ * dg));
    for (int64_t s = 0; s < n_; ++s)
      for (int64_t i = 0; i < dg; ++i) {
        const int64_t in =
            k == 0 ? model_.global_start[size_t(modality_[s] * dg + i)]
                   : model_.global_bytes[size_t(patch_[s * p + i / piece] * piece + i % piece)];
        r[s * dg + i] = add_residual(in, model_.global_position[size_t(k * dg + i)]);
      }
    std::vector<int8_t> g;
    stack_step(model_.global, global_caches_, r, g);
    std::vector<int64_t> acc(static_cast<size_t>(dl));
    for (int64_t s = 0; s < n_; ++s)
      for (int64_t slot = 0; slot < p; ++slot) {
        linear(model_.global_to_local, g.data() + s * dg + slot * piece, 1, acc.data(),
               scratch_.sums, nullptr);
        for (int64_t i = 0; i < dl; ++i)
          condition_[size_t((s * p + slot) * dl + i)] = round_shift(acc[i], kMultBits);
      }
    for (Cache& cache : local_caches_) cache.length = 0;
  }
  std::vector<int64_t> r(size_t(n_ * dl));
  for (int64_t s = 0; s < n_; ++s)
    for (int64_t i = 0; i < dl; ++i)
      r[s * dl + i] = add_residual(
          add_residual(condition_[size_t((s * p + j) * dl + i)],
                       model_.local_bytes[size_t(previous_[s] * dl + i)]),
          model_.local_position[size_t(j * dl + i)]);
  std::vector<int8_t> h;
  stack_step(model_.local, local_caches_, r, h);
  std::vector<int64_t> z(size_t(n_ * kByteValues));
  linear(model_.head, h.data(), n_, z.data(), scratch_.sums, team_);
  for (int64_t s = 0; s < n_; ++s) {
    int64_t* zs = z.data() + s * kByteValues;
    int64_t best = INT64_MIN;
    for (int64_t o = 0; o < kByteValues; ++o) best = std::max(best, zs[o] = round_shift(zs[o], kMultBits));
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

}  // namespace mbz::model

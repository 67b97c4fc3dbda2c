// The exact decoder's steps as CUDA kernels (see exact_cuda.h). Every value is an integer
// computed as model/EXACT.md says, with the scalar steps of exact_int.h, so the results
// are those of the CPU decoder whatever the launch shape or the order the threads run in:
// sums of integers are the same in any order.
//
// A layer is three kernels: the norm and the qkv product of R rows a block (the keys and
// values into the caches), the attention of one row and head a block (a warp where the
// caches hold at most kSmallCapacity positions), then the attention's output product, the norm and the
// MLP of R rows a block. A block's warps share its rows' row-wise work (norms, tables),
// and every weight it reads serves all R rows: R = 8 for the decoder's steps (a row a
// stream: more blocks), 32 for whole passes (a quarter of the weight reads; their
// products run on the tensor cores, int8 mma with int32 sums, exact too).
#include "model/exact_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <map>
#include <mutex>
#include <type_traits>

#include "codec/range_coder.h"
#include "model/exact_int.h"

namespace mbz::model::cuda {
namespace {

using exact::add_residual;
using exact::clamp8;
using exact::round_shift;

static_assert(kConditionMax >= 2 * kResidualMax, "a clamped condition must clamp as the value");

__device__ __forceinline__ int64_t clamp_to(int64_t a, int64_t most) {
  return a < -most ? -most : a > most ? most : a;
}

constexpr int kThreads = 256;  // threads of a block of rows
constexpr int kWarps = kThreads / 32;
constexpr int kStepRows = 8;      // R of the decoder's steps: more blocks
constexpr int kPassRows = 32;     // R of passes: fewer weight reads, two tensor-core tiles
constexpr int kWideRows = 65536;  // steps of this many rows and more take kPassRows
constexpr int kSmallCapacity = 16;  // caches of at most this many take attention_small_kernel
constexpr int kAttnThreads = 128;  // threads of an attention block (one stream, one head)
constexpr int kTileQueries = 16;   // a pass's attention: queries of one cache a block
constexpr unsigned kAll = 0xffffffffu;

// What the kernels of a layer need of a Stack.
struct Step {
  int width, heads, capacity, rows, rows_per_cache;
  const int64_t* position;
  int32_t* residual;
  int8_t* query;
  int8_t* attended;
  const int32_t* attn_table;
};

Step step_of(const Stack& s) {
  return {s.width,    s.heads,    s.capacity, s.rows,     s.rows_per_cache,
          s.position, s.residual, s.query,    s.attended, s.attn_table};
}

int hidden_of(const Stack& s) { return s.layers > 0 ? s.layer[0].up.out : 0; }

// Rows of int8 activations in shared memory are 16 bytes longer than their width: still
// 16-byte aligned, and a tensor-core tile's eight rows then fall in different banks.
__host__ __device__ constexpr int pitch_of(int width) { return width + 16; }

// Shared memory of the kernels, in bytes.
size_t qkv_bytes(const Stack& s, int rows) { return size_t(rows) * size_t(pitch_of(s.width) + 8); }
size_t mlp_bytes(const Stack& s, int rows) {
  return size_t(rows) * size_t(pitch_of(s.width) + pitch_of(hidden_of(s)));
}
size_t attention_bytes(const Stack& s) {
  const size_t keys = (size_t(s.capacity) + 3) / 4 * 4;  // int32 weights, 16-byte aligned
  return 4 * keys + 8 * 4 * size_t(kAttnThreads) + 8 * 33;
}
size_t attention_tile_bytes(const Stack& s) {
  const size_t keys = (size_t(s.capacity) + 3) / 4 * 4;
  return kTileQueries * (4 * keys + size_t(s.width / s.heads) + 8);
}
size_t head_bytes(const Stack& s, int rows) {
  return size_t(rows) * (size_t(pitch_of(s.width)) + 8 * 256);
}

__device__ long long warp_sum(long long v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kAll, v, off);
  return v;
}
__device__ unsigned long long warp_sum(unsigned long long v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kAll, v, off);
  return v;
}
__device__ long long warp_max(long long v) {
  for (int off = 16; off > 0; off >>= 1) v = max(v, __shfl_xor_sync(kAll, v, off));
  return v;
}

// The sum (or the largest) of every thread's v in the block; scratch holds 33 values.
template <bool kMax>
__device__ long long block_reduce(long long v, long long* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = kMax ? warp_max(v) : warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : (kMax ? LLONG_MIN : 0);
    v = kMax ? warp_max(v) : warp_sum(v);
    if (lane == 0) scratch[32] = v;
  }
  __syncthreads();
  v = scratch[32];
  __syncthreads();  // scratch is free again
  return v;
}

// Whether passes take their products to the tensor cores (on unless MBZ_CUDA_TENSOR_CORES=0
// in the environment), set once a device (most_shared). Both give the same integers: the
// tests run both (session 15: the mma path passes on an H200 and takes the global pass
// from 1.46 s to 1.26 s of a 16 MiB compression).
__constant__ int tensor_cores = 1;

__device__ __forceinline__ void mma_16x8x32(int (&c)[4], unsigned a0, unsigned a1, unsigned a2,
                                            unsigned a3, unsigned b0, unsigned b1) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

__device__ __forceinline__ unsigned word_at(const int8_t* p) {
  return *reinterpret_cast<const unsigned*>(p);
}

// The product on the tensor cores, for R a multiple of 16, in a multiple of 32 and out of
// 8: a warp computes tiles of R rows by 8 outputs, kNTiles such columns of tiles at once, 32
// inputs an mma (PTX's m16n8k32 fragments: lane = 4 group + t; A rows group and group + 8,
// inputs 4t.. and 16 + 4t..; B inputs 4t.. and 16 + 4t.. of output group, the words of
// Linear::weight as they are; C rows group and group + 8, outputs 2t and 2t + 1). Each
// weight fragment serves R / 16 tiles, each row fragment kNTiles.
constexpr int kNTiles = 2;
template <int R, class Finish>
__device__ void product_mma(const Linear& l, const int8_t* x, int pitch, Finish finish) {
  constexpr int kTiles = R / 16;
  const int lane = threadIdx.x & 31, group = lane >> 2, t = lane & 3, steps = l.in / 32;
  for (int n0 = int(threadIdx.x >> 5) * 8 * kNTiles; n0 < l.out; n0 += kWarps * 8 * kNTiles) {
    int c[kNTiles][kTiles][4] = {};
    bool live[kNTiles];
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) live[n] = n0 + 8 * n < l.out;  // the same for the warp
    const int32_t* w = l.weight + n0 + group;
#pragma unroll 2
    for (int k = 0; k < steps; ++k) {
      unsigned a[kTiles][4];
#pragma unroll
      for (int tile = 0; tile < kTiles; ++tile) {
        const int8_t* top = x + (16 * tile + group) * pitch + 32 * k + 4 * t;
        const int8_t* bottom = top + 8 * pitch;
        a[tile][0] = word_at(top), a[tile][1] = word_at(bottom);
        a[tile][2] = word_at(top + 16), a[tile][3] = word_at(bottom + 16);
      }
#pragma unroll
      for (int n = 0; n < kNTiles; ++n) {
        if (!live[n]) continue;
        const unsigned b0 = __ldg(w + size_t(8 * k + t) * l.out + 8 * n);
        const unsigned b1 = __ldg(w + size_t(8 * k + 4 + t) * l.out + 8 * n);
#pragma unroll
        for (int tile = 0; tile < kTiles; ++tile)
          mma_16x8x32(c[n][tile], a[tile][0], a[tile][1], a[tile][2], a[tile][3], b0, b1);
      }
    }
#pragma unroll
    for (int n = 0; n < kNTiles; ++n) {
      if (!live[n]) continue;
#pragma unroll
      for (int tile = 0; tile < kTiles; ++tile) {
        const int g = 16 * tile + group, o = n0 + 8 * n + 2 * t;
        finish(g, o, c[n][tile][0]);
        finish(g, o + 1, c[n][tile][1]);
        finish(g + 8, o, c[n][tile][2]);
        finish(g + 8, o + 1, c[n][tile][3]);
      }
    }
  }
}

// x (R rows of `pitch` bytes in shared memory, 16-byte aligned) through l: for each output
// o and each row g, finish(g, o, exact int32 sum), by exactly one thread. On the tensor
// cores where the shapes allow, else as dp4a: a thread an output, four inputs an
// instruction, each weight word serving the R rows.
template <int R, class Finish>
__device__ void product(const Linear& l, const int8_t* x, int pitch, Finish finish) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  if constexpr (R % 16 == 0) {
    if (tensor_cores && l.in % 32 == 0 && l.out % 8 == 0) return product_mma<R>(l, x, pitch, finish);
  }
#endif
  const int words = l.in / 4;
  for (int o = threadIdx.x; o < l.out; o += blockDim.x) {
    int acc[R];
#pragma unroll
    for (int g = 0; g < R; ++g) acc[g] = 0;
    const int32_t* w = l.weight + o;
#pragma unroll 2
    for (int i = 0; i < words; i += 4) {
      const int w0 = __ldg(w + size_t(i) * l.out), w1 = __ldg(w + size_t(i + 1) * l.out);
      const int w2 = __ldg(w + size_t(i + 2) * l.out), w3 = __ldg(w + size_t(i + 3) * l.out);
#pragma unroll
      for (int g = 0; g < R; ++g) {
        const int4 v = *reinterpret_cast<const int4*>(x + g * pitch + 4 * i);
        acc[g] = __dp4a(w0, v.x, acc[g]);
        acc[g] = __dp4a(w1, v.y, acc[g]);
        acc[g] = __dp4a(w2, v.z, acc[g]);
        acc[g] = __dp4a(w3, v.w, acc[g]);
      }
    }
#pragma unroll
    for (int g = 0; g < R; ++g) finish(g, o, acc[g]);
  }
}

// clamp8(floor_div(num, den)) for 0 < den < 2^61, with `inverse` about 1 / den: the
// double quotient (a 64-bit integer division is a long routine on the GPU), then integer
// steps that make its floor exact whatever the rounding was, as in isqrt. The remainder
// num - q den is taken modulo 2^64, which is exact: q is within one or two of the floor
// (the quotient is at most 130 here, its double error a few units of 2^-53 of that), so
// the remainder is below 4 den < 2^63 in size.
__device__ __forceinline__ int8_t clamp8_div(int64_t num, int64_t den, double inverse) {
  const double x = double(num) * inverse;
  if (x >= 130.0) return 127;
  if (x <= -130.0) return -127;
  int64_t q = int64_t(floor(x));
  int64_t r = int64_t(uint64_t(num) - uint64_t(q) * uint64_t(den));
  while (r < 0) --q, r += den;
  while (r >= den) ++q, r -= den;
  return clamp8(q);
}

// RMSNorm of one row r [d] to int8 a [d], by one warp.
__device__ void norm_row(const int32_t* r, const int64_t* gain, int d, int8_t* a) {
  const int lane = threadIdx.x & 31;
  long long sum = 0;
  for (int i = lane; i < d; i += 32) sum += int64_t(r[i]) * r[i];
  sum = warp_sum(sum);
  const int64_t q = exact::isqrt(sum / d + 1) << kNormBits, den = 2 * q;
  const double inverse = 1.0 / double(den);
  for (int i = lane; i < d; i += 32) a[i] = clamp8_div(2 * int64_t(r[i]) * gain[i] + q, den, inverse);
}

// The norm of each of the block's R rows from `first` (r [rows, d]) into x [R, d], a warp a
// row (the last row again where the block runs past the end: computed, never written).
template <int R>
__device__ void norm_rows(const int32_t* r, int first, int rows, const int64_t* gain, int d,
                          int8_t* x) {
  for (int g = threadIdx.x >> 5; g < R; g += kWarps)
    norm_row(r + size_t(min(first + g, rows - 1)) * d, gain, d, x + g * pitch_of(d));
}

// A row's cache, and its position there (Stack::rows_per_cache).
__device__ size_t cache_of(const Step& s, int row) { return size_t(row / s.rows_per_cache); }
__device__ int position_of(const Step& s, int row) {
  return (s.position ? int(*s.position) : 0) + row % s.rows_per_cache;
}

template <int R>
__global__ void qkv_kernel(Step s, Layer l) {
  extern __shared__ __align__(16) unsigned char shared[];
  size_t* at = reinterpret_cast<size_t*>(shared);  // [R] each row's place in its cache
  int8_t* x = reinterpret_cast<int8_t*>(at + R);   // [R, pitch_of(width)]
  const int first = blockIdx.x * R, hd = s.width / s.heads;
  for (int g = threadIdx.x; g < R; g += blockDim.x) {
    const int row = min(first + g, s.rows - 1);
    at[g] = (cache_of(s, row) * s.heads * s.capacity + position_of(s, row)) * hd;
  }
  norm_rows<R>(s.residual, first, s.rows, l.norm1, s.width, x);
  __syncthreads();
  const size_t head_size = size_t(s.capacity) * hd;
  product<R>(l.qkv, x, pitch_of(s.width), [&](int g, int o, int sum) {
    const int row = first + g;
    if (row >= s.rows) return;
    const int8_t v = clamp8(round_shift(int64_t(sum) * l.qkv.mult[o], kMultBits));
    if (o < s.width) {
      s.query[size_t(row) * s.width + o] = v;
      return;
    }
    const bool key = o < 2 * s.width;
    const int i = o - (key ? s.width : 2 * s.width), head = i / hd;
    (key ? l.keys : l.values)[at[g] + head * head_size + (i - head * hd)] = v;
  });
}

__device__ int byte_of(int word, int k) { return int(int8_t(word >> (8 * k))); }

// A query's score against one cached key, both hd int8 values (16-byte aligned, hd a
// multiple of 16): exact in int32.
__device__ int key_score(const int8_t* key, const int4* q, int hd) {
  const int4* k = reinterpret_cast<const int4*>(key);
  int score = 0;
  for (int w = 0; w < hd / 16; ++w) {
    const int4 a = k[w], b = q[w];
    score = __dp4a(a.x, b.x, score);
    score = __dp4a(a.y, b.y, score);
    score = __dp4a(a.z, b.z, score);
    score = __dp4a(a.w, b.w, score);
  }
  return score;
}

// num[b] += the sum of weight[j] * values[j][b] over keys j = first, first + step, ...
// below len, for the four dimensions b of `values` (a key every hd bytes): in int32 for
// 2^11 keys at a time (weights at most 2^12, values below 2^7), then int64.
__device__ void weighted_sum4(const int8_t* values, int hd, const int32_t* weight, int first,
                              int len, int step, long long (&num)[4]) {
  for (int j0 = first; j0 < len; j0 += 2048 * step) {
    int sum[4] = {0, 0, 0, 0};
    for (int j = j0; j < min(len, j0 + 2048 * step); j += step) {
      const int word = *reinterpret_cast<const int*>(values + size_t(j) * hd);
      const int w = weight[j];
#pragma unroll
      for (int b = 0; b < 4; ++b) sum[b] += w * byte_of(word, b);
    }
    for (int b = 0; b < 4; ++b) num[b] += sum[b];
  }
}

// The attention's output from a weighted sum of values whose weights add to `total`:
// clamp8(floor((2 num value_mult + den / 2) / den)) with den = 2 total 2^kMultBits.
struct AttentionOut {
  int64_t den, value_mult;
  double inverse;
  __device__ AttentionOut(long long total, int64_t mult)
      : den(2 * (total << kMultBits)), value_mult(mult), inverse(1.0 / double(den)) {}
  __device__ int8_t operator()(long long num) const {
    return clamp8_div(2 * num * value_mult + den / 2, den, inverse);
  }
};

// One row (block x) and head (block y): the keys of its cache at and before its position.
__global__ void attention_kernel(Step s, Layer l) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int row = blockIdx.x, head = blockIdx.y, hd = s.width / s.heads;
  const int len = position_of(s, row) + 1;
  int32_t* e = reinterpret_cast<int32_t*>(shared);  // [capacity] scores, then weights
  long long* part = reinterpret_cast<long long*>(shared + 4 * ((s.capacity + 3) / 4 * 4));
  long long* scratch = part + 4 * kAttnThreads;
  const int4* q = reinterpret_cast<const int4*>(s.query + size_t(row) * s.width + head * hd);
  const size_t at = (cache_of(s, row) * s.heads + head) * s.capacity * hd;
  const int8_t* keys = l.keys + at;
  const int8_t* values = l.values + at;
  long long best = LLONG_MIN;
  for (int j = threadIdx.x; j < len; j += blockDim.x) {
    const int score = key_score(keys + size_t(j) * hd, q, hd);
    e[j] = score;
    best = max(best, (long long)score);
  }
  best = block_reduce<true>(best, scratch);
  long long total = 0;
  for (int j = threadIdx.x; j < len; j += blockDim.x) {
    e[j] = s.attn_table[exact::attention_index(best - e[j], l.score_mult)];
    total += e[j];
  }
  total = block_reduce<false>(total, scratch);  // its barriers also publish e
  // The weighted sum of values: a thread takes four dimensions of every slices-th key.
  const int groups = hd / 4, slices = blockDim.x / groups;
  const int group = threadIdx.x % groups, slice = threadIdx.x / groups;
  if (slice < slices) {
    long long num[4] = {0, 0, 0, 0};
    weighted_sum4(values + 4 * group, hd, e, slice, len, slices, num);
    for (int k = 0; k < 4; ++k) part[slice * hd + 4 * group + k] = num[k];
  }
  __syncthreads();
  const AttentionOut out(total, l.value_mult);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    long long num = 0;
    for (int p = 0; p < slices; ++p) num += part[p * hd + d];
    s.attended[size_t(row) * s.width + head * hd + d] = out(num);
  }
}

// The same for a pass (Stack::position nullptr, rows_per_cache positions a cache): a block
// for kTileQueries consecutive positions of one cache and one head, so that each key and
// value is read once for all of them. Its queries' scores [kTileQueries, keys] stay in
// shared memory, become the table's weights, and each weighted sum is the same exact
// integer as attention_kernel's.
__global__ void attention_tile_kernel(Step s, Layer l) {
  extern __shared__ __align__(16) unsigned char shared[];
  constexpr int T = kTileQueries;
  const int hd = s.width / s.heads, head = blockIdx.y, stride = (s.capacity + 3) / 4 * 4;
  const int tiles = (s.rows_per_cache + T - 1) / T;
  const size_t cache = blockIdx.x / tiles;
  const int first = int(blockIdx.x % tiles) * T;  // the first query's position
  int32_t* e = reinterpret_cast<int32_t*>(shared);                 // [T, stride]
  int8_t* q = reinterpret_cast<int8_t*>(e + T * stride);           // [T, hd]
  long long* total = reinterpret_cast<long long*>(q + T * hd);     // [T]
  // Query i is this row, which sees keys 0 .. first + i.
  auto row_of = [&](int i) { return cache * s.rows_per_cache + first + i; };
  auto length = [&](int i) {
    return first + i < s.rows_per_cache && row_of(i) < size_t(s.rows) ? first + i + 1 : 0;
  };
  const int keys = min(first + T, s.rows_per_cache);
  for (int k = threadIdx.x; k < T * hd / 16; k += blockDim.x) {
    const int i = k / (hd / 16), w = k % (hd / 16);
    const size_t row = min(row_of(i), size_t(s.rows) - 1);
    reinterpret_cast<int4*>(q)[k] =
        reinterpret_cast<const int4*>(s.query + row * s.width + head * hd)[w];
  }
  __syncthreads();
  const size_t at = (cache * s.heads + head) * s.capacity * hd;
  const int8_t* key_rows = l.keys + at;
  const int8_t* value_rows = l.values + at;
  // Scores: a thread a key, against every query of the block.
  for (int j = threadIdx.x; j < keys; j += blockDim.x) {
    int score[T] = {};
    for (int w = 0; w < hd / 16; ++w) {
      const int4 a = reinterpret_cast<const int4*>(key_rows + size_t(j) * hd)[w];
#pragma unroll
      for (int i = 0; i < T; ++i) {
        const int4 b = reinterpret_cast<const int4*>(q + i * hd)[w];
        score[i] = __dp4a(a.x, b.x, score[i]);
        score[i] = __dp4a(a.y, b.y, score[i]);
        score[i] = __dp4a(a.z, b.z, score[i]);
        score[i] = __dp4a(a.w, b.w, score[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < T; ++i) e[i * stride + j] = score[i];
  }
  __syncthreads();
  // The weights of each query's keys, a warp a query.
  const int lane = threadIdx.x & 31;
  for (int i = threadIdx.x >> 5; i < T; i += kWarps) {
    const int len = length(i);
    int32_t* ei = e + i * stride;
    long long best = LLONG_MIN;
    for (int j = lane; j < len; j += 32) best = max(best, (long long)ei[j]);
    best = warp_max(best);
    long long sum = 0;
    for (int j = lane; j < len; j += 32) {
      ei[j] = s.attn_table[exact::attention_index(best - ei[j], l.score_mult)];
      sum += ei[j];
    }
    sum = warp_sum(sum);
    if (lane == 0) total[i] = sum;
  }
  __syncthreads();
  // The weighted sums: a thread four dimensions of one query.
  const int groups = hd / 4;
  for (int k = threadIdx.x; k < T * groups; k += blockDim.x) {
    const int i = k / groups, group = k % groups, len = length(i);
    if (len == 0) continue;
    long long num[4] = {0, 0, 0, 0};
    weighted_sum4(value_rows + 4 * group, hd, e + i * stride, 0, len, 1, num);
    const AttentionOut out(total[i], l.value_mult);
    int8_t* to = s.attended + row_of(i) * s.width + head * hd + 4 * group;
    for (int b = 0; b < 4; ++b) to[b] = out(num[b]);
  }
}

// The same where a cache holds at most kSmallCapacity positions (the local stack): a warp
// for a row and head, a lane for a key, then for a dimension.
__global__ void attention_small_kernel(Step s, Layer l) {
  const int lane = threadIdx.x & 31, hd = s.width / s.heads;
  const size_t pair = size_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (pair >= size_t(s.rows) * s.heads) return;  // the whole warp
  const int row = int(pair / s.heads), head = int(pair % s.heads);
  const int len = position_of(s, row) + 1;
  const size_t at = (cache_of(s, row) * s.heads + head) * s.capacity * hd;
  const int score =
      lane < len ? key_score(l.keys + at + size_t(lane) * hd,
                             reinterpret_cast<const int4*>(s.query + size_t(row) * s.width + head * hd), hd)
                 : 0;
  const long long best = warp_max(lane < len ? (long long)score : LLONG_MIN);
  const long long e =
      lane < len ? s.attn_table[exact::attention_index(best - score, l.score_mult)] : 0;
  const AttentionOut out(warp_sum(e), l.value_mult);
  for (int d0 = 0; d0 < hd; d0 += 32) {
    const int d = d0 + lane;
    long long num = 0;
    for (int j = 0; j < len; ++j) {
      const long long ej = __shfl_sync(kAll, e, j);
      if (d < hd) num += ej * l.values[at + size_t(j) * hd + d];
    }
    if (d < hd) s.attended[size_t(row) * s.width + head * hd + d] = out(num);
  }
}

// The rest of a layer: the attention's output product into the residual, then the norm and
// the MLP. The residual stays in global memory: each of its elements is one thread's.
template <int R>
__global__ void mlp_kernel(Step s, Layer l) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int d = s.width, hidden = l.up.out, first = blockIdx.x * R;
  const int xp = pitch_of(d), hp = pitch_of(hidden);
  int8_t* x = reinterpret_cast<int8_t*>(shared);  // [R, xp]
  int8_t* h = x + R * xp;                         // [R, hp]
  for (int i = threadIdx.x; i < R * d; i += blockDim.x)
    x[i / d * xp + i % d] = s.attended[size_t(min(first + i / d, s.rows - 1)) * d + i % d];
  __syncthreads();
  auto to_residual = [&](const Linear& lin) {
    return [&](int g, int o, int sum) {
      if (first + g >= s.rows) return;
      int32_t& r = s.residual[size_t(first + g) * d + o];
      r = int32_t(add_residual(r, round_shift(int64_t(sum) * lin.mult[o], kMultBits)));
    };
  };
  product<R>(l.out, x, xp, to_residual(l.out));
  __syncthreads();
  norm_rows<R>(s.residual, first, s.rows, l.norm2, d, x);
  __syncthreads();
  product<R>(l.up, x, xp, [&](int g, int o, int sum) {
    h[g * hp + o] = exact::relu_squared(sum, l.up.mult[o]);
  });
  __syncthreads();
  product<R>(l.down, h, hp, to_residual(l.down));
}

// One row's table from its head outputs z [256], by one warp: the output table's weights,
// then codec's cdf_from_weights (codec/range_coder.cpp) step for step.
__device__ void row_table(const long long* zr, int row, const int64_t* head_table,
                          int64_t* weights, int32_t* tables, const int64_t* symbols,
                          int32_t* intervals) {
  const int lane = threadIdx.x & 31;
  // A thread has the eight symbols from 8 lane on.
  long long best = LLONG_MIN;
  for (int k = 0; k < 8; ++k) best = max(best, zr[8 * lane + k]);
  best = warp_max(best);
  unsigned long long w[8], sum = 0, heavy = 0;
  int heaviest = 0;
  for (int k = 0; k < 8; ++k) {
    const int o = 8 * lane + k;
    w[k] = uint64_t(head_table[min(best - zr[o], (long long)(kHeadLength - 1))]);
    if (weights) weights[size_t(row) * 256 + o] = int64_t(w[k]);
    sum += w[k];
    if (k == 0 || w[k] > heavy) heavy = w[k], heaviest = o;
  }
  // The heaviest symbol (the lowest on ties) takes what the floors leave.
  sum = warp_sum(sum);
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long other = __shfl_xor_sync(kAll, heavy, off);
    const int other_at = __shfl_xor_sync(kAll, heaviest, off);
    if (other > heavy || (other == heavy && other_at < heaviest)) heavy = other, heaviest = other_at;
  }
  const int shift = sum >> 32 ? 32 - __clzll((long long)sum) : 0;  // sum >> shift < 2^32
  if (shift > 0) {
    sum = 0;
    for (int k = 0; k < 8; ++k) sum += w[k] >> shift;
    sum = warp_sum(sum);
  }
  constexpr unsigned long long kSpare = kTotal - 256;
  const unsigned long long scale = sum == 0 ? 0 : (kSpare << 32) / sum;
  unsigned f[8], given = 0;
  for (int k = 0; k < 8; ++k) {
    f[k] = sum == 0 ? kTotal / 256 : 1 + unsigned(((w[k] >> shift) * scale) >> 32);
    given += f[k];
  }
  given = unsigned(warp_sum((long long)given));
  if (heaviest / 8 == lane) f[heaviest % 8] += kTotal - given;
  unsigned c[8], run = 0;
  for (int k = 0; k < 8; ++k) c[k] = run += f[k];
  unsigned before = run;  // an inclusive scan of the lanes' totals, then less this lane's
  for (int off = 1; off < 32; off <<= 1) {
    const unsigned other = __shfl_up_sync(kAll, before, off);
    if (lane >= off) before += other;
  }
  before -= run;
  if (symbols) {
    const int symbol = int(symbols[row]);
    if (symbol / 8 == lane) {
      const int k = symbol % 8;
      intervals[2 * size_t(row)] = int32_t(before + c[k] - f[k]);
      intervals[2 * size_t(row) + 1] = int32_t(f[k]);
    }
    return;
  }
  int32_t* t = tables + size_t(row) * 257;
  if (lane == 0) t[0] = 0;
  for (int k = 0; k < 8; ++k) t[8 * lane + k + 1] = int32_t(before + c[k]);
}


// The output table of each row: its weights and coder's table (weights and tables), or
// only the interval of the byte that came (symbols and intervals).
template <int R>
__global__ void head_kernel(Step s, const int64_t* norm, Linear head, const int64_t* head_table,
                            int64_t* weights, int32_t* tables, const int64_t* symbols,
                            int32_t* intervals) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int d = s.width, first = blockIdx.x * R;
  long long* z = reinterpret_cast<long long*>(shared);  // [R, 256]
  int8_t* x = reinterpret_cast<int8_t*>(z + R * 256);   // [R, pitch_of(width)]
  norm_rows<R>(s.residual, first, s.rows, norm, d, x);
  __syncthreads();
  product<R>(head, x, pitch_of(d), [&](int g, int o, int sum) {
    z[g * 256 + o] = round_shift(int64_t(sum) * head.mult[o], kMultBits);
  });
  __syncthreads();
  for (int g = threadIdx.x >> 5; g < R && first + g < s.rows; g += kWarps)
    row_table(z + g * 256, first + g, head_table, weights, tables, symbols, intervals);
}

template <int R>
__global__ void to_local_kernel(Step s, const int64_t* norm, Linear to_local, int patch,
                                int32_t* condition) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int d = s.width, piece = d / patch, first = blockIdx.x * R;
  int8_t* x = reinterpret_cast<int8_t*>(shared);  // [R, pitch_of(width)]
  norm_rows<R>(s.residual, first, s.rows, norm, d, x);
  __syncthreads();
#pragma unroll 1
  for (int j = 0; j < patch; ++j)
    product<R>(to_local, x + j * piece, pitch_of(d), [&](int g, int o, int sum) {
      if (first + g < s.rows)
        condition[(size_t(first + g) * patch + j) * to_local.out + o] = int32_t(
            clamp_to(round_shift(int64_t(sum) * to_local.mult[o], kMultBits), kConditionMax));
    });
}

__global__ void local_input_kernel(Step s, const int32_t* condition, const int64_t* bytes,
                                   const int64_t* previous, const int64_t* position_table,
                                   const int64_t* byte_index, int patch) {
  const size_t n = size_t(s.rows) * s.width;
  const int64_t j = *byte_index;
  for (size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x; at < n;
       at += size_t(gridDim.x) * blockDim.x) {
    const size_t row = at / s.width, i = at % s.width;
    s.residual[at] = int32_t(add_residual(
        add_residual(condition[(row * patch + j) * s.width + i], bytes[previous[row] * s.width + i]),
        position_table[j * s.width + i]));
  }
}

__global__ void global_input_kernel(Step s, const int64_t* start, const int64_t* modality,
                                    const int64_t* bytes, const int64_t* patch,
                                    const int64_t* position_table, const int64_t* patch_index,
                                    int patch_size) {
  const size_t n = size_t(s.rows) * s.width;
  const int64_t k = *patch_index;
  const int piece = s.width / patch_size;
  for (size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x; at < n;
       at += size_t(gridDim.x) * blockDim.x) {
    const size_t row = at / s.width, i = at % s.width;
    const int64_t in = k == 0 ? start[modality[row] * s.width + i]
                              : bytes[patch[row * patch_size + i / piece] * piece + i % piece];
    s.residual[at] = int32_t(add_residual(in, position_table[k * s.width + i]));
  }
}

// A pass over windows of `length` bytes (rows: a stream's patches), bytes [streams, length].
__global__ void global_pass_input_kernel(Step s, const int64_t* start, const int64_t* modality,
                                         const int64_t* bytes_table, const int64_t* bytes,
                                         int length, const int64_t* position_table, int patch) {
  const size_t n = size_t(s.rows) * s.width;
  const int patches = length / patch, piece = s.width / patch;
  for (size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x; at < n;
       at += size_t(gridDim.x) * blockDim.x) {
    const size_t row = at / s.width, stream = row / patches;
    const int i = int(at % s.width), k = int(row % patches);
    const int64_t in =
        k == 0 ? start[modality[stream] * s.width + i]
               : bytes_table[bytes[stream * length + size_t(k - 1) * patch + i / piece] * piece +
                             i % piece];
    s.residual[at] = int32_t(add_residual(in, position_table[size_t(k) * s.width + i]));
  }
}

// The same pass's local rows (a row a byte): condition [rows, width] from to_local.
__global__ void local_pass_input_kernel(Step s, const int32_t* condition, const int64_t* bytes_table,
                                        const int64_t* bytes, const int64_t* position_table,
                                        int patch, int64_t start_id) {
  const size_t n = size_t(s.rows) * s.width;
  for (size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x; at < n;
       at += size_t(gridDim.x) * blockDim.x) {
    const size_t row = at / s.width;
    const int i = int(at % s.width), j = int(row % patch);
    const int64_t previous = j == 0 ? start_id : bytes[row - 1];
    s.residual[at] =
        int32_t(add_residual(add_residual(condition[at], bytes_table[previous * s.width + i]),
                             position_table[size_t(j) * s.width + i]));
  }
}

const char* launched() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

using StepRows = std::integral_constant<int, kStepRows>;
using PassRows = std::integral_constant<int, kPassRows>;

// f(R) with the R of blocks for s: kPassRows for kWideRows rows and more.
template <class F>
auto by_rows(const Stack& s, F f) {
  return s.rows >= kWideRows ? f(PassRows()) : f(StepRows());
}
// Whether f(R) holds for both.
template <class F>
bool for_rows_sizes(F f) {
  return f(StepRows()) && f(PassRows());
}
unsigned blocks_of(const Stack& s, int rows) { return unsigned((s.rows + rows - 1) / rows); }
unsigned elementwise_blocks(const Stack& s) {
  return unsigned(std::min<size_t>((size_t(s.rows) * s.width + 255) / 256, 65536));
}

// The most shared memory a block of the current device may take (0: the build has no code
// for it). The first call for a device also lets every kernel take that much
// (cudaFuncSetAttribute), once: that call while another thread captures a CUDA graph would
// break the capture (seen: 4 segments decoding in threads of their own), and no decoder
// captures before its kernels were checked here.
int most_shared() {
  static std::mutex mutex;
  static std::map<int, int> most;  // by device
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto found = most.find(device); found != most.end()) return found->second;
  cudaFuncAttributes compiled;
  if (cudaFuncGetAttributes(&compiled, qkv_kernel<kStepRows>) != cudaSuccess) {
    cudaGetLastError();
    return most[device] = 0;  // no code for this GPU in the build (CMAKE_CUDA_ARCHITECTURES)
  }
  int bytes = 0;
  if (cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess)
    bytes = 48 * 1024;
  auto allow = [&](auto kernel) {
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) != cudaSuccess)
      bytes = 48 * 1024;  // the default, which needs no attribute
  };
  for_rows_sizes([&](auto rows) {
    constexpr int r = decltype(rows)::value;
    allow(qkv_kernel<r>);
    allow(mlp_kernel<r>);
    allow(head_kernel<r>);
    allow(to_local_kernel<r>);
    return true;
  });
  allow(attention_kernel);
  allow(attention_tile_kernel);
  const char* mma = std::getenv("MBZ_CUDA_TENSOR_CORES");
  const int on = !(mma && std::string(mma) == "0");
  cudaMemcpyToSymbol(tensor_cores, &on, sizeof on);
  cudaGetLastError();  // a refused attribute leaves nothing for the next launch to report
  return most[device] = bytes;
}

bool multiple_of_16(const Linear& l) { return l.in % 16 == 0 && l.in > 0 && l.out > 0; }

}  // namespace

const char* free_memory(size_t* free) {
  size_t total = 0;
  const cudaError_t e = cudaMemGetInfo(free, &total);
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

const char* unsupported(const Stack& s) {
  if (s.layers < 0 || s.layers > kMaxLayers) return "too many layers for the CUDA kernels";
  if (s.width % 16 != 0 || s.heads <= 0 || s.width % s.heads != 0 || (s.width / s.heads) % 16 != 0)
    return "widths and head widths must be multiples of 16 for the CUDA kernels";
  if (s.width / s.heads > 4 * kAttnThreads) return "heads wider than 512 for the CUDA kernels";
  for (int i = 0; i < s.layers; ++i) {
    const Layer& l = s.layer[i];
    if (!multiple_of_16(l.qkv) || !multiple_of_16(l.out) || !multiple_of_16(l.up) ||
        !multiple_of_16(l.down) || l.up.out % 16 != 0 || l.up.out != hidden_of(s))
      return "product widths must be multiples of 16 for the CUDA kernels";
  }
  const size_t most = size_t(most_shared());
  if (most == 0) return "this build's CUDA kernels have no code for this GPU";
  const bool fits = for_rows_sizes([&](auto rows) {
    constexpr int r = decltype(rows)::value;
    return std::max({qkv_bytes(s, r), mlp_bytes(s, r), head_bytes(s, r)}) <= most;
  });
  if (!fits || attention_bytes(s) > most)
    return "the CUDA kernels need more shared memory than the device has";
  return nullptr;
}

// Whether a step's attention takes attention_tile_kernel: a pass (the rows of a cache at
// positions 0, 1, ...) whose scores fit in shared memory.
bool tiled_attention(const Stack& s) {
  return s.position == nullptr && s.rows_per_cache > 1 && s.rows_per_cache <= s.capacity &&
         s.rows % s.rows_per_cache == 0 && attention_tile_bytes(s) <= size_t(most_shared());
}

template <int R>
void layer_step(const Stack& s, const Step& step, const Layer& l, cudaStream_t st) {
  const unsigned blocks = unsigned((s.rows + R - 1) / R);
  qkv_kernel<R><<<blocks, kThreads, qkv_bytes(s, R), st>>>(step, l);
  if (s.capacity <= kSmallCapacity)
    attention_small_kernel<<<unsigned((size_t(s.rows) * s.heads + kWarps - 1) / kWarps), kThreads, 0,
                             st>>>(step, l);
  else if (tiled_attention(s))
    attention_tile_kernel<<<dim3(unsigned(size_t(s.rows) / s.rows_per_cache *
                                          ((s.rows_per_cache + kTileQueries - 1) / kTileQueries)),
                                 unsigned(s.heads)),
                            kThreads, attention_tile_bytes(s), st>>>(step, l);
  else
    attention_kernel<<<dim3(unsigned(s.rows), unsigned(s.heads)), kAttnThreads,
                       attention_bytes(s), st>>>(step, l);
  mlp_kernel<R><<<blocks, kThreads, mlp_bytes(s, R), st>>>(step, l);
}

const char* stack_step(const Stack& s, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const Step step = step_of(s);
  for (int i = 0; i < s.layers; ++i) {
    by_rows(s, [&](auto rows) { layer_step<decltype(rows)::value>(s, step, s.layer[i], st); });
    if (const char* e = launched()) return e;
  }
  return nullptr;
}

const char* local_input(const Stack& s, const int32_t* condition, const int64_t* bytes,
                        const int64_t* previous, const int64_t* position_table,
                        const int64_t* byte_index, int patch, void* stream) {
  local_input_kernel<<<elementwise_blocks(s), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      step_of(s), condition, bytes, previous, position_table, byte_index, patch);
  return launched();
}

const char* global_input(const Stack& s, const int64_t* start, const int64_t* modality,
                         const int64_t* bytes, const int64_t* patch, const int64_t* position_table,
                         const int64_t* patch_index, int patch_size, void* stream) {
  global_input_kernel<<<elementwise_blocks(s), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      step_of(s), start, modality, bytes, patch, position_table, patch_index, patch_size);
  return launched();
}

namespace {
// head_kernel: the tables (weights, tables) or the intervals (symbols, intervals).
const char* head(const Stack& s, const Linear& head, const int64_t* head_table, int64_t* weights,
                 int32_t* tables, const int64_t* symbols, int32_t* intervals, void* stream) {
  if (head.out != 256 || head.in != s.width) return "the head must take the stack's width to 256";
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  by_rows(s, [&](auto rows) {
    constexpr int r = decltype(rows)::value;
    head_kernel<r><<<blocks_of(s, r), kThreads, head_bytes(s, r), st>>>(
        step_of(s), s.norm, head, head_table, weights, tables, symbols, intervals);
  });
  return launched();
}
}  // namespace

const char* head_tables(const Stack& s, const Linear& head_linear, const int64_t* head_table,
                        int64_t* weights, int32_t* tables, void* stream) {
  return head(s, head_linear, head_table, weights, tables, nullptr, nullptr, stream);
}

const char* head_intervals(const Stack& s, const Linear& head_linear, const int64_t* head_table,
                           const int64_t* symbols, int32_t* intervals, void* stream) {
  return head(s, head_linear, head_table, nullptr, nullptr, symbols, intervals, stream);
}

const char* global_pass_input(const Stack& s, const int64_t* start, const int64_t* modality,
                              const int64_t* bytes_table, const int64_t* bytes, int length,
                              const int64_t* position_table, int patch, void* stream) {
  global_pass_input_kernel<<<elementwise_blocks(s), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      step_of(s), start, modality, bytes_table, bytes, length, position_table, patch);
  return launched();
}

const char* local_pass_input(const Stack& s, const int32_t* condition, const int64_t* bytes_table,
                             const int64_t* bytes, const int64_t* position_table, int patch,
                             int64_t start_id, void* stream) {
  local_pass_input_kernel<<<elementwise_blocks(s), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      step_of(s), condition, bytes_table, bytes, position_table, patch, start_id);
  return launched();
}

const char* to_local(const Stack& s, const Linear& to_local, int patch, int32_t* condition,
                     void* stream) {
  if (patch <= 0 || s.width % patch != 0 || to_local.in != s.width / patch || to_local.in % 16 != 0)
    return "the patch's pieces must be multiples of 16 wide for the CUDA kernels";
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  by_rows(s, [&](auto rows) {
    constexpr int r = decltype(rows)::value;
    to_local_kernel<r><<<blocks_of(s, r), kThreads, qkv_bytes(s, r), st>>>(step_of(s), s.norm,
                                                                          to_local, patch, condition);
  });
  return launched();
}

}  // namespace mbz::model::cuda

// The exact decoder's steps as CUDA kernels (see exact_cuda.h). Every value is an integer
// computed as model/EXACT.md says, with the scalar steps of exact_int.h, so the results
// are those of the CPU decoder whatever the launch shape or the order the threads run in:
// sums of integers are the same in any order.
//
// A layer is three kernels: the norm and the qkv product of kRows streams a block (the
// keys and values into the caches), the attention of one stream and head a block, then
// the attention's output product, the norm and the MLP of kRows streams a block. A block
// of kRows streams has a warp for each stream's row-wise work (norms, tables) and shares
// every weight it reads among the kRows streams.
#include "model/exact_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "codec/range_coder.h"
#include "model/exact_int.h"

namespace mbz::model::cuda {
namespace {

using exact::add_residual;
using exact::clamp8;
using exact::floor_div;
using exact::round_shift;

constexpr int kRows = 8;  // streams a block computes at once, a warp each
constexpr int kThreads = 32 * kRows;
constexpr int kAttnThreads = 128;  // threads of an attention block (one stream, one head)
constexpr unsigned kAll = 0xffffffffu;

// What the kernels of a layer need of a Stack.
struct Step {
  int width, heads, capacity, rows, rows_per_cache;
  const int64_t* position;
  int64_t* residual;
  int8_t* query;
  int8_t* attended;
  const int32_t* attn_table;
};

Step step_of(const Stack& s) {
  return {s.width,    s.heads,    s.capacity, s.rows,     s.rows_per_cache,
          s.position, s.residual, s.query,    s.attended, s.attn_table};
}

int hidden_of(const Stack& s) { return s.layers > 0 ? s.layer[0].up.out : 0; }

// Shared memory of the kernels, in bytes.
size_t qkv_bytes(const Stack& s) { return size_t(kRows) * size_t(s.width); }
size_t mlp_bytes(const Stack& s) {
  return size_t(kRows) * (8 * size_t(s.width) + size_t(s.width) + size_t(hidden_of(s)));
}
size_t attention_bytes(const Stack& s) {
  const size_t keys = (size_t(s.capacity) + 3) / 4 * 4;  // int32 weights, 16-byte aligned
  return 4 * keys + 8 * 4 * size_t(kAttnThreads) + 8 * 33;
}
size_t head_bytes(const Stack& s) { return size_t(kRows) * (size_t(s.width) + 8 * 256); }

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

// x (kRows rows of `pitch` bytes in shared memory, 16-byte aligned) through l: for each
// output o of this thread and each row g, finish(g, o, exact int32 sum).
template <class Finish>
__device__ void product(const Linear& l, const int8_t* x, int pitch, Finish finish) {
  const int words = l.in / 4;
  for (int o = threadIdx.x; o < l.out; o += blockDim.x) {
    int acc[kRows];
#pragma unroll
    for (int g = 0; g < kRows; ++g) acc[g] = 0;
    const int32_t* w = l.weight + o;
    for (int i = 0; i < words; i += 4) {
      const int w0 = __ldg(w + size_t(i) * l.out), w1 = __ldg(w + size_t(i + 1) * l.out);
      const int w2 = __ldg(w + size_t(i + 2) * l.out), w3 = __ldg(w + size_t(i + 3) * l.out);
#pragma unroll
      for (int g = 0; g < kRows; ++g) {
        const int4 v = *reinterpret_cast<const int4*>(x + g * pitch + 4 * i);
        acc[g] = __dp4a(w0, v.x, acc[g]);
        acc[g] = __dp4a(w1, v.y, acc[g]);
        acc[g] = __dp4a(w2, v.z, acc[g]);
        acc[g] = __dp4a(w3, v.w, acc[g]);
      }
    }
#pragma unroll
    for (int g = 0; g < kRows; ++g) finish(g, o, acc[g]);
  }
}

// RMSNorm of one row r [d] to int8 a [d], by one warp.
__device__ void norm_row(const int64_t* r, const int64_t* gain, int d, int8_t* a) {
  const int lane = threadIdx.x & 31;
  long long sum = 0;
  for (int i = lane; i < d; i += 32) sum += r[i] * r[i];
  sum = warp_sum(sum);
  const int64_t q = exact::isqrt(sum / d + 1) << kNormBits, den = 2 * q;
  for (int i = lane; i < d; i += 32) a[i] = clamp8(floor_div(2 * r[i] * gain[i] + q, den));
}

// The block's first row, and the row of this thread's warp (the last row where the block
// runs past the end: computed, never written).
__device__ int first_row() { return blockIdx.x * kRows; }
__device__ int warp_row(int rows) { return min(first_row() + int(threadIdx.x >> 5), rows - 1); }

// A row's cache, and its position there (Stack::rows_per_cache).
__device__ size_t cache_of(const Step& s, int row) { return size_t(row / s.rows_per_cache); }
__device__ int position_of(const Step& s, int row) {
  return (s.position ? int(*s.position) : 0) + row % s.rows_per_cache;
}

__global__ void qkv_kernel(Step s, Layer l) {
  extern __shared__ __align__(16) unsigned char shared[];
  int8_t* x = reinterpret_cast<int8_t*>(shared);  // [kRows, width]
  const int warp = threadIdx.x >> 5, first = first_row();
  norm_row(s.residual + size_t(warp_row(s.rows)) * s.width, l.norm1, s.width, x + warp * s.width);
  __syncthreads();
  const int hd = s.width / s.heads;
  product(l.qkv, x, s.width, [&](int g, int o, int sum) {
    const int row = first + g;
    if (row >= s.rows) return;
    const int8_t v = clamp8(round_shift(int64_t(sum) * l.qkv.mult[o], kMultBits));
    if (o < s.width) {
      s.query[size_t(row) * s.width + o] = v;
      return;
    }
    const bool key = o < 2 * s.width;
    const int i = o - (key ? s.width : 2 * s.width), head = i / hd, d = i % hd;
    int8_t* cache = key ? l.keys : l.values;
    cache[((cache_of(s, row) * s.heads + head) * s.capacity + position_of(s, row)) * hd + d] = v;
  });
}

__device__ int byte_of(int word, int k) { return int(int8_t(word >> (8 * k))); }

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
    const int4* k = reinterpret_cast<const int4*>(keys + size_t(j) * hd);
    int score = 0;
    for (int w = 0; w < hd / 16; ++w) {
      const int4 a = k[w], b = q[w];
      score = __dp4a(a.x, b.x, score);
      score = __dp4a(a.y, b.y, score);
      score = __dp4a(a.z, b.z, score);
      score = __dp4a(a.w, b.w, score);
    }
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
    for (int j = slice; j < len; j += slices) {
      const int word = *reinterpret_cast<const int*>(values + size_t(j) * hd + 4 * group);
      const long long weight = e[j];
      for (int k = 0; k < 4; ++k) num[k] += weight * byte_of(word, k);
    }
    for (int k = 0; k < 4; ++k) part[slice * hd + 4 * group + k] = num[k];
  }
  __syncthreads();
  const int64_t den = 2 * (total << kMultBits);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    long long num = 0;
    for (int p = 0; p < slices; ++p) num += part[p * hd + d];
    s.attended[size_t(row) * s.width + head * hd + d] =
        clamp8(floor_div(2 * num * l.value_mult + den / 2, den));
  }
}

// The rest of a layer: the attention's output product into the residual, then the norm and
// the MLP.
__global__ void mlp_kernel(Step s, Layer l) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int d = s.width, hidden = l.up.out, warp = threadIdx.x >> 5, first = first_row();
  int64_t* r = reinterpret_cast<int64_t*>(shared);           // [kRows, width]
  int8_t* x = reinterpret_cast<int8_t*>(r + kRows * d);      // [kRows, width]
  int8_t* h = x + kRows * d;                                 // [kRows, hidden]
  for (int i = threadIdx.x; i < kRows * d; i += blockDim.x) {
    const size_t at = size_t(min(first + i / d, s.rows - 1)) * d + i % d;
    r[i] = s.residual[at];
    x[i] = s.attended[at];
  }
  __syncthreads();
  auto to_residual = [&](const Linear& lin) {
    return [&](int g, int o, int sum) {
      r[g * d + o] = add_residual(r[g * d + o], round_shift(int64_t(sum) * lin.mult[o], kMultBits));
    };
  };
  product(l.out, x, d, to_residual(l.out));
  __syncthreads();
  norm_row(r + warp * d, l.norm2, d, x + warp * d);
  __syncthreads();
  product(l.up, x, d, [&](int g, int o, int sum) {
    h[g * hidden + o] = exact::relu_squared(sum, l.up.mult[o]);
  });
  __syncthreads();
  product(l.down, h, hidden, to_residual(l.down));
  __syncthreads();
  for (int i = threadIdx.x; i < kRows * d; i += blockDim.x)
    if (first + i / d < s.rows) s.residual[size_t(first) * d + i] = r[i];
}

// The output table of each row: its weights and coder's table (weights and tables), or
// only the interval of the byte that came (symbols and intervals).
__global__ void head_kernel(Step s, const int64_t* norm, Linear head, const int64_t* head_table,
                            int64_t* weights, int32_t* tables, const int64_t* symbols,
                            int32_t* intervals) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int d = s.width, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, first = first_row();
  long long* z = reinterpret_cast<long long*>(shared);              // [kRows, 256]
  int8_t* x = reinterpret_cast<int8_t*>(z + kRows * 256);           // [kRows, width]
  norm_row(s.residual + size_t(warp_row(s.rows)) * d, norm, d, x + warp * d);
  __syncthreads();
  product(head, x, d, [&](int g, int o, int sum) {
    z[g * 256 + o] = round_shift(int64_t(sum) * head.mult[o], kMultBits);
  });
  __syncthreads();
  const int row = first + warp;
  if (row >= s.rows) return;
  // The output table's weights: a thread has the eight symbols from 8 lane on.
  const long long* zr = z + warp * 256;
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
  // codec's cdf_from_weights (codec/range_coder.cpp), step for step: the heaviest symbol
  // (the lowest on ties) takes what the floors leave.
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

__global__ void to_local_kernel(Step s, const int64_t* norm, Linear to_local, int patch,
                                int64_t* condition) {
  extern __shared__ __align__(16) unsigned char shared[];
  const int d = s.width, piece = d / patch, warp = threadIdx.x >> 5, first = first_row();
  int8_t* x = reinterpret_cast<int8_t*>(shared);  // [kRows, width]
  norm_row(s.residual + size_t(warp_row(s.rows)) * d, norm, d, x + warp * d);
  __syncthreads();
  for (int j = 0; j < patch; ++j)
    product(to_local, x + j * piece, d, [&](int g, int o, int sum) {
      if (first + g < s.rows)
        condition[(size_t(first + g) * patch + j) * to_local.out + o] =
            round_shift(int64_t(sum) * to_local.mult[o], kMultBits);
    });
}

__global__ void local_input_kernel(Step s, const int64_t* condition, const int64_t* bytes,
                                   const int64_t* previous, const int64_t* position_table,
                                   const int64_t* byte_index, int patch) {
  const size_t n = size_t(s.rows) * s.width;
  const int64_t j = *byte_index;
  for (size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x; at < n;
       at += size_t(gridDim.x) * blockDim.x) {
    const size_t row = at / s.width, i = at % s.width;
    s.residual[at] = add_residual(
        add_residual(condition[(row * patch + j) * s.width + i], bytes[previous[row] * s.width + i]),
        position_table[j * s.width + i]);
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
    s.residual[at] = add_residual(in, position_table[k * s.width + i]);
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
    s.residual[at] = add_residual(in, position_table[size_t(k) * s.width + i]);
  }
}

// The same pass's local rows (a row a byte): condition [rows, width] from to_local.
__global__ void local_pass_input_kernel(Step s, const int64_t* condition, const int64_t* bytes_table,
                                        const int64_t* bytes, const int64_t* position_table,
                                        int patch, int64_t start_id) {
  const size_t n = size_t(s.rows) * s.width;
  for (size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x; at < n;
       at += size_t(gridDim.x) * blockDim.x) {
    const size_t row = at / s.width;
    const int i = int(at % s.width), j = int(row % patch);
    const int64_t previous = j == 0 ? start_id : bytes[row - 1];
    s.residual[at] =
        add_residual(add_residual(condition[at], bytes_table[previous * s.width + i]),
                     position_table[size_t(j) * s.width + i]);
  }
}

const char* launched() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

unsigned blocks_of(int rows) { return unsigned((rows + kRows - 1) / kRows); }
unsigned elementwise_blocks(const Stack& s) {
  return unsigned(std::min<size_t>((size_t(s.rows) * s.width + 255) / 256, 65536));
}

// Lets `kernel` take `bytes` of shared memory where that is above the default 48 KiB;
// false where the device has less.
template <class Kernel>
bool allow_shared(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return true;
  int device = 0, most = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess ||
      bytes > size_t(most))
    return false;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)) ==
         cudaSuccess;
}

bool multiple_of_16(const Linear& l) { return l.in % 16 == 0 && l.in > 0 && l.out > 0; }

}  // namespace

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
  if (!allow_shared(qkv_kernel, qkv_bytes(s)) || !allow_shared(mlp_kernel, mlp_bytes(s)) ||
      !allow_shared(attention_kernel, attention_bytes(s)) ||
      !allow_shared(head_kernel, head_bytes(s)) || !allow_shared(to_local_kernel, qkv_bytes(s)))
    return "the CUDA kernels need more shared memory than the device has";
  return nullptr;
}

const char* stack_step(const Stack& s, void* stream) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const Step step = step_of(s);
  for (int i = 0; i < s.layers; ++i) {
    qkv_kernel<<<blocks_of(s.rows), kThreads, qkv_bytes(s), st>>>(step, s.layer[i]);
    attention_kernel<<<dim3(unsigned(s.rows), unsigned(s.heads)), kAttnThreads,
                       attention_bytes(s), st>>>(step, s.layer[i]);
    mlp_kernel<<<blocks_of(s.rows), kThreads, mlp_bytes(s), st>>>(step, s.layer[i]);
    if (const char* e = launched()) return e;
  }
  return nullptr;
}

const char* local_input(const Stack& s, const int64_t* condition, const int64_t* bytes,
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

const char* head_tables(const Stack& s, const Linear& head, const int64_t* head_table,
                        int64_t* weights, int32_t* tables, void* stream) {
  if (head.out != 256 || head.in != s.width) return "the head must take the stack's width to 256";
  head_kernel<<<blocks_of(s.rows), kThreads, head_bytes(s), static_cast<cudaStream_t>(stream)>>>(
      step_of(s), s.norm, head, head_table, weights, tables, nullptr, nullptr);
  return launched();
}

const char* head_intervals(const Stack& s, const Linear& head, const int64_t* head_table,
                           const int64_t* symbols, int32_t* intervals, void* stream) {
  if (head.out != 256 || head.in != s.width) return "the head must take the stack's width to 256";
  head_kernel<<<blocks_of(s.rows), kThreads, head_bytes(s), static_cast<cudaStream_t>(stream)>>>(
      step_of(s), s.norm, head, head_table, nullptr, nullptr, symbols, intervals);
  return launched();
}

const char* global_pass_input(const Stack& s, const int64_t* start, const int64_t* modality,
                              const int64_t* bytes_table, const int64_t* bytes, int length,
                              const int64_t* position_table, int patch, void* stream) {
  global_pass_input_kernel<<<elementwise_blocks(s), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      step_of(s), start, modality, bytes_table, bytes, length, position_table, patch);
  return launched();
}

const char* local_pass_input(const Stack& s, const int64_t* condition, const int64_t* bytes_table,
                             const int64_t* bytes, const int64_t* position_table, int patch,
                             int64_t start_id, void* stream) {
  local_pass_input_kernel<<<elementwise_blocks(s), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      step_of(s), condition, bytes_table, bytes, position_table, patch, start_id);
  return launched();
}

const char* to_local(const Stack& s, const Linear& to_local, int patch, int64_t* condition,
                     void* stream) {
  if (patch <= 0 || s.width % patch != 0 || to_local.in != s.width / patch || to_local.in % 16 != 0)
    return "the patch's pieces must be multiples of 16 wide for the CUDA kernels";
  to_local_kernel<<<blocks_of(s.rows), kThreads, qkv_bytes(s), static_cast<cudaStream_t>(stream)>>>(
      step_of(s), s.norm, to_local, patch, condition);
  return launched();
}

}  // namespace mbz::model::cuda

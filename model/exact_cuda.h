// The exact decoder's steps as CUDA kernels (exact_cuda.cu): the arithmetic of
// model/EXACT.md in integers, a thread block for a few streams at once, instead of the
// hundreds of small LibTorch operations a step takes otherwise. Plain pointers to device
// memory and no LibTorch here, so nvcc compiles the kernels alone; ExactDecoder
// (exact.cpp) owns the memory and launches them, and its tests hold them to the CPU's
// integers.
//
// Products run as dp4a: four int8 products added into an int32, which is exact (every sum
// of this engine's products stays below 2^31: at most 2^16 inputs of 127 · 127).
#pragma once

#include <cstdint>

namespace mbz::model::cuda {

inline constexpr int kMaxLayers = 16;

// A product's weights: word [i][o] holds inputs 4i .. 4i + 3 of output o as int8 bytes
// (the first in the lowest), so the threads of a warp, one output each, read adjacent
// words. `in` is a multiple of 16.
struct Linear {
  const int32_t* weight = nullptr;  // [in / 4, out]
  const int64_t* mult = nullptr;    // [out]
  int in = 0, out = 0;
};

struct Layer {
  const int64_t* norm1 = nullptr;  // [width] RMSNorm gains
  const int64_t* norm2 = nullptr;
  Linear qkv, out, up, down;
  int64_t score_mult = 0, value_mult = 0;
  int8_t* keys = nullptr;    // the cache: [caches, heads, capacity, head width]
  int8_t* values = nullptr;
};

// One stack and where its step works.
struct Stack {
  int width = 0, heads = 0, layers = 0, capacity = 0;
  Layer layer[kMaxLayers];
  const int64_t* norm = nullptr;        // [width] the final RMSNorm's gains
  const int32_t* attn_table = nullptr;  // [kAttnLength]
  // The rows of a step, and where their keys go: row r at position
  // (*position or 0) + r % rows_per_cache of cache r / rows_per_cache, attending over that
  // cache up to there. The decoder's step: a row a stream, rows_per_cache 1, the position on
  // the device; a whole pass: every position of a window a row, position nullptr.
  int rows = 0, rows_per_cache = 1;
  const int64_t* position = nullptr;  // [1], on the device, or nullptr
  int32_t* residual = nullptr;        // [rows, width]: |r| <= kResidualMax < 2^31
  int8_t* query = nullptr;            // [rows, width] scratch
  int8_t* attended = nullptr;         // [rows, width] scratch
};

// The current device's free memory in bytes into *free, or the CUDA error.
const char* free_memory(size_t* free);

// Why a stack cannot run here (widths not multiples of 16, head widths above 512, too much
// shared memory), or nullptr.
const char* unsupported(const Stack& s);

// Every layer of the stack on s.residual, in place (the final norm is left to the step's
// end). Returns nullptr, or the CUDA error.
const char* stack_step(const Stack& s, void* stream);

// The local stack's input for byte *byte_index of the patch: for every stream n,
// clamp(clamp(condition[n][j] + bytes[previous[n]]) + position[j]) into s.residual.
const char* local_input(const Stack& s, const int32_t* condition, const int64_t* bytes,
                        const int64_t* previous, const int64_t* position_table,
                        const int64_t* byte_index, int patch, void* stream);

// The global stack's input for patch *patch_index: the modality's start patch for the
// first, else the byte embeddings of the previous patch (patch [N, P]), plus the position.
const char* global_input(const Stack& s, const int64_t* start, const int64_t* modality,
                         const int64_t* bytes, const int64_t* patch, const int64_t* position_table,
                         const int64_t* patch_index, int patch_size, void* stream);

// The local stack's end: the final norm, the head (`head`, to 256 outputs), the output
// table's weights [rows, 256] int64 and the coder's tables [rows, 257] int32
// (codec's cdf_from_weights).
const char* head_tables(const Stack& s, const Linear& head, const int64_t* head_table,
                        int64_t* weights, int32_t* tables, void* stream);

// The same for the rows of a pass, with only the interval (start, frequency) of each row's
// byte (symbols [rows]) in its table: intervals [rows, 2] int32.
const char* head_intervals(const Stack& s, const Linear& head, const int64_t* head_table,
                           const int64_t* symbols, int32_t* intervals, void* stream);

// A whole pass's inputs, over windows of bytes [streams, length] int64 (length a multiple
// of the patch). The global rows (a row a patch: the start patch, then the previous
// patch's bytes, plus the position) ...
const char* global_pass_input(const Stack& s, const int64_t* start, const int64_t* modality,
                              const int64_t* bytes_table, const int64_t* bytes, int length,
                              const int64_t* position_table, int patch, void* stream);
// ... and the local rows (a row a byte: condition [rows, width] from to_local, plus the
// previous byte's embedding, start_id's at a patch's first byte, plus the position).
const char* local_pass_input(const Stack& s, const int32_t* condition, const int64_t* bytes_table,
                             const int64_t* bytes, const int64_t* position_table, int patch,
                             int64_t start_id, void* stream);

// The global stack's end: the final norm, then each of the P pieces of width/P through
// `to_local` into condition [rows, P, local width], in residual units clamped to
// ±kConditionMax (int32): the local input adds an embedding of at most kResidualMax and
// clamps to kResidualMax, so a value past kConditionMax gives what the value itself would.
inline constexpr int32_t kConditionMax = 1 << 27;
const char* to_local(const Stack& s, const Linear& to_local, int patch, int32_t* condition,
                     void* stream);

}  // namespace mbz::model::cuda

// The integer-exact MEGABYTE engine: the network of model/megabyte.h with int8 weights and
// activations, integer requantization, integer RMSNorm, table softmax and a table
// exponential for the final frequencies. Every value that reaches the coder is an integer
// computed by operations whose result does not depend on the device, thread count, batch
// size or summation order, so an archive made on a GPU decodes on any CPU.
//
// The arithmetic is specified in model/EXACT.md; in short:
//   - residual stream: int64 r = round(x * 2^kResidualBits), clamped to +-kResidualMax;
//   - matrix products: int8-valued float32 operands, the shared dimension cut into pieces of
//     at most kExactChunk, so every partial sum is an integer below 2^24 in magnitude and
//     float32 holds it exactly whatever the order of summation (CPU BLAS, cuBLAS, TF32);
//     the pieces are added as int64;
//   - requantization: acc * M >> kMultBits with M = round(scale * 2^kMultBits), rounding
//     half up; RMSNorm through an exact integer square root;
//   - softmax and the final exponential from tables stored with the model.
#pragma once

#include <torch/torch.h>

#if MBZ_EXACT_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#endif

#include <cstdint>
#include <vector>

#include "model/checkpoint.h"
#include "model/exact_int.h"
#include "model/megabyte.h"

namespace mbz::model {

// What an exact model file says in the checkpoint's train_json field.
inline constexpr char kExactKind[] = R"({"kind": "mbz-exact-v1"})";

// y = x W^T with int8 weights: weight [O, I] holds int8 values as float32, and mult [O]
// (int64) rescales the int64 product for its destination (the residual, int8 or ReLU^2).
// (A model loaded for CpuExactModel alone keeps the file's types: from_checkpoint.)
struct ExactLinear {
  torch::Tensor weight, mult;
};

struct ExactBlock {
  torch::Tensor norm1, norm2;     // [D] int64 RMSNorm gains to int8
  ExactLinear qkv, out, up, down;
  torch::Tensor score_mult;       // [1] int64: (max - score) * it >> kMultBits = table index
  torch::Tensor value_mult;       // [1] int64: attention output to int8
  torch::Tensor score_steps;      // [kAttnLength - 1] int32, from score_mult (not in the file)
};

struct ExactStack {
  std::vector<ExactBlock> blocks;
  torch::Tensor norm;  // [D] final RMSNorm gains to int8
  int64_t heads = 1;
};

// Keys and values of one exact attention layer: int8 values held as float32, or as
// bfloat16 on CUDA with LibTorch 2.8 on (exact too, half the bytes). A step writes at its
// position and masks the later ones (stack_step), so no length is kept.
struct ExactCache {
  torch::Tensor k, v;  // [N, H, capacity, d]
};

struct StackRanges;  // model/exact.cpp: the activation ranges of one stack

class ExactModel {
 public:
  // Quantizes a float model with activation scales measured on `calibration` ([B, T]
  // bytes, [B] modalities): per output channel int8 weights, and for every activation the
  // largest magnitude it took there.
  static ExactModel quantize(Megabyte& model, const torch::Tensor& calibration,
                             const torch::Tensor& modality);
  // Quantizes a network trained with fake quantization (mbz train --qat) with the
  // activation ranges it trained against (FakeQuant's running ranges), one set for every
  // modality. Throws kUsageBadArgument if it never ran with fake quantization on.
  static ExactModel quantize_trained(Megabyte& model);

  // As a model file: the checkpoint format (model/CHECKPOINT.md) with int8 weights, int64
  // multipliers, embeddings and tables (stored as int32 where their values fit, which
  // loading takes as well as int64), and train_json kExactKind.
  Checkpoint to_checkpoint() const;
  // Throws kModelMismatch for a file that is not an exact model of this version or lacks
  // a tensor, or has one of the wrong shape or type. `as_stored`: every tensor checked but
  // left as the file has it (int8 weights, int32 or int64 integers), shared with
  // `checkpoint`, for CpuExactModel, which copies them into arrays of its own; forward() and
  // ExactDecoder need them converted (float32 weights, int64 integers).
  static ExactModel from_checkpoint(const Checkpoint& checkpoint, bool as_stored = false);

  ExactModel to(torch::Device device) const;
  torch::Device device() const { return head.weight.device(); }

  // Frequency weights (before codec's cdf_from_weights) for every next byte: bytes [B, T]
  // int64, modality [B] -> [B, T, 256] int64, all at once (the encoder's pass).
  torch::Tensor forward(const torch::Tensor& bytes, const torch::Tensor& modality) const;

  Config config;
  torch::Tensor global_bytes;     // [258, Dg/P] int64 residual units
  torch::Tensor global_start;     // [4, Dg]
  torch::Tensor global_position;  // [K, Dg]
  torch::Tensor local_bytes;      // [258, Dl]
  torch::Tensor local_position;   // [P, Dl]
  ExactStack global, local;
  ExactLinear global_to_local;  // Dg/P -> Dl, to the local residual
  ExactLinear head;             // Dl -> 256, to output table units (1/kHeadSteps nat)
  torch::Tensor attn_table;     // [kAttnLength] int64, round(2^kAttnBits e^(-t/kAttnSteps))
  torch::Tensor head_table;     // [kHeadLength] int64, round(2^kHeadBits e^(-t/kHeadSteps))

 private:
  static ExactModel quantize_with(Megabyte& model, const StackRanges& global_ranges,
                                  const StackRanges& local_ranges);
};

// An exact model file as modality `m` computes with it (model/EXACT.md, "Activation scales
// by modality"): the shared tensors, with the file's "modality<m>/<name>" ones in their
// place. *has_own (if given): whether the file has any tensors of m's own.
Checkpoint checkpoint_for_modality(const Checkpoint& file, size_t m, bool* has_own = nullptr);
// The name of modality m's own tensor `name` in an exact model file.
std::string modality_tensor_name(size_t m, const std::string& name);

// codec's cdf_from_weights (codec/range_coder.h) on a tensor, on any device, with the same
// integers: weights [..., 256] int64 (nonnegative, each row's sum below 2^63) -> cumulative
// tables [..., 257] int32, c[0] = 0, c[256] = kTotal. Lets the encoder build the tables of a
// whole forward pass where the weights are, and ship only the tables.
torch::Tensor cdf_tables(const torch::Tensor& weights);

// Bytes free on the current CUDA device, or -1 where the build has no CUDA kernels (or the
// device does not answer).
int64_t cuda_free_bytes();

// The encoder's pass (ExactModel::forward, then each byte's interval in its table) as
// exact_cuda.h's kernels, on CUDA in builds that have them.
class ExactPass {
 public:
  // nullptr unless the model is on CUDA, the build has the kernels, the model's shapes suit
  // them and the environment's MBZ_CUDA_KERNELS is not "0". Keeps a reference to `model`.
  static std::unique_ptr<ExactPass> make(const ExactModel& model);
  ~ExactPass();
  // Windows of bytes [N, T] (int64, T at most the context), modalities [N] -> the interval
  // (start, frequency) of every byte in the coder's table for it, [N, T, 2] int32 on the
  // model's device: the integers of cdf_tables(model.forward(bytes, modality)) at the bytes.
  torch::Tensor intervals(const torch::Tensor& bytes, const torch::Tensor& modality);
  // intervals(), brought to the host without waiting for them: slot 0 or 1 (pinned host
  // memory) holds them once wait(slot) returns, so that the host may read one slot while
  // the device computes the other's.
  void start_to_host(const torch::Tensor& bytes, const torch::Tensor& modality, int slot);
  const torch::Tensor& wait(int slot);  // [N, T, 2] int32 on the host

 private:
  ExactPass() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Byte-by-byte decoding of N streams in step, as Decoder in model/megabyte.h: the global
// stack once per patch, the local stack once per byte, against caches. Gives exactly the
// weights of ExactModel::forward on the same streams. Every step has the same shapes (the
// cache positions not yet written are masked out), so on CUDA (in builds against a CUDA
// LibTorch; MBZ_CUDA_GRAPHS=0 in the environment turns it off) the global step and the
// local step are each captured once in a CUDA graph and replayed, a launch a byte instead
// of hundreds. Where the build has the CUDA kernels of exact_cuda.h (MBZ_EXACT_CUDA_KERNELS:
// nvcc found beside a CUDA LibTorch), the steps run as those instead of LibTorch
// operations, with the same integers (MBZ_CUDA_KERNELS=0 in the environment turns them off).
class ExactDecoder {
 public:
  // `cuda_graphs`: replay CUDA graphs when the model is on CUDA (and the build has them);
  // by default yes, unless the environment's MBZ_CUDA_GRAPHS is "0". `cuda_kernels`: the
  // steps as exact_cuda.h's kernels when the model is on CUDA, the build has them and the
  // model's shapes suit them; by default yes, unless MBZ_CUDA_KERNELS is "0".
  ExactDecoder(const ExactModel& model, const torch::Tensor& modality);
  ExactDecoder(const ExactModel& model, const torch::Tensor& modality, bool cuda_graphs);
  ExactDecoder(const ExactModel& model, const torch::Tensor& modality, bool cuda_graphs,
               bool cuda_kernels);
  ~ExactDecoder();
  ExactDecoder(const ExactDecoder&) = delete;
  ExactDecoder& operator=(const ExactDecoder&) = delete;
  // Frequency weights of the next byte of every stream: [N, 256] int64.
  torch::Tensor next_weights();
  // The same as coder tables (cdf_tables of the weights): [N, 257] int32, on the model's
  // device, valid until the next step.
  torch::Tensor next_tables();
  // Decoding on the model's device: the symbol of each stream's next table whose interval
  // holds targets[k] (int32 [N], RangeDecoder::target), with the interval, as Cdf::find
  // gives them: int32 [N, 3] (symbol, start, freq) on the device, valid until the next step.
  torch::Tensor next_symbols(const torch::Tensor& targets);
  // The byte that came next in each stream: [N] int64 (or int32), on the model's device.
  void push(const torch::Tensor& bytes);
  // Back to every stream's first byte, as a new decoder of the same streams would be, but
  // keeping the captured graphs (the caches need no clearing: unwritten positions are
  // masked out).
  void restart();
  int64_t streams() const { return n_; }
  int64_t position() const { return position_; }
  bool graphs() const { return local_graph_ != nullptr; }  // whether the steps replay CUDA graphs
  bool kernels() const { return kernels_ != nullptr; }      // whether they run exact_cuda.h's kernels

 private:
  void step(bool tables);
  void global_step(int64_t keys);
  torch::Tensor local_step();
  size_t bucket(int64_t patch) const;  // the first key count above `patch`
  void capture(size_t bucket);
  // The global step and the local step (weights_ and tables_) as exact_cuda.h's kernels.
  struct Kernels;
  void kernel_global_step();
  void kernel_local_step();
  // The global step attends over the first kFirstKeys patches, then kFirstKeys more, and
  // so on up to kStepKeysUpTo, then twice as many each time up to the context
  // (key_counts_, a CUDA graph each, each with memory of its own: so that longer contexts
  // do not need a graph per 64 patches). With the kernels, one count: the context (they
  // attend over exactly the keys before the position, which they read on the device).
  static constexpr int64_t kFirstKeys = 64, kStepKeysUpTo = 1024;

  const ExactModel& model_;
  torch::Tensor modality_;
  int64_t n_, position_ = 0;
  std::vector<ExactCache> global_caches_, local_caches_;
  // The inputs of a step, written in place: the bytes of the current patch, the byte
  // before the next one, the patch's and the byte's positions ([1] int64).
  torch::Tensor patch_, previous_, patch_index_, byte_index_;
  // Its outputs: condition_ [N, P, Dl] (global; int64, or int32 clamped with the kernels:
  // exact_cuda.h's to_local), weights_ [N, 256], tables_ [N, 257].
  torch::Tensor condition_, weights_, tables_;
  std::vector<int64_t> key_counts_;
  bool pending_ = false, graphs_ = false;
#if MBZ_EXACT_CUDA_GRAPHS
  using Graph = at::cuda::CUDAGraph;
#else
  struct Graph {
    void replay() {}
  };
#endif
  std::vector<std::unique_ptr<Graph>> global_graphs_;  // by key count, once captured
  std::unique_ptr<Graph> local_graph_;
  std::unique_ptr<Kernels> kernels_;
};

}  // namespace mbz::model

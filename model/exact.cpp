// The integer-exact engine (model/EXACT.md): quantization of a float model, the full pass
// of the encoder and the cached decoder. Shapes as in model/megabyte.cpp; "int8" tensors
// hold integers in [-127, 127] as float32 (the matrix product's operand type), "int64"
// tensors are torch::kLong.
#include "model/exact.h"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "codec/error.h"
#include "model/torch_compat.h"

#if MBZ_EXACT_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#endif
#if MBZ_EXACT_CUDA_KERNELS
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include "model/exact_cuda.h"
#endif

namespace mbz::model {

// Largest magnitudes of the activations at every quantized site of one float stack.
struct StackRanges {
  struct Block {
    double norm1 = 0, q = 0, k = 0, v = 0, attended = 0, norm2 = 0, hidden = 0;
  };
  std::vector<Block> blocks;
  double norm = 0;
};

namespace {

using torch::Tensor;

// MBZ_TIMING=2: seconds by stage of the exact model's work, device time included (the
// thread's stream is synchronized at each stage's ends, so stages do not overlap), printed to stderr
// when the process ends. Off while a CUDA graph is being captured.
class StageClock {
 public:
  using Clock = std::chrono::steady_clock;
  static StageClock& get() {
    static StageClock clock;
    return clock;
  }
  bool on() const { return on_ && !capturing; }
  void add(const std::string& name, double seconds) {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto& [calls, total] = stages_[name];
    ++calls;
    total += seconds;
  }
  ~StageClock() {
    for (const auto& [name, s] : stages_)
      std::fprintf(stderr, "exact stage %-24s %9llu calls %10.3f s\n", name.c_str(),
                   (unsigned long long)s.first, s.second);
  }
  static inline thread_local bool capturing = false;

 private:
  StageClock() {
    const char* t = std::getenv("MBZ_TIMING");
    on_ = t && std::string(t) == "2";
  }
  bool on_ = false;
  std::mutex mutex_;
  std::map<std::string, std::pair<uint64_t, double>> stages_;
};

// The calling thread's stream, not the whole device: a device-wide synchronization while
// another thread captures a CUDA graph breaks that capture (ExactDecoder::capture).
void synchronize_device() {
#if MBZ_EXACT_CUDA_GRAPHS
  if (torch::cuda::is_available()) c10::cuda::getCurrentCUDAStream().synchronize();
#endif
}

// Times the scope as stage `name` when StageClock is on, named within the stack that
// StackName says.
class Stage {
 public:
  explicit Stage(const char* name) : on_(StageClock::get().on()) {
    if (!on_) return;
    name_ = std::string(stack_name) + name;
    synchronize_device();
    t0_ = StageClock::Clock::now();
  }
  ~Stage() {
    if (!on_) return;
    synchronize_device();
    StageClock::get().add(name_, std::chrono::duration<double>(StageClock::Clock::now() - t0_).count());
  }

 private:
  bool on_;
  std::string name_;
  StageClock::Clock::time_point t0_;

 public:
  static inline thread_local const char* stack_name = "";
};

// Names the stages within the scope "<name>.".
class StackName {
 public:
  explicit StackName(const char* name) : before_(Stage::stack_name) { Stage::stack_name = name; }
  ~StackName() { Stage::stack_name = before_; }

 private:
  const char* before_;
};

// floor(a / 2^bits) of int64 a: an arithmetic right shift, the same integer as the floor
// division and many times faster on a GPU (integer division is emulated there).
Tensor floor_shift(const Tensor& a, int bits) {
  return torch::bitwise_right_shift(a, int64_t(bits));
}

// floor((a + 2^(bits-1)) / 2^bits): a / 2^bits rounded half up.
Tensor round_shift(const Tensor& a, int bits) {
  return floor_shift(a + (int64_t(1) << (bits - 1)), bits);
}

// a / b rounded half up, b > 0.
Tensor div_round(const Tensor& a, const Tensor& b) {
  return torch::div(2 * a + b, 2 * b, "floor");
}

Tensor to_int8(const Tensor& a) {
  return a.clamp(-127, 127).to(torch::kFloat);
}

// While alive, cuBLAS may run float32 products as TF32: exact for this engine's, whose
// operands are integers of magnitude at most 127 (TF32's 10-bit mantissa holds them) and
// whose sums cuBLAS keeps in float32; the tensor cores then do the work. The flag is the
// process's, shared by the threads that decode segments: the first scope in sets it and
// the last one out puts back what it was.
class Tf32Products {
 public:
  Tf32Products() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (users_++ == 0) {
      saved_ = at::globalContext().allowTF32CuBLAS();
      at::globalContext().setAllowTF32CuBLAS(true);
    }
  }
  ~Tf32Products() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (--users_ == 0) at::globalContext().setAllowTF32CuBLAS(saved_);
  }
  Tf32Products(const Tf32Products&) = delete;
  Tf32Products& operator=(const Tf32Products&) = delete;

 private:
  static inline std::mutex mutex_;
  static inline int users_ = 0;
  static inline bool saved_ = false;
};

// The float32 product of one piece of int8 operands (K <= kExactChunk). Where one of them
// is bfloat16 (a decoder cache on CUDA, ExactCache), both go in as bfloat16, which holds
// int8 values exactly, and the products add in float32 (compat::bf16_bmm): the same sums.
Tensor piece_product(const Tensor& a, const Tensor& b) {
  if (a.scalar_type() != torch::kBFloat16 && b.scalar_type() != torch::kBFloat16) {
    if (!a.is_cuda()) return torch::matmul(a, b);
    const Tf32Products tf32;
    return torch::matmul(a, b);
  }
  const Tensor x = a.to(torch::kBFloat16), y = b.to(torch::kBFloat16);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 2);
  shape.push_back(x.size(-2));
  shape.push_back(y.size(-1));
  return compat::bf16_bmm(x.reshape({-1, x.size(-2), x.size(-1)}),
                          y.reshape({-1, y.size(-2), y.size(-1)}))
      .view(shape);
}

// a [..., M, K] times b [..., K, N], both int8: the exact int64 product. The shared
// dimension is cut into pieces of kExactChunk, so every partial sum of a piece is an
// integer of magnitude < 2^24 and float32 represents it exactly in any summation order.
Tensor exact_matmul(const Tensor& a, const Tensor& b) {
  const int64_t k = a.size(-1);
  for (const Tensor* t : {&a, &b})
    if (t->scalar_type() != torch::kFloat && t->scalar_type() != torch::kBFloat16)
      throw Error(ErrorCode::kUsageBadArgument, "exact matmul: operands must be float32 or bfloat16");
  Tensor sum;
  for (int64_t i = 0; i < k; i += kExactChunk) {
    const int64_t n = std::min(kExactChunk, k - i);
    const Tensor product = piece_product(a.narrow(-1, i, n), b.narrow(-2, i, n));
    if (product.scalar_type() != torch::kFloat)  // autocast would round the sums
      throw Error(ErrorCode::kUsageBadArgument, "exact matmul: the product is not float32");
    const Tensor part = product.to(torch::kLong);
    sum = sum.defined() ? sum + part : part;
  }
  return sum;
}

// exact_matmul's product as int32, for products known to stay below 2^31 in magnitude
// (attention scores: |q . k| <= d 127^2 < 2^26 for heads up to 4096 wide).
Tensor exact_matmul_int(const Tensor& a, const Tensor& b) {
  if (a.size(-1) <= kExactChunk) return piece_product(a, b).to(torch::kInt);
  return exact_matmul(a, b).to(torch::kInt);
}

// x [..., I] int8 through an ExactLinear: the int64 product times the multiplier, before
// the shift (callers shift for their destination).
Tensor linear(const Tensor& x, const ExactLinear& l) {
  return exact_matmul(x, l.weight.t()) * l.mult;
}

Tensor to_residual(const Tensor& x, const ExactLinear& l) {
  return round_shift(linear(x, l), kMultBits);
}

Tensor add_residual(const Tensor& r, const Tensor& delta) {
  return (r + delta).clamp(-kResidualMax, kResidualMax);
}

// floor(sqrt(n)) of int64 1 <= n <= 2^50 + 1, exactly, as floor of the double square root
// (IEEE's is correctly rounded): n is exact in a double, and for k^2 <= n < (k+1)^2 with
// k <= 2^25, sqrt(n) lies in [k, k + 1 - 2^-26), where a double's half unit in the last
// place (at most 2^-28) cannot round it up to k + 1. The residual's bound |r| <= 2^25 keeps
// RMSNorm's n = mean(r^2) + 1 in that range.
static_assert(kResidualMax <= int64_t(1) << 25, "isqrt: mean(r^2) + 1 must stay within 2^50 + 1");
Tensor isqrt(const Tensor& n) {
  return torch::sqrt(n.to(torch::kDouble)).floor().to(torch::kLong);
}

// RMSNorm of the residual r [..., D] to int8: r * gain / (isqrt(mean(r^2) + 1) * 2^kNormBits).
Tensor rms_norm(const Tensor& r, const Tensor& gain) {
  const int64_t d = r.size(-1);
  const Tensor sum = (r * r).sum(-1, true);
  const Tensor mean = (d & (d - 1)) == 0 ? floor_shift(sum, std::countr_zero(uint64_t(d)))
                                         : torch::div(sum, d, "floor");
  return to_int8(div_round(r * gain, isqrt(mean + 1) * (int64_t(1) << kNormBits)));
}

// ReLU^2 after `up`: t = relu(x W^T) rescaled to 2^kReluBits per unit of sqrt(out scale),
// then t^2 >> 2 kReluBits, at most 127. The square goes in float32: t <= 2^12, so t^2 is
// exact, and so is t^2 + 2^15 below 2^24; above, float32's rounding moves only values far
// past 127 * 2^16, which end at 127 whatever it does. The shift is a multiplication by a
// power of two.
Tensor relu2(const Tensor& x, const ExactLinear& up) {
  static_assert(kReluBits + 4 == 12 && 2 * kReluBits == 16, "relu2's float32 square");
  const Tensor t = round_shift(exact_matmul(x, up.weight.t()).clamp_min(0) * up.mult, kMultBits)
                       .clamp_max(int64_t(1) << (kReluBits + 4))
                       .to(torch::kFloat);
  return torch::floor((t * t + float(1 << 15)) * (1.0f / float(1 << 16))).clamp_max(127);
}

// Softmax-weighted values from integer scores [..., Q, Tk] (int32; keys where `mask` is
// true are left out) and values v [..., Tk, d] (int8): the int8 attention output [..., Q, d].
// `table` is the attention table as int32.
//
// A key's table index is floor(delta * score_mult / 2^kMultBits), at most kAttnLength - 1,
// with delta = max score - score: the number of block.score_steps at or below delta, which
// one search finds in int32. Scores are below 2^26 in magnitude, so deltas of keys that
// count are below 2^27, and left-out keys (set to -2^30) get deltas of at least 2^30 - 2^26,
// above every step (score_steps caps them at 2^29): index kAttnLength - 1, weight 0.
Tensor attend(Tensor scores, const Tensor& mask, const Tensor& v, const ExactBlock& block,
              const Tensor& table) {
  constexpr int32_t kFar = int32_t(1) << 30;
  Stage stage("attend");
  if (mask.defined()) scores = scores.masked_fill(mask, -kFar);
  const Tensor delta = scores.amax(-1, true) - scores;
  const Tensor index = torch::searchsorted(block.score_steps, delta, /*out_int32=*/false, /*right=*/true);
  const Tensor e = table.index_select(0, index.flatten()).view(index.sizes());  // <= 2^12
  const Tensor total = e.sum(-1, true, torch::kLong);  // >= 2^12: the largest score weighs 2^12
  // Weights of 13 bits times int8 values would overflow float32's exact range in a sum, so
  // the weights go in as two 7-bit digits, stacked as twice the queries: one product
  // reads the values once.
  const int64_t queries = e.size(-2);
  Stage values("attend.values");
  const Tensor digits = torch::cat({torch::bitwise_right_shift(e, 7), torch::bitwise_and(e, 127)}, -2);
  const Tensor both = exact_matmul(digits.to(torch::kFloat), v);
  const Tensor num = both.narrow(-2, 0, queries) * 128 + both.narrow(-2, queries, queries);
  return to_int8(div_round(num * block.value_mult, total * (int64_t(1) << kMultBits)));
}

// [B, T, 3D] int64 -> q, k, v as int8 [B, H, T, d].
std::array<Tensor, 3> split_heads(const Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), d = qkv.size(2) / 3;
  const Tensor x = to_int8(round_shift(qkv, kMultBits))
                       .view({b, t, 3, heads, d / heads})
                       .permute({2, 0, 3, 1, 4});
  return {x[0], x[1], x[2]};
}

Tensor merge_heads(const Tensor& y) {  // [B, H, T, d] -> [B, T, H*d]
  return y.transpose(1, 2).reshape({y.size(0), y.size(2), y.size(1) * y.size(3)});
}

// Causal self-attention over all of x [B, T, D] (int8) -> int8 [B, T, D]. Queries go in
// blocks so that the score matrix stays small for long contexts.
// `table32`: the attention table as int32.
Tensor attention(const Tensor& x, const ExactBlock& block, int64_t heads, const Tensor& table32) {
  constexpr int64_t kQueryBlock = 256;
  const auto [q, k, v] = split_heads(linear(x, block.qkv), heads);
  const int64_t t = x.size(1);
  std::vector<Tensor> out;
  for (int64_t q0 = 0; q0 < t; q0 += kQueryBlock) {
    const int64_t n = std::min(kQueryBlock, t - q0), keys = q0 + n;
    Tensor scores;
    {
      Stage stage("scores");
      scores = exact_matmul_int(q.narrow(2, q0, n), k.narrow(2, 0, keys).transpose(-2, -1));
    }
    const Tensor mask =
        torch::ones({n, keys}, torch::dtype(torch::kBool).device(x.device())).triu(q0 + 1);
    out.push_back(attend(scores, mask, v.narrow(2, 0, keys), block, table32));
  }
  return merge_heads(torch::cat(out, 2));
}

Tensor block_rest(Tensor r, const Tensor& attended, const ExactBlock& block) {
  r = add_residual(r, to_residual(attended, block.out));
  return add_residual(r, to_residual(relu2(rms_norm(r, block.norm2), block.up), block.down));
}

// The stack over r [B, T, D] (int64 residual) -> int8 [B, T, D] after the final norm.
Tensor stack_forward(const ExactStack& s, Tensor r, const Tensor& table) {
  const Tensor table32 = table.to(torch::kInt);
  for (const ExactBlock& block : s.blocks) {
    const Tensor attended = attention(rms_norm(r, block.norm1), block, s.heads, table32);
    Stage stage("rest");
    r = block_rest(r, attended, block);
  }
  return rms_norm(r, s.norm);
}

// One new position r [N, 1, D] against the caches -> int8 [N, 1, D]. `position` ([1]
// int64, on the caches' device) is where the new keys go; the keys after it are masked,
// which takes them out exactly (weight 0, model/EXACT.md), so every step with the same
// `keys` has the same shapes whatever the position: it can be captured once in a CUDA
// graph and replayed.
Tensor stack_step(const ExactStack& s, Tensor r, std::vector<ExactCache>& caches,
                  const Tensor& table, const Tensor& position, int64_t keys) {
  if (caches.empty()) return rms_norm(r, s.norm);
  // The first `keys` cache positions (keys > position): the rest are masked out anyway, so
  // attending over fewer gives the same integers with less work.
  const Tensor later = torch::arange(keys, position.options()).gt(position);
  const Tensor table32 = table.to(torch::kInt);
  for (size_t i = 0; i < s.blocks.size(); ++i) {
    const ExactBlock& block = s.blocks[i];
    ExactCache& c = caches[i];
    Tensor q;
    {
      Stage stage("qkv");
      const auto [q1, k, v] = split_heads(linear(rms_norm(r, block.norm1), block.qkv), s.heads);
      c.k.index_copy_(2, position, k.to(c.k.scalar_type()));
      c.v.index_copy_(2, position, v.to(c.v.scalar_type()));
      q = q1;
    }
    Tensor scores;  // [N, H, 1, keys]
    {
      Stage stage("scores");
      // As keys times the query ([keys, d] x [d, 1]): the cache is read along its rows.
      scores = exact_matmul_int(c.k.narrow(2, 0, keys), q.transpose(-2, -1)).transpose(-2, -1);
    }
    const Tensor attended = merge_heads(attend(scores, later, c.v.narrow(2, 0, keys), block, table32));
    Stage stage("rest");
    r = block_rest(r, attended, block);
  }
  return rms_norm(r, s.norm);
}

std::vector<ExactCache> new_caches(const ExactStack& s, int64_t n, int64_t capacity,
                                   torch::Device device) {
  std::vector<ExactCache> caches(s.blocks.size());
  const int64_t width = s.blocks.empty() ? 0 : s.blocks[0].norm1.size(0);
  // bfloat16 where the products can take it (half the bytes that every step reads).
  const auto type = compat::has_bf16_bmm(device) ? torch::kBFloat16 : torch::kFloat;
  for (ExactCache& c : caches) {
    c.k = torch::zeros({n, s.heads, capacity, width / s.heads}, torch::dtype(type).device(device));
    c.v = torch::zeros_like(c.k);
  }
  return caches;
}

// Output table weights from the local stack's int8 output [..., Dl] -> [..., 256] int64.
Tensor output_weights(const ExactModel& m, const Tensor& x) {
  const Tensor z = round_shift(linear(x, m.head), kMultBits);  // units of 1/kHeadSteps nat
  const Tensor index = (z.amax(-1, true) - z).clamp_max(kHeadLength - 1);
  return m.head_table.index_select(0, index.flatten()).view(index.sizes());
}

Tensor gather_rows(const Tensor& table, const Tensor& ids) {  // ids [...] -> [..., width]
  std::vector<int64_t> shape(ids.sizes().begin(), ids.sizes().end());
  shape.push_back(table.size(1));
  return table.index_select(0, ids.flatten()).view(shape);
}

// The table index steps of attend(): step j (1 <= j < kAttnLength) is the least delta with
// floor(delta * mult / 2^kMultBits) >= j, ceil(j 2^kMultBits / mult), capped at 2^29
// (no delta of a key that counts reaches 2^27); int32 [kAttnLength - 1], on mult's device.
Tensor score_steps(const Tensor& score_mult) {
  constexpr int64_t kCap = int64_t(1) << 29;
  const int64_t mult = score_mult.item<int64_t>();
  std::vector<int32_t> steps(kAttnLength - 1);
  for (int64_t j = 1; j < kAttnLength; ++j) {
    const int64_t step = mult > 0 ? ((j << kMultBits) + mult - 1) / mult : kCap;
    steps[size_t(j - 1)] = int32_t(std::min(step, kCap));
  }
  return torch::tensor(steps, torch::kInt).to(score_mult.device());
}

void add_score_steps(ExactStack& s) {
  for (ExactBlock& b : s.blocks) b.score_steps = score_steps(b.score_mult);
}

// ---- Quantization ----------------------------------------------------------------------


double max_abs(const Tensor& x) {
  return x.abs().max().item<double>();
}

// The q-quantile of |x|: a range that leaves the rarest outliers to clamp8.
double quantile_abs(const Tensor& x, double q) {
  const Tensor a = x.abs().flatten().to(torch::kFloat);
  const int64_t n = a.numel();
  const int64_t k = std::clamp<int64_t>(int64_t(std::ceil(q * double(n))), 1, n);
  return std::get<0>(a.kthvalue(k)).item<double>();
}

// Ranges of the norm outputs and of ReLU²'s output: a few values of a window reach far
// past the rest there, and a scale set by them leaves the others a handful of int8 steps
// (model/EXACT.md, "Quantization": session 12's medium model loses 15.4 % to max-abs
// ranges and 10.6 % to these).
constexpr double kNormQuantile = 0.9999, kHiddenQuantile = 0.999999;

// The float stack's forward pass (as TransformerImpl::forward), noting the ranges.
Tensor measure_stack(Transformer& stack, Tensor x, StackRanges& ranges) {
  ranges.blocks.resize(stack->blocks->size());
  for (size_t i = 0; i < stack->blocks->size(); ++i) {
    BlockImpl& block = *stack->blocks[i]->as<Block>();
    StackRanges::Block& r = ranges.blocks[i];
    const Tensor n1 = block.norm1(x);
    r.norm1 = std::max(r.norm1, quantile_abs(n1, kNormQuantile));
    const int64_t b = x.size(0), t = x.size(1), d = x.size(2), h = stack->heads;
    const Tensor qkv = block.attn->qkv(n1).view({b, t, 3, h, d / h}).permute({2, 0, 3, 1, 4});
    r.q = std::max(r.q, max_abs(qkv[0]));
    r.k = std::max(r.k, max_abs(qkv[1]));
    r.v = std::max(r.v, max_abs(qkv[2]));
    const Tensor y = compat::attention(qkv[0], qkv[1], qkv[2], true).transpose(1, 2).reshape({b, t, d});
    r.attended = std::max(r.attended, max_abs(y));
    x = x + block.attn->out(y);
    const Tensor n2 = block.norm2(x);
    r.norm2 = std::max(r.norm2, quantile_abs(n2, kNormQuantile));
    const Tensor hidden = torch::relu(block.up(n2)).square();
    r.hidden = std::max(r.hidden, quantile_abs(hidden, kHiddenQuantile));
    x = x + block.down(hidden);
  }
  const Tensor out = stack->norm(x);
  ranges.norm = std::max(ranges.norm, quantile_abs(out, kNormQuantile));
  return out;
}

double scale_of(double range) {
  return std::max(range, 1e-6) / 127;
}

int64_t fixed(double value, int bits) {
  const double v = std::round(value * std::ldexp(1.0, bits));
  if (!(std::fabs(v) < std::ldexp(1.0, 46)))
    throw Error(ErrorCode::kModelMismatch, "quantize: a multiplier is out of range (" +
                                               std::to_string(value) + ")");
  return static_cast<int64_t>(v);
}

Tensor long_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kLong);
}

// Per output channel int8 weights of w [O, I]; returns the weight scales [O].
std::vector<double> quantize_weight(const Tensor& w, Tensor& out) {
  const Tensor scales = weight_scales(w);  // [O, 1], the rule fake quantization trains with
  out = round_to_int8(w, scales).to(torch::kFloat).contiguous();
  const Tensor s = scales.squeeze(1).to(torch::kDouble).contiguous();
  return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

// An ExactLinear whose output channel o gets multiplier factor(o) * in_scale * w_scale[o].
template <typename Factor>
ExactLinear quantize_linear(const torch::nn::Linear& l, double in_scale, Factor factor, int bits) {
  ExactLinear q;
  const std::vector<double> w_scale = quantize_weight(l->weight.detach().cpu().to(torch::kFloat), q.weight);
  std::vector<int64_t> mult(w_scale.size());
  for (size_t o = 0; o < mult.size(); ++o)
    mult[o] = fixed(in_scale * w_scale[o] * factor(o), bits);
  q.mult = long_tensor(mult);
  return q;
}

Tensor quantize_gain(const RMSNorm& norm, double out_scale) {
  const Tensor w = norm->weight.detach().cpu().to(torch::kDouble).contiguous();
  std::vector<int64_t> g(w.numel());
  for (int64_t i = 0; i < w.numel(); ++i) g[i] = fixed(w.data_ptr<double>()[i] / out_scale, kNormBits);
  return long_tensor(g);
}

Tensor to_residual_units(const Tensor& x) {
  return torch::round(x.detach().cpu().to(torch::kDouble) * std::ldexp(1.0, kResidualBits))
      .clamp(-kResidualMax, kResidualMax)
      .to(torch::kLong);
}

ExactStack quantize_stack(Transformer& stack, const StackRanges& ranges) {
  ExactStack s;
  s.heads = stack->heads;
  const double head_width = double(stack->width / stack->heads);
  for (size_t i = 0; i < ranges.blocks.size(); ++i) {
    BlockImpl& block = *stack->blocks[i]->as<Block>();
    const StackRanges::Block& r = ranges.blocks[i];
    const double s1 = scale_of(r.norm1), sq = scale_of(r.q), sk = scale_of(r.k),
                 sv = scale_of(r.v), sa = scale_of(r.attended), s2 = scale_of(r.norm2),
                 sh = scale_of(r.hidden);
    const int64_t d = stack->width;
    ExactBlock q;
    q.norm1 = quantize_gain(block.norm1, s1);
    q.norm2 = quantize_gain(block.norm2, s2);
    q.qkv = quantize_linear(block.attn->qkv, s1,
                            [&](size_t o) { return 1 / (o < size_t(d) ? sq : o < size_t(2 * d) ? sk : sv); },
                            kMultBits);
    q.score_mult = long_tensor({fixed(sq * sk / std::sqrt(head_width) * kAttnSteps, kMultBits)});
    q.value_mult = long_tensor({fixed(sv / sa, kMultBits)});
    q.score_steps = score_steps(q.score_mult);
    q.out = quantize_linear(block.attn->out, sa, [](size_t) { return 1.0; }, kMultBits + kResidualBits);
    q.up = quantize_linear(block.up, s2, [&](size_t) { return 1 / std::sqrt(sh); }, kMultBits + kReluBits);
    q.down = quantize_linear(block.down, sh, [](size_t) { return 1.0; }, kMultBits + kResidualBits);
    s.blocks.push_back(std::move(q));
  }
  s.norm = quantize_gain(stack->norm, scale_of(ranges.norm));
  return s;
}

Tensor exp_table(int64_t length, int64_t steps, int bits) {
  std::vector<int64_t> t(length);
  for (int64_t i = 0; i < length; ++i)
    t[i] = static_cast<int64_t>(std::llround(std::ldexp(std::exp(-double(i) / steps), bits)));
  t.back() = 0;  // left-out keys and hopeless bytes weigh nothing
  return long_tensor(t);
}

ExactLinear linear_to(const ExactLinear& l, torch::Device d) {
  return {l.weight.to(d), l.mult.to(d)};
}

ExactStack stack_to(const ExactStack& s, torch::Device d) {
  ExactStack out;
  out.heads = s.heads;
  out.norm = s.norm.to(d);
  for (const ExactBlock& b : s.blocks)
    out.blocks.push_back({b.norm1.to(d), b.norm2.to(d), linear_to(b.qkv, d), linear_to(b.out, d),
                          linear_to(b.up, d), linear_to(b.down, d), b.score_mult.to(d),
                          b.value_mult.to(d), b.score_steps.to(d)});
  return out;
}

ExactLinear empty_linear(int64_t out, int64_t in) {
  return {torch::empty({out, in}), torch::empty({out}, torch::kLong)};
}

ExactStack empty_stack(int64_t width, int64_t layers, int64_t heads, int64_t mlp_ratio) {
  ExactStack s;
  s.heads = heads;
  const int64_t d = width, h = mlp_ratio * width;
  for (int64_t i = 0; i < layers; ++i)
    s.blocks.push_back({torch::empty({d}, torch::kLong), torch::empty({d}, torch::kLong),
                        empty_linear(3 * d, d), empty_linear(d, d), empty_linear(h, d),
                        empty_linear(d, h), torch::empty({1}, torch::kLong),
                        torch::empty({1}, torch::kLong), torch::Tensor()});
  s.norm = torch::empty({d}, torch::kLong);
  return s;
}

// Every tensor of the model under its file name, weights marked (stored as int8).
template <typename Model, typename F>
void for_each_tensor(Model& m, F f) {
  auto linear = [&](const std::string& name, auto& l) {
    f(name + ".weight", l.weight, true);
    f(name + ".mult", l.mult, false);
  };
  auto stack = [&](const std::string& name, auto& s) {
    for (size_t i = 0; i < s.blocks.size(); ++i) {
      auto& b = s.blocks[i];
      const std::string p = name + ".layers." + std::to_string(i);
      f(p + ".norm1", b.norm1, false);
      f(p + ".norm2", b.norm2, false);
      linear(p + ".qkv", b.qkv);
      linear(p + ".out", b.out);
      linear(p + ".up", b.up);
      linear(p + ".down", b.down);
      f(p + ".score_mult", b.score_mult, false);
      f(p + ".value_mult", b.value_mult, false);
    }
    f(name + ".norm", s.norm, false);
  };
  f("global_bytes", m.global_bytes, false);
  f("global_start", m.global_start, false);
  f("global_position", m.global_position, false);
  f("local_bytes", m.local_bytes, false);
  f("local_position", m.local_position, false);
  stack("global", m.global);
  stack("local", m.local);
  linear("global_to_local", m.global_to_local);
  linear("head", m.head);
  f("attn_table", m.attn_table, false);
  f("head_table", m.head_table, false);
}

// The bounds every model must keep so that no int64 intermediate overflows and nothing is
// divided by zero, whatever the input bytes (model/EXACT.md, "Bounds"). Quantization and
// loading both check them, so a hostile model file is refused rather than computed with.
void check_bounds(const ExactModel& m) {
  const Config& c = m.config;
  if (c.activation != "relu2")
    throw Error(ErrorCode::kModelMismatch, "exact model: only the relu2 activation is exact, not " +
                                               c.activation);
  // Widths up to 4096 keep sums of r^2 (4096 * 2^50) and products acc * mult
  // (16384 * 127 * 128 * 2^34) below 2^63.
  for (int64_t width : {c.global_width, c.local_width})
    if (width > 4096 || width * c.mlp_ratio > 16384)
      throw Error(ErrorCode::kModelMismatch,
                  "exact model: widths above 4096 (or MLPs above 16384) are not supported");
  constexpr int64_t kMultMax = int64_t(1) << 34, kGainMax = int64_t(1) << 36;
  // num * value_mult with num <= 127 * 4096 * keys, doubled by the rounding division.
  const int64_t keys = std::max(c.context, c.patch);
  const int64_t value_max = (int64_t(1) << 62) / (int64_t(256) * 4096 * keys);
  for_each_tensor(m, [&](const std::string& name, const Tensor& t, bool weight) {
    auto ends = [&](const char* suffix) {
      const std::string s = suffix;
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    int64_t lo = -kMultMax, hi = kMultMax;
    if (weight) lo = -127, hi = 127;
    else if (ends("up.mult")) lo = 0;  // ReLU^2 squares t, which must stay >= 0
    else if (ends("norm1") || ends("norm2") || ends("norm")) lo = -kGainMax, hi = kGainMax;
    else if (ends("score_mult")) lo = 0, hi = int64_t(1) << 30;
    else if (ends("value_mult")) lo = -value_max, hi = value_max;
    else if (name == "attn_table") lo = 0, hi = int64_t(1) << kAttnBits;
    else if (name == "head_table") lo = 0, hi = int64_t(1) << kHeadBits;
    else if (name.find("bytes") != std::string::npos || name.find("position") != std::string::npos ||
             name.find("start") != std::string::npos)
      lo = -kResidualMax, hi = kResidualMax;
    if (!t.numel()) return;
    // Extremes in the tensor's own type (int8 or float32 weights hold small integers exactly):
    // converting whole weight matrices to int64 first cost more than the rest of loading.
    // As doubles, a float NaN compares false and is refused.
    const auto [low, high] = torch::aminmax(t);
    const bool within = t.is_floating_point()
                            ? low.item<double>() >= double(lo) && high.item<double>() <= double(hi)
                            : low.item<int64_t>() >= lo && high.item<int64_t>() <= hi;
    if (!within)
      throw Error(ErrorCode::kModelMismatch, "exact model: tensor " + name + " has values outside " +
                                                 std::to_string(lo) + ".." + std::to_string(hi));
  });
  // The largest score and the likeliest byte must weigh something: no division by zero.
  if (m.attn_table[0].item<int64_t>() < 1 || m.head_table[0].item<int64_t>() < 1)
    throw Error(ErrorCode::kModelMismatch, "exact model: an exponential table starts at 0");
  // Left-out keys take the last entry: it must weigh nothing, as in the cached pass.
  if (m.attn_table[kAttnLength - 1].item<int64_t>() != 0 ||
      m.head_table[kHeadLength - 1].item<int64_t>() != 0)
    throw Error(ErrorCode::kModelMismatch, "exact model: an exponential table does not end at 0");
}

}  // namespace

Checkpoint ExactModel::to_checkpoint() const {
  Checkpoint c;
  c.config_json = config.to_json();
  c.train_json = kExactKind;
  // Integer tensors whose values fit go in as int32 (embeddings and positions, in residual
  // units of at most 2^25: half the bytes of int64); the rest (multipliers) as int64.
  for_each_tensor(*this, [&](const std::string& name, const Tensor& t, bool weight) {
    const Tensor v = t.cpu();
    const bool fits = v.numel() == 0 || (v.min().item<int64_t>() >= INT32_MIN &&
                                         v.max().item<int64_t>() <= INT32_MAX);
    c.tensors.push_back({name, weight ? v.to(torch::kChar) : fits ? v.to(torch::kInt) : v});
  });
  return c;
}

ExactModel ExactModel::from_checkpoint(const Checkpoint& c, bool as_stored) {
  if (c.train_json != kExactKind)
    throw Error(ErrorCode::kModelMismatch,
                "not an exact model file (a float checkpoint? convert it with mbz quantize)");
  ExactModel m;
  m.config = config_from_json(c.config_json);
  // Tensors of the shapes the config implies, filled from the file below.
  const Config& cf = m.config;
  m.global = empty_stack(cf.global_width, cf.global_layers, cf.global_heads, cf.mlp_ratio);
  m.local = empty_stack(cf.local_width, cf.local_layers, cf.local_heads, cf.mlp_ratio);
  std::map<std::string, const Tensor*> by_name;
  for (const NamedTensor& t : c.tensors) by_name[t.name] = &t.tensor;
  const std::vector<int64_t> residual_shapes[] = {
      {kVocab, m.config.global_width / m.config.patch}, {kModalities, m.config.global_width},
      {m.config.context, m.config.global_width}, {kVocab, m.config.local_width},
      {m.config.patch, m.config.local_width}};
  m.global_bytes = torch::empty(residual_shapes[0], torch::kLong);
  m.global_start = torch::empty(residual_shapes[1], torch::kLong);
  m.global_position = torch::empty(residual_shapes[2], torch::kLong);
  m.local_bytes = torch::empty(residual_shapes[3], torch::kLong);
  m.local_position = torch::empty(residual_shapes[4], torch::kLong);
  m.global_to_local = empty_linear(cf.local_width, cf.global_width / cf.patch);
  m.head = empty_linear(kByteValues, cf.local_width);
  m.attn_table = torch::empty({kAttnLength}, torch::kLong);
  m.head_table = torch::empty({kHeadLength}, torch::kLong);
  for_each_tensor(m, [&](const std::string& name, Tensor& t, bool weight) {
    const auto found = by_name.find(name);
    if (found == by_name.end())
      throw Error(ErrorCode::kModelMismatch, "exact model file lacks tensor " + name);
    const Tensor& stored = *found->second;
    const bool type_ok = weight ? stored.scalar_type() == torch::kChar
                                : stored.scalar_type() == torch::kLong ||
                                      stored.scalar_type() == torch::kInt;
    if (stored.sizes() != t.sizes() || !type_ok)
      throw Error(ErrorCode::kModelMismatch, "exact model file: tensor " + name +
                                                 " has the wrong shape or type");
    if (as_stored)
      t = stored;
    else
      t = weight ? stored.to(torch::kFloat)
                 : stored.to(torch::kLong, /*non_blocking=*/false, /*copy=*/true);
  });
  check_bounds(m);
  add_score_steps(m.global);
  add_score_steps(m.local);
  return m;
}

ExactModel ExactModel::quantize(Megabyte& model, const Tensor& calibration,
                                const Tensor& modality) {
  torch::NoGradGuard no_grad;
  model->eval();
  const Config& c = model->config;
  const int64_t t = calibration.size(1), p = c.patch;
  const int64_t k = (t + p - 1) / p;
  const torch::Device device = model->global_start.device();
  StackRanges global_ranges, local_ranges;
  // The float forward pass of MegabyteImpl::forward, with the ranges noted on the way, one
  // window at a time: the ranges are maxima, and a batch of long windows would materialize
  // every attention matrix at once (a base model's 8 windows of 16 KiB: gigabytes, and an
  // hour of page faults on a 2-core machine).
  for (int64_t w = 0; w < calibration.size(0); ++w) {
    const Tensor bytes = calibration.narrow(0, w, 1).to(device);
    const Tensor mod = modality.narrow(0, w, 1).to(device);
    const Tensor patches =
        torch::nn::functional::pad(bytes, torch::nn::functional::PadFuncOptions({0, k * p - t}).value(kPadId))
            .view({1, k, p});
    const Tensor start = model->global_start.index_select(0, mod).unsqueeze(1);
    const Tensor global_in = torch::cat({start, model->embed_patches(patches.narrow(1, 0, k - 1))}, 1) +
                             model->global_position.narrow(0, 0, k);
    const Tensor global_out = measure_stack(model->global, global_in, global_ranges);
    const Tensor local_ids = torch::cat(
        {torch::full({1, k, 1}, kStartId, patches.options()), patches.narrow(2, 0, p - 1)}, 2);
    const Tensor local_in =
        model->global_to_local(global_out) + model->local_bytes(local_ids) + model->local_position;
    measure_stack(model->local, local_in.reshape({k, p, c.local_width}), local_ranges);
  }
  return quantize_with(model, global_ranges, local_ranges);
}

namespace {

// The running range of one FakeQuant site; an error if training never measured it.
double trained_range(const Tensor& range) {
  if (!range.defined())
    throw Error(ErrorCode::kUsageBadArgument,
                "quantize: the network has not run with fake quantization, so it has no "
                "activation ranges of its own");
  return range.item<double>();
}

StackRanges trained_ranges(Transformer& stack) {
  StackRanges ranges;
  for (const auto& module : *stack->blocks) {
    const BlockImpl& b = *module->as<Block>();
    ranges.blocks.push_back({trained_range(b.norm1_range), trained_range(b.attn->q_range),
                             trained_range(b.attn->k_range), trained_range(b.attn->v_range),
                             trained_range(b.attn->attended_range), trained_range(b.norm2_range),
                             trained_range(b.hidden_range)});
  }
  ranges.norm = trained_range(stack->norm_range);
  return ranges;
}

}  // namespace

ExactModel ExactModel::quantize_trained(Megabyte& model) {
  torch::NoGradGuard no_grad;
  const StackRanges global_ranges = trained_ranges(model->global);
  const StackRanges local_ranges = trained_ranges(model->local);
  return quantize_with(model, global_ranges, local_ranges);
}

ExactModel ExactModel::quantize_with(Megabyte& model, const StackRanges& global_ranges,
                                     const StackRanges& local_ranges) {
  torch::NoGradGuard no_grad;
  const Config& c = model->config;
  ExactModel q;
  q.config = c;
  q.global_bytes = to_residual_units(model->global_bytes->weight);
  q.global_start = to_residual_units(model->global_start);
  q.global_position = to_residual_units(model->global_position);
  q.local_bytes = to_residual_units(model->local_bytes->weight);
  q.local_position = to_residual_units(model->local_position);
  q.global = quantize_stack(model->global, global_ranges);
  q.local = quantize_stack(model->local, local_ranges);
  const double global_scale = scale_of(global_ranges.norm), local_scale = scale_of(local_ranges.norm);
  q.global_to_local = quantize_linear(model->global_to_local_proj, global_scale,
                                      [](size_t) { return 1.0; }, kMultBits + kResidualBits);
  q.head = quantize_linear(model->head, local_scale, [](size_t) { return double(kHeadSteps); },
                           kMultBits);
  q.attn_table = exp_table(kAttnLength, kAttnSteps, kAttnBits);
  q.head_table = exp_table(kHeadLength, kHeadSteps, kHeadBits);
  check_bounds(q);
  return q;
}

ExactModel ExactModel::to(torch::Device d) const {
  ExactModel m;
  m.config = config;
  m.global_bytes = global_bytes.to(d);
  m.global_start = global_start.to(d);
  m.global_position = global_position.to(d);
  m.local_bytes = local_bytes.to(d);
  m.local_position = local_position.to(d);
  m.global = stack_to(global, d);
  m.local = stack_to(local, d);
  m.global_to_local = linear_to(global_to_local, d);
  m.head = linear_to(head, d);
  m.attn_table = attn_table.to(d);
  m.head_table = head_table.to(d);
  return m;
}

Tensor ExactModel::forward(const Tensor& bytes, const Tensor& modality) const {
  torch::NoGradGuard no_grad;
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const int64_t b = bytes.size(0), t = bytes.size(1), p = config.patch;
  const int64_t k = (t + p - 1) / p, dg = config.global_width;
  if (t == 0 || k > config.context)
    throw Error(ErrorCode::kUsageBadArgument,
                "exact model: " + std::to_string(t) + " bytes, expected 1 to " +
                    std::to_string(config.context_bytes()));
  const Tensor patches = torch::nn::functional::pad(
                             bytes, torch::nn::functional::PadFuncOptions({0, k * p - t}).value(kPadId))
                             .view({b, k, p});
  const Tensor start = global_start.index_select(0, modality).unsqueeze(1);         // [B, 1, Dg]
  const Tensor embedded = gather_rows(global_bytes, patches.narrow(1, 0, k - 1)).view({b, k - 1, dg});
  const Tensor global_in =
      add_residual(torch::cat({start, embedded}, 1), global_position.narrow(0, 0, k));
  Tensor global_out;  // [B, K, Dg]
  {
    const StackName name("forward.global.");
    Stage stage("all");
    global_out = stack_forward(global, global_in, attn_table);
  }
  const Tensor condition = to_residual(global_out.view({b, k, p, dg / p}), global_to_local);
  const Tensor local_ids = torch::cat(
      {torch::full({b, k, 1}, kStartId, patches.options()), patches.narrow(2, 0, p - 1)}, 2);
  const Tensor local_in =
      add_residual(add_residual(condition, gather_rows(local_bytes, local_ids)), local_position);
  Tensor local_out;
  {
    const StackName name("forward.local.");
    Stage stage("all");
    local_out = stack_forward(local, local_in.view({b * k, p, config.local_width}), attn_table);
  }
  Stage stage("forward.head");
  return output_weights(*this, local_out).view({b, k * p, kByteValues}).narrow(1, 0, t);
}

std::string modality_tensor_name(size_t m, const std::string& name) {
  return "modality" + std::to_string(m) + "/" + name;
}

Checkpoint checkpoint_for_modality(const Checkpoint& file, size_t m, bool* has_own) {
  Checkpoint c;
  c.config_json = file.config_json;
  c.train_json = file.train_json;
  c.step = file.step;
  std::map<std::string, Tensor> own;
  const std::string prefix = modality_tensor_name(m, "");
  for (const NamedTensor& t : file.tensors)
    if (t.name.starts_with(prefix)) own[t.name.substr(prefix.size())] = t.tensor;
  if (has_own) *has_own = !own.empty();
  for (const NamedTensor& t : file.tensors) {
    if (t.name.starts_with("modality")) continue;
    const auto found = own.find(t.name);
    c.tensors.push_back({t.name, found == own.end() ? t.tensor : found->second});
  }
  return c;
}

Tensor cdf_tables(const Tensor& weights) {
  // Step for step the procedure of codec/range_coder.cpp, on whole rows.
  constexpr int64_t kTotal = 1 << 16, kSpare = kTotal - 256;
  Stage stage("cdf_tables");
  const Tensor sum = weights.sum(-1, /*keepdim=*/true);
  // The heaviest symbol, the lowest one on ties.
  const Tensor index = torch::arange(256, weights.options());
  const Tensor heaviest =
      torch::where(weights == weights.amax(-1, true), index, int64_t{256}).amin(-1, true);
  // The smallest shift that brings the sum below 2^32: the sum's bit length less 32. The
  // double nearest the sum has the sum's bit length as its exponent, or one more where it
  // rounds up to a power of two, which one comparison takes back (sum 0: exponent 0).
  Tensor bits = std::get<1>(torch::frexp(sum.to(torch::kDouble))).to(torch::kLong);
  bits = bits - (torch::bitwise_right_shift(sum, (bits - 1).clamp_min(0)) == 0).to(torch::kLong) *
                    (bits > 0).to(torch::kLong);
  const Tensor shift = (bits - 32).clamp_min(0);
  const Tensor shifted = torch::bitwise_right_shift(weights, shift);
  const Tensor total = shifted.sum(-1, true);
  const Tensor scale = torch::div(torch::full_like(total, kSpare << 32), total.clamp_min(1),
                                  "floor");
  Tensor freq = torch::where(total > 0, 1 + torch::bitwise_right_shift(shifted * scale, 32),
                             torch::full_like(shifted, kTotal / 256));
  const Tensor rest = kTotal - freq.sum(-1, true);
  freq = freq + torch::where(index == heaviest, rest, torch::zeros_like(rest));
  std::vector<int64_t> first = weights.sizes().vec();
  first.back() = 1;
  return torch::cat({torch::zeros(first, freq.options()), freq.cumsum(-1)}, -1).to(torch::kInt);
}

namespace {
bool on_unless_environment_says_0(const char* name) {
  const char* value = std::getenv(name);
  return !value || std::string(value) != "0";
}
}  // namespace

#if MBZ_EXACT_CUDA_KERNELS
namespace {

// The model's tensors as exact_cuda.h's kernels take them: packed weights, int64 gains,
// multipliers and embeddings, the attention table as int32. The stacks' rows and caches
// are set by each user (with_rows).
struct KernelWeights {
  cuda::Stack global, local;
  cuda::Linear to_local, head;
  const int64_t *global_start = nullptr, *global_bytes = nullptr, *global_position = nullptr;
  const int64_t *local_bytes = nullptr, *local_position = nullptr, *head_table = nullptr;
  std::vector<Tensor> memory;  // what the pointers above point into
  bool supported = false;      // the model's shapes suit the kernels (cuda::unsupported)

  explicit KernelWeights(const ExactModel& m) {
    // The shapes first, nothing copied, so that a model the kernels do not suit costs
    // nothing; then the tensors.
    for (bool pack : {false, true}) {
      pack_ = pack;
      global = stack(m.global, m.attn_table, m.config.context);
      local = stack(m.local, m.attn_table, m.config.patch);
      to_local = linear(m.global_to_local);
      head = linear(m.head);
      if (!pack) supported = suits(m);
      if (!supported) return;
    }
    global_start = longs(m.global_start);
    global_bytes = longs(m.global_bytes);
    global_position = longs(m.global_position);
    local_bytes = longs(m.local_bytes);
    local_position = longs(m.local_position);
    head_table = longs(m.head_table);
  }

  // Whether the kernels take the model: its device is the current one (they launch there),
  // and its shapes suit them, the ends of the stacks included.
  bool suits(const ExactModel& m) const {
    const int64_t patch = m.config.patch;
    return m.device().index() == c10::cuda::current_device() && !cuda::unsupported(global) &&
           !cuda::unsupported(local) && head.out == kByteValues && head.in == local.width &&
           global.width % patch == 0 && to_local.in == global.width / patch &&
           to_local.in % 16 == 0 && to_local.out == local.width;
  }

  const int64_t* longs(const Tensor& t) {
    if (!pack_) return nullptr;
    memory.push_back(t.to(torch::kLong).contiguous());
    return memory.back().data_ptr<int64_t>();
  }
  // Word [i][o] holds inputs 4i .. 4i + 3 of output o, the first in the lowest byte.
  cuda::Linear linear(const ExactLinear& l) {
    const int64_t out = l.weight.size(0), in = l.weight.size(1);
    cuda::Linear c;
    c.in = int(in);
    c.out = int(out);
    if (!pack_) return c;
    const Tensor w = l.weight.to(torch::kCPU).to(torch::kChar).contiguous();
    const Tensor packed = torch::zeros({(in + 3) / 4, out}, torch::kInt);
    const int8_t* rows = w.data_ptr<int8_t>();
    auto* words = reinterpret_cast<uint32_t*>(packed.data_ptr<int32_t>());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        words[i / 4 * out + o] |= uint32_t(uint8_t(rows[o * in + i])) << (8 * (i % 4));
    memory.push_back(packed.to(l.weight.device()));
    c.weight = memory.back().data_ptr<int32_t>();
    c.mult = longs(l.mult);
    return c;
  }
  cuda::Stack stack(const ExactStack& s, const Tensor& attn_table, int64_t capacity) {
    cuda::Stack c;
    c.width = int(s.norm.size(0));
    c.heads = int(s.heads);
    c.layers = int(s.blocks.size());
    c.capacity = int(capacity);
    if (c.layers > cuda::kMaxLayers) return c;  // refused by cuda::unsupported
    for (size_t i = 0; i < s.blocks.size(); ++i) {
      const ExactBlock& b = s.blocks[i];
      cuda::Layer& l = c.layer[i];
      l.norm1 = longs(b.norm1);
      l.norm2 = longs(b.norm2);
      l.qkv = linear(b.qkv);
      l.out = linear(b.out);
      l.up = linear(b.up);
      l.down = linear(b.down);
      if (!pack_) continue;
      l.score_mult = b.score_mult.item<int64_t>();
      l.value_mult = b.value_mult.item<int64_t>();
    }
    c.norm = longs(s.norm);
    if (!pack_) return c;
    memory.push_back(attn_table.to(torch::kInt).contiguous());
    c.attn_table = memory.back().data_ptr<int32_t>();
    return c;
  }

 private:
  bool pack_ = false;  // false: shapes only
};

// `s` (a KernelWeights stack) working on `rows` rows, rows_per_cache to a cache of
// `capacity` positions (at most the stack's), its position on the device or none
// (cuda::Stack::rows_per_cache): the caches and scratch rows as new tensors, kept in
// `memory`. Positions are always written before they are read, so nothing is cleared.
cuda::Stack with_rows(cuda::Stack s, std::vector<Tensor>& memory, int64_t rows,
                      int64_t rows_per_cache, int64_t capacity, const Tensor& position,
                      torch::Device device) {
  auto empty = [&](std::vector<int64_t> shape, torch::ScalarType type) {
    memory.push_back(torch::empty(shape, torch::dtype(type).device(device)));
    return memory.back();
  };
  if (rows > std::numeric_limits<int>::max())
    throw Error(ErrorCode::kUsageBadArgument, "exact model: more than 2^31 rows at once on CUDA");
  const int64_t caches = rows / rows_per_cache;
  s.capacity = int(capacity);
  for (int i = 0; i < s.layers; ++i) {
    const std::vector<int64_t> cache{caches, s.heads, capacity, s.width / s.heads};
    s.layer[i].keys = empty(cache, torch::kChar).data_ptr<int8_t>();
    s.layer[i].values = empty(cache, torch::kChar).data_ptr<int8_t>();
  }
  s.rows = int(rows);
  s.rows_per_cache = int(rows_per_cache);
  s.position = position.defined() ? position.data_ptr<int64_t>() : nullptr;
  s.residual = empty({rows, s.width}, torch::kInt).data_ptr<int32_t>();
  s.query = empty({rows, s.width}, torch::kChar).data_ptr<int8_t>();
  s.attended = empty({rows, s.width}, torch::kChar).data_ptr<int8_t>();
  return s;
}

void check_launch(const char* error) {
  if (error) throw std::runtime_error(std::string("exact model: CUDA kernel: ") + error);
}
void* current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

}  // namespace

// The decoder's kernels: the weights, and its stacks with a row a stream.
struct ExactDecoder::Kernels {
  KernelWeights weights;
  cuda::Stack global, local;
  std::vector<Tensor> memory;
  explicit Kernels(const ExactModel& m) : weights(m) {}
};

void ExactDecoder::kernel_global_step() {
  const Kernels& k = *kernels_;
  const KernelWeights& w = k.weights;
  void* stream = current_stream();
  const int patch = int(model_.config.patch);
  check_launch(cuda::global_input(k.global, w.global_start, modality_.data_ptr<int64_t>(),
                                  w.global_bytes, patch_.data_ptr<int64_t>(), w.global_position,
                                  patch_index_.data_ptr<int64_t>(), patch, stream));
  check_launch(cuda::stack_step(k.global, stream));
  check_launch(cuda::to_local(k.global, w.to_local, patch, condition_.data_ptr<int32_t>(), stream));
}

void ExactDecoder::kernel_local_step() {
  const Kernels& k = *kernels_;
  const KernelWeights& w = k.weights;
  void* stream = current_stream();
  check_launch(cuda::local_input(k.local, condition_.data_ptr<int32_t>(), w.local_bytes,
                                 previous_.data_ptr<int64_t>(), w.local_position,
                                 byte_index_.data_ptr<int64_t>(), int(model_.config.patch), stream));
  check_launch(cuda::stack_step(k.local, stream));
  check_launch(cuda::head_tables(k.local, w.head, w.head_table, weights_.data_ptr<int64_t>(),
                                 tables_.data_ptr<int32_t>(), stream));
}

int64_t cuda_free_bytes() {
  size_t free = 0;
  return cuda::free_memory(&free) ? -1 : int64_t(free);
}

struct ExactPass::Impl {
  const ExactModel& model;
  KernelWeights weights;
  std::array<Tensor, 2> host, ready;  // start_to_host's slots: pinned buffers, their views
  std::array<at::cuda::CUDAEvent, 2> copied;
  explicit Impl(const ExactModel& m) : model(m), weights(m) {}
};

std::unique_ptr<ExactPass> ExactPass::make(const ExactModel& model) {
  if (!model.device().is_cuda() || !on_unless_environment_says_0("MBZ_CUDA_KERNELS")) return nullptr;
  auto impl = std::make_unique<Impl>(model);
  if (!impl->weights.supported) return nullptr;
  std::unique_ptr<ExactPass> pass(new ExactPass);
  pass->impl_ = std::move(impl);
  return pass;
}

Tensor ExactPass::intervals(const Tensor& bytes, const Tensor& modality) {
  torch::NoGradGuard no_grad;
  const ExactModel& m = impl_->model;
  const KernelWeights& w = impl_->weights;
  const Config& c = m.config;
  const int64_t n = bytes.size(0), t = bytes.size(1), p = c.patch, k = (t + p - 1) / p;
  if (t > c.context_bytes())
    throw Error(ErrorCode::kUsageBadArgument, "exact pass: windows end at the context");
  const torch::Device device = m.device();
  // The window padded to whole patches (bytes past the end reach no earlier position).
  const Tensor padded = torch::zeros({n, k * p}, torch::dtype(torch::kLong).device(device));
  padded.narrow(1, 0, t).copy_(bytes);
  const Tensor mod = modality.to(device, torch::kLong).contiguous();
  std::vector<Tensor> memory;
  void* stream = current_stream();
  std::optional<Stage> stage(std::in_place, "pass.global");
  const cuda::Stack global = with_rows(w.global, memory, n * k, k, k, Tensor(), device);
  check_launch(cuda::global_pass_input(global, w.global_start, mod.data_ptr<int64_t>(),
                                       w.global_bytes, padded.data_ptr<int64_t>(), int(k * p),
                                       w.global_position, int(p), stream));
  check_launch(cuda::stack_step(global, stream));
  const Tensor condition = torch::empty({n * k * p, c.local_width}, padded.options().dtype(torch::kInt));
  check_launch(cuda::to_local(global, w.to_local, int(p), condition.data_ptr<int32_t>(), stream));
  memory.clear();  // the global rows are done with (the stream orders their reuse)
  stage.emplace("pass.local");
  const cuda::Stack local = with_rows(w.local, memory, n * k * p, p, p, Tensor(), device);
  check_launch(cuda::local_pass_input(local, condition.data_ptr<int32_t>(), w.local_bytes,
                                      padded.data_ptr<int64_t>(), w.local_position, int(p),
                                      kStartId, stream));
  check_launch(cuda::stack_step(local, stream));
  stage.emplace("pass.head");
  const Tensor out = torch::empty({n, k * p, 2}, padded.options().dtype(torch::kInt));
  check_launch(cuda::head_intervals(local, w.head, w.head_table, padded.data_ptr<int64_t>(),
                                    out.data_ptr<int32_t>(), stream));
  return out.narrow(1, 0, t);
}

void ExactPass::start_to_host(const Tensor& bytes, const Tensor& modality, int slot) {
  const Tensor out = intervals(bytes, modality);
  Tensor& host = impl_->host.at(slot);
  if (!host.defined() || host.numel() < out.numel())
    host = torch::empty({out.numel()}, torch::dtype(torch::kInt).pinned_memory(true));
  Tensor& ready = impl_->ready[slot];
  ready = host.narrow(0, 0, out.numel()).view(out.sizes());
  ready.copy_(out, /*non_blocking=*/true);  // out's memory is reused only after the copy
  impl_->copied[slot].record(c10::cuda::getCurrentCUDAStream());
}

const Tensor& ExactPass::wait(int slot) {
  impl_->copied.at(slot).synchronize();
  return impl_->ready[slot];
}
#else
struct ExactDecoder::Kernels {};
void ExactDecoder::kernel_global_step() {}
void ExactDecoder::kernel_local_step() {}
struct ExactPass::Impl {};
std::unique_ptr<ExactPass> ExactPass::make(const ExactModel&) { return nullptr; }
int64_t cuda_free_bytes() { return -1; }
Tensor ExactPass::intervals(const Tensor&, const Tensor&) { return Tensor(); }
void ExactPass::start_to_host(const Tensor&, const Tensor&, int) {}
const Tensor& ExactPass::wait(int) {
  static const Tensor none;
  return none;
}
#endif
ExactPass::~ExactPass() = default;

ExactDecoder::ExactDecoder(const ExactModel& model, const Tensor& modality)
    : ExactDecoder(model, modality, on_unless_environment_says_0("MBZ_CUDA_GRAPHS")) {}

ExactDecoder::ExactDecoder(const ExactModel& model, const Tensor& modality, bool cuda_graphs)
    : ExactDecoder(model, modality, cuda_graphs, on_unless_environment_says_0("MBZ_CUDA_KERNELS")) {}

ExactDecoder::ExactDecoder(const ExactModel& model, const Tensor& modality, bool cuda_graphs,
                           bool cuda_kernels)
    : model_(model), modality_(modality.to(model.device(), torch::kLong)), n_(modality.size(0)) {
  const Config& c = model.config;
  patch_index_ = torch::zeros({1}, modality_.options());
  byte_index_ = torch::zeros({1}, modality_.options());
#if MBZ_EXACT_CUDA_KERNELS
  if (cuda_kernels && model.device().is_cuda()) {
    auto k = std::make_unique<Kernels>(model);
    if (k->weights.supported) {
      const torch::Device device = model.device();
      k->global = with_rows(k->weights.global, k->memory, n_, 1, c.context, patch_index_, device);
      k->local = with_rows(k->weights.local, k->memory, n_, 1, c.patch, byte_index_, device);
      weights_ = torch::zeros({n_, kByteValues}, modality_.options());
      tables_ = torch::zeros({n_, kByteValues + 1}, modality_.options().dtype(torch::kInt));
      kernels_ = std::move(k);
    }
  }
#else
  (void)cuda_kernels;
#endif
  if (!kernels_) {
    global_caches_ = new_caches(model.global, n_, c.context, model.device());
    local_caches_ = new_caches(model.local, n_, c.patch, model.device());
  }
  patch_ = torch::zeros({n_, c.patch}, modality_.options());
  previous_ = torch::full({n_}, kStartId, modality_.options());
  // The kernels keep the condition as int32, clamped (exact_cuda.h's to_local).
  condition_ = torch::zeros({n_, c.patch, c.local_width},
                            modality_.options().dtype(kernels_ ? torch::kInt : torch::kLong));
  // The kernels read the position from the device and attend over exactly the keys before
  // it: one global graph does for every patch.
  for (int64_t keys = kernels_ ? c.context : std::min<int64_t>(kFirstKeys, c.context);;
       keys = std::min(keys < kStepKeysUpTo ? keys + kFirstKeys : 2 * keys, c.context)) {
    key_counts_.push_back(keys);
    if (keys == c.context) break;
  }
  global_graphs_.resize(key_counts_.size());
  graphs_ = cuda_graphs && model.device().is_cuda();
}

size_t ExactDecoder::bucket(int64_t patch) const {
  size_t b = 0;
  while (key_counts_[b] <= patch) ++b;
  return b;
}

ExactDecoder::~ExactDecoder() = default;

// The global stack on the patch before patch_index_ (the start patch for the first), its
// attention over the first `keys` patches -> the local model's condition for every byte of
// the next patch, [N, P, Dl], into condition_.
void ExactDecoder::global_step(int64_t keys) {
  if (kernels_) return kernel_global_step();
  const Config& c = model_.config;
  const Tensor start = model_.global_start.index_select(0, modality_).unsqueeze(1);  // [N, 1, Dg]
  const Tensor bytes = gather_rows(model_.global_bytes, patch_).view({n_, 1, c.global_width});
  Tensor in = torch::where(patch_index_.eq(0).view({1, 1, 1}), start, bytes);
  in = add_residual(in, model_.global_position.index_select(0, patch_index_));
  const StackName name("decoder.global.");
  const Tensor g =
      stack_step(model_.global, in, global_caches_, model_.attn_table, patch_index_, keys);
  condition_.copy_(
      to_residual(g.view({n_, c.patch, c.global_width / c.patch}), model_.global_to_local));
}

// The local stack on byte byte_index_ of the patch -> weights of the next byte, [N, 256].
Tensor ExactDecoder::local_step() {
  if (kernels_) {
    kernel_local_step();
    return weights_;
  }
  const Tensor in = add_residual(
      add_residual(condition_.index_select(1, byte_index_).squeeze(1),
                   gather_rows(model_.local_bytes, previous_)),
      model_.local_position.index_select(0, byte_index_));
  const StackName name("decoder.local.");
  const Tensor h =
      stack_step(model_.local, in.unsqueeze(1), local_caches_, model_.attn_table, byte_index_,
                 model_.config.patch);
  return output_weights(model_, h.squeeze(1));
}

void ExactDecoder::step(bool tables) {
  torch::NoGradGuard no_grad;
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  if (pending_)
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: next_weights() twice without push()");
  const Config& c = model_.config;
  const int64_t j = position_ % c.patch, k = position_ / c.patch;
  if (position_ >= c.context_bytes())
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: streams end at the context, " +
                                                  std::to_string(c.context_bytes()) + " bytes");
  patch_index_.fill_(k);
  byte_index_.fill_(j);
  // The global step attends over the fewest patches of key_counts_ that hold this one.
  const size_t b = bucket(k);
  // With graphs, the first patch runs eagerly (it initializes the libraries' state, which a
  // capture must not do); from the second patch on, the local step and the global step of
  // each key count are captured when first needed, then replayed.
  if (graphs_ && k >= 1 && j == 0 && !global_graphs_[b]) capture(b);
  if (local_graph_) {
    if (j == 0) {
      Stage stage("decoder.global");
      global_graphs_[b]->replay();
    }
    Stage stage("decoder.local");
    local_graph_->replay();
  } else {
    if (j == 0) {
      Stage stage("decoder.global");
      global_step(key_counts_[b]);
    }
    Stage stage("decoder.local");
    weights_ = local_step();
    if (tables && !kernels_) tables_ = cdf_tables(weights_);  // the kernels make them anyway
  }
  pending_ = true;
}

Tensor ExactDecoder::next_weights() {
  step(false);
  return local_graph_ || kernels_ ? weights_.clone() : weights_;  // not the next step's
}

Tensor ExactDecoder::next_tables() {
  step(true);
  return tables_;
}

Tensor ExactDecoder::next_symbols(const Tensor& targets) {
  step(true);
  torch::NoGradGuard no_grad;
  Stage stage("decoder.symbols");
  // c[s] <= target < c[s + 1]: s is the number of c[1..256] at or below the target.
  const Tensor t = targets.view({n_, 1});
  const Tensor symbol = tables_.narrow(1, 1, kByteValues).le(t).sum(1, true);  // int64
  const Tensor start = tables_.gather(1, symbol), end = tables_.gather(1, symbol + 1);
  return torch::cat({symbol.to(torch::kInt), start, end - start}, 1);
}

void ExactDecoder::restart() {
  position_ = 0;
  pending_ = false;
  patch_.zero_();
  previous_.fill_(kStartId);
}

void ExactDecoder::push(const Tensor& bytes) {
  if (!pending_)
    throw Error(ErrorCode::kUsageBadArgument, "exact decoder: push() without next_weights()");
  const int64_t j = position_ % model_.config.patch;
  patch_.select(1, j).copy_(bytes);
  pending_ = false;
  ++position_;
  // In place: a captured step reads these very tensors.
  if (position_ % model_.config.patch == 0)
    previous_.fill_(kStartId);
  else
    previous_.copy_(bytes);
}

#if MBZ_EXACT_CUDA_GRAPHS
void ExactDecoder::capture(size_t b) {
  // Segments decode in threads of their own, each with its decoder. Captures are
  // thread-local (another thread's CUDA calls neither break nor join them) and one at a
  // time, and nothing here synchronizes more than this thread's streams: a device-wide
  // synchronization in one thread while another captures failed both ("operation not
  // permitted when stream is capturing"; 64 and 256 MiB archives, session 16).
  static std::mutex one_capture_at_a_time;
  const std::lock_guard<std::mutex> lock(one_capture_at_a_time);
  c10::cuda::getCurrentCUDAStream().synchronize();
  StageClock::capturing = true;
  {
    // Captures run on a side stream; the graphs then replay on the current one. One eager
    // step on that stream first lets the libraries set up their state for it (cuBLAS
    // workspaces), which must not happen under capture; it writes the very keys and values
    // that the replay after the capture writes again.
    const c10::cuda::CUDAStreamGuard side(c10::cuda::getStreamFromPool());
    global_step(key_counts_[b]);
    if (!local_graph_) cdf_tables(local_step());
    c10::cuda::getCurrentCUDAStream().synchronize();  // the side stream
    global_graphs_[b] = std::make_unique<at::cuda::CUDAGraph>();
    global_graphs_[b]->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    global_step(key_counts_[b]);
    global_graphs_[b]->capture_end();
    if (!local_graph_) {
      local_graph_ = std::make_unique<at::cuda::CUDAGraph>();
      local_graph_->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      weights_ = local_step();
      if (!kernels_) tables_ = cdf_tables(weights_);
      local_graph_->capture_end();
    }
  }
  StageClock::capturing = false;
}
#else
void ExactDecoder::capture(size_t) { graphs_ = false; }
#endif

}  // namespace mbz::model

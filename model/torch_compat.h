// The differences between the LibTorch versions mbz builds against, in one place: Debian's
// 1.13 (CPU) and the 2.x inside PyTorch (CUDA). Everything else in model/ uses only API
// that exists unchanged in both.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace mbz::model::compat {

// 2.4 replaced the CUDA-only autocast switches with per-device ones (and 2.x deprecated,
// later removed, the old names).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define MBZ_TORCH_DEVICE_AUTOCAST 1
#endif
// scaled_dot_product_attention (flash / memory-efficient kernels) arrived in 2.0.
#if TORCH_VERSION_MAJOR >= 2
#define MBZ_TORCH_SDPA 1
#endif
// bmm with a float32 result from bfloat16 operands (out_dtype) on CUDA: in the 2.x releases
// we build against from 2.8 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 8)
#define MBZ_TORCH_BMM_OUT_DTYPE 1
#endif

// Whether bf16_bmm runs here: a CUDA device and a LibTorch with bmm's out_dtype.
inline bool has_bf16_bmm(const torch::Device& device) {
#ifdef MBZ_TORCH_BMM_OUT_DTYPE
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

// a [B, M, K] times b [B, K, N], both bfloat16, with float32 products summed in float32 into
// a float32 result. Only where has_bf16_bmm() says so.
inline torch::Tensor bf16_bmm(const torch::Tensor& a, const torch::Tensor& b) {
#ifdef MBZ_TORCH_BMM_OUT_DTYPE
  return at::bmm(a, b, at::kFloat);
#else
  (void)b;
  TORCH_CHECK(false, "bf16_bmm needs LibTorch 2.8 or later on CUDA");
  return a;
#endif
}

// While alive, CUDA ops run under bf16 autocast (matmuls in bf16, reductions in fp32).
// Does nothing when `enabled` is false, so CPU training stays fp32.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#ifdef MBZ_TORCH_DEVICE_AUTOCAST
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    previous_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~CudaAutocast() {
    if (!enabled_) return;
#ifdef MBZ_TORCH_DEVICE_AUTOCAST
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
#else
    at::autocast::set_enabled(previous_);
#endif
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

// Keeps scaled_dot_product_attention off cuDNN's backend (flash and memory-efficient
// kernels remain): with LibTorch 2.11 its training graph failed to execute
// (mha_graph.execute(...).is_good()) at 64 windows of 8 KiB per GPU.
inline void avoid_cudnn_attention() {
#ifdef MBZ_TORCH_DEVICE_AUTOCAST
  at::globalContext().setSDPUseCuDNN(false);
#endif
}

// x / rms(x) * weight over the last dim. 2.4 brought a single op for it (fused on CUDA in
// later releases); the formula it replaces takes five passes over the activations, in fp32
// under autocast.
inline torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
#ifdef MBZ_TORCH_DEVICE_AUTOCAST
  if (x.is_cuda()) return at::rms_norm(x, {x.size(-1)}, weight, eps);
#endif
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

// Causal self-attention for inference (no autograd), q, k, v: [B, H, T, d] -> [B, H, T, d].
// The plain formula below is slow on CPU for long T in three ways this avoids: it computes
// the masked half of q k^T, it materialises [B, H, T, T] scores and a [T, T] mask in
// several passes, and a trained model's sharp softmax leaves many probabilities in the
// subnormal range, where the probabilities-times-values product runs several times slower
// on x86 (measured 3x on the small preset's global attention, T = 1024; 7x with the rest
// of this function, on a 2-core EPYC under OpenBLAS 0.3.21). So: query blocks
// of kBlock rows against only the keys they may see, the scale and the mask folded into one
// baddbmm, and probabilities below 1e-30 set to zero (they change no output above float
// rounding). Same result as the formula up to float rounding.
inline torch::Tensor causal_attention_inference(const torch::Tensor& q, const torch::Tensor& k,
                                                const torch::Tensor& v) {
  constexpr int64_t kBlock = 256;
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3);
  const torch::Tensor q3 = q.reshape({b * h, t, d}), k3 = k.reshape({b * h, t, d}),
                      v3 = v.reshape({b * h, t, d});
  const int64_t block = std::min(t, kBlock);
  // bias[i][j] = -inf where key j comes after query i within the diagonal block.
  const torch::Tensor triangle =
      torch::full({block, block}, -std::numeric_limits<float>::infinity(), q.options()).triu(1);
  torch::Tensor out = torch::empty({b * h, t, d}, q.options());
  for (int64_t start = 0; start < t; start += block) {
    const int64_t n = std::min(block, t - start), end = start + n;
    torch::Tensor bias = torch::zeros({n, end}, q.options());
    bias.narrow(1, start, n).copy_(triangle.narrow(0, 0, n).narrow(1, 0, n));
    torch::Tensor p =
        at::baddbmm(bias, q3.narrow(1, start, n), k3.narrow(1, 0, end).transpose(1, 2), 1.0,
                    1.0 / std::sqrt(double(d)));  // [BH, n, end]
    p = torch::softmax(p, -1);
    at::threshold_(p, 1e-30, 0.0);
    out.narrow(1, start, n).copy_(torch::bmm(p, v3.narrow(1, 0, end)));
  }
  return out.view({b, h, t, d});
}

// Causal attention over short sequences (the local model's patches) on CUDA, as two batched
// products with the scores in fp32: flash attention pads every sequence to a tile of 64 to
// 128 rows, so a patch of 8 bytes used a sixteenth of its work, ran one thread block per
// (sequence, head), and failed to launch past 65535 sequences (64 windows of 8 KiB).
constexpr int64_t kShortSequence = 32;
inline torch::Tensor short_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                            const torch::Tensor& v) {
  const int64_t t = q.size(2);
  const torch::Tensor mask = torch::full({t, t}, -std::numeric_limits<float>::infinity(),
                                         q.options().dtype(torch::kFloat))
                                 .triu(1);
  const torch::Tensor scores =
      torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat) / std::sqrt(double(q.size(-1)));
  return torch::matmul(torch::softmax(scores + mask, -1).to(v.scalar_type()), v);
}

// softmax(q k^T / sqrt(d) + causal mask) v over the last two dims.
// q: [B, H, Tq, d]; k, v: [B, H, Tk, d]. With `causal`, query i (of the last Tq) sees keys
// up to Tk - Tq + i, so a single query against a cache (Tq = 1) needs causal = false.
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, bool causal) {
#ifdef MBZ_TORCH_SDPA
  if (causal && q.is_cuda() && q.size(2) == k.size(2) && q.size(2) <= kShortSequence)
    return short_causal_attention(q, k, v);
  if (!causal || q.size(2) == k.size(2))
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#endif
  // Training keeps the plain formula below (its autograd graph is the reference).
  if (causal && q.size(2) == k.size(2) && !torch::GradMode::is_enabled())
    return causal_attention_inference(q, k, v);
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(q.size(-1)));
  if (causal) {
    const int64_t tq = q.size(2), tk = k.size(2);
    const torch::Tensor mask =
        torch::ones({tq, tk}, torch::dtype(torch::kBool).device(q.device())).triu(tk - tq + 1);
    scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);
}

}  // namespace mbz::model::compat

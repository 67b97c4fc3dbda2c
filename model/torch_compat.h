// The differences between the LibTorch versions mbz builds against, in one place: Debian's
// 1.13 (CPU) and the 2.x inside PyTorch (CUDA). Everything else in model/ uses only API
// that exists unchanged in both.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>

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

// softmax(q k^T / sqrt(d) + causal mask) v over the last two dims.
// q: [B, H, Tq, d]; k, v: [B, H, Tk, d]. With `causal`, query i (of the last Tq) sees keys
// up to Tk - Tq + i, so a single query against a cache (Tq = 1) needs causal = false.
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, bool causal) {
#ifdef MBZ_TORCH_SDPA
  if (!causal || q.size(2) == k.size(2))
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#endif
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

// Float scoring of streams with a trained checkpoint, in batches of windows.
#include "model/score.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "codec/error.h"
#include "model/checkpoint.h"
#include "model/megabyte.h"

namespace mbz::model {

struct FloatScorer::Impl {
  Megabyte model{nullptr};
  torch::Device device{torch::kCPU};
  int64_t step = 0;
};

FloatScorer::FloatScorer(const std::string& path, const std::string& device)
    : impl_(std::make_unique<Impl>()) {
  if (device != "cpu" && device != "cuda")
    throw Error(ErrorCode::kUsageBadArgument, "device must be cpu or cuda, got " + device);
  if (device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::kUnsupportedFeature, "device cuda: LibTorch sees no CUDA device");
  impl_->device = torch::Device(device == "cuda" ? torch::kCUDA : torch::kCPU);
  const Checkpoint checkpoint = read_checkpoint(path);
  impl_->model = model_from_checkpoint(checkpoint, impl_->device);
  impl_->step = checkpoint.step;
}

FloatScorer::~FloatScorer() = default;

int64_t FloatScorer::context_bytes() const {
  return impl_->model->config.context_bytes();
}
int64_t FloatScorer::step() const {
  return impl_->step;
}
std::string FloatScorer::config_json() const {
  return impl_->model->config.to_json();
}

int64_t FloatScorer::window(int64_t requested) const {
  return requested > 0 ? std::min(requested, context_bytes()) : context_bytes();
}

double FloatScorer::bits(std::span<const uint8_t> stream, int modality, int64_t stride,
                         int64_t window_bytes) {
  const int64_t n = static_cast<int64_t>(stream.size());
  if (n == 0) return 0;
  if (modality < 0 || modality > 3)
    throw Error(ErrorCode::kUsageBadArgument, "score: modality " + std::to_string(modality));
  const int64_t context = window(window_bytes);
  if (stride <= 0 || stride > context) stride = context;
  const int64_t len = std::min(n, context);  // every window has this length

  // Windows [end - len, end) scoring bytes [from, end).
  struct Window {
    int64_t start, from, end;
  };
  std::vector<Window> windows{{0, 0, len}};
  for (int64_t end = len; end < n;) {
    const int64_t next = std::min(n, end + stride);
    windows.push_back({next - len, end, next});
    end = next;
  }

  torch::NoGradGuard no_grad;
  constexpr int64_t kBatch = 8;
  double nats = 0;
  for (size_t w = 0; w < windows.size(); w += kBatch) {
    const int64_t b = std::min<int64_t>(kBatch, windows.size() - w);
    torch::Tensor bytes = torch::empty({b, len}, torch::kUInt8);
    torch::Tensor scored = torch::zeros({b, len}, torch::kBool);
    for (int64_t i = 0; i < b; ++i) {
      const Window& win = windows[w + i];
      std::memcpy(bytes[i].data_ptr(), stream.data() + win.start, len);
      scored[i].narrow(0, win.from - win.start, win.end - win.from).fill_(true);
    }
    const torch::Tensor x = bytes.to(torch::kLong).to(impl_->device);
    const torch::Tensor logits =
        impl_->model->forward(x, torch::full({b}, int64_t(modality), x.options()));
    const torch::Tensor logp = torch::log_softmax(logits.to(torch::kFloat), -1);  // [b, len, 256]
    const torch::Tensor picked = logp.gather(2, x.unsqueeze(2)).squeeze(2).to(torch::kCPU);
    nats -= picked.masked_select(scored).to(torch::kDouble).sum().item<double>();
  }
  return nats / std::log(2.0);
}

}  // namespace mbz::model

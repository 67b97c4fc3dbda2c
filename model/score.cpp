// Float scoring of streams with a trained checkpoint, in batches of windows.
#include "model/score.h"

#include <algorithm>
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
  int64_t trained_window = 0;  // from the checkpoint's train_json; 0: not recorded
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
  impl_->trained_window = trained_window(checkpoint);
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
  if (requested <= 0) requested = impl_->trained_window;
  return requested > 0 ? std::min(requested, context_bytes()) : context_bytes();
}

double FloatScorer::bits(std::span<const uint8_t> stream, int modality, int64_t stride,
                         int64_t window_bytes) {
  const Stream one{stream, modality};
  return bits(std::span<const Stream>(&one, 1), stride, window_bytes)[0];
}

std::vector<double> FloatScorer::bits(std::span<const Stream> streams, int64_t stride,
                                      int64_t window_bytes) {
  const int64_t context = window(window_bytes);
  if (stride <= 0 || stride > context) stride = context;

  // Windows [start, start + len) of stream `stream` scoring its bytes [from, end). All the
  // windows of a stream have the same length: the context, or the stream if shorter.
  struct Window {
    size_t stream;
    int64_t start, from, end, len;
  };
  std::vector<Window> windows;
  for (size_t s = 0; s < streams.size(); ++s) {
    if (streams[s].modality < 0 || streams[s].modality >= kModalities)
      throw Error(ErrorCode::kUsageBadArgument,
                  "score: modality " + std::to_string(streams[s].modality));
    const int64_t n = static_cast<int64_t>(streams[s].bytes.size());
    if (n == 0) continue;
    const int64_t len = std::min(n, context);
    windows.push_back({s, 0, 0, len, len});
    for (int64_t end = len; end < n;) {
      const int64_t next = std::min(n, end + stride);
      windows.push_back({s, next - len, end, next, len});
      end = next;
    }
  }
  // Longest first, so that the windows of a batch have about the same length and padding
  // them to the longest wastes little.
  std::stable_sort(windows.begin(), windows.end(),
                   [](const Window& a, const Window& b) { return a.len > b.len; });

  // Batches of about kBatchBytes: one 8 KiB window of the small preset already fills the
  // CPU's matrix products, and larger batches only add memory traffic (measured on a
  // 2-core EPYC: a batch of 8 such windows ran 6x slower per byte than one).
  constexpr int64_t kBatchBytes = 8192;
  c10::InferenceMode inference;  // also selects the inference paths of the forward pass
  std::vector<double> nats(streams.size(), 0.0);
  for (size_t w = 0; w < windows.size();) {
    const int64_t len = windows[w].len;  // the longest of this batch
    const int64_t b =
        std::clamp<int64_t>(kBatchBytes / len, 1, static_cast<int64_t>(windows.size() - w));
    // Padding bytes (0) come after every scored byte of their row: the model is causal, so
    // they change no scored byte's prediction.
    torch::Tensor bytes = torch::zeros({b, len}, torch::kUInt8);
    torch::Tensor scored = torch::zeros({b, len}, torch::kBool);
    torch::Tensor modality = torch::empty({b}, torch::kLong);
    for (int64_t i = 0; i < b; ++i) {
      const Window& win = windows[w + i];
      std::memcpy(bytes.data_ptr<uint8_t>() + i * len, streams[win.stream].bytes.data() + win.start,
                  win.len);
      bool* row = scored.data_ptr<bool>() + i * len;
      std::fill(row + (win.from - win.start), row + (win.end - win.start), true);
      modality.data_ptr<int64_t>()[i] = streams[win.stream].modality;
    }
    const torch::Tensor x = bytes.to(torch::kLong).to(impl_->device);
    const torch::Tensor logits =
        impl_->model->forward(x, modality.to(impl_->device)).to(torch::kFloat);  // [b, len, 256]
    // log p(byte) = logit(byte) - logsumexp(logits): no [b, len, 256] log_softmax.
    const torch::Tensor picked =
        logits.gather(2, x.unsqueeze(2)).squeeze(2) - logits.logsumexp(-1);  // [b, len]
    const torch::Tensor row_nats = picked.masked_fill(scored.to(impl_->device).logical_not(), 0)
                                       .to(torch::kDouble)
                                       .sum(1)
                                       .to(torch::kCPU)
                                       .contiguous();
    for (int64_t i = 0; i < b; ++i) nats[windows[w + i].stream] -= row_nats.data_ptr<double>()[i];
    w += static_cast<size_t>(b);
  }
  for (double& n : nats) n /= std::log(2.0);
  return nats;
}

}  // namespace mbz::model

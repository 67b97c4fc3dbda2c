// What integer-exact inference costs: bits per byte of a float checkpoint against its
// exact (int8) version on the same files, read as text, in windows of the model's context.
//
//   quant_loss CKPT CALIBRATION_FILE... -- FILE...
//
// The exact model's activation ranges come from the calibration files (use training data,
// not the files measured). Prints float and exact bits per byte and their ratio.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/exact.h"

namespace {

using namespace mbz::model;

std::vector<uint8_t> read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The files cut into windows of `len` bytes (the last one of each file may be shorter).
std::vector<torch::Tensor> windows(const std::vector<std::string>& files, int64_t len) {
  std::vector<torch::Tensor> out;
  for (const std::string& f : files) {
    const std::vector<uint8_t> data = read(f);
    for (size_t i = 0; i < data.size(); i += len) {
      const int64_t n = std::min<int64_t>(len, data.size() - i);
      out.push_back(torch::from_blob(const_cast<uint8_t*>(data.data() + i), {1, n}, torch::kUInt8)
                        .to(torch::kLong));
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> calibration_files, files;
  bool after = false;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--") after = true;
    else (after ? files : calibration_files).push_back(argv[i]);
  }
  if (argc < 2 || calibration_files.empty() || files.empty()) {
    std::fprintf(stderr, "usage: quant_loss CKPT CALIBRATION_FILE... -- FILE...\n");
    return 2;
  }
  torch::NoGradGuard no_grad;
  Megabyte model = model_from_checkpoint(read_checkpoint(argv[1]), torch::kCPU);
  const int64_t len = model->config.context_bytes();

  std::vector<torch::Tensor> calibration;
  for (const torch::Tensor& w : windows(calibration_files, len))
    if (w.size(1) == len) calibration.push_back(w);
  if (calibration.empty()) {
    std::fprintf(stderr, "quant_loss: no calibration window of %lld bytes\n", (long long)len);
    return 2;
  }
  const torch::Tensor calib = torch::cat(calibration, 0);
  const ExactModel exact =
      ExactModel::quantize(model, calib, torch::full({calib.size(0)}, int64_t(1), torch::kLong));

  double float_bits = 0, exact_bits = 0;
  int64_t bytes = 0;
  for (const torch::Tensor& x : windows(files, len)) {
    const torch::Tensor text = torch::ones({1}, torch::kLong);
    const torch::Tensor logp = torch::log_softmax(model->forward(x, text), -1);
    float_bits -= logp.gather(2, x.unsqueeze(2)).sum().item<double>() / std::log(2.0);
    const torch::Tensor w = exact.forward(x, text).to(torch::kDouble);
    exact_bits -=
        torch::log2(w.gather(2, x.unsqueeze(2)).squeeze(2) / w.sum(-1)).sum().item<double>();
    bytes += x.size(1);
  }
  std::printf("%lld bytes in %zu files, %zu calibration windows of %lld bytes\n",
              (long long)bytes, files.size(), calibration.size(), (long long)len);
  std::printf("float %.4f bits/byte, exact %.4f bits/byte, exact/float %.4f\n",
              float_bits / bytes, exact_bits / bytes, exact_bits / float_bits);
  return 0;
}

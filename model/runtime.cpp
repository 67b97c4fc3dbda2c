#include "model/runtime.h"

#include <torch/torch.h>
#include <torch/version.h>

namespace mbz::model {

std::string libtorch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

bool cuda_available() {
  return torch::cuda::is_available();
}

int cuda_device_count() {
  return static_cast<int>(torch::cuda::device_count());
}

}  // namespace mbz::model

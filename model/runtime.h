// What the LibTorch underneath can do: its version and the devices it sees. The network,
// training and the exact inference engine join model/ in later work; this is the one
// place that includes torch, so the rest of mbz builds against LibTorch 1.13 (Debian, CPU)
// and 2.x (CUDA) alike.
#pragma once

#include <string>

namespace mbz::model {

std::string libtorch_version();  // "1.13.0"
bool cuda_available();
int cuda_device_count();

}  // namespace mbz::model

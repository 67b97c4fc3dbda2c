// Where a CUDA training step's time goes: GPU kernel time summed by kernel name, from
// LibTorch's Kineto profiler (LibTorch 2.x; Debian's 1.13 build has no Kineto, and there
// these functions say so). Used by `mbz train` when MBZ_PROFILE names a file.
#pragma once

#include <cstdint>
#include <string>

namespace mbz::model {

// False where LibTorch was built without Kineto.
bool kernel_profile_available();

// Starts recording CPU ops and CUDA kernels.
void start_kernel_profile();

// Stops recording and writes to `path` a table of kernels by total time (calls, total and
// mean microseconds, share of `wall_seconds`) covering `steps` steps, and the Chrome trace
// to `path`.json. Throws Error on an I/O failure.
void stop_kernel_profile(const std::string& path, double wall_seconds, int64_t steps);

}  // namespace mbz::model

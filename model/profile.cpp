#include "model/profile.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "codec/error.h"

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/profiler_kineto.h>
#define MBZ_KINETO 1
#endif

namespace mbz::model {

#ifdef MBZ_KINETO
namespace {

namespace kineto = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

const std::set<ActivityType>& activities() {
  static const std::set<ActivityType> a = {ActivityType::CPU, ActivityType::CUDA};
  return a;
}

}  // namespace

bool kernel_profile_available() { return true; }

void start_kernel_profile() {
  const ProfilerConfig config(ProfilerState::KINETO);
  kineto::prepareProfiler(config, activities());
  kineto::enableProfiler(config, activities());
}

void stop_kernel_profile(const std::string& path, double wall_seconds, int64_t steps) {
  const std::unique_ptr<kineto::ProfilerResult> result = kineto::disableProfiler();
  struct Sum {
    int64_t calls = 0;
    double ns = 0;
  };
  std::map<std::string, Sum> by_name;
  double total_ns = 0;
  for (const kineto::KinetoEvent& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;
    Sum& s = by_name[e.name()];
    ++s.calls;
    s.ns += double(e.durationNs());
    total_ns += double(e.durationNs());
  }
  std::vector<std::pair<std::string, Sum>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw Error(ErrorCode::kIoWrite, path + ": cannot write the profile");
  std::fprintf(f, "steps %lld, wall %.1f ms a step, GPU kernels %.1f ms a step (%.0f %% busy)\n",
               static_cast<long long>(steps), 1e3 * wall_seconds / steps,
               1e-6 * total_ns / steps, 100 * 1e-9 * total_ns / wall_seconds);
  std::fprintf(f, "%10s %12s %10s %7s  %s\n", "calls/step", "us/step", "us/call", "share",
               "kernel");
  for (const auto& [name, s] : rows)
    std::fprintf(f, "%10.1f %12.1f %10.2f %6.2f%%  %s\n", double(s.calls) / steps,
                 1e-3 * s.ns / steps, 1e-3 * s.ns / s.calls, 100 * s.ns / total_ns,
                 name.substr(0, 160).c_str());
  const bool ok = std::fclose(f) == 0;
  if (!ok) throw Error(ErrorCode::kIoWrite, path + ": cannot write the profile");
  result->save(path + ".json");
}

#else

bool kernel_profile_available() { return false; }
void start_kernel_profile() {}
void stop_kernel_profile(const std::string&, double, int64_t) {}

#endif

}  // namespace mbz::model

#include "cli/progress.h"

#include <cstdio>

namespace mbz::cli {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) value /= 1024, ++unit;
  char buf[32];
  std::snprintf(buf, sizeof buf, unit ? "%.1f %s" : "%.0f %s", value, units[unit]);
  return buf;
}

Progress::Progress(bool enabled, std::string label, std::optional<uint64_t> total)
    : enabled_(enabled),
      label_(std::move(label)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() {
  clear();
}

void Progress::clear() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

void Progress::update(uint64_t in_bytes, uint64_t out_bytes) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  std::string percent;
  if (total_ && *total_ > 0) percent = " " + std::to_string(in_bytes * 100 / *total_) + "%";
  std::fprintf(stderr, "\r\033[K%s:%s %s => %s, %.2f MB/s", label_.c_str(), percent.c_str(),
               human_bytes(in_bytes).c_str(), human_bytes(out_bytes).c_str(),
               seconds > 0 ? in_bytes / seconds / 1e6 : 0.0);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace mbz::cli

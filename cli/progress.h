// Progress on stderr, throttled to a few updates a second, only where a person watches
// (stderr is a terminal) or when asked. Results never go here: they go to stdout.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace mbz::cli {

class Progress {
 public:
  Progress(bool enabled, std::string label, std::optional<uint64_t> total);
  ~Progress();  // clears the line
  void update(uint64_t in_bytes, uint64_t out_bytes);
  // Clears the line now, so that what is printed next starts a line of its own.
  void clear();

 private:
  bool enabled_;
  std::string label_;
  std::optional<uint64_t> total_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
};

std::string human_bytes(uint64_t bytes);

}  // namespace mbz::cli

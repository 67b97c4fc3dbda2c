// How a segment is cut into K lanes (codec/FORMAT.md, "Lanes"): lane j holds the bytes
// [j·L, min((j+1)·L, S)) of a segment of S bytes, with L = ⌈S / K⌉, so lanes are
// contiguous pieces of the segment, all of length L except a shorter one at the end and
// possibly some empty ones after it. Coding goes round by round: round t codes byte t of
// every lane that has one, in lane order. The lanes still running in round t are always
// the first live(t), so a batched byte model sees them as streams 0..live(t)-1 that
// leave in step and never return.
#pragma once

#include <algorithm>
#include <cstdint>

namespace mbz {

class Lanes {
 public:
  // `count` >= 1 lanes over `size` bytes.
  Lanes(uint64_t size, uint32_t count)
      : size_(size), count_(std::max<uint32_t>(count, 1)), length_((size + count_ - 1) / count_) {}

  uint64_t size() const { return size_; }
  uint32_t count() const { return count_; }
  // L: the length of every lane but the last non-empty one (0 for an empty segment).
  uint64_t length() const { return length_; }
  // Segment offset of lane j's first byte.
  uint64_t begin(uint32_t j) const { return std::min(size_, uint64_t{j} * length_); }
  uint64_t size_of(uint32_t j) const { return begin(j + 1) - begin(j); }
  // The rounds needed: the length of the longest lane.
  uint64_t rounds() const { return length_; }
  // How many lanes code a byte in round t (< rounds()).
  uint32_t live(uint64_t t) const {
    // Lanes 0..full-1 have L bytes; lane `full` has the rest, which may be 0.
    const uint64_t full = length_ ? size_ / length_ : 0;
    const uint64_t rest = size_ - full * length_;
    return static_cast<uint32_t>(full + (t < rest ? 1 : 0));
  }

 private:
  uint64_t size_;
  uint32_t count_;
  uint64_t length_;
};

}  // namespace mbz

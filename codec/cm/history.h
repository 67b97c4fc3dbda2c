// What the models of the context mixer know about the past: the segment being coded, cut
// into lanes (codec/lanes.h), with the bytes coded so far in each lane and the last eight
// of each lane as one word. Also the hash that every context goes through before it
// addresses a table.
//
// Lanes are coded in any interleaving the caller likes (the archive codes them round by
// round); the order-n contexts of a byte are its own lane's previous bytes, while a byte
// of any lane may be read as soon as it is known, which is what lets the match model copy
// from everything coded so far. With one lane this is a plain history of the whole buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/lanes.h"

namespace mbz::cm {

// A 64-bit finalizer (SplitMix64's): every input bit affects every output bit, so table
// indexes may be taken from the top bits and check bytes from the bottom ones.
inline uint64_t finalize(uint64_t h) {
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9u;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBu;
  return h ^ (h >> 31);
}

// Combines a context value with a seed (the context's kind, so that equal values of two
// kinds land apart); finalize() the result before use.
inline uint64_t combine(uint64_t seed, uint64_t value) {
  return (seed + value + 1) * 0x9E3779B97F4A7C15u ^ (seed >> 29);
}

class History {
 public:
  // A segment of `lanes.size()` bytes; nothing known yet.
  explicit History(const Lanes& lanes)
      : lanes_(lanes), bytes_(lanes.size()), filled_(lanes.count()), last8_(lanes.count()) {}

  const Lanes& lanes() const { return lanes_; }

  // The next byte of `lane` was `byte` (the lane must not be full).
  void push(size_t lane, uint8_t byte) {
    bytes_[lanes_.begin(lane) + filled_[lane]] = byte;
    ++filled_[lane];
    last8_[lane] = last8_[lane] << 8 | byte;
    ++pos_;
  }

  // Bytes pushed so far, in all lanes.
  uint64_t pos() const { return pos_; }
  // Bytes pushed so far in `lane`.
  uint64_t filled(size_t lane) const { return filled_[lane]; }
  // The segment offset of the next byte of `lane`.
  uint64_t next(size_t lane) const { return lanes_.begin(lane) + filled_[lane]; }
  // Whether the byte at segment offset i has been pushed.
  bool known(uint64_t i) const {
    if (i >= bytes_.size()) return false;
    if (lanes_.count() == 1) return i < pos_;
    return i % lanes_.length() < filled_[i / lanes_.length()];
  }
  // The byte at segment offset i; meaningful when known(i).
  uint8_t at(uint64_t i) const { return bytes_[i]; }
  // The last 8 bytes of `lane`, the latest in the low byte (zeros before its start).
  uint64_t last8(size_t lane) const { return last8_[lane]; }

 private:
  Lanes lanes_;
  std::vector<uint8_t> bytes_;
  std::vector<uint64_t> filled_;
  std::vector<uint64_t> last8_;
  uint64_t pos_ = 0;
};

}  // namespace mbz::cm

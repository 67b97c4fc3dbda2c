// What the models of the context mixer know about the past: the bytes so far (the last
// 2^bits of them, in a ring, and the last eight as one word). Also the hash that every
// context goes through before it addresses a table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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
  // Keeps the last 2^bits bytes.
  explicit History(int bits) : bytes_(size_t{1} << bits), mask_((uint64_t{1} << bits) - 1) {}

  void push(uint8_t byte) {
    bytes_[pos_ & mask_] = byte;
    ++pos_;
    last8_ = last8_ << 8 | byte;
  }

  // Bytes pushed so far.
  uint64_t pos() const { return pos_; }
  // How many of the latest bytes the ring keeps.
  uint64_t capacity() const { return mask_ + 1; }
  // The byte at absolute position i; meaningful when pos() - capacity() <= i < pos().
  uint8_t at(uint64_t i) const { return bytes_[i & mask_]; }
  // The last 8 bytes, the latest in the low byte (zeros before the start).
  uint64_t last8() const { return last8_; }
  // The k-th latest byte, 1 <= k <= 8.
  uint8_t back(int k) const { return static_cast<uint8_t>(last8_ >> (8 * (k - 1))); }

 private:
  std::vector<uint8_t> bytes_;
  uint64_t mask_;
  uint64_t pos_ = 0;
  uint64_t last8_ = 0;
};

}  // namespace mbz::cm

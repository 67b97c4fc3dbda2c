// The binary arithmetic coder of the context mixer: carry-less, 32-bit low and high, as
// in lpaq1 and paq8. A bit with 12-bit probability p of being 1 splits [low, high] at
// mid = low + ((high - low) × p >> 12); a 1 keeps [low, mid], a 0 keeps [mid + 1, high].
// Whenever low and high agree on their top byte, that byte is final: it is written and
// both are shifted left (high filling with ones). The interval never gets empty, since
// low <= mid < high whenever low < high.
//
// The encoder ends by writing all 4 bytes of low, so the decoder reads exactly the
// payload: 4 bytes to start, then one for each byte the encoder shifted out. A decoder
// that needs a byte past the end is decoding a truncated payload and throws.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "codec/cm/logistic.h"

namespace mbz::cm {

// The split point of [low, high] for a bit of probability p (1 <= p <= 4095).
inline uint32_t split(uint32_t low, uint32_t high, int p) {
  return low +
         static_cast<uint32_t>((uint64_t{high - low} * static_cast<uint32_t>(p)) >> kProbBits);
}

class BinaryEncoder {
 public:
  // Appends to `out`.
  explicit BinaryEncoder(std::vector<uint8_t>& out) : out_(out) {}

  // Codes `bit` (0 or 1), whose probability of being 1 is p/4096, 1 <= p <= 4095.
  void encode(int bit, int p) {
    const uint32_t mid = split(low_, high_, p);
    if (bit)
      high_ = mid;
    else
      low_ = mid + 1;
    while (((low_ ^ high_) & 0xFF000000u) == 0) {
      out_.push_back(static_cast<uint8_t>(high_ >> 24));
      low_ <<= 8;
      high_ = high_ << 8 | 0xFF;
    }
  }

  // Writes the 4 bytes of low; afterwards the output holds the complete payload.
  void finish() {
    for (int shift = 24; shift >= 0; shift -= 8)
      out_.push_back(static_cast<uint8_t>(low_ >> shift));
  }

 private:
  std::vector<uint8_t>& out_;
  uint32_t low_ = 0;
  uint32_t high_ = 0xFFFFFFFFu;
};

class BinaryDecoder {
 public:
  // Throws Error(kCorruptTruncated) if `in` is shorter than the 4 bytes every payload has.
  explicit BinaryDecoder(std::span<const uint8_t> in);

  // The next bit, coded with the same p as the encoder gave.
  int decode(int p) {
    const uint32_t mid = split(low_, high_, p);
    const int bit = code_ <= mid;
    if (bit)
      high_ = mid;
    else
      low_ = mid + 1;
    while (((low_ ^ high_) & 0xFF000000u) == 0) {
      low_ <<= 8;
      high_ = high_ << 8 | 0xFF;
      code_ = code_ << 8 | next_byte();
    }
    return bit;
  }

  // Bytes of the payload not read so far (a complete decode leaves none).
  size_t remaining() const { return in_.size() - pos_; }

 private:
  uint32_t next_byte() {
    if (pos_ == in_.size()) truncated();
    return in_[pos_++];
  }
  [[noreturn]] void truncated() const;

  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  uint32_t low_ = 0;
  uint32_t high_ = 0xFFFFFFFFu;
  uint32_t code_ = 0;
};

}  // namespace mbz::cm

// The range coder: LZMA-style, 32-bit range, 64-bit low with carry propagation.
// Symbols are coded against integer frequency tables of total 2^16 (codec/FORMAT.md,
// "The range coder"). No floating point: the encoder and the decoder share the one
// interval step below, so they cannot disagree on any machine.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mbz {

inline constexpr int kTotalBits = 16;
inline constexpr uint32_t kTotal = 1u << kTotalBits;  // every table sums to this
inline constexpr uint32_t kRangeTop = 1u << 24;       // renormalize below this

// A cumulative frequency table for one byte: cdf[0] = 0, cdf[256] = kTotal and
// cdf[s+1] - cdf[s] >= 1 for every s. This is the one thing a model gives the coder.
struct Cdf {
  std::array<uint32_t, 257> c;

  uint32_t start(int s) const { return c[s]; }
  uint32_t freq(int s) const { return c[s + 1] - c[s]; }
  // The symbol whose interval holds `target` (0 <= target < kTotal): a branch-free binary
  // search (the compiler emits conditional moves), since decoding is bound by this lookup.
  int find(uint32_t target) const {
    int s = 0;  // invariant: c[s] <= target; c[256] = kTotal > target keeps s + step <= 255
    for (int step = 128; step > 0; step >>= 1) s += c[s + step] <= target ? step : 0;
    return s;
  }
};

// True when `cdf` is a valid table: starts at 0, ends at kTotal, every frequency >= 1.
bool cdf_is_valid(const Cdf& cdf);

// Builds a table from nonnegative integer weights (their sum < 2^63) by one exact
// integer procedure: weights are shifted right until their sum is below 2^32; every symbol
// gets 1, the remaining kTotal - 256 are shared in proportion to the weights, rounded down
// (or one below), and what rounding leaves goes to the heaviest symbol (the lowest such
// value on ties). Encoder and decoder both call this.
void cdf_from_weights(std::span<const uint64_t, 256> weights, Cdf& out);

// The interval step shared by encoder and decoder: a symbol [start, start + freq) of
// kTotal narrows `range` to r*freq at offset r*start, with r = range >> kTotalBits.
inline uint32_t interval_unit(uint32_t range) {
  return range >> kTotalBits;
}

class RangeEncoder {
 public:
  explicit RangeEncoder(std::vector<uint8_t>& out) : out_(out) {}

  void encode(uint32_t start, uint32_t freq) {
    const uint32_t r = interval_unit(range_);
    low_ += uint64_t{r} * start;
    range_ = r * freq;
    while (range_ < kRangeTop) {
      range_ <<= 8;
      shift_low();
    }
  }
  void encode(const Cdf& cdf, uint8_t symbol) { encode(cdf.start(symbol), cdf.freq(symbol)); }

  // Flushes the state; afterwards the output holds the complete payload. The decoder reads
  // zeros past the payload, so any value in [low, low + range) ends it: the one with the
  // most trailing zero bytes, which the trim below then drops (range >= 2^24 always, so
  // rounding low up to a multiple of 2^24 stays inside; 2^32 may).
  void finish() {
    for (int bits : {32, 24}) {
      const uint64_t mask = (uint64_t{1} << bits) - 1;
      const uint64_t end = (low_ + mask) & ~mask;
      if (end - low_ < range_) {
        low_ = end;
        break;
      }
    }
    for (int i = 0; i < 5; ++i) shift_low();
    while (!out_.empty() && out_.size() > begin_ && out_.back() == 0) out_.pop_back();
  }

 private:
  // Moves the top byte of the 32-bit window of low_ to the output. A byte that might still
  // receive a carry is held back (cache_ and a run of pending 0xFF bytes) until known.
  void shift_low() {
    if (static_cast<uint32_t>(low_) < 0xFF000000u || (low_ >> 32) != 0) {
      const uint8_t carry = static_cast<uint8_t>(low_ >> 32);
      uint8_t byte = cache_;
      do {
        emit(static_cast<uint8_t>(byte + carry));
        byte = 0xFF;
      } while (--pending_ != 0);
      cache_ = static_cast<uint8_t>(low_ >> 24);
    }
    ++pending_;
    low_ = (low_ & 0x00FFFFFFu) << 8;
  }
  void emit(uint8_t byte) {
    // The very first byte is always 0 (the interval starts inside [0, 2^32)); omit it.
    if (first_) {
      first_ = false;
      return;
    }
    out_.push_back(byte);
  }

  std::vector<uint8_t>& out_;
  size_t begin_ = out_.size();
  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint8_t cache_ = 0;
  uint64_t pending_ = 1;
  bool first_ = true;
};

class RangeDecoder {
 public:
  explicit RangeDecoder(std::span<const uint8_t> in) : in_(in) {
    for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | next_byte();
  }

  // The target within [0, kTotal) that selects the next symbol; then call consume().
  uint32_t target() {
    unit_ = interval_unit(range_);
    return std::min<uint32_t>(code_ / unit_, kTotal - 1);  // corrupt input may overshoot
  }
  void consume(uint32_t start, uint32_t freq) {
    code_ -= unit_ * start;
    range_ = unit_ * freq;
    while (range_ < kRangeTop) {
      range_ <<= 8;
      code_ = (code_ << 8) | next_byte();
    }
  }
  uint8_t decode(const Cdf& cdf) {
    const int s = cdf.find(target());
    consume(cdf.start(s), cdf.freq(s));
    return static_cast<uint8_t>(s);
  }
  // Bytes read beyond the payload (read as 0). More than 4 means the payload was short.
  size_t overrun() const { return pos_ > in_.size() ? pos_ - in_.size() : 0; }

 private:
  uint32_t next_byte() {
    const uint32_t b = pos_ < in_.size() ? in_[pos_] : 0;
    ++pos_;
    return b;
  }

  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  uint32_t code_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint32_t unit_ = 0;
};

}  // namespace mbz

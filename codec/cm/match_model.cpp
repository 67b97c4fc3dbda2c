#include "codec/cm/match_model.h"

#include <algorithm>

#include "codec/cm/logistic.h"

namespace mbz::cm {
namespace {

constexpr uint32_t kMaxLength = 65535;
constexpr uint32_t kMaxVerify = 64;  // a found match is checked back this far at most
constexpr int kLengthBuckets = 25;

// Lengths 0..15 as they are, then coarser: 16..31 in fours, 32..63 in eights, 64 and up.
int length_bucket(uint32_t length) {
  if (length < 16) return static_cast<int>(length);
  if (length < 32) return 16 + static_cast<int>(length - 16) / 4;
  if (length < 64) return 20 + static_cast<int>(length - 32) / 8;
  return 24;
}

}  // namespace

MatchModel::MatchModel(int table_bits, uint32_t lanes)
    : memory_(sizeof(uint32_t) << table_bits, true),
      table_(static_cast<uint32_t*>(memory_.data())),
      shift_(64 - table_bits),
      lanes_(lanes),
      confidence_(kLengthBuckets * 2 * 8, Counter::kMaxLimit) {}

void MatchModel::begin_byte(const History& history, uint32_t lane) {
  const Match& m = lanes_[lane];
  // A lane's match may point at a byte of another lane not coded yet: no prediction then.
  length_ = m.length > 0 && history.known(m.at) ? m.length : 0;
  if (length_ > 0) expected_ = history.at(m.at);
}

void MatchModel::end_byte(const History& history, uint32_t lane) {
  Match& m = lanes_[lane];
  if (length_ > 0) {  // the predicted byte occurred (a wrong bit would have ended the match)
    m.at = m.at + 1;
    m.length = std::min(length_ + 1, kMaxLength);
  } else {
    m.length = 0;
  }
  if (history.filled(lane) < kMinLength) return;
  const uint64_t pos = history.next(lane);  // the offset after the lane's last byte
  const uint64_t key = history.last8(lane) & ((uint64_t{1} << (8 * kMinLength)) - 1);
  uint32_t& slot = table_[finalize(combine(0x6D61746368, key)) >> shift_];
  const uint64_t candidate = slot;
  if (m.length == 0 && candidate != 0 && candidate != pos) {
    uint32_t n = 0;  // the hash may collide: count the bytes that really agree
    while (n < kMaxVerify && n < candidate && history.known(candidate - 1 - n) &&
           history.known(pos - 1 - n) && history.at(candidate - 1 - n) == history.at(pos - 1 - n))
      ++n;
    if (n >= kMinLength) m = {candidate, n};
  }
  slot = static_cast<uint32_t>(pos);  // segments are below 2^32 bytes (codec/FORMAT.md)
}

void MatchModel::predict(int c0, int bitpos, int16_t* inputs) {
  confidence_cx_ = -1;
  if (length_ > 0 && ((expected_ | 256) >> (8 - bitpos)) != c0) length_ = 0;
  if (length_ == 0) {
    inputs[0] = inputs[1] = 0;
    return;
  }
  const int bit = (expected_ >> (7 - bitpos)) & 1;
  confidence_cx_ = (length_bucket(length_) * 2 + bit) * 8 + bitpos;
  inputs[0] = static_cast<int16_t>(stretch(confidence_.p(static_cast<size_t>(confidence_cx_))));
  // A second input, linear in the length, lets the mixer trust long matches more than the
  // map alone says while the map is still learning.
  const int strength = static_cast<int>(std::min<uint32_t>(length_, 32)) * 32;
  inputs[1] = static_cast<int16_t>(bit ? strength : -strength);
}

void MatchModel::update(int bit) {
  if (confidence_cx_ >= 0) confidence_.update(static_cast<size_t>(confidence_cx_), bit);
}

}  // namespace mbz::cm

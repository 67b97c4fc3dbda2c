// The match model: finds the latest earlier occurrence of the last kMinLength bytes (a
// hash of them addresses the position that followed them last time) and predicts that the
// bytes after it repeat, bit by bit. Its confidence is learnt: an adaptive map from the
// match length (and the predicted bit and bit position) to the probability that the
// predicted bit is right. A mispredicted bit ends the match until the next byte boundary,
// where a new one is looked for.
#pragma once

#include <cstdint>

#include "codec/cm/counter.h"
#include "codec/cm/history.h"
#include "codec/cm/zeroed_memory.h"

namespace mbz::cm {

class MatchModel {
 public:
  static constexpr int kInputs = 2;
  static constexpr int kMinLength = 6;  // bytes hashed to find a match

  // A table of 2^table_bits positions.
  explicit MatchModel(int table_bits);

  // A byte has been completed and pushed to `history`: follows or finds a match.
  void next_byte(const History& history);
  // Writes kInputs inputs for the next bit (zeros when there is no match).
  void predict(int c0, int bitpos, int16_t* inputs);
  void update(int bit);

  // The current match length, 0 when none (or after a mispredicted bit).
  uint32_t length() const { return length_; }
  // The byte the match predicts (meaningful while length() > 0).
  int expected_byte() const { return expected_; }

 private:
  // Hash of kMinLength bytes -> the position after them (0: none; position 0 never follows).
  ZeroedMemory memory_;
  uint32_t* table_;
  int shift_;
  uint64_t match_ = 0;   // position of the predicted byte in the history
  uint32_t length_ = 0;  // bytes known to agree before match_ and before the next byte
  int expected_ = 0;     // the byte at match_
  CounterMap confidence_;
  int confidence_cx_ = -1;  // the context predict() used, -1: none (no match)
};

}  // namespace mbz::cm

// The match model: finds the latest earlier occurrence of the last kMinLength bytes (a
// hash of them addresses the position that followed them last time) and predicts that the
// bytes after it repeat, bit by bit. Its confidence is learnt: an adaptive map from the
// match length (and the predicted bit and bit position) to the probability that the
// predicted bit is right. A mispredicted bit ends the match until the next byte boundary,
// where a new one is looked for.
//
// With lanes (history.h) each lane follows its own match, but the table of positions is
// shared: a lane finds repeats of what any lane coded, as long as the bytes it compares
// and the byte it predicts are known when it needs them.
#pragma once

#include <cstdint>
#include <vector>

#include "codec/cm/counter.h"
#include "codec/cm/history.h"
#include "codec/cm/zeroed_memory.h"

namespace mbz::cm {

class MatchModel {
 public:
  static constexpr int kInputs = 2;
  static constexpr int kMinLength = 6;  // bytes hashed to find a match

  // A table of 2^table_bits positions; `lanes` lanes follow their own matches.
  MatchModel(int table_bits, uint32_t lanes);

  // The next byte is of `lane`: takes up that lane's match, if its byte is known.
  void begin_byte(const History& history, uint32_t lane);
  // The byte has been completed and pushed to `history`: follows or finds a match for the
  // lane's next byte, and records where this one's context was seen.
  void end_byte(const History& history, uint32_t lane);
  // Writes kInputs inputs for the next bit (zeros when there is no match).
  void predict(int c0, int bitpos, int16_t* inputs);
  void update(int bit);

  // The current match length, 0 when none (or after a mispredicted bit).
  uint32_t length() const { return length_; }
  // The byte the match predicts (meaningful while length() > 0).
  int expected_byte() const { return expected_; }

 private:
  struct Match {
    uint64_t at = 0;      // segment offset of the predicted byte
    uint32_t length = 0;  // bytes known to agree before `at` and before the next byte
  };

  // Hash of kMinLength bytes -> the segment offset after them (0: none; 0 never follows).
  ZeroedMemory memory_;
  uint32_t* table_;
  int shift_;
  std::vector<Match> lanes_;  // each lane's match between its bytes
  uint32_t length_ = 0;       // the current byte's: its lane's match length
  int expected_ = 0;          // the byte at its lane's match
  CounterMap confidence_;
  int confidence_cx_ = -1;  // the context predict() used, -1: none (no match)
};

}  // namespace mbz::cm

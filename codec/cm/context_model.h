// The order-n and word contexts of the context mixer.
//
// Orders 0 and 1 address their counters directly; orders 2, 3, 4, 6 and the word context
// (a hash of the alphabetic word being read and of the one before it) share one hashed
// ContextTable. Each context gives the mixer its counter's stretched probability for the
// next bit.
//
// The hashed contexts also remember, in their first-nibble bucket, the byte that followed
// them last and how many times in a row it did (paq8's run model). While the bits of the
// current byte agree with that byte, each gives a second input: ± a strength that grows
// with the log of the run's length, the sign of the bit it predicts.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "codec/cm/context_table.h"
#include "codec/cm/counter.h"
#include "codec/cm/history.h"

namespace mbz::cm {

class ContextModel {
 public:
  static constexpr int kHashed = 5;  // orders 2, 3, 4, 6 and the word context
  static constexpr int kContexts = 2 + kHashed;
  static constexpr int kInputs = kContexts + kHashed;

  // The hashed contexts share a table of 2^table_bits buckets (64 bytes each); `lanes`
  // lanes keep their own word contexts. For benchmarks, bit i of `off` (i < kContexts)
  // switches context i off, bit kContexts the runs: their inputs are 0, and a hashed
  // context switched off is not looked up (it takes no room in the table, has no run and
  // does not count in seen()).
  ContextModel(int table_bits, uint32_t lanes, uint32_t off = 0);

  // The next byte is of `lane`: computes its contexts from that lane's history.
  void begin_byte(const History& history, uint32_t lane);
  // The byte has been completed and pushed to `history` (the same lane as begin_byte's).
  void end_byte(const History& history, uint32_t lane);
  // Writes the kInputs inputs for the next bit, the contexts' stretched probabilities then
  // the runs'; c0 is the partial byte with a leading 1 (1..255), bitpos the number of its
  // bits known (0..7).
  void predict(int c0, int bitpos, int16_t* inputs);
  void update(int bit);

  // How many of the hashed contexts had been seen before, at the last nibble (0..kHashed).
  int seen() const { return seen_; }

 private:
  void find_buckets(int c0);
  template <bool kSwitches>
  void look_up(int c0);
  void switch_off(int c0, int i);
  void end_runs(int byte);

  std::vector<uint32_t> order0_;  // 256 nodes
  std::vector<uint32_t> order1_;  // 256 previous bytes × 256 nodes
  ContextTable table_;
  std::array<uint64_t, kHashed> hashes_{};       // the byte's contexts, not yet finalized
  std::array<Bucket*, kHashed> buckets_{};       // of the current nibble
  std::array<uint32_t*, kContexts> counters_{};  // of the current bit
  int c1_ = 0;                                   // the last byte of the lane
  struct Words {
    uint64_t word = 0;  // hash of the alphabetic word being read, 0 between words
    uint64_t previous = 0;
  };
  std::vector<Words> words_;  // by lane
  int seen_ = 0;
  uint32_t off_ = 0;  // bits kContextsOff and kRunsOff only
  Bucket spare_{};    // stands for a hashed context switched off; its counters are unread
  static constexpr uint32_t kContextsOff = (1u << kContexts) - 1, kRunsOff = 1u << kContexts;

  // Runs. first_ may be claimed by another context before the byte ends (the table is
  // shared), so its check is kept to tell.
  std::array<Bucket*, kHashed> first_{};  // the byte's first-nibble buckets
  std::array<uint16_t, kHashed> first_check_{};
  std::array<int, kHashed> run_byte_{};
  std::array<int, kHashed> run_count_{};  // 0: no run, or it mispredicted a bit of this byte
  int bitpos_ = 0;                        // of the current bit
};

}  // namespace mbz::cm

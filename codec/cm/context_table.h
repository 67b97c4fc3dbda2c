// A hashed table of bit-level contexts, organised as lpaq1 organises its tables: a
// context is looked up once per nibble, and its bucket (one 64-byte cache line) holds
// the counters of the 15 nodes of that nibble's binary tree (1 + 2 + 4 + 8), so the four
// bits of a nibble touch one line.
//
// A bucket carries a 16-bit check of its context's hash. A lookup probes two neighbouring
// buckets; a bucket whose check matches is the context's. Otherwise the context claims
// the one of the two that has been used least (the lower count of its first node, which
// every visit updates; on a tie the first), and all its counters start fresh. The rule
// depends on table contents only, so encoder and decoder replace the same buckets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "codec/cm/counter.h"
#include "codec/cm/zeroed_memory.h"

namespace mbz::cm {

struct alignas(64) Bucket {
  uint16_t check;
  uint8_t run_byte;   // the byte that followed this context last (first-nibble buckets)
  uint8_t run_count;  // how many times in a row it did, 0: never seen
  uint32_t counters[15];
};
static_assert(sizeof(Bucket) == 64);

class ContextTable {
 public:
  // A table of 2^bits buckets, 64 bytes each; 1 <= bits <= 40. Throws std::bad_alloc.
  explicit ContextTable(int bits);

  // The bucket of the context with (finalized) hash `h`, claimed if not present.
  Bucket& find(uint64_t h) {
    const uint16_t check = static_cast<uint16_t>(h);
    const size_t i = static_cast<size_t>(h >> shift_);
    Bucket* a = buckets_ + i;
    if (a->check == check) return *a;
    Bucket* b = buckets_ + (i ^ 1);
    if (b->check == check) return *b;
    Bucket& victim = Counter::count(b->counters[0]) < Counter::count(a->counters[0]) ? *b : *a;
    victim = Bucket{};
    victim.check = check;
    return victim;
  }

 private:
  ZeroedMemory memory_;  // a zeroed bucket is a fresh one
  Bucket* buckets_;
  int shift_;
};

inline ContextTable::ContextTable(int bits)
    : memory_(sizeof(Bucket) << bits, true),
      buckets_(static_cast<Bucket*>(memory_.data())),
      shift_(64 - bits) {
  static_assert(Counter::kFresh == 0 && std::is_trivial_v<Bucket>);
}

}  // namespace mbz::cm

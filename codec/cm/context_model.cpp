#include "codec/cm/context_model.h"

#include <algorithm>

#include "codec/cm/logistic.h"

namespace mbz::cm {
namespace {

// Count limit of the context counters: past it they forget at rate 1/(limit + 1.2).
// Measured on every 4th file of data/corpora/text/valid (bits per byte): 10 to 24 within
// 0.05 %, 30 +0.1 %, 60 +0.4 %, 255 +0.9 %; text of a few kilobytes wants fast forgetting.
constexpr uint32_t kLimit = 16;
// A run's input: ±256·log2(length + 1), rounded (lengths from 15 on as 15). The mixer
// learns how far to trust it; this fixed curve measured 0.3 % better than an adaptive map
// from (context, length, bit) to a probability, and 0.15 % better than half or twice it.
constexpr int16_t kRunStrength[16] = {0,   256, 406, 512, 594, 662, 719,  768,
                                      812, 850, 886, 918, 947, 975, 1000, 1024};

bool is_letter(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

ContextModel::ContextModel(int table_bits, uint32_t lanes, uint32_t off)
    : order0_(256, Counter::kFresh),
      order1_(256 * 256, Counter::kFresh),
      table_(table_bits),
      words_(lanes),
      off_(off & (kContextsOff | kRunsOff)) {}

void ContextModel::end_runs(int byte) {
  for (int i = 0; i < kHashed; ++i) {
    Bucket* b = first_[i];
    if (b == nullptr || b->check != first_check_[i]) continue;
    if (b->run_count > 0 && b->run_byte == byte) {
      if (b->run_count < 255) ++b->run_count;
    } else {
      b->run_byte = static_cast<uint8_t>(byte);
      b->run_count = 1;
    }
  }
}

void ContextModel::end_byte(const History& history, uint32_t lane) {
  const int byte = static_cast<int>(history.last8(lane) & 0xFF);
  end_runs(byte);
  Words& w = words_[lane];
  if (is_letter(byte)) {
    w.word = combine(w.word, byte | 0x20);  // case-folded
  } else if (w.word != 0) {
    w.previous = w.word;
    w.word = 0;
  }
}

void ContextModel::begin_byte(const History& history, uint32_t lane) {
  const uint64_t last8 = history.last8(lane);
  c1_ = static_cast<int>(last8 & 0xFF);
  const Words& w = words_[lane];
  // Each context's kind is its seed, so that equal bytes of two orders hash apart.
  hashes_[0] = combine(2, last8 & 0xFFFF);
  hashes_[1] = combine(3, last8 & 0xFFFFFF);
  hashes_[2] = combine(4, last8 & 0xFFFFFFFF);
  hashes_[3] = combine(6, last8 & 0xFFFFFFFFFFFF);
  // Between words, the word context is the previous word and the byte after it.
  hashes_[4] = combine(combine(7, w.word), w.previous + (w.word == 0 ? c1_ : 0));
}

void ContextModel::switch_off(int c0, int i) {
  buckets_[i] = &spare_;
  if (c0 == 1) {
    first_[i] = nullptr;
    run_count_[i] = 0;
  }
}

// Without switches (every archive's case) the loop is compiled without their tests: with
// them inline it took 40 more instructions a nibble (callgrind).
void ContextModel::find_buckets(int c0) {
  if (off_ == 0)
    look_up<false>(c0);
  else
    look_up<true>(c0);
}

template <bool kSwitches>
void ContextModel::look_up(int c0) {
  seen_ = 0;
  for (int i = 0; i < kHashed; ++i) {
    if (kSwitches && ((off_ >> (2 + i)) & 1)) {
      switch_off(c0, i);
      continue;
    }
    // The second nibble's bucket is keyed by the context and the first nibble.
    const uint64_t h = finalize(c0 == 1 ? hashes_[i] : combine(hashes_[i], c0));
    buckets_[i] = &table_.find(h);
    seen_ += Counter::count(buckets_[i]->counters[0]) > 0;
    if (c0 == 1) {
      first_[i] = buckets_[i];
      first_check_[i] = static_cast<uint16_t>(h);
      run_byte_[i] = buckets_[i]->run_byte;
      run_count_[i] = buckets_[i]->run_count;
    }
  }
  if (kSwitches && (off_ & kRunsOff) && c0 == 1) run_count_.fill(0);
}

void ContextModel::predict(int c0, int bitpos, int16_t* inputs) {
  if (bitpos == 0 || bitpos == 4) find_buckets(c0);
  // The node of the current bit within its nibble's tree: 1, 2-3, 4-7 or 8-15.
  const int node = bitpos < 4 ? c0 : (c0 & ((1 << (bitpos - 4)) - 1)) | 1 << (bitpos - 4);
  counters_[0] = &order0_[c0];
  counters_[1] = &order1_[c1_ << 8 | c0];
  for (int i = 0; i < kHashed; ++i) counters_[2 + i] = &buckets_[i]->counters[node - 1];

  for (int i = 0; i < kContexts; ++i) {
    inputs[i] = static_cast<int16_t>(stretch(Counter::p(*counters_[i])));
  }
  if (off_ & kContextsOff)
    for (int i = 0; i < kContexts; ++i)
      if ((off_ >> i) & 1) inputs[i] = 0;

  int16_t* run_inputs = inputs + kContexts;
  for (int i = 0; i < kHashed; ++i) run_inputs[i] = 0;
  for (int i = 0; i < kHashed; ++i) {
    if (run_count_[i] == 0) continue;
    const int strength = kRunStrength[std::min(run_count_[i], 15)];
    run_inputs[i] = static_cast<int16_t>((run_byte_[i] >> (7 - bitpos)) & 1 ? strength : -strength);
  }
  bitpos_ = bitpos;
}

void ContextModel::update(int bit) {
  for (uint32_t* counter : counters_) Counter::update(*counter, bit, kLimit);
  for (int i = 0; i < kHashed; ++i) {
    if (run_count_[i] == 0) continue;
    if (bit != ((run_byte_[i] >> (7 - bitpos_)) & 1)) run_count_[i] = 0;  // not the run's byte
  }
}

}  // namespace mbz::cm

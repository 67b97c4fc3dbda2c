// The context-mixing predictor: the probability of each bit of a byte stream, coded MSB
// first, from order-n contexts, a word context, a match model and (optionally) an external
// frequency table per byte, mixed in the logistic domain and refined by two APMs.
//
//   inputs (stretched, 16 lanes)   ContextModel: orders 0, 1, 2, 3, 4, 6, word     7
//                                                runs of orders 2, 3, 4, 6, word  5
//                                  MatchModel                                     2
//                                  TableInput (the external Cdf, or zeros)        2
//   layer 1: two Mixers over the 16 inputs, their weight sets selected by
//              the partial byte c0 (256)
//              match length state × predicted bit × hashed contexts seen before (0..5)
//              × table confidence (0..3) (192)
//   layer 2: one Mixer over layer 1's two outputs, a bias and the table's two inputs
//   with a Layout (an image or audio segment), a ModalityModel adds 16 inputs, and two
//   more layer-1 Mixers over all 32 inputs feed layer 2, their weight sets selected by
//              the model's group (how hard the byte looks) × bit position (256)
//              the model's kind of byte × whether the partial byte agrees with the
//              model's expected byte so far × that byte's next bit × bit position (256)
//   APMs:    order 0 (c0) and order 1 (c0 and the last byte, or with a ModalityModel its
//            expected byte) refine layer 2's output;
//            the result is (mix + order 0 + 2 × order 1) / 4
//
// Everything is integer arithmetic with defined rounding, so a predictor fed the same bits
// gives the same probabilities on every machine: the decoder's copy stays in step.
//
// A predictor codes one segment of a known size, cut into lanes (codec/lanes.h): each
// byte is announced with its lane (begin_byte), its order-n, word and match contexts are
// that lane's, and every table, mixer weight and APM is shared by all lanes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "codec/cm/apm.h"
#include "codec/cm/context_model.h"
#include "codec/cm/history.h"
#include "codec/cm/layout.h"
#include "codec/cm/match_model.h"
#include "codec/cm/mixer.h"
#include "codec/cm/modality_model.h"
#include "codec/cm/table_input.h"
#include "codec/range_coder.h"

namespace mbz::cm {

// Components a benchmark may switch off (Config::ablate), to measure what each adds
// (bench/cm_ablation.cpp). A component switched off gives the mixers 0 (stretch domain: no
// information) for its inputs, and is not looked up where that would share anything (a
// hashed context's room in the table, a match); the APM stage switched off passes the
// mixer's probability through (its maps still learn, unread: cheaper than a second test).
// Bits 0..6 are ContextModel's contexts in their input order.
enum Ablate : uint32_t {
  kAblateOrder0 = 1u << 0,
  kAblateOrder1 = 1u << 1,
  kAblateOrder2 = 1u << 2,  // a hashed context: its counters and its run
  kAblateOrder3 = 1u << 3,
  kAblateOrder4 = 1u << 4,
  kAblateOrder6 = 1u << 5,
  kAblateWord = 1u << 6,
  kAblateRuns = 1u << 7,      // the five run inputs (the contexts' counters stay)
  kAblateMatch = 1u << 8,     // no match is looked for: length 0 for the weight selection too
  kAblateModality = 1u << 9,  // no image or audio model: the layout is coded as kBytes
  kAblateApm = 1u << 10,      // probability = layer 2's
  kAblateTable = 1u << 11,    // the external table is ignored (the bytes are coded without)
  kAblateAll = (1u << 12) - 1,
};
// Each bit's name, as bench/cm_ablation.cpp takes it.
struct AblateName {
  const char* name;
  uint32_t bit;
};
inline constexpr AblateName kAblateNames[] = {
    {"order0", kAblateOrder0},     {"order1", kAblateOrder1}, {"order2", kAblateOrder2},
    {"order3", kAblateOrder3},     {"order4", kAblateOrder4}, {"order6", kAblateOrder6},
    {"word", kAblateWord},         {"runs", kAblateRuns},     {"match", kAblateMatch},
    {"modality", kAblateModality}, {"apm", kAblateApm},       {"table", kAblateTable},
};

// Memory of one predictor. Probabilities depend on these sizes: a decoder must use the
// same Config as its encoder.
struct Config {
  int context_bits = 24;  // log2 counters (4 bytes each) of the hashed contexts' table
  int match_bits = 22;    // log2 entries (4 bytes each) of the match model's position table
  // What the bytes are (an image, audio): kBytes codes them exactly as revision 1 of the
  // archive's context mixer did; an image or audio layout adds its modality model, with a
  // table as large as the hashed contexts'.
  Layout layout;
  // Components switched off (Ablate bits), for benchmarks only: an archive never records
  // it and its reader never sets it, so archives are always coded with 0, everything on.
  uint32_t ablate = 0;

  // Bytes the predictor's tables take for a segment of `size` bytes (the order-1 APM's
  // 8.7 MB only as its contexts occur).
  size_t memory_bytes(size_t size) const;
  bool operator==(const Config&) const = default;
};

// Smallest and largest allowed values of the Config fields. (The archive allows less:
// codec/FORMAT.md bounds what a header may ask a reader to allocate.)
inline constexpr int kMinContextBits = 8, kMinMatchBits = 4;
inline constexpr int kMaxContextBits = 34, kMaxMatchBits = 30;

class Predictor {
 public:
  // A segment of `lanes.size()` bytes (below 2^32) in lanes.size() lanes. Throws
  // Error(kUsageBadArgument) for a Config field outside [kMin*, kMax*], an unknown ablate
  // bit or a segment too large.
  Predictor(const Config& config, const Lanes& lanes);

  // The next byte is the next one of `lane` (which must not be full), and `table` is its
  // external frequency table or nullptr for none. Call it at the byte's start; the table
  // applies to that byte only and must stay valid until its last bit is updated.
  void begin_byte(uint32_t lane, const Cdf* table);
  // 12-bit probability that the next bit is 1, in [1, 4095].
  int p();
  // The next bit was `bit` (0 or 1).
  void update(int bit);

 private:
  static constexpr int kInputs = ContextModel::kInputs + MatchModel::kInputs + TableInput::kInputs;
  static constexpr int kTableLanes = ContextModel::kInputs + MatchModel::kInputs;
  static constexpr int kLayer1 = 2;
  static constexpr int kAllInputs = kInputs + ModalityModel::kInputs;
  static constexpr int kModalityMixers = 2;
  static constexpr int kModalityAt = kLayer1 + 1 + TableInput::kInputs;  // in layer 2
  // layer 1's outputs, a bias, the table, the modality mixers' outputs, padding
  static constexpr int kLayer2Inputs = 8;
  static_assert(kInputs % 8 == 0 && kModalityAt + kModalityMixers <= kLayer2Inputs);

  static std::array<int16_t, kLayer2Inputs> layer2_initial_weights(bool modality);
  void predict();
  void end_byte();

  History history_;
  uint32_t lane_ = 0;  // of the current byte
  ContextModel contexts_;
  MatchModel match_;
  TableInput table_;
  std::array<Mixer<kInputs>, kLayer1> layer1_;
  std::unique_ptr<ModalityModel> modality_;  // null for Layout::Kind::kBytes
  std::array<Mixer<kAllInputs>, kModalityMixers> modality_mixers_;
  Mixer<kLayer2Inputs> layer2_;
  Apm apm_order0_;
  Apm apm_order1_;

  std::array<int16_t, kAllInputs> inputs_{};  // the modality model's last, 0 without one
  std::array<int16_t, kLayer2Inputs> mixed_{};
  int c0_ = 1;      // the partial byte with a leading 1
  int bitpos_ = 0;  // bits of it known
  int rate_ = 0;    // mixer learning rate of the current byte
  int pr_ = kProbOne / 2;
  bool predicted_ = false;  // pr_ is the prediction of the next bit
  // Config::ablate's switches that the predictor applies itself (ContextModel applies
  // those of its contexts and runs; a modality switched off is a null modality_).
  bool use_match_ = true;
  bool use_apm_ = true;
  bool use_table_ = true;
};

}  // namespace mbz::cm

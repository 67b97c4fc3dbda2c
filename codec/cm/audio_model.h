// Contexts of 16-bit little-endian audio (layout.h): each byte is half of a sample of one
// channel, low byte first. Five predictions of the sample are made from the channel's
// previous samples s1, s2, s3, ...:
//
//   s1,  2·s1 − s2,  3·s1 − 3·s2 + s3  (polynomials of order 0, 1, 2, as FLAC's fixed ones)
//   two normalised LMS filters (mu 1/16 and 1/2) over the last kTaps differences of the
//   channel and the last two of the channel before it (stereo), in integer arithmetic
//
// The low byte comes first, when nothing of the sample is known: its contexts are each
// prediction's low byte with how far off that predictor has lately been (a log of its
// mean absolute error), and each prediction exactly. The high byte is then nearly
// determined by a good prediction and the known low byte L: it is the high byte of
// (prediction − L) rounded, which each context holds with the fraction where the
// prediction falls between two high bytes. Two more contexts hold the previous sample
// exactly, for sources whose samples sit on a grid (8-bit or µ-law audio widened to 16),
// and four pair the predictions' bytes (where two agree the byte is surer).
//
// Each lane keeps its own filters and sample history per channel (zeros at the lane's
// start); everything is integer arithmetic, so encoder and decoder predict alike.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "codec/cm/modality_model.h"
#include "codec/cm/nibble_contexts.h"

namespace mbz::cm {

class AudioModel final : public ModalityModel {
 public:
  static constexpr int kPredictors = 5;
  static constexpr int kContexts = 2 * kPredictors + 6;
  // The channel's own differences: 8 measured 0.6 % better than 16 and 32 1 % worse
  // on the valid clips (short ones: a shorter filter learns sooner).
  static constexpr int kTaps = 8;
  static constexpr int kCrossTaps = 2;  // the channel before it (with two or more)
  static_assert(kContexts <= kInputs);

  AudioModel(const Layout& layout, int table_bits, uint32_t lanes);

  void begin_byte(const History& history, uint32_t lane) override;
  void predict(int c0, int bitpos, int16_t* inputs) override;
  void update(int bit) override;
  void end_byte(const History& history, uint32_t lane) override;
  int group() const override { return group_; }
  int kind() const override { return kind_; }
  int expected() const override { return expected_; }

 private:
  static constexpr int kFilterTaps = kTaps + kCrossTaps;
  // One channel as one lane has seen it.
  struct Channel {
    std::array<int32_t, kTaps + 1> samples{};                   // the latest first
    std::array<std::array<int32_t, kFilterTaps>, 2> weights{};  // the LMS filters, Q14
    std::array<int32_t, kPredictors> error{};  // mean |error| of each prediction, ×16
  };

  Channel& channel_of(uint32_t lane, uint32_t ch) {
    return channels_[lane * layout_.channels + ch];
  }
  // The LMS filters' inputs for channel ch of lane: its own and the previous channel's
  // latest differences.
  std::array<int32_t, kFilterTaps> filter_inputs(uint32_t lane, uint32_t ch);

  Layout layout_;
  NibbleContexts<kContexts> contexts_;
  std::vector<Channel> channels_;  // lanes × channels

  // The current byte.
  uint32_t channel_ = 0;
  bool high_ = false;
  int low_ = 0;  // the sample's low byte, when coding the high one
  std::array<int32_t, kPredictors> predictions_{};
  std::array<int32_t, kFilterTaps> inputs_{};
  int group_ = 0, kind_ = 0, expected_ = 0;
};

}  // namespace mbz::cm

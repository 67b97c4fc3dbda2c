#include "codec/cm/audio_model.h"

#include <algorithm>
#include <bit>
#include <cstdlib>

namespace mbz::cm {
namespace {

// Audio statistics drift less than text's: a count limit of 255 measured better than 60
// on the valid clips (1023: no different).
constexpr uint32_t kLimit = 255;

// The two LMS filters' step sizes, as right shifts: mu = 2^-kStepShift[f]. The valid
// clips (73, mostly a few seconds) want fast adaptation: {8, 5} gave 4.857 bits a byte
// at level 2, {6, 3} 4.809, {4, 1} 4.788, {7, 2} 4.815.
constexpr int kStepShift[2] = {4, 1};
constexpr int kWeightBits = 14;  // Q14 weights
constexpr int32_t kMaxWeight = 1 << 20;

int32_t clamp16(int64_t v) {
  return static_cast<int32_t>(std::clamp<int64_t>(v, -32768, 32767));
}

// 0..17: the bit width of a mean absolute error (×16) once its fraction is dropped.
int scale_of(int32_t error) {
  return static_cast<int>(std::bit_width(static_cast<uint32_t>(error >> 4)));
}

}  // namespace

AudioModel::AudioModel(const Layout& layout, int table_bits, uint32_t lanes)
    : layout_(layout),
      contexts_(table_bits, kLimit),
      channels_(static_cast<size_t>(lanes) * layout.channels) {}

std::array<int32_t, AudioModel::kFilterTaps> AudioModel::filter_inputs(uint32_t lane, uint32_t ch) {
  std::array<int32_t, kFilterTaps> x{};
  const Channel& own = channel_of(lane, ch);
  for (int i = 0; i < kTaps; ++i) x[i] = own.samples[i] - own.samples[i + 1];
  if (layout_.channels > 1) {
    // The channel before this one, in the frame order: for channel 0 the last channel of
    // the previous frame, for the others the current frame's previous channel.
    const Channel& other = channel_of(lane, (ch + layout_.channels - 1) % layout_.channels);
    for (int i = 0; i < kCrossTaps; ++i) x[kTaps + i] = other.samples[i] - other.samples[i + 1];
  }
  return x;
}

void AudioModel::begin_byte(const History& history, uint32_t lane) {
  const uint64_t at = history.next(lane);  // in the segment
  const uint64_t s = layout_.offset + at;  // in the stream
  high_ = (s & 1) != 0;
  channel_ = static_cast<uint32_t>((s >> 1) % layout_.channels);
  low_ = high_ && at > 0 && history.known(at - 1) ? history.at(at - 1) : 0;

  Channel& c = channel_of(lane, channel_);
  const int32_t s1 = c.samples[0], s2 = c.samples[1], s3 = c.samples[2];
  predictions_[0] = s1;
  predictions_[1] = clamp16(2 * s1 - s2);
  predictions_[2] = clamp16(3 * s1 - 3 * s2 + s3);
  inputs_ = filter_inputs(lane, channel_);
  for (int f = 0; f < 2; ++f) {
    int64_t dot = 0;
    for (int i = 0; i < kFilterTaps; ++i) dot += int64_t{c.weights[f][i]} * inputs_[i];
    predictions_[3 + f] = clamp16(s1 + (dot >> kWeightBits));
  }

  auto set = [&](int i, int k, uint64_t a, uint64_t b = 0, uint64_t d = 0) {
    const uint64_t kind = static_cast<uint64_t>((i * kPredictors + k) * 2 + high_) << 48;
    contexts_.set(i, combine(0xA0D1, kind | a | b << 16 | d << 32));
  };
  for (int k = 0; k < kPredictors; ++k) {
    const int32_t v = predictions_[k];
    const int scale = scale_of(c.error[k]);
    if (!high_) {
      set(2 * k, k, v & 0xFF, scale);
      set(2 * k + 1, k, static_cast<uint16_t>(v));
    } else {
      // The sample is 256·H + L with H signed: the prediction's H is (v − L) / 256,
      // rounded, and where v falls between two H says how sure that is.
      const int32_t r = v - low_ + 128;
      const int h = (r >> 8) & 0xFF;
      set(2 * k, k, h, (r & 0xFF) >> 5, scale);
      set(2 * k + 1, k, h, low_);
    }
  }
  // Pairs of predictions: where two agree, the byte is surer.
  auto byte_of = [&](int k) {
    return high_ ? ((predictions_[k] - low_ + 128) >> 8) & 0xFF : predictions_[k] & 0xFF;
  };
  set(12, 0, byte_of(3), byte_of(4));
  set(13, 0, byte_of(1), byte_of(3));
  set(14, 0, byte_of(0), byte_of(2));
  set(15, 0, byte_of(3), scale_of(c.error[3]), channel_);
  if (!high_) {
    set(10, 0, static_cast<uint16_t>(s1));
    set(11, 0, static_cast<uint16_t>(s1), static_cast<uint16_t>(s2));
  } else {
    set(10, 0, static_cast<uint16_t>(s1), low_);
    set(11, 0, static_cast<uint16_t>(s1) >> 8, static_cast<uint16_t>(s2) >> 8, low_);
  }

  const int best_scale = scale_of(c.error[3]);
  group_ = (high_ ? 16 : 0) + std::min(best_scale, 15);
  kind_ = (high_ ? 1 : 0) + 2 * static_cast<int>(std::min<uint32_t>(channel_, 3));
  expected_ = high_ ? ((predictions_[3] - low_ + 128) >> 8) & 0xFF : predictions_[3] & 0xFF;
}

void AudioModel::predict(int c0, int bitpos, int16_t* inputs) {
  contexts_.predict(c0, bitpos, inputs);
  for (int i = kContexts; i < kInputs; ++i) inputs[i] = 0;
}

void AudioModel::update(int bit) {
  contexts_.update(bit);
}

void AudioModel::end_byte(const History& history, uint32_t lane) {
  if (!high_) return;
  const int byte = static_cast<int>(history.last8(lane) & 0xFF);
  const int32_t sample = static_cast<int16_t>(static_cast<uint16_t>(byte << 8 | low_));
  Channel& c = channel_of(lane, channel_);
  for (int k = 0; k < kPredictors; ++k) {
    const int32_t error = std::min(std::abs(sample - predictions_[k]), 65535);
    c.error[k] += (error * 16 - c.error[k]) >> 4;
  }
  // NLMS: w += mu · e · x / (|x|² + 1), on the differences the filters predict.
  int64_t norm = 256;
  for (const int32_t x : inputs_) norm += int64_t{x} * x;
  for (int f = 0; f < 2; ++f) {
    const int64_t e = sample - predictions_[3 + f];  // |e| < 2^17
    const int64_t g = (e << 24) / norm;              // |g| < 2^41 / 256
    for (int i = 0; i < kFilterTaps; ++i) {
      const int64_t step = (g * inputs_[i]) >> (24 - kWeightBits + kStepShift[f]);
      c.weights[f][i] = static_cast<int32_t>(
          std::clamp<int64_t>(c.weights[f][i] + step, -kMaxWeight, kMaxWeight));
    }
  }
  std::copy_backward(c.samples.begin(), c.samples.end() - 1, c.samples.end());
  c.samples[0] = sample;
}

}  // namespace mbz::cm

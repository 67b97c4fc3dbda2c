#include "codec/cm/predictor.h"

#include <algorithm>
#include <string>

#include "codec/error.h"

namespace mbz::cm {
namespace {

// Figures in the comments below are bits per byte on every 4th file of
// data/corpora/text/valid (272 files, mostly a few kilobytes), each coded on its own.

// Mixer learning rates (Mixer::update units, lr = rate / 512): fast while the weights are
// far from anything useful, settling to kRateFinal; the boost halves after kRateHalfLife
// bytes. A final rate of 2 measured 0.05 % better on small files but worse on large ones;
// 4, or no boost, 0.2 % worse.
constexpr int kRateFinal = 3, kRateBoost = 10, kRateHalfLife = 512;
static_assert(kRateFinal + kRateBoost <= detail::kMaxMixerRate);

// Layer 1 starts every input at weight 0.25 (1200 and 3000 of 8192 measured within
// 0.1 %), except the external table's, trusted fully from the start: a table is given
// because it is good. Layer 2 starts as the average of layer 1 and passes the table on.
constexpr int16_t kInitialWeight = 2048;
constexpr int16_t kInitialTableWeight = 2048;

constexpr int kApmOrder1Contexts = 256 * 256;

// ContextModel takes Config::ablate's low bits as they are.
static_assert(kAblateOrder0 == 1 && kAblateWord == 1u << (ContextModel::kContexts - 1) &&
              kAblateRuns == 1u << ContextModel::kContexts);

// The match model's length in four steps, for selecting weights.
int match_state(uint32_t length) {
  return length == 0 ? 0 : length < 16 ? 1 : length < 32 ? 2 : 3;
}

void check_bits(const char* name, int value, int min, int max) {
  if (value < min || value > max)
    throw Error(ErrorCode::kUsageBadArgument, std::string("context mixer: ") + name + " is " +
                                                  std::to_string(value) + ", expected " +
                                                  std::to_string(min) + ".." + std::to_string(max));
}

const Lanes& checked(const Config& config, const Lanes& lanes) {
  check_bits("context_bits", config.context_bits, kMinContextBits, kMaxContextBits);
  check_bits("match_bits", config.match_bits, kMinMatchBits, kMaxMatchBits);
  if (!config.layout.valid())
    throw Error(ErrorCode::kUsageBadArgument,
                "context mixer: the image or audio layout is invalid");
  if ((config.ablate & ~uint32_t{kAblateAll}) != 0)
    throw Error(ErrorCode::kUsageBadArgument,
                "context mixer: ablate is " + std::to_string(config.ablate) +
                    ", expected bits of " + std::to_string(kAblateAll) + " only");
  // The match model keeps segment offsets in 32 bits.
  if (lanes.size() >= (uint64_t{1} << 32))
    throw Error(ErrorCode::kUsageBadArgument, "context mixer: a segment of " +
                                                  std::to_string(lanes.size()) +
                                                  " bytes, expected below 2^32");
  return lanes;
}

// The layout the modality model follows: none when it is switched off.
Layout modality_layout(const Config& config) {
  return config.ablate & kAblateModality ? Layout{} : config.layout;
}

}  // namespace

size_t Config::memory_bytes(size_t size) const {
  const size_t modality =
      modality_layout(*this).kind == Layout::Kind::kBytes ? 0 : size_t{4} << context_bits;
  return (size_t{4} << context_bits) + modality + (size_t{4} << match_bits) + size +
         size_t{kApmOrder1Contexts} * 33 * 4;
}

Predictor::Predictor(const Config& config, const Lanes& lanes)
    : history_(checked(config, lanes)),
      // 16 counters (one 64-byte bucket) a context
      contexts_(config.context_bits - 4, lanes.count(), config.ablate),
      match_(config.match_bits, lanes.count()),
      layer1_{Mixer<kInputs>(256, kInitialWeight), Mixer<kInputs>(4 * 2 * 6 * 4, kInitialWeight)},
      modality_(ModalityModel::make(modality_layout(config), config.context_bits - 4, lanes)),
      // Without a modality model these mixers' inputs and outputs stay 0: one weight set
      // each is all they need.
      modality_mixers_{Mixer<kAllInputs>(modality_ ? 256 : 1, kInitialWeight),
                       Mixer<kAllInputs>(modality_ ? 256 : 1, kInitialWeight)},
      layer2_(1, layer2_initial_weights(modality_ != nullptr)),
      apm_order0_(256, 4, 127),
      apm_order1_(kApmOrder1Contexts, 4, 127),
      rate_(kRateFinal + kRateBoost),
      use_match_((config.ablate & kAblateMatch) == 0),
      use_apm_((config.ablate & kAblateApm) == 0),
      use_table_((config.ablate & kAblateTable) == 0) {}

// The average of layer 1's mixers, those of the modality model included when there is one.
std::array<int16_t, Predictor::kLayer2Inputs> Predictor::layer2_initial_weights(bool modality) {
  std::array<int16_t, kLayer2Inputs> w{};
  const int n = kLayer1 + (modality ? kModalityMixers : 0);
  for (int i = 0; i < kLayer1; ++i) w[i] = static_cast<int16_t>(Mixer<kLayer2Inputs>::kOne / n);
  if (modality)
    for (int i = 0; i < kModalityMixers; ++i)
      w[kModalityAt + i] = static_cast<int16_t>(Mixer<kLayer2Inputs>::kOne / n);
  return w;
}

void Predictor::begin_byte(uint32_t lane, const Cdf* table) {
  const Lanes& lanes = history_.lanes();
  if (lane >= lanes.count() || history_.filled(lane) >= lanes.size_of(lane))
    throw Error(ErrorCode::kUsageBadArgument,
                "context mixer: lane " + std::to_string(lane) + " has no byte left to code");
  lane_ = lane;
  contexts_.begin_byte(history_, lane);
  // A match model switched off never finds a match: it predicts nothing and its length
  // stays 0.
  if (use_match_) match_.begin_byte(history_, lane);
  if (modality_) modality_->begin_byte(history_, lane);
  table_.set(use_table_ ? table : nullptr);
  predicted_ = false;
}

int Predictor::p() {
  if (!predicted_) predict();
  return pr_;
}

void Predictor::predict() {
  int16_t* x = inputs_.data();
  contexts_.predict(c0_, bitpos_, x);
  match_.predict(c0_, bitpos_, x + ContextModel::kInputs);
  table_.predict(c0_, bitpos_, x + kTableLanes);

  const uint32_t length = match_.length();
  const int expected_bit = length > 0 ? (match_.expected_byte() >> (7 - bitpos_)) & 1 : 0;
  const int select[kLayer1] = {
      c0_,
      ((match_state(length) * 2 + expected_bit) * 6 + contexts_.seen()) * 4 + table_.confidence(),
  };
  for (int i = 0; i < kLayer1; ++i) mixed_[i] = static_cast<int16_t>(layer1_[i].mix(x, select[i]));
  mixed_[kLayer1] = 256;  // bias
  for (int i = 0; i < TableInput::kInputs; ++i) mixed_[kLayer1 + 1 + i] = x[kTableLanes + i];
  if (modality_) {
    modality_->predict(c0_, bitpos_, x + kInputs);
    // Whether the bits so far are the expected byte's, and if so its next bit.
    const int expected = modality_->expected() | 256;
    const int agree = (expected >> (8 - bitpos_)) == c0_;
    const int next_bit = agree ? (expected >> (7 - bitpos_)) & 1 : 0;
    const int select[kModalityMixers] = {
        modality_->group() * 8 + bitpos_,
        ((modality_->kind() * 2 + agree) * 2 + next_bit) * 8 + bitpos_,
    };
    static_assert(ModalityModel::kGroups * 8 <= 256 && ModalityModel::kKinds * 32 <= 256);
    for (int i = 0; i < kModalityMixers; ++i)
      mixed_[kModalityAt + i] = static_cast<int16_t>(modality_mixers_[i].mix(x, select[i]));
  }
  layer2_.mix(mixed_.data(), 0);
  const int p_mix = layer2_.p();

  // The APMs' share measured best at 3/4 (0.7 % better than none, 1/2 0.05 % worse).
  const int p0 = apm_order0_.p(p_mix, c0_);
  // The order-1 APM's context is the last byte, or for an image or audio byte the model's
  // expected byte, which says far more about it.
  const int byte_context =
      modality_ ? modality_->expected() : static_cast<int>(history_.last8(lane_) & 0xFF);
  const int p1 = apm_order1_.p(p_mix, c0_ | byte_context << 8);
  // Switched off, the APMs still learn (unread), which costs less than testing twice.
  pr_ = std::clamp(use_apm_ ? (p_mix + p0 + 2 * p1 + 2) >> 2 : p_mix, 1, kProbOne - 1);
  predicted_ = true;
}

void Predictor::update(int bit) {
  if (!predicted_) predict();  // the update trains what predict() chose
  contexts_.update(bit);
  match_.update(bit);
  for (auto& mixer : layer1_) mixer.update(inputs_.data(), bit, rate_);
  if (modality_) {
    modality_->update(bit);
    for (auto& mixer : modality_mixers_) mixer.update(inputs_.data(), bit, rate_);
  }
  layer2_.update(mixed_.data(), bit, rate_);
  apm_order0_.update(bit);
  apm_order1_.update(bit);

  c0_ = c0_ << 1 | bit;
  if (++bitpos_ == 8) end_byte();
  predicted_ = false;
}

void Predictor::end_byte() {
  history_.push(lane_, static_cast<uint8_t>(c0_));
  contexts_.end_byte(history_, lane_);
  if (use_match_) match_.end_byte(history_, lane_);
  if (modality_) modality_->end_byte(history_, lane_);
  table_.set(nullptr);
  c0_ = 1;
  bitpos_ = 0;
  const uint64_t n = std::min<uint64_t>(history_.pos(), uint64_t{1} << 32);
  rate_ = kRateFinal + static_cast<int>(kRateBoost * kRateHalfLife / (kRateHalfLife + n));
}

}  // namespace mbz::cm

#include "codec/cm/cm_codec.h"

#include <algorithm>
#include <bit>
#include <string>

#include "codec/error.h"

namespace mbz::cm {
namespace {

// ceil(log2(size)), at least 0.
int log2_ceil(size_t size) {
  return size <= 1 ? 0 : static_cast<int>(std::bit_width(size - 1));
}

void check_tables(const Cdf* tables, size_t size) {
  if (tables == nullptr) return;
  for (size_t i = 0; i < size; ++i)
    if (!cdf_is_valid(tables[i]))
      throw Error(ErrorCode::kUsageBadArgument,
                  "context mixer: the frequency table of byte " + std::to_string(i) +
                      " is invalid (it must rise from 0 to 2^16, every frequency >= 1)");
}

// Calls code(lane, offset) for every byte of the segment, round by round.
template <class Code>
void for_each_round(const Lanes& lanes, Code code) {
  for (uint64_t t = 0; t < lanes.rounds(); ++t)
    for (uint32_t j = 0, live = lanes.live(t); j < live; ++j) code(j, lanes.begin(j) + t);
}

}  // namespace

Config config_for(size_t size, const Config& max) {
  const int bits = log2_ceil(size);
  Config config = max;  // its layout and ablate as they are
  // A byte visits two buckets (16 counters each) for each of the 5 hashed contexts, but
  // most contexts recur: against 2^(bits+2) buckets, 2^(bits+3) gain 0.1 % and cost a
  // third more time, 2^(bits+1) lose 0.4 % (every 4th file of data/corpora/text/valid).
  // (A `max` below the minimum stays as it is, for the Predictor to refuse.)
  config.context_bits = std::min(std::max(bits + 6, kMinContextBits), max.context_bits);
  config.match_bits = std::min(std::max(bits + 1, kMinMatchBits), max.match_bits);
  return config;
}

Encoder::Encoder(const Lanes& lanes, const Config& max, std::vector<uint8_t>& out)
    : predictor_(config_for(lanes.size(), max), lanes), coder_(out) {}

Decoder::Decoder(std::span<const uint8_t> payload, const Lanes& lanes, const Config& max)
    : coder_(payload), predictor_(config_for(lanes.size(), max), lanes), size_(lanes.size()) {}

void Decoder::finish() const {
  if (coder_.remaining() != 0)
    throw Error(ErrorCode::kCorruptChunk,
                "context-mixing payload has " + std::to_string(coder_.remaining()) +
                    " bytes left over after " + std::to_string(size_) + " decoded bytes");
}

std::vector<uint8_t> encode(std::span<const uint8_t> data, const Cdf* tables, const Config& max,
                            uint32_t lane_count) {
  check_tables(tables, data.size());
  const Lanes lanes(data.size(), lane_count);
  std::vector<uint8_t> out;
  out.reserve(data.size() / 2 + 16);
  Encoder encoder(lanes, max, out);
  for_each_round(lanes, [&](uint32_t lane, uint64_t i) {
    encoder.code(lane, data[i], tables ? &tables[i] : nullptr);
  });
  encoder.finish();
  return out;
}

std::vector<uint8_t> decode(std::span<const uint8_t> payload, size_t size, const Cdf* tables,
                            const Config& max, uint32_t lane_count) {
  check_tables(tables, size);
  const Lanes lanes(size, lane_count);
  Decoder decoder(payload, lanes, max);
  std::vector<uint8_t> out(size);
  for_each_round(lanes, [&](uint32_t lane, uint64_t i) {
    out[i] = decoder.decode(lane, tables ? &tables[i] : nullptr);
  });
  decoder.finish();
  return out;
}

}  // namespace mbz::cm

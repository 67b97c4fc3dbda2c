#include "codec/cm/cm_codec.h"

#include <algorithm>
#include <bit>
#include <string>

#include "codec/cm/binary_coder.h"
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

}  // namespace

Config config_for(size_t size, const Config& max) {
  const int bits = log2_ceil(size);
  Config config;
  // A byte visits two buckets (16 counters each) for each of the 5 hashed contexts, but
  // most contexts recur: against 2^(bits+2) buckets, 2^(bits+3) gain 0.1 % and cost a
  // third more time, 2^(bits+1) lose 0.4 % (every 4th file of data/corpora/text/valid).
  // (A `max` below the minimum stays as it is, for the Predictor to refuse.)
  config.context_bits = std::min(std::max(bits + 6, kMinContextBits), max.context_bits);
  config.match_bits = std::min(std::max(bits + 1, kMinMatchBits), max.match_bits);
  config.history_bits = std::min(std::max(bits, kMinHistoryBits), max.history_bits);
  return config;
}

std::vector<uint8_t> encode(std::span<const uint8_t> data, const Cdf* tables, const Config& max) {
  check_tables(tables, data.size());
  Predictor predictor(config_for(data.size(), max));
  std::vector<uint8_t> out;
  out.reserve(data.size() / 2 + 16);
  BinaryEncoder encoder(out);
  for (size_t i = 0; i < data.size(); ++i) {
    predictor.set_byte_table(tables ? &tables[i] : nullptr);
    for (int k = 7; k >= 0; --k) {
      const int bit = (data[i] >> k) & 1;
      encoder.encode(bit, predictor.p());
      predictor.update(bit);
    }
  }
  encoder.finish();
  return out;
}

std::vector<uint8_t> decode(std::span<const uint8_t> payload, size_t size, const Cdf* tables,
                            const Config& max) {
  check_tables(tables, size);
  BinaryDecoder decoder(payload);
  Predictor predictor(config_for(size, max));
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) {
    predictor.set_byte_table(tables ? &tables[i] : nullptr);
    int c = 0;
    for (int k = 0; k < 8; ++k) {
      const int bit = decoder.decode(predictor.p());
      predictor.update(bit);
      c = c << 1 | bit;
    }
    out[i] = static_cast<uint8_t>(c);
  }
  if (decoder.remaining() != 0)
    throw Error(ErrorCode::kCorruptChunk,
                "context-mixing payload has " + std::to_string(decoder.remaining()) +
                    " bytes left over after " + std::to_string(size) + " decoded bytes");
  return out;
}

}  // namespace mbz::cm

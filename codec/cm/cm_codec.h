// Whole buffers through the context mixer: every byte, MSB first, coded by the binary
// arithmetic coder with a fresh Predictor's probabilities, optionally helped by one
// external frequency table per byte.
//
// The payload is the coder's output alone (codec/cm/binary_coder.h), at least 4 bytes; it
// does not record the size, the tables or the Config: the caller keeps them, and decoding
// needs the same. The predictor's tables are sized for the buffer (config_for), so that a
// small buffer does not pay for clearing memory it cannot use; a decoder given the same
// size and maximum Config sizes them alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/cm/predictor.h"
#include "codec/range_coder.h"

namespace mbz::cm {

// The Config a buffer of `size` bytes is coded with: `max` with every table shrunk to
// what `size` bytes can fill (and no smaller than the minimum).
Config config_for(size_t size, const Config& max = {});

// Codes `data`. `tables` is nullptr or points to data.size() valid tables (cdf_is_valid),
// tables[i] for data[i]; an invalid one throws Error(kUsageBadArgument).
std::vector<uint8_t> encode(std::span<const uint8_t> data, const Cdf* tables = nullptr,
                            const Config& max = {});

// Decodes `size` bytes from `payload`, with the tables and maximum Config the encoder had.
// A payload that ends early throws Error(kCorruptTruncated), one with bytes left over
// Error(kCorruptChunk). A damaged payload of the right length may decode to wrong bytes:
// the caller's checksum is what catches that.
std::vector<uint8_t> decode(std::span<const uint8_t> payload, size_t size,
                            const Cdf* tables = nullptr, const Config& max = {});

}  // namespace mbz::cm

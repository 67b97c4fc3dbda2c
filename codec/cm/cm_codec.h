// Segments through the context mixer: every byte, MSB first, coded by the binary
// arithmetic coder with a Predictor's probabilities, optionally helped by one external
// frequency table per byte (the byte model's, in the archive's hybrid method).
//
// A segment is cut into lanes (codec/lanes.h). Encoder and Decoder take its bytes one at
// a time, each named by its lane, in whatever order the caller keeps on both sides; the
// whole-buffer encode() and decode() go round by round as the archive does.
//
// The payload is the coder's output alone (codec/cm/binary_coder.h), at least 4 bytes; it
// does not record the size, the lanes, the tables or the Config: the caller keeps them,
// and decoding needs the same. The predictor's tables are sized for the segment
// (config_for), so that a small segment does not pay for clearing memory it cannot use; a
// decoder given the same size and maximum Config sizes them alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/cm/binary_coder.h"
#include "codec/cm/predictor.h"
#include "codec/lanes.h"
#include "codec/range_coder.h"

namespace mbz::cm {

// The Config a segment of `size` bytes is coded with: `max` with every table shrunk to
// what `size` bytes can fill (and no smaller than the minimum), its other fields as they are.
Config config_for(size_t size, const Config& max = {});

class Encoder {
 public:
  // Appends the payload of a segment laid out as `lanes` to `out`.
  Encoder(const Lanes& lanes, const Config& max, std::vector<uint8_t>& out);
  // Codes the next byte of `lane` with the external table `table` (nullptr: none). A table
  // must be valid (cdf_is_valid), as every BatchByteModel's is.
  void code(uint32_t lane, uint8_t byte, const Cdf* table) {
    predictor_.begin_byte(lane, table);
    for (int k = 7; k >= 0; --k) {
      const int bit = (byte >> k) & 1;
      coder_.encode(bit, predictor_.p());
      predictor_.update(bit);
    }
  }
  // Writes the coder's last bytes; the payload is then complete.
  void finish() { coder_.finish(); }

 private:
  Predictor predictor_;
  BinaryEncoder coder_;
};

class Decoder {
 public:
  // Throws Error(kCorruptTruncated) for a payload shorter than 4 bytes.
  Decoder(std::span<const uint8_t> payload, const Lanes& lanes, const Config& max);
  // The next byte of `lane`, decoded with the table the encoder had. A payload that ends
  // early throws Error(kCorruptTruncated).
  uint8_t decode(uint32_t lane, const Cdf* table) {
    predictor_.begin_byte(lane, table);
    int c = 1;
    while (c < 256) {
      const int bit = coder_.decode(predictor_.p());
      predictor_.update(bit);
      c = c << 1 | bit;
    }
    return static_cast<uint8_t>(c);
  }
  // After the last byte: throws Error(kCorruptChunk) if the payload has bytes left over.
  void finish() const;

 private:
  BinaryDecoder coder_;
  Predictor predictor_;
  size_t size_;
};

// Codes `data` as `lanes` lanes, round by round. `tables` is nullptr or points to
// data.size() valid tables (cdf_is_valid), tables[i] for data[i]; an invalid one throws
// Error(kUsageBadArgument).
std::vector<uint8_t> encode(std::span<const uint8_t> data, const Cdf* tables = nullptr,
                            const Config& max = {}, uint32_t lanes = 1);

// Decodes `size` bytes from `payload`, with the tables, maximum Config and lanes the
// encoder had. A payload that ends early throws Error(kCorruptTruncated), one with bytes
// left over Error(kCorruptChunk). A damaged payload of the right length may decode to
// wrong bytes: the caller's checksum is what catches that.
std::vector<uint8_t> decode(std::span<const uint8_t> payload, size_t size,
                            const Cdf* tables = nullptr, const Config& max = {},
                            uint32_t lanes = 1);

}  // namespace mbz::cm

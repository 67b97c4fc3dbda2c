// Coding chunks with a model: a batch of independent chunks advances in lockstep, one
// byte of every unfinished chunk per predict/update round, so that a batched model (the
// neural one on a GPU) computes a whole round at once. The classical model runs batches
// of one. Encoder and decoder make the same rounds in the same order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "codec/byte_model.h"

namespace mbz {

// Codes each chunk against `model` (reset first). payloads[k] receives chunk k's range
// coder output, or is cleared if it would reach `give_up[k]` bytes or more, or falls
// behind the pace to beat it (see off_pace): the caller keeps another method then.
void model_encode(BatchByteModel& model, std::span<const std::span<const uint8_t>> chunks,
                  std::span<const size_t> give_up, std::vector<std::vector<uint8_t>>& payloads);

// Decodes outputs[k].size() bytes of each payload. Corrupt payloads decode to wrong bytes,
// never out of bounds: the caller checks the chunk checksums.
void model_decode(BatchByteModel& model, std::span<const std::span<const uint8_t>> payloads,
                  std::span<const std::span<uint8_t>> outputs);

}  // namespace mbz

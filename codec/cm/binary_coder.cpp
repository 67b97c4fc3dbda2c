#include "codec/cm/binary_coder.h"

#include <string>

#include "codec/error.h"

namespace mbz::cm {

BinaryDecoder::BinaryDecoder(std::span<const uint8_t> in) : in_(in) {
  for (int i = 0; i < 4; ++i) code_ = code_ << 8 | next_byte();
}

void BinaryDecoder::truncated() const {
  throw Error(ErrorCode::kCorruptTruncated,
              "context-mixing payload ends early: " + std::to_string(in_.size()) +
                  " bytes, the decoder needs more to finish");
}

}  // namespace mbz::cm

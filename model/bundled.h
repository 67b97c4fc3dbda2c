// The default model, built into the executable: model/weights/mbz-medium-1.mbzq, an exact model file
// (model/EXACT.md) that bundled.cpp assembles into read-only data, so that mbz needs no
// file beside it to compress, and to decompress what the default model made.
#pragma once

#include <cstdint>
#include <span>

namespace mbz::model {

// The file's name, which is also the name in the identity of archives it makes: the file
// itself, given by --model or found on the model search path, is the same model.
inline constexpr char kBundledModelName[] = "mbz-medium-1.mbzq";

// The bytes of the bundled model file.
std::span<const uint8_t> bundled_model_bytes();

}  // namespace mbz::model

// The exact engine behind the coder's model interface (codec/byte_model.h): an exact model
// file (model/EXACT.md, written by `mbz quantize`) as an mbz::ModelFactory. No torch here:
// cli/ includes it.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/byte_model.h"
#include "model/train.h"

namespace mbz::model {

// True when `path` (or its first part, path.000) is an exact model file.
bool is_exact_model_file(const std::string& path);

// Loads an exact model file onto "cpu" or "cuda". Its identity: the file's base name, and
// XXH3-128 of its config and tensors (the same however the file is split into parts).
// Streams longer than the model's context restart from the start patch at every multiple
// of the context. Throws mbz::Error (kIoOpen, kFormat*, kModelMismatch).
// The encoder's tables come from one forward pass per window on CUDA, from the byte-by-byte
// decoder on the CPU; `lookahead_on_cpu` takes forward passes there too (slow: for tests).
std::unique_ptr<ModelFactory> load_exact_model(const std::string& path,
                                               const std::string& device = "cpu",
                                               bool lookahead_on_cpu = false);
// The same from the bytes of a whole model file (the bundled model), named `name`.
std::unique_ptr<ModelFactory> load_exact_model(std::span<const uint8_t> bytes,
                                               const std::string& name,
                                               const std::string& device = "cpu");

// Converts the float checkpoint `checkpoint` into the exact model file `out`, with
// activation ranges measured on up to `windows` windows of the model's context from each
// modality of `calibration` (evenly spaced). Returns the files written.
std::vector<std::string> quantize_checkpoint(const std::string& checkpoint,
                                             const Corpus& calibration, int64_t windows,
                                             const std::string& out);

}  // namespace mbz::model

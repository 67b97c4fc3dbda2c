// Model files: the versioned checkpoint format of model/CHECKPOINT.md (magic "MBZM",
// version, config, named tensors with dtypes and shapes, step, optional optimizer state,
// XXH64), split into numbered parts of at most 16 MiB so that checkpoints move between
// machines easily. Not torch::save: its pickle-based files differ between LibTorch versions.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/megabyte.h"

namespace mbz::model {

inline constexpr char kCheckpointMagic[4] = {'M', 'B', 'Z', 'M'};
inline constexpr uint32_t kCheckpointVersion = 1;
inline constexpr uint64_t kMaxPartBytes = uint64_t{16} << 20;

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;  // float32, bfloat16, int64 or int8; any device (written from the CPU)
};

struct Checkpoint {
  std::string config_json;           // Config::to_json()
  std::string train_json;            // training state (flags, seed); "" for a model alone
  int64_t step = 0;                  // optimizer steps taken
  std::vector<NamedTensor> tensors;  // parameters by module path, then "optim.*" if kept
};

// Writes `path` when the file fits in `part_bytes`, else `path.000`, `path.001`, ... each of
// at most `part_bytes` (stale files of the other form are removed). Every file is written
// under a temporary name and renamed when complete. Returns the files written.
// Throws kIoWrite.
std::vector<std::string> write_checkpoint(const std::string& path, const Checkpoint& checkpoint,
                                          uint64_t part_bytes = kMaxPartBytes);
// Reads `path`, or its parts `path.000`, ... Checks magic, version, every length and offset
// against the file size, the dtypes, and the checksum. Throws kIoOpen / kIoRead,
// kFormatMagic / kFormatVersion, kCorruptTruncated / kCorruptChunk naming what was expected.
Checkpoint read_checkpoint(const std::string& path);
// The same from the bytes of a whole checkpoint in memory; `path` names it in errors.
Checkpoint parse_checkpoint(std::span<const uint8_t> data, const std::string& path);

// The parameters of `model` under their module paths ("global.layers.0.attn.qkv.weight").
std::vector<NamedTensor> model_tensors(Megabyte& model);
// Copies the named parameters into `model`; every parameter must be present with the
// expected shape ("tensor local.head.weight: expected shape [256,64], file has [256,32]").
// Throws kModelMismatch. Names starting with "optim." are ignored.
void load_model_tensors(Megabyte& model, const std::vector<NamedTensor>& tensors);
// A model built from the checkpoint's config and parameters, on `device`, in eval mode.
Megabyte model_from_checkpoint(const Checkpoint& checkpoint, torch::Device device);
// The bytes of the windows the checkpoint was trained on (train_json's "window", written by
// mbz train), 0 where it does not say. A model is worse past them: global positions beyond
// never trained.
int64_t trained_window(const Checkpoint& checkpoint);

}  // namespace mbz::model

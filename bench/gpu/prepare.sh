#!/usr/bin/env bash
# On the GPU machine: unpack the libraries, build build-cuda (once per machine), and add the
# corpus shards carried in this call to data/gpu/shards, unpacked into data/gpu/corpus.
#
#   source bench/gpu/prepare.sh [CARRIED_SHARD_DIR]
#
# Sourced, so that GPU_DEPS, TORCH_PREFIX, PATH and LD_LIBRARY_PATH stay set for what
# follows. A warm machine keeps data/gpu and build-cuda between calls.
set -eo pipefail
source .gpu-deps/unpack.sh /tmp/mbz-gpu-deps >/dev/null
# nvcc for the exact decoder's kernels (CMake finds it through CUDACXX).
[[ -z ${CUDACXX:-} && -x /usr/local/cuda/bin/nvcc ]] && export CUDACXX=/usr/local/cuda/bin/nvcc
if [[ ! -f build-cuda/build.ninja ]]; then
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$GPU_DEPS/usr" >/dev/null
fi
cmake --build build-cuda --target mbz 2>&1 | tail -1
if [[ -n ${1:-} && -d $1 ]]; then
  mkdir -p data/gpu/shards
  cat "$1"/SHA256SUMS >> data/gpu/shards/SHA256SUMS
  find "$1" -maxdepth 1 -name '*.tar*' -exec mv -t data/gpu/shards {} +
  ZSTD=$(command -v zstd) bash corpora/unpack.sh data/gpu/shards data/gpu/corpus
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader

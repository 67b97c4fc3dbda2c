#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: the exact decoder's CUDA graphs checked against the
# CPU's integers (tests/model_exact_test.cpp, Exact.Cuda*), then level 3's speed on CUDA
# with them off and on (bench/gpu/levels.sh on the valid text, and the first image tile).
#
#   bash bench/gpu/graphs.sh OUT_DIR [SECONDS_PER_RUN]
set -o pipefail
out=$1 limit=${2:-120}
mkdir -p "$out"
cmake --build build-cuda --target model_exact_test 2>&1 | tail -1
build-cuda/tests/model_exact_test --gtest_filter='Exact.Cuda*:Exact.Decoder*' 2>&1 |
  tee "$out/graphs-test.txt" | grep -E 'OK|FAILED|SKIPPED'
for graphs in 1 0; do
  MBZ_CUDA_GRAPHS=$graphs MODALITIES="text image" HOST_LEVELS="" CUDA_LANES="1024 256" CPU_LEVEL3=0 \
    bash bench/gpu/levels.sh "$out/graphs-$graphs" "$limit"
  rm -rf "$out/graphs-$graphs/work"
done

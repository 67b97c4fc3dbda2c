#!/usr/bin/env bash
# One device call: do the exact kernels' tensor-core products (MBZ_CUDA_TENSOR_CORES=1,
# mma.sync on int8) run, give the CPU's integers, and pay? Builds, records which GPU
# architectures the kernels were built for, runs the CUDA exactness tests and the stage
# split of a 16 MiB compression (bench/gpu/stages.sh) with the tensor cores off and on,
# then profiles one pass's kernels with Nsight Compute where it is installed.
#
#   run: bash bench/gpu/tensor-cores.sh     carry: .gpu-deps data/corpora/text/valid
#
# Under $OUT: arch.log, tests-dp4a.log, tests-mma.log, stages-{dp4a,mma}-*.log, ncu.log.
set -o pipefail
out=${OUT:?run on the device machine}
source bench/gpu/call-start.sh
{
  grep -E 'CUDA_ARCHITECTURES|CMAKE_CUDA_COMPILER:|CMAKE_CUDA_FLAGS:' build-cuda/CMakeCache.txt
  lib=$(find build-cuda -name 'libmbz_cuda_kernels.a' | head -1)
  echo "== cuobjdump --list-elf $lib"
  cuobjdump --list-elf "$lib" 2>&1 | head
  echo "== cuobjdump --list-ptx $lib"
  cuobjdump --list-ptx "$lib" 2>&1 | head
  echo "== mma instructions in the sm_90 code"
  cuobjdump --dump-sass -arch sm_90 "$lib" 2>/dev/null | grep -c 'IMMA'
  which ncu nsys compute-sanitizer
} > "$out/arch.log" 2>&1
cat "$out/arch.log"
for mode in dp4a mma; do
  tc=0
  [[ $mode == mma ]] && tc=1
  MBZ_CUDA_TENSOR_CORES=$tc timeout 240 build-cuda/tests/model_exact_test \
    --gtest_filter='Exact.Cuda*:Exact.Decoder*:Exact.CdfTables*' 2>&1 | tail -30 > "$out/tests-$mode.log"
  echo "== tests $mode"; tail -3 "$out/tests-$mode.log"
  MBZ_CUDA_TENSOR_CORES=$tc bash bench/gpu/stages.sh "/tmp/stages-$mode" 4096
  for f in /tmp/stages-$mode/*.log; do cp "$f" "$out/stages-$mode-$(basename "$f")"; done
  echo "== stages $mode"; grep -h 'stage pass' /tmp/stages-$mode/stages-compress.log
done
if command -v ncu > /dev/null; then
  # One 2 MiB window's pass kernels, 4096 lanes: time and throughput of each kind.
  find data/gpu/corpus/text/valid -type f | LC_ALL=C sort | xargs cat | head -c 2097152 > /tmp/ncu-src
  MBZ_CUDA_TENSOR_CORES=${NCU_TC:-1} timeout 240 ncu --clock-control none -k 'regex:kernel' -c 40 \
    --section SpeedOfLight --section LaunchStats --section Occupancy \
    build-cuda/mbz compress -q -f --level 3 --no-cm --zstd-level 0 --lanes 4096 --device cuda \
    -o /tmp/ncu.mbz /tmp/ncu-src > "$out/ncu.log" 2>&1
  echo "ncu rc=$?"
  grep -E '^  [a-z_]+kernel|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy' \
    "$out/ncu.log" | head -120
fi
grep -q "error" "$out/prep.log" || rm -f "$out/prep.log"

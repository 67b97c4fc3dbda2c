#!/usr/bin/env bash
# One device call for the encoder's pass: build, the GPU architectures the kernels were
# built for (cuobjdump), the CUDA exactness tests (tensor cores on, then off), the stage split of a 16 MiB compression (stages.sh), Nsight Compute's view of
# one 16 MiB sub-batch's kernels where ncu is installed, the bundled model's speed on 16
# and 64 MiB (model-speed.sh, 4096 lanes), where a small run's time goes (startup) and the
# CUDA/CPU exactness checks (exact.sh).
#
#   run: bash bench/gpu/pass-call.sh     carry: .gpu-deps data/corpora/text/valid
#        data/corpora/image/valid data/corpora/audio/valid
#
# STEPS (default "arch tests stages ncu speed exact"; also "startup") picks the parts, SPEED_BYTES the sizes of the
# speed runs (default "16777216 67108864"), NCU_KERNELS and NCU_COUNT the kernels ncu times
# (a regular expression, default all of a layer's and the inputs; 12). Under $OUT: arch.log,
# tests-*.log, stages-*.log, ncu.log, model-speed.tsv, model-speed.log, startup.log, exact.log. (The stage
# split with the tensor cores off: MBZ_CUDA_TENSOR_CORES=0 STEPS=stages.)
set -o pipefail
out=${OUT:?run on the device machine}
steps=${STEPS:-arch tests stages ncu speed exact}
source bench/gpu/call-start.sh
has() { [[ " $steps " == *" $1 "* ]]; }
if has arch; then
  # PyTorch's CMake files turn CMAKE_CUDA_ARCHITECTURES off: the kernels name their own.
  lib=$(find build-cuda -name 'libmbz_cuda_kernels.a' | head -1)
  {
    grep -E 'CUDA_ARCHITECTURES|CMAKE_CUDA_COMPILER:' build-cuda/CMakeCache.txt
    cuobjdump --list-elf "$lib"
    echo "tensor-core (IMMA) instructions in the sm_90 code:" \
      "$(cuobjdump --dump-sass -arch sm_90 "$lib" 2> /dev/null | grep -c IMMA)"
  } > "$out/arch.log" 2>&1
  cat "$out/arch.log"
fi
if has tests; then
  for tc in ${TEST_TENSOR_CORES:-1 0}; do
    MBZ_CUDA_TENSOR_CORES=$tc timeout 240 build-cuda/tests/model_exact_test \
      --gtest_filter='Exact.Cuda*:Exact.Decoder*:Exact.CdfTables*' 2>&1 | tail -30 > "$out/tests-tc$tc.log"
    echo "== tests, tensor cores $tc"; tail -3 "$out/tests-tc$tc.log"
  done
fi
if has stages; then
  bash bench/gpu/stages.sh /tmp/stages 4096
  for f in /tmp/stages/*.log; do cp "$f" "$out/$(basename "$f")"; done
  grep -h 'stage ' /tmp/stages/stages-*.log
fi
if has ncu && command -v ncu > /dev/null; then
  # The first sub-batch of 16 MiB in 4096 lanes: 256 windows of 4 KiB, 131,072 global rows.
  src=/tmp/ncu-src
  bash bench/gpu/valid-text.sh data/gpu/corpus 16777216 "$src"
  timeout 300 ncu --clock-control none -k "regex:${NCU_KERNELS:-qkv|attention|mlp|to_local|input}" -c "${NCU_COUNT:-12}" \
    --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
    build-cuda/mbz compress -q -f --level 3 --no-cm --zstd-level 0 --lanes 4096 --device cuda \
    -o /tmp/ncu.mbz "$src" > "$out/ncu.log" 2>&1
  echo "ncu rc=$?"
  grep -E '^  [a-z].*\(|Duration' "$out/ncu.log" | sed 's/(mbz::.*//' | head -40
fi
if has speed; then
  for bytes in ${SPEED_BYTES:-16777216 67108864}; do
    MBZ_TIMING=1 GRAPHS=1 LANES=4096 bash bench/gpu/model-speed.sh /tmp/ms 150 "$bytes" > /dev/null 2>&1
    for f in /tmp/ms/work/*.log; do echo "== $bytes $f"; cat "$f"; done >> "$out/model-speed.log"
    rm -rf /tmp/ms/work
  done
  cp /tmp/ms/model-speed.tsv "$out/"
  cat "$out/model-speed.tsv"
fi
if has startup; then
  # Where a small run's time goes: the process alone (LibTorch loaded, no CUDA), then 4 KiB
  # compressed on the CPU and on CUDA (the model made, the CUDA context, one pass).
  bash bench/gpu/valid-text.sh data/gpu/corpus 4096 /tmp/startup-src
  TIMEFORMAT=%R
  for i in 1 2 3; do
    v=$( { time build-cuda/mbz --version > /dev/null; } 2>&1)
    c=$( { time build-cuda/mbz compress -q -f --level 3 --no-cm --zstd-level 0 --device cpu \
      /tmp/startup-src -o /tmp/startup.mbz; } 2>&1)
    g=$( { time build-cuda/mbz compress -q -f --level 3 --no-cm --zstd-level 0 --device cuda \
      /tmp/startup-src -o /tmp/startup.mbz; } 2>&1)
    echo "startup: --version $v s, 4 KiB on the CPU $c s, on CUDA $g s"
  done | tee "$out/startup.log"
  LD_DEBUG=statistics build-cuda/mbz --version 2>&1 | grep -iE 'startup|relocation' | head -4 |
    tee -a "$out/startup.log"
  MBZ_TIMING=2 build-cuda/mbz compress -q -f --level 3 --no-cm --zstd-level 0 --device cuda \
    /tmp/startup-src -o /tmp/startup.mbz 2>&1 | tail -12 | tee -a "$out/startup.log"
fi
if has exact; then
  timeout 240 bash bench/gpu/exact.sh model/weights/mbz-medium-1.mbzq /tmp/exact > "$out/exact.log" 2>&1
  grep -E 'identical|round trip|hash|speed|DIFF|differ|rror' "$out/exact.log" | head -30
fi
grep -q "error" "$out/prep.log" || rm -f "$out/prep.log"

#!/usr/bin/env bash
# One device call: build on the GPU machine, run the exactness tests on CUDA, then the
# bundled model's speed (model-speed.sh), every level's speed (levels.sh) and the CUDA/CPU
# exactness checks (exact.sh), with the valid splits of data/corpora carried along.
#
#   run: bash bench/gpu/speed-call.sh     carry: .gpu-deps data/corpora/text/valid
#        data/corpora/image/valid data/corpora/audio/valid
#
# STEPS (default "tests model levels exact") picks the parts; LANES is model-speed.sh's.
# What comes back under $OUT (at most 8 files): tests.log, model-speed.tsv,
# model-speed.log (each run's log, MBZ_TIMING's split of the time included), levels.tsv,
# exact.log (prep.log and levels.log are removed when all went well).
set -o pipefail
out=${OUT:?run on the device machine}
steps=${STEPS:-tests model levels exact}
source bench/gpu/call-start.sh
has() { [[ " $steps " == *" $1 "* ]]; }
if has tests; then
  # The CUDA paths and what they must equal (the whole binary segfaults in a CPU-only test
  # under this LibTorch: model-s10.md).
  timeout 300 build-cuda/tests/model_exact_test \
    --gtest_filter='Exact.Cuda*:Exact.Decoder*:Exact.CdfTables*' 2>&1 |
    tail -40 > "$out/tests.log"
  tail -5 "$out/tests.log"
fi
if has model; then
  MBZ_TIMING=1 GRAPHS=1 LANES=${LANES:-1024 4096} bash bench/gpu/model-speed.sh /tmp/ms 90
  cp /tmp/ms/model-speed.tsv "$out/"
  for f in /tmp/ms/work/*.log; do echo "== $f"; cat "$f"; done > "$out/model-speed.log"
  cat "$out/model-speed.tsv"
fi
if has levels; then
  CPU_LEVEL3=0 CUDA_LANES="1024 256" bash bench/gpu/levels.sh /tmp/levels 120
  cp /tmp/levels/levels.tsv "$out/"
  for f in /tmp/levels/work/*.log; do echo "== $f"; tail -3 "$f"; done > "$out/levels.log"
fi
if has exact; then
  timeout 240 bash bench/gpu/exact.sh model/weights/mbz-medium-1.mbzq /tmp/exact > "$out/exact.log" 2>&1
  tail -20 "$out/exact.log"
fi
rm -f "$out/levels.log"
grep -q "error" "$out/prep.log" || rm -f "$out/prep.log"

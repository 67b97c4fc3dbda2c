#!/usr/bin/env bash
# Sourced first by the device-call scripts (speed-call.sh, pass-call.sh),
# with `out` set to $OUT: prepare.sh (its log in $out/prep.log), the carried corpus under
# data/gpu/corpus, and the test targets built. Leaves `set +e`: a failing part of a call
# must not stop the others. Exits the call when the build fails.
source bench/gpu/prepare.sh > "$out/prep.log" 2>&1 || { tail -30 "$out/prep.log"; exit 1; }
set +e
mkdir -p data/gpu
[[ -e data/gpu/corpus ]] || ln -s ../corpora data/gpu/corpus
cmake --build build-cuda --target model_exact_test table_hash >> "$out/prep.log" 2>&1 ||
  { tail -30 "$out/prep.log"; exit 1; }

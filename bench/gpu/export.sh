#!/usr/bin/env bash
# On the GPU machine: the newest checkpoint of run NAME (data/gpu/NAME) rewritten with
# bf16 weights and no optimizer state into OUT_DIR (files of at most 16 MiB, to come back
# from the machine).
#
#   bash bench/gpu/export.sh NAME OUT_DIR
set -eo pipefail
name=$1 out=$2
last=$(ls data/gpu/"$name"/step-*.mbzm data/gpu/"$name"/step-*.mbzm.000 2>/dev/null |
       sed "s/\.000$//" | sort | tail -1 || true)
step=$(basename "$last" .mbzm | sed 's/^step-0*//')
# A resumed run already at its last step only writes its checkpoint.
build-cuda/mbz train --resume "$last" --steps "$step" --data data/gpu/corpus/text/valid \
  --max-bytes 100000 --bf16-weights --no-optimizer-state --device cuda --out "$out" -q
ls -la "$out"

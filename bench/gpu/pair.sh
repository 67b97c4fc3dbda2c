#!/usr/bin/env bash
# On a GPU machine of two GPUs, after prepare.sh: base on GPU 0 and small on GPU 1 side by
# side (each alone on its GPU), each resuming from its newest checkpoint, for SECONDS.
#
#   bash bench/gpu/pair.sh SECONDS BASE_STEPS SMALL_STEPS OUT_DIR [extra flags for both...]
#
# Logs and CSVs are copied to OUT_DIR as base.{log,csv} and small.{log,csv}.
set -eo pipefail
seconds=$1 base_steps=$2 small_steps=$3 out=$4
shift 4
common=(--batch 32 --window 8192 --peak-tflops 989 --eval-every 250 --checkpoint-every 1000000 "$@")
CUDA_VISIBLE_DEVICES=0 bash bench/gpu/train.sh base base "$base_steps" "$seconds" \
  --lr 1.5e-3 "${common[@]}" > "$out/base.txt" 2>&1 &
CUDA_VISIBLE_DEVICES=1 bash bench/gpu/train.sh small small "$small_steps" "$seconds" \
  --lr 2e-3 "${common[@]}" > "$out/small.txt" 2>&1 &
wait
for n in base small; do
  cp "data/gpu/$n/train.log" "$out/$n.log"
  cp "data/gpu/$n/train.csv" "$out/$n.csv"
  tail -4 "$out/$n.txt"
done

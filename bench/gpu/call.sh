#!/usr/bin/env bash
# One device call of a training run on the GPU machine: prepare (build, unpack the carried
# shards), train run NAME for what is left of BUDGET seconds, export its newest checkpoint
# (bf16, no optimizer state, files of at most 16 MiB) to $OUT/ckpt, and pack the logs into
# $OUT/results.tgz. The first call of a run fixes its plan (batch, learning rate, total
# steps for the cosine schedule) in data/gpu/NAME.plan; later calls on the warm machine
# resume from the newest checkpoint with the same plan.
#
#   BUDGET=540 TRAIN_SECONDS=1500 bash bench/gpu/call.sh NAME CONFIG [CARRY_DIR]
#
# BUDGET: seconds this call may spend up to the end of training (export and packing take
#   about 30 s more); TRAIN_SECONDS: training seconds of the whole run, over all its calls
#   (first call only: the steps are planned from a 40-step probe at that speed);
# BATCH (default 64), LR (default 2e-3), WINDOW (default 8192); WEIGHTS as train.sh.
# With SCORE=1 the call ends with bench/gpu/score.sh on the exported checkpoint
# (SCORE_SECONDS per set, default 60), its JSON in $OUT/score.tgz.
set -o pipefail
name=$1 config=$2 carry=${3:-}
start=$SECONDS
out=${OUT:?OUT must name the folder that comes back}
source bench/gpu/prepare.sh $carry > "$out/prep.log" 2>&1  # exits the call on failure (set -e)
set +e
echo "prepared in $((SECONDS - start))s" | tee -a "$out/log.txt"
plan=data/gpu/$name.plan
batch=${BATCH:-64} lr=${LR:-2e-3} window=${WINDOW:-8192}
if [[ ! -f $plan ]]; then
  bash bench/gpu/profile.sh "$out/prof" "$config" "$window" "$batch" 2>&1 | tee -a "$out/log.txt"
  steps=$(bash bench/gpu/probe-steps.sh "$out/prof/profile-$config-b$batch.csv" \
          $((batch * window)) "${TRAIN_SECONDS:?first call: TRAIN_SECONDS}")
  echo "$batch $lr $steps" > "$plan"
fi
read -r batch lr steps < "$plan"
echo "plan: batch $batch, lr $lr, $steps steps" | tee -a "$out/log.txt"
left=$((${BUDGET:?BUDGET} - (SECONDS - start)))
bash bench/gpu/train.sh "$name" "$config" "$steps" "$left" --batch "$batch" --window "$window" \
  --lr "$lr" --warmup 200 --file-starts 0.3 --checkpoint-every 500 --eval-every 250 2>&1 |
  tail -3 | tee -a "$out/log.txt"
bash bench/gpu/export.sh "$name" "$out/ckpt" > "$out/export.log" 2>&1
if [[ ${SCORE:-0} == 1 ]]; then
  ckpt=$(ls "$out"/ckpt/step-*.mbzm "$out"/ckpt/step-*.mbzm.000 2>/dev/null | sed 's/\.000$//' | tail -1)
  bash bench/gpu/score.sh "$ckpt" "$out/score" "${SCORE_SECONDS:-60}" 2>&1 | tee -a "$out/log.txt"
  tar czf "$out/score.tgz" -C "$out" score && rm -rf "$out/score"
fi
cp "data/gpu/$name/train.log" "data/gpu/$name/train.csv" "$plan" "$out/" 2>/dev/null
(cd "$out" && tar czf results.tgz --ignore-failed-read prof log.txt prep.log export.log train.log \
   train.csv "$name.plan" 2>/dev/null; rm -rf prof prep.log export.log train.log train.csv)
ls -la "$out" "$out/ckpt"

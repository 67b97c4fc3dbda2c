#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: train (or resume) a model on what data/gpu/corpus
# holds for at most SECONDS, checkpoints in data/gpu/NAME (kept while the machine is warm).
#
#   bash bench/gpu/train.sh NAME CONFIG STEPS SECONDS [extra mbz train flags...]
#
# Resumes from the newest checkpoint in data/gpu/NAME when there is one; the log goes to
# data/gpu/NAME/train.log and the CSV to data/gpu/NAME/train.csv. Modalities are sampled
# with WEIGHTS (default text=8,image=1,audio=1,raw=0): mbz train's own default, 1 for each,
# spent session 7's run three quarters on the small image, audio and raw sets.
set -eo pipefail
name=$1 config=$2 steps=$3 seconds=$4
shift 4
corpus=data/gpu/corpus
out=data/gpu/$name
mkdir -p "$out"
args=()
for m in text image audio; do
  [[ -d $corpus/$m/train ]] && args+=(--data "$corpus/$m/train")
  [[ -d $corpus/$m/valid ]] && args+=(--valid "$corpus/$m/valid")
done
last=$(ls "$out"/step-*.mbzm "$out"/step-*.mbzm.000 2>/dev/null | sed "s/\\.000$//" | sort | tail -1 || true)
[[ -n $last ]] && args+=(--resume "$last")
echo "train.sh: $name $config to step $steps, ${seconds}s, resume '${last}'" | tee -a "$out/train.log"
build-cuda/mbz train --config "$config" --steps "$steps" --device cuda --out "$out" \
  --time-limit "$seconds" --weights "${WEIGHTS:-text=8,image=1,audio=1,raw=0}" "${args[@]}" "$@" 2>&1 | tee -a "$out/train.log" | grep -E 'valid|saved|mbz|rror' || true
tail -2 "$out/train.log"

#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: what integer-exact inference costs. Bits per byte of
# a float checkpoint and of exact model files on the valid split of data/gpu/corpus, per
# modality, all on CUDA (an exact model through its encoder's forward passes, the tables
# the coder would use).
#
#   [LIMIT=SECONDS_PER_SET] bash bench/gpu/quant.sh OUT_DIR CKPT|- EXACT_MODEL...
#
# One `mbz score --json` file per model and modality: OUT_DIR/<name>-<modality>.json.
set -o pipefail
out=$1 ckpt=$2
shift 2
models=("$@")
limit=${LIMIT:-120}
corpus=data/gpu/corpus
mkdir -p "$out"
declare -A flags=([text]="" [image]="--pixels" [audio]="--samples")
for m in text image audio; do
  for model in "$ckpt" "${models[@]}"; do
    [[ $model == - ]] && continue
    name=$(basename "$model"); name=${name%.*}
    start=$SECONDS
    timeout "$limit" build-cuda/mbz score --model "$model" --device cuda --threads 1 --json \
      ${flags[$m]} "$corpus/$m/valid" > "$out/$name-$m.json" 2> "$out/$name-$m.err"
    rc=$?
    echo "quant.sh: $name $m rc=$rc $((SECONDS - start))s $(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["total"])' "$out/$name-$m.json" 2>/dev/null)"
  done
done

#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: float bits per byte of a checkpoint on the valid
# and unseen splits of data/gpu/corpus, per modality, as the same files would be coded
# (images as pixels, audio as samples), plus the context study on text (windows of 2 and
# 8 KiB beside the model's own) and strided scoring (half-context stride) on text.
#
#   [WINDOW=BYTES] bash bench/gpu/score.sh CKPT OUT_DIR [SECONDS_PER_SET]
#
# WINDOW: score in windows of that many bytes (a model trained on shorter windows than its
# context); default the model's context.
# Each set is one `mbz score --json` file OUT_DIR/<modality>-<split>[-variant].json; a set
# that runs past SECONDS_PER_SET (default 120) is cut off and reported.
set -o pipefail
ckpt=$1 out=$2 limit=${3:-120}
corpus=data/gpu/corpus
mkdir -p "$out"
declare -A flags=([text]="" [image]="--pixels" [audio]="--samples")
one() {  # NAME DIR FLAGS...
  local name=$1 dir=$2
  shift 2
  [[ -d $dir ]] || { echo "score.sh: no $dir" >&2; return; }
  local start=$SECONDS
  timeout "$limit" build-cuda/mbz score --model "$ckpt" --device cuda --json \
    ${WINDOW:+--window $WINDOW} "$@" "$dir" \
    > "$out/$name.json" 2> "$out/$name.err"
  echo "score.sh: $name rc=$? $((SECONDS - start))s"
}
for split in valid unseen; do
  for m in text image audio; do
    one "$m-$split" "$corpus/$m/$split" ${flags[$m]}
  done
done
context=$(build-cuda/mbz score --model "$ckpt" --json /dev/null 2>/dev/null |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["model"]["context_bytes"])')
window=${WINDOW:-$context}
for w in 2048 8192; do
  ((w < window)) && WINDOW= one "text-valid-w$w" "$corpus/text/valid" --window $w
done
one "text-unseen-s$((window / 2))" "$corpus/text/unseen" --stride $((window / 2))

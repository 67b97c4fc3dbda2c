#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: `mbz sample` with fixed seeds on --device cpu and
# --device cuda, and the sha256 of each output side by side. The exact engine gives the same
# integers on both devices and the sampler only integer arithmetic on them, so every pair
# must be identical. Prompts come from the tree, so nothing else needs to be carried:
#   text   the first 7000 bytes of io/README.md, 2000 bytes drawn: the window fills (8 KiB)
#          and restarts with its last half, so the sliding window runs on both devices;
#   image  tests/data/io_gradient.jpg (24x17: the last row of tiles is partial), two rows
#          of tiles of 16 drawn;
#   audio  tests/data/io_tone.wav (16 kHz, 0.1 s), 0.1 s drawn.
# Each line: modality, seed, settings, sha256 on cpu, sha256 on cuda, same|DIFFERENT.
#
#   bash bench/gpu/sample.sh [MODEL] [OUT_DIR]     (default: the bundled model, /tmp/mbz-sample)
set -o pipefail
model=${1:-default} out=${2:-/tmp/mbz-sample}
mbz=${MBZ:-build-cuda/mbz}
mkdir -p "$out"
head -c 7000 io/README.md > "$out/prompt.txt"
declare -A args=(
  [text]="--prompt $out/prompt.txt --bytes 2000"
  [image]="--prompt tests/data/io_gradient.jpg --tiles 2"
  [audio]="--prompt tests/data/io_tone.wav --seconds 0.1"
)
declare -A ext=([text]=txt [image]=png [audio]=wav)
status=0
for m in text image audio; do
  for run in "1|" "2|--temperature 0.8 --top-p 0.95"; do
    seed=${run%%|*} settings=${run#*|}
    sums=()
    for d in cpu cuda; do
      f="$out/$m-seed$seed.$d.${ext[$m]}"
      start=$SECONDS
      # shellcheck disable=SC2086
      $mbz sample --model "$model" ${args[$m]} --seed "$seed" $settings --device $d -f -q \
        -o "$f" || { echo "sample.sh: $m seed $seed on $d failed" >&2; status=1; }
      echo "sample.sh: $m seed $seed on $d: $((SECONDS - start)) s" >&2
      if [[ -f $f ]]; then sums+=("$(sha256sum < "$f" | cut -c1-64)"); else sums+=(none); fi
    done
    same=DIFFERENT
    [[ ${sums[0]} == "${sums[1]}" ]] && same=same || status=1
    printf '%-5s seed %s %-32s cpu %s cuda %s %s\n' "$m" "$seed" "'$settings'" \
      "${sums[0]}" "${sums[1]}" "$same"
  done
done
exit $status

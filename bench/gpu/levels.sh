#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: compression and decompression speed of every
# --level there, one file per modality from data/gpu/corpus/*/valid (the
# first image tile, the largest audio clip under 300 kB), whole processes.
# Levels 0-2 run on the host's cores (all threads); level 3 runs the bundled byte model on
# CUDA with 1, 64 and 256 lanes, and on the CPU with 1 lane for comparison. Every archive
# is decompressed: text is compared with the original; an image or clip decodes to a PNG
# or WAV of the pixels or samples, and every run's decoding must equal the first one's.
#
#   bash bench/gpu/levels.sh OUT_DIR [SECONDS_PER_RUN] [TEXT_BYTES]
#
# MODALITIES (default "text image audio") picks the inputs, HOST_LEVELS (default "0 1 2")
# the levels run on the host, CUDA_LANES (default "256 64 1") level 3's lane counts on CUDA,
# CPU_LEVEL3=0 drops level 3 on the CPU; MBZ and CORPUS override build-cuda/mbz and data/gpu/corpus.
# OUT_DIR/levels.tsv: modality, level, device, lanes, raw bytes (text bytes, RGB bytes,
# 16-bit PCM bytes), archive bytes, bits per raw byte, compress and decompress MB/s, check.
# Level 3 with one lane codes the first 100 kB of the text only.
# A run past SECONDS_PER_RUN (default 240) is cut off and reported as such.
set -o pipefail
out=$1 limit=${2:-240} text_bytes=${3:-2000000}
corpus=${CORPUS:-data/gpu/corpus}
mbz=${MBZ:-build-cuda/mbz}
work=$out/work
mkdir -p "$work"
# Text: the valid text files, concatenated in sorted order and cut to TEXT_BYTES.
bash bench/gpu/valid-text.sh "$corpus" "$text_bytes" "$work/text.txt"
head -c 100000 "$work/text.txt" > "$work/text-100k.txt"  # for the one-lane runs of level 3
image=$(find "$corpus/image/valid" -name '*.png' | LC_ALL=C sort | head -1)
audio=$(find "$corpus/audio/valid" -name '*.flac' -size -300k -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
declare -A input=([text]=$work/text.txt [text-100k]=$work/text-100k.txt [image]=$image [audio]=$audio)
declare -A flags=([text]="" [text-100k]="" [image]="--pixels" [audio]="--samples")
declare -A ext=([text]=txt [text-100k]=txt [image]=png [audio]=wav)
[[ -f $out/levels.tsv ]] || printf 'modality\tlevel\tdevice\tlanes\traw_bytes\tarchive_bytes\tbits_per_raw_byte\tcompress_MBps\tdecompress_MBps\tcheck\n' \
  > "$out/levels.tsv"
now() { date +%s.%N; }
one() {  # MODALITY LEVEL DEVICE LANES
  local m=$1 level=$2 device=$3 lanes=$4 src=${input[$1]}
  [[ -f $src ]] || { echo "levels.sh: no $m input" >&2; return; }
  local tag=$m-l$level-$device-k$lanes arc=$work/$m-l$level-$device-k$lanes.mbz
  local extra=()
  ((level == 3)) && extra=(--device "$device" --lanes "$lanes")
  local t0=$(now)
  timeout "$limit" $mbz compress -v -f --level "$level" ${flags[$m]} "${extra[@]}" -o "$arc" "$src" \
    > "$work/$tag.log" 2>&1
  local rc=$? t1=$(now)
  if ((rc != 0)); then
    printf '%s\t%s\t%s\t%s\t\t\t\t\t\tcompress rc=%s\n' "$m" "$level" "$device" "$lanes" "$rc" >> "$out/levels.tsv"
    return
  fi
  local raw=$(grep -oE 'chunks, [0-9]+ =>' "$work/$tag.log" | grep -oE '[0-9]+' | awk '{s += $1} END {print s}')
  local dec=$work/$tag.out.${ext[$m]}
  local dev=()
  ((level == 3)) && dev=(--device "$device")
  timeout "$limit" $mbz decompress -f "${dev[@]}" -o "$dec" "$arc" >> "$work/$tag.log" 2>&1
  local rc2=$? t2=$(now)
  local check=ok
  if ((rc2 != 0)); then check="decompress rc=$rc2"
  elif [[ ${ext[$m]} == txt ]]; then cmp -s "$src" "$dec" || check=DIFFERENT
  else
    local ref=$work/$m-reference.${ext[$m]}
    if [[ -f $ref ]]; then cmp -s "$ref" "$dec" || check="decoded differently from $ref"
    else cp "$dec" "$ref"; check="reference"; fi
  fi
  local bytes=$(stat -c %s "$arc")
  python3 - "$m" "$level" "$device" "$lanes" "$raw" "$bytes" "$t0" "$t1" "$t2" "$check" >> "$out/levels.tsv" <<'PY'
import sys
m, level, device, lanes, raw, size, t0, t1, t2, check = sys.argv[1:]
raw, size, t0, t1, t2 = int(raw), int(size), float(t0), float(t1), float(t2)
print("\t".join([m, level, device, lanes, str(raw), str(size), "%.4f" % (8 * size / raw),
                 "%.3f" % (raw / 1e6 / (t1 - t0)), "%.3f" % (raw / 1e6 / (t2 - t1)), check]))
PY
  tail -1 "$out/levels.tsv"
}
for m in ${MODALITIES:-text image audio}; do
  for level in ${HOST_LEVELS-0 1 2}; do one $m $level cpu 1; done
  small=$m
  [[ $m == text ]] && small=text-100k
  for lanes in ${CUDA_LANES-256 64 1}; do
    if ((lanes == 1)); then one $small 3 cuda 1; else one $m 3 cuda "$lanes"; fi
  done
  [[ ${CPU_LEVEL3:-1} == 1 ]] && one $small 3 cpu 1
done

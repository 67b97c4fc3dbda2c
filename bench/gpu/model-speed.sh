#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: the byte model's own speed on CUDA (level 3 with
# --no-cm: the model method alone, no context mixer on the host), compressing and
# decompressing valid text cut to BYTES, at several lane counts, with the exact decoder's
# CUDA graphs on and off. Every decompression is compared with the input.
#
#   bash bench/gpu/model-speed.sh OUT_DIR [SECONDS_PER_RUN] [BYTES]
#
# LANES (default "1024 4096") and GRAPHS (default "1 0") pick the runs; MODEL (default: the
# bundled model) an exact model file. OUT_DIR/model-speed.tsv: graphs, lanes, raw bytes,
# archive bytes, bits per byte, compress and decompress MB/s (whole processes), check.
set -o pipefail
out=$1 limit=${2:-120} bytes=${3:-16777216}
corpus=${CORPUS:-data/gpu/corpus}
mbz=${MBZ:-build-cuda/mbz}
model=()
[[ -n ${MODEL:-} ]] && model=(--model "$MODEL")
work=$out/work
mkdir -p "$work"
# The valid text in sorted order, repeated until it reaches BYTES (lanes are independent
# streams of one context each, so a repeat far back changes nothing for the model).
src=$work/text.txt
bash bench/gpu/valid-text.sh "$corpus" "$bytes" "$src"
tsv=$out/model-speed.tsv
[[ -f $tsv ]] || printf 'graphs\tlanes\traw_bytes\tarchive_bytes\tbits_per_byte\tcompress_MBps\tdecompress_MBps\tcheck\n' > "$tsv"
now() { date +%s.%N; }
for graphs in ${GRAPHS:-1 0}; do
  for lanes in ${LANES:-1024 4096}; do
    arc=$work/g$graphs-k$lanes.mbz log=$work/g$graphs-k$lanes.log
    t0=$(now)
    MBZ_CUDA_GRAPHS=$graphs timeout "$limit" $mbz compress -v -f --level 3 --no-cm --zstd-level 0 \
      --lanes "$lanes" --device cuda "${model[@]}" -o "$arc" "$src" > "$log" 2>&1
    rc=$? t1=$(now)
    MBZ_CUDA_GRAPHS=$graphs timeout "$limit" $mbz decompress -f --device cuda "${model[@]}" \
      -o "$work/back" "$arc" >> "$log" 2>&1
    rc2=$? t2=$(now)
    check=ok
    if ((rc != 0)); then check="compress rc=$rc"
    elif ((rc2 != 0)); then check="decompress rc=$rc2"
    else cmp -s "$src" "$work/back" || check=DIFFERENT; fi
    size=$( ((rc == 0)) && stat -c %s "$arc" || echo 0)
    python3 - "$graphs" "$lanes" "$bytes" "$size" "$t0" "$t1" "$t2" "$check" >> "$tsv" <<'PY'
import sys
g, lanes, raw, size, t0, t1, t2, check = sys.argv[1:]
raw, size, t0, t1, t2 = int(raw), int(size), float(t0), float(t1), float(t2)
print("\t".join([g, lanes, str(raw), str(size), "%.4f" % (8 * size / raw),
                 "%.3f" % (raw / 1e6 / (t1 - t0)), "%.3f" % (raw / 1e6 / (t2 - t1)), check]))
PY
    tail -1 "$tsv"
    rm -f "$work/back"
  done
done
rm -f "$src"

#!/bin/bash
# mbz against paq8px -8 (and the classic tools) on fixed subsets of the unseen split.
#
#   bench/paq8px.sh PAQ8PX [OUTDIR]
#
# PAQ8PX is a paq8px binary you built yourself; it is measured only, nothing of it is
# part of mbz. How the figures in bench/results/paq8px-s5.md were built (v216, commit
# 29237fb44cb1995690e3eb72c6c3b1e4aede5791 of github.com/hxim/paq8px; needs cmake, g++):
#
#   git clone https://github.com/hxim/paq8px /tmp/paq8px-build/src
#   mkdir -p /tmp/paq8px-build/obj && cd /tmp/paq8px-build/obj
#   cmake -G "Unix Makefiles" -DNDEBUG=ON -DNATIVECPU=ON -DCMAKE_BUILD_TYPE=Release ../src
#   make -j2                                  # -O3 -march=native, its bundled zlib
#
# Runs bench/splits.py four times (one subset each, every file coded on its own, every
# coder on the same staged files in the same run), under nice -n 10:
#   text   every 10th file of at least 8 KiB of data/corpora/text/unseen (45 files);
#          mbz --level 2 and --level 3, zstd -19, xz -9e, zpaq -m5, paq8px -8
#   image  every 19th tile of data/corpora/image/unseen (4 tiles, decoded to PPM);
#          mbz --level 2, cwebp -lossless -z 9, cjxl -d 0 -e 7, paq8px -8
#   audio  every 3rd clip of .../audio/unseen/music (7) and every 30th of .../speech (20),
#          decoded to 16-bit WAV; mbz --level 2, flac -8, wavpack -hh, paq8px -8
# paq8px decompresses as slowly as it compresses, so it decompresses and checks only
# every 4th file of each subset (files 0, 4, 8, ...); its decompression speed is measured
# on those. Everything else is round-tripped on every file.
#
# SETS picks the subsets (default "text image audio"); LEVEL3=1 adds mbz --level 3 (the
# bundled byte model mixed in) to the image and audio subsets as well as text.
# OUTDIR (default /tmp/paq8px-s5) gets one JSON (bench/plot_tradeoff.py reads them) and
# one log per subset, and paq8px's start-up time on a 1-byte file. MBZ=path picks the
# mbz binary (default build/mbz); it is copied aside at start. About 45 minutes on a busy
# 2-core machine, most of it paq8px.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,4p' "$0" >&2; exit 2; }
PAQ=$(realpath "$1")
OUT=${2:-/tmp/paq8px-s5}
MBZ=${MBZ:-build/mbz}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
C=data/corpora
PY=/usr/bin/python3                    # Debian's: it has Pillow for the PNG tiles
S="nice -n 10 $PY bench/splits.py --mbz $MBZ --tools --paq8px $PAQ --paq8px-check-every 4"
HOST="2-core Debian 12 development machine (AMD EPYC), shared with other jobs"
L2="mbz --level 2 (default)=--level 2"
L3="mbz --level 3=--level 3"
SETS=${SETS:-text image audio}
MEDIA=(--mbz-set "$L2")
[[ ${LEVEL3:-0} == 1 ]] && MEDIA+=(--mbz-set "$L3")

{ "$PAQ" 2>&1 || true; } | head -1 | tee "$OUT/paq8px-version.txt"
printf x > "$OUT/one-byte"                # start-up: paq8px -8 fills 2.4 GB of tables per file
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/time -o "$OUT/time.txt" -f "%e s wall, %U s user, %S s sys" \
    nice -n 10 "$PAQ" -8 "$OUT/one-byte" "$OUT/one-byte.paq" >/dev/null 2>&1
echo "paq8px -8 on a 1-byte file: $(cat "$OUT/time.txt") (load before: $LOAD)" |
    tee "$OUT/paq8px-startup.txt"
rm -f "$OUT/one-byte" "$OUT/one-byte.paq" "$OUT/time.txt"

if [[ " $SETS " == *" text "* ]]; then
  $S --every 10 --min-bytes 8192 --json "$OUT/text.json" --host-note "$HOST" \
      --mbz-set "$L2" --mbz-set "$L3" \
      text $C/text/unseen 2>&1 | tee "$OUT/text.log"
fi
if [[ " $SETS " == *" image "* ]]; then
  $S --every 19 --json "$OUT/image.json" --host-note "$HOST" "${MEDIA[@]}" \
      image $C/image/unseen 2>&1 | tee "$OUT/image.log"
fi
if [[ " $SETS " == *" audio "* ]]; then
  $S --every 3 --json "$OUT/audio-music.json" --host-note "$HOST" "${MEDIA[@]}" \
      audio $C/audio/unseen/music 2>&1 | tee "$OUT/audio-music.log"
  $S --every 30 --json "$OUT/audio-speech.json" --host-note "$HOST" "${MEDIA[@]}" \
      audio $C/audio/unseen/speech 2>&1 | tee "$OUT/audio-speech.log"
fi

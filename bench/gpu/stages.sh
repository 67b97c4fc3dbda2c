#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: where the byte model's time goes on CUDA. Codes
# BYTES of the valid text (sorted files, repeated) with the model alone (--no-cm) in LANES
# lanes, compressing and decompressing with MBZ_TIMING=2, which synchronizes the device at
# every stage's ends so that the stages add up (timed runs are slower than untimed ones).
#
#   bash bench/gpu/stages.sh OUT_DIR [LANES] [BYTES]
#
# OUT_DIR/stages-compress.log and stages-decompress.log: the stage tables (seconds, calls).
set -o pipefail
out=$1 lanes=${2:-4096} bytes=${3:-16777216}
corpus=${CORPUS:-data/gpu/corpus}
mbz=${MBZ:-build-cuda/mbz}
mkdir -p "$out"
src=/tmp/stages-text
bash bench/gpu/valid-text.sh "$corpus" "$bytes" "$src"
MBZ_TIMING=2 $mbz compress -v -f --level 3 --no-cm --zstd-level 0 --lanes "$lanes" --device cuda \
  -o /tmp/stages.mbz "$src" > "$out/stages-compress.log" 2>&1 || echo "stages.sh: compress failed"
MBZ_TIMING=2 $mbz decompress -f --device cuda -o /tmp/stages-back /tmp/stages.mbz \
  > "$out/stages-decompress.log" 2>&1 || echo "stages.sh: decompress failed"
cmp -s "$src" /tmp/stages-back && echo "stages.sh: round trip ok" || echo "stages.sh: DIFFERENT"
rm -f "$src" /tmp/stages-back /tmp/stages.mbz

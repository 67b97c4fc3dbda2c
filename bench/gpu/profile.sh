#!/usr/bin/env bash
# On the GPU machine, after prepare.sh: where a training step's time goes. For each batch
# size, trains CONFIG from scratch for 40 steps on data/gpu/corpus text with MBZ_PROFILE
# set (model/profile.h): OUT/profile-CONFIG-bBATCH.txt lists the GPU kernels of steps 6-10
# by time, and OUT/profile-CONFIG-bBATCH.csv is the run's log (speed and MFU).
#
#   bash bench/gpu/profile.sh OUT CONFIG WINDOW BATCH...
set -o pipefail
out=$1 config=$2 window=$3
shift 3
mkdir -p "$out"
for batch in "$@"; do
  tag=$config-b$batch
  MBZ_PROFILE=$out/profile-$tag.txt timeout 180 build-cuda/mbz train --config "$config" \
    --batch "$batch" --window "$window" --steps 40 --warmup 10 --log-every 1 --eval-every 0 \
    --device cuda --data data/gpu/corpus/text/train --out "/tmp/profile-$tag" \
    --csv "$out/profile-$tag.csv" -q
  echo "profile.sh: $tag rc=$? $(head -1 "$out/profile-$tag.txt" 2>/dev/null)"
  tail -1 "$out/profile-$tag.csv"
done

#!/usr/bin/env bash
# Archives across machines: made on this Debian CPU and decoded on CUDA, made on CUDA and
# decoded on this Debian CPU (issue 7). The first file (sorted) of each valid split and 256
# KiB of valid text in 64 lanes, with the bundled model.
#
#   bash bench/gpu/cross-debian.sh make          here: .cross/*.cpu.mbz (carry .cross)
#   bash bench/gpu/cross-debian.sh gpu           on the GPU machine, after prepare.sh:
#        decodes .cross/*.cpu.mbz on CUDA, makes $OUT/*.cuda.mbz and compares them
#   bash bench/gpu/cross-debian.sh check DIR     here: decodes DIR/*.cuda.mbz on the CPU
#
# Each step prints one line a file: "ok" when the bytes are the original's (or, for the
# archives made on CUDA, the same as those made here), else what differs.
set -o pipefail
step=$1
corpus=${CORPUS:-data/corpora}
case $step in
  make | check) mbz=${MBZ:-build/mbz} device=cpu ;;
  gpu) mbz=${MBZ:-build-cuda/mbz} device=cuda corpus=${CORPUS:-data/gpu/corpus} ;;
  *) echo "usage: cross-debian.sh make | gpu | check DIR" >&2; exit 6 ;;
esac
source_of() {  # the input of archive NAME, into /tmp/cross-NAME
  local name=$1 f
  if [[ $name == lanes ]]; then
    bash bench/gpu/valid-text.sh "$corpus" 262144 /tmp/cross-lanes
  else
    f=$(find "$corpus/$name/valid" -type f | LC_ALL=C sort | head -1)
    cp "$f" "/tmp/cross-$name"
  fi
  echo "/tmp/cross-$name"
}
compress() {  # NAME OUT
  local options=()
  [[ $1 == lanes ]] && options=(--level 3 --no-cm --zstd-level 0 --lanes 64)
  $mbz compress -q -f "${options[@]}" --device "$device" "$(source_of "$1")" -o "$2"
}
decode_and_compare() {  # ARCHIVE NAME
  $mbz decompress -q -f --device "$device" "$1" -o /tmp/cross-back &&
    cmp -s "$(source_of "$2")" /tmp/cross-back && echo "$1: decoded on $device: ok" ||
    echo "$1: decoded on $device: DIFFERENT or failed"
}
names="text image audio lanes"
case $step in
  make)
    mkdir -p .cross
    for n in $names; do compress "$n" ".cross/$n.cpu.mbz" && sha256sum ".cross/$n.cpu.mbz"; done ;;
  gpu)
    out=${OUT:?run on the device machine}
    for n in $names; do
      decode_and_compare ".cross/$n.cpu.mbz" "$n"
      compress "$n" "$out/$n.cuda.mbz"
      cmp -s "$out/$n.cuda.mbz" ".cross/$n.cpu.mbz" &&
        echo "$n: made on cuda, the same bytes as on the Debian CPU" || echo "$n: made on cuda: DIFFERENT"
    done ;;
  check)
    for n in $names; do decode_and_compare "$2/$n.cuda.mbz" "$n"; done ;;
esac

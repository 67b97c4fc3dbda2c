#!/usr/bin/env bash
# Unpack and verify mbz corpus shards on the GPU machine (plain bash, tar, sha256sum, zstd).
#
#   corpora/unpack.sh SHARD_DIR DEST_DIR      unpack every shard in SHARD_DIR not yet done
#
# Run it again whenever more shards have arrived: a shard already unpacked and verified is
# skipped. Each shard's files land under DEST_DIR/<modality>/<split>/..., exactly as in
# data/corpora on the build machine, and DEST_DIR/.unpacked/<shard>.ok appears only after
# every file of that shard matched its sha256; training should read the file lists of the
# shards that have an .ok marker (DEST_DIR/SHARDS/<shard>.sha256) and nothing else.
# If SHARD_DIR/SHA256SUMS (from corpora/pack.py) is present, the shard file itself is
# checked against it first. zstd is taken from $ZSTD, else from PATH.
# Exit status: 0 all shards present are verified; 1 some shard failed (it is left out,
# its .ok is not written, and its name is printed); 2 usage.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 SHARD_DIR DEST_DIR" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
dest=$(cd "$2" && pwd)
zstd_bin=${ZSTD:-zstd}
mkdir -p "$dest/.unpacked"

failed=0
done_now=0
shopt -s nullglob
for shard_path in "$src"/*.tar.zst "$src"/*.tar; do
  shard=$(basename "$shard_path")
  name=${shard%.tar.zst}
  name=${name%.tar}
  ok="$dest/.unpacked/$shard.ok"
  [[ -e $ok ]] && continue
  if [[ -f $src/SHA256SUMS ]] && grep -q "  $shard\$" "$src/SHA256SUMS"; then
    if ! (cd "$src" && grep "  $shard\$" SHA256SUMS | sha256sum -c --quiet --strict -); then
      echo "FAILED $shard: the shard file does not match SHA256SUMS (incomplete copy?)" >&2
      failed=1
      continue
    fi
  fi
  echo "unpacking $shard" >&2
  if [[ $shard == *.zst ]]; then
    if ! "$zstd_bin" -dc -- "$shard_path" | tar -xf - -C "$dest" --no-same-owner; then
      echo "FAILED $shard: zstd or tar reported an error" >&2
      failed=1
      continue
    fi
  elif ! tar -xf "$shard_path" -C "$dest" --no-same-owner; then
    echo "FAILED $shard: tar reported an error" >&2
    failed=1
    continue
  fi
  list="SHARDS/$name.sha256"
  if [[ ! -f $dest/$list ]]; then
    echo "FAILED $shard: it holds no $list" >&2
    failed=1
    continue
  fi
  if ! (cd "$dest" && sha256sum -c --quiet --strict "$list"); then
    echo "FAILED $shard: some files differ from $list" >&2
    failed=1
    continue
  fi
  : >"$ok"
  done_now=$((done_now + 1))
done

total=$(find "$dest/.unpacked" -name '*.ok' | wc -l)
echo "unpacked $done_now new shard(s); $total verified in $dest" >&2
exit $failed

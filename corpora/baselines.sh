#!/usr/bin/env bash
# Compress the valid and unseen splits with zstd, xz, zpaq (text), cwebp, cjxl (images),
# flac, wavpack (audio) and write corpora/BASELINES.md (see corpora/baselines.py).
# Needs: apt-get install zstd xz-utils zpaq webp libjxl-tools flac wavpack
set -euo pipefail
cd "$(dirname "$0")/.."
for t in zstd xz zpaq cwebp cjxl flac wavpack; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install zstd xz-utils zpaq webp libjxl-tools flac wavpack" >&2; exit 2; }
done
export LC_ALL=C
exec nice -n 19 /usr/bin/python3 corpora/baselines.py "$@"

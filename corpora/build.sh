#!/usr/bin/env bash
# Rebuild the mbz corpora from pinned Debian 12 and npm packages and check the result.
#
#   corpora/build.sh                    rebuild data/corpora, compare with corpora/MANIFEST.tsv
#   corpora/build.sh --write-manifest   rebuild and rewrite corpora/MANIFEST.tsv
#   corpora/build.sh --check-only       hash data/corpora as it is and compare, no rebuild
#   corpora/build.sh --install-tools    apt-get install the tools below first
#
# Downloads are cached in data/cache (a rebuild from a warm cache takes about 5 minutes on
# 2 cores). Exit status 0 means every byte matches the manifest. MBZ_ALLOW_DRIFT=1 lets the
# build take a package version other than the pinned one when the pinned one is no longer
# served (it says so, and the manifest check then fails for that package).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 packages of the tools (not of the data: data packages are only downloaded).
tools_pkgs="python3 python3-pil sox libsox-fmt-all flac zstd xz-utils tar npm"

if [[ ${1:-} == --install-tools ]]; then
  shift
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $tools_pkgs
fi

missing=""
for t in apt-get dpkg-deb tar sox soxi flac zstd npm sha256sum; do
  command -v "$t" >/dev/null || missing="$missing $t"
done
# Debian's own python3 and Pillow, not a python3 that another PATH entry may bring.
/usr/bin/python3 -c 'import PIL' 2>/dev/null || missing="$missing python3-pil"
if [[ -n $missing ]]; then
  echo "missing:$missing; run: apt-get install $tools_pkgs (or $0 --install-tools)" >&2
  exit 2
fi
policy=$(apt-cache policy dict-gcide)
if [[ $policy != *Candidate:*[0-9]* ]]; then
  echo "apt-cache knows no dict-gcide: run apt-get update once first" >&2
  exit 2
fi

export LC_ALL=C
exec nice -n 19 /usr/bin/python3 corpora/build.py "$@"

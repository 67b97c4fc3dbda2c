#!/usr/bin/env bash
# Fetches the Debian documentation files that bench/README.md's text table is measured on,
# into data/bench/docs (git-ignored). None comes from a package reserved for evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/bench/docs
debs=data/bench/debs
mkdir -p "$out" "$debs"
# package  path inside it  name in the table
files=(
  "base-files         usr/share/common-licenses/GPL-3            GPL-3"
  "perl-modules-5.36  usr/share/perl/5.36.0/pod/perldiag.pod     perldiag.pod"
  "vim-runtime        usr/share/vim/vim90/doc/version8.txt       vim-version8.txt"
  "nodejs-doc         usr/share/doc/nodejs/api/all.html          nodejs-api.html"
)
for line in "${files[@]}"; do
  read -r package path name <<<"$line"
  [ -f "$out/$name" ] && continue
  deb=$(ls "$debs/${package}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    (cd "$debs" && apt-get download "$package" >&2)
    deb=$(ls "$debs/${package}"_*.deb | head -1)
  fi
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  cp "$tmp/$path" "$out/$name"
  rm -rf "$tmp"
  echo "$name  <=  $(basename "$deb")" >&2
done
ls -l "$out" >&2

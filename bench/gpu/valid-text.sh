#!/usr/bin/env bash
# The valid text of CORPUS (its files in sorted order), repeated until it reaches BYTES and
# cut there, into OUT: the text input of the device scripts' speed and exactness runs.
#
#   bash bench/gpu/valid-text.sh CORPUS BYTES OUT
set -o pipefail
corpus=$1 bytes=$2 out=$3
: > "$out"
while (($(stat -c %s "$out") < bytes)); do
  find "$corpus/text/valid" -type f | LC_ALL=C sort | xargs cat >> "$out"
done
truncate -s "$bytes" "$out"

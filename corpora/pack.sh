#!/usr/bin/env bash
# Pack data/corpora into self-checking shards in data/shards (see corpora/pack.py).
# Send data/shards/* to the GPU machine, a few at a time, and run corpora/unpack.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
exec nice -n 19 /usr/bin/python3 corpora/pack.py "$@"

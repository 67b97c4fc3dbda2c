#!/usr/bin/env bash
# From a short probe run's CSV (train.sh probe ...), the number of steps that SECONDS of
# training take at the probe's steady speed (from step 20 to its last; the first ones warm up).
#   bash bench/gpu/probe-steps.sh CSV BYTES_PER_STEP SECONDS
python3 - "$@" <<'PY'
import csv, sys
rows = {int(r["step"]): r for r in csv.DictReader(open(sys.argv[1]))}
per_step = float(sys.argv[2])
elapsed = lambda s: s * per_step / float(rows[s]["bytes_per_second"])  # since the run's start
a, b = 20, max(rows)
rate = (b - a) / (elapsed(b) - elapsed(a))  # steps per second
print(int(float(sys.argv[3]) * rate))
PY

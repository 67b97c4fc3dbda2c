#!/usr/bin/env python3
"""Compresses each file with mbz and the classic tools, in the same run, and prints one
table: compressed bytes, bits per byte, mbz's size relative to each tool, and compress and
decompress speed (MB/s of original data, median of --runs runs, whole processes timed).
Every decompressed output is compared with the original; a mismatch stops the run.

  python3 bench/compare.py [--runs 3] [--mbz build/mbz] [--mbz-args "..."] FILE|DIR...
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# name, compress argv (reads stdin, writes stdout), decompress argv
TOOLS = [
    ("zstd -19", ["zstd", "-19", "-c", "-q"], ["zstd", "-d", "-c", "-q"]),
    ("xz -9e", ["xz", "-9e", "-c"], ["xz", "-d", "-c"]),
    ("brotli -q 11", ["brotli", "-q", "11", "-c"], ["brotli", "-d", "-c"]),
]


def files_of(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in sorted(os.walk(p)):
                out += [os.path.join(root, n) for n in sorted(names)]
        else:
            out.append(p)
    return out


def timed(argv, src, dst, runs):
    """Runs argv with stdin from src and stdout to dst `runs` times; median wall seconds."""
    times = []
    for _ in range(runs):
        with open(src, "rb") as i, open(dst, "wb") as o:
            t = time.perf_counter()
            r = subprocess.run(argv, stdin=i, stdout=o, stderr=subprocess.PIPE)
            times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"{shlex.join(argv)} failed on {src}: {r.stderr.decode(errors='replace')}")
    return statistics.median(times)


def measure(name, comp, decomp, path, tmp, runs):
    packed, restored = os.path.join(tmp, "packed"), os.path.join(tmp, "restored")
    tc = timed(comp, path, packed, runs)
    td = timed(decomp, packed, restored, runs)
    with open(path, "rb") as a, open(restored, "rb") as b:
        if a.read() != b.read():
            sys.exit(f"{name}: decompressed output differs from {path}")
    n = os.path.getsize(path)
    return {"tool": name, "bytes": os.path.getsize(packed), "bpb": 8 * os.path.getsize(packed) / n if n else 0,
            "compress_MBps": n / tc / 1e6, "decompress_MBps": n / td / 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mbz", default=os.path.join(os.path.dirname(__file__), "..", "build", "mbz"))
    ap.add_argument("--mbz-args", default="", help="extra arguments for mbz compress")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    mbz = [os.path.abspath(a.mbz)]
    tools = [("mbz", mbz + ["compress", "-q", "-c"] + shlex.split(a.mbz_args), mbz + ["decompress", "-q", "-c"])]
    tools += [t for t in TOOLS if shutil.which(t[1][0])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files_of(a.paths):
            size = os.path.getsize(path)
            results = [measure(name, c, d, path, tmp, a.runs) for name, c, d in tools]
            rows.append({"file": path, "size": size, "results": results})
            print(f"measured {path}", file=sys.stderr)
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    names = [t[0] for t in tools]
    head = "| file | bytes | " + " | ".join(f"{n} bytes (bpb)" for n in names) + " | " + \
        " | ".join(f"mbz/{n}" for n in names[1:]) + " | mbz MB/s c/d | " + \
        " | ".join(f"{n} MB/s c/d" for n in names[1:]) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    totals = {n: 0 for n in names}
    total_size = 0
    for row in rows:
        r = {x["tool"]: x for x in row["results"]}
        total_size += row["size"]
        for n in names:
            totals[n] += r[n]["bytes"]
        cells = [os.path.basename(row["file"]), str(row["size"])]
        cells += [f"{r[n]['bytes']} ({r[n]['bpb']:.3f})" for n in names]
        cells += [f"{r['mbz']['bytes'] / r[n]['bytes']:.3f}" for n in names[1:]]
        cells += [f"{r[n]['compress_MBps']:.2f} / {r[n]['decompress_MBps']:.2f}" for n in names]
        print("| " + " | ".join(cells) + " |")
    cells = ["**total**", str(total_size)]
    cells += [f"{totals[n]} ({8 * totals[n] / total_size:.3f})" for n in names]
    cells += [f"{totals['mbz'] / totals[n]:.3f}" for n in names[1:]]
    cells += [""] * len(names)
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

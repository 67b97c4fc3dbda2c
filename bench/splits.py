#!/usr/bin/python3
"""mbz against the classic tools on a corpus split, one modality at a time, in one run.

Every file is compressed on its own, as corpora/BASELINES.md does. Images (PNG) are first
decoded to PPM and audio (FLAC) to WAV, so that every tool and mbz start from the same
pixels and samples and mbz's round trip is checked byte for byte (mbz codes the PPM's
pixels in tiles and the WAV's samples, and restores both files exactly). mbz runs as one
process for all files of a set (start-up once), compress then decompress, timed whole.

  bench/splits.py [--mbz build/mbz] [--mbz-args "..."] [--every N] [--tools] \\
                  text|image|audio DIR [MODALITY DIR ...]

Units: text bits per byte; images bits per subpixel (width x height x 3 bytes of RGB);
audio bits per byte of 16-bit PCM. Speeds: MB/s of those raw bytes, whole processes.
--every N takes every Nth file (sorted by path) of a large split. --tools also runs the
classic tools of the modality (text: zstd -19, xz -9e, zpaq -m5; images: cwebp -lossless
-z 9, cjxl -d 0 -e 7; audio: flac -8, wavpack -hh) on the same files.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import wave

TOOLS = {
    "text": [("zstd -19", "zstd -19 -q -c {src} > {dst}"),
             ("xz -9e", "xz -9e -c {src} > {dst}"),
             ("zpaq -m5", "zpaq a {dst} {src} -m5 >/dev/null 2>&1")],
    "image": [("cwebp -lossless -z 9", "cwebp -quiet -lossless -z 9 {png} -o {dst}"),
              ("cjxl -d 0 -e 7", "cjxl -d 0 -e 7 --quiet {png} {dst} 2>/dev/null")],
    "audio": [("flac -8", "flac -8 -s -f {src} -o {dst}"),
              ("wavpack -hh", "wavpack -hh -q -y {src} -o {dst}")],
}


def files_of(root, every):
    out = []
    for d, _, names in sorted(os.walk(root)):
        out += [os.path.join(d, n) for n in sorted(names)]
    return out[::every]


def stage(modality, src, dst):
    """Writes the file every coder starts from; returns its raw bytes (the unit's base)."""
    if modality == "text":
        shutil.copyfile(src, dst)
        return os.path.getsize(dst)
    if modality == "image":
        from PIL import Image
        with Image.open(src) as im:
            rgb = im.convert("RGB")
            rgb.save(dst, format="PPM")
            return rgb.width * rgb.height * 3
    subprocess.run(["flac", "-d", "-s", "-f", src, "-o", dst], check=True)
    with wave.open(dst) as w:
        return w.getnframes() * w.getnchannels() * w.getsampwidth()


def run_mbz(mbz, args, paths):
    """Runs mbz over paths in one process (batched under the argument limit); wall seconds."""
    start = time.monotonic()
    for i in range(0, len(paths), 500):
        subprocess.run([mbz] + args + paths[i:i + 500], check=True)
    return time.monotonic() - start


def one_set(modality, root, opts):
    files = files_of(root, opts.every)
    work = tempfile.mkdtemp(prefix="mbz-splits-")
    try:
        ext = {"text": "", "image": ".ppm", "audio": ".wav"}[modality]
        staged, raw = [], 0
        for i, f in enumerate(files):
            s = os.path.join(work, "%05d%s" % (i, ext))
            raw += stage(modality, f, s)
            staged.append(s)
        keep = {s: s + ".orig" for s in staged}
        for s, k in keep.items():
            shutil.copyfile(s, k)
        extra = shlex.split(opts.mbz_args)
        t_c = run_mbz(opts.mbz, ["compress", "-q", "-f"] + extra, staged)
        packed = sum(os.path.getsize(s + ".mbz") for s in staged)
        for s in staged:
            os.remove(s)
        t_d = run_mbz(opts.mbz, ["decompress", "-q", "-f"] + extra, [s + ".mbz" for s in staged])
        for s, k in keep.items():
            if subprocess.run(["cmp", "-s", s, k]).returncode:
                sys.exit("splits.py: %s (from %s) did not round-trip" % (s, files[staged.index(s)]))
        row = {"set": "%s %s" % (modality, root), "files": len(files), "raw": raw,
               "mbz": packed, "mbz_c": raw / t_c / 1e6, "mbz_d": raw / t_d / 1e6, "tools": []}
        if opts.tools:
            for name, cmd in TOOLS[modality]:
                total, start = 0, time.monotonic()
                for i, s in enumerate(keep.values()):
                    dst = os.path.join(work, "tool.out")
                    if os.path.exists(dst):
                        os.remove(dst)
                    subprocess.run(cmd.format(src=shlex.quote(s), png=shlex.quote(files[i]),
                                              dst=dst), shell=True, check=True)
                    total += os.path.getsize(dst)
                row["tools"].append((name, total, raw / (time.monotonic() - start) / 1e6))
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbz", default="build/mbz")
    ap.add_argument("--mbz-args", default="", help="extra arguments for compress and decompress")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--tools", action="store_true")
    ap.add_argument("sets", nargs="+", metavar="MODALITY DIR")
    opts = ap.parse_args()
    if len(opts.sets) % 2:
        ap.error("give MODALITY DIR pairs")
    print("| set | files | raw bytes | mbz bytes (bits/unit) | mbz MB/s c / d | "
          "tools: bytes (bits/unit), mbz/tool, MB/s c |")
    print("|---|---|---|---|---|---|")
    for modality, root in zip(opts.sets[::2], opts.sets[1::2]):
        r = one_set(modality, root, opts)
        bits = lambda n: 8.0 * n / r["raw"]
        tools = "; ".join("%s %d (%.3f), %.3f, %.2f" % (n, b, bits(b), r["mbz"] / b, s)
                          for n, b, s in r["tools"])
        print("| %s | %d | %d | %d (%.3f) | %.3f / %.3f | %s |" %
              (r["set"], r["files"], r["raw"], r["mbz"], bits(r["mbz"]), r["mbz_c"], r["mbz_d"],
               tools), flush=True)


if __name__ == "__main__":
    main()

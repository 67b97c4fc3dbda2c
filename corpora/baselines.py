#!/usr/bin/python3
"""Compress the valid and unseen splits with the classic tools; write corpora/BASELINES.md.

Every file is compressed on its own (mbz is a file codec, so this is the figure it must
beat), and sizes are summed per modality, split and kind:
  text   zstd -19, xz -9e, zpaq -m5 (an archive per file, so ~1 KB of zpaq headers per
         file; a last column subtracts them)
  image  the stored PNG, cwebp -lossless -z 9, cjxl -d 0 -e 7 (all from the same RGB pixels)
  audio  flac -8, wavpack -hh (both from the same 16-bit PCM WAV, decoded from the stored
         FLAC); flac gets --no-padding, or its 8 KiB of empty padding would dominate short
         speech prompts
Figures: bits per byte of the raw data (for images that is bits per subpixel, for audio
bits per byte of PCM: double it for bits per sample) and compressed size as % of raw.
Per-file results go to data/baselines/per_file.tsv (later figures can be compared file by
file). Run through corpora/baselines.sh (--report-only: rewrite BASELINES.md from per_file.tsv).
"""

import multiprocessing
import os
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = os.path.join(ROOT, "data", "corpora")
OUTDIR = os.path.join(ROOT, "data", "baselines")
REPORT = os.path.join(ROOT, "corpora", "BASELINES.md")

kTools = {
    "text": ["zstd -19", "xz -9e", "zpaq -m5", "zpaq -m5 less its archive header"],
    "image": ["png (stored)", "cwebp -lossless -z 9", "cjxl -d 0 -e 7"],
    "audio": ["flac -8", "wavpack -hh"],
}


def out(cmd):
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def size_of(cmd, path):
    subprocess.run(cmd, check=True, capture_output=True)
    return os.path.getsize(path)


def measure(rel):
    """(rel, raw bytes, [compressed bytes per tool]) for one corpus file."""
    path = os.path.join(CORPORA, rel)
    modality = rel.split("/")[0]
    with tempfile.TemporaryDirectory() as tmp:
        t = lambda name: os.path.join(tmp, name)
        if modality == "text":
            raw = os.path.getsize(path)
            sizes = [len(out(["zstd", "-19", "-c", "-q", path])),
                     len(out(["xz", "-9e", "-c", path])),
                     size_of(["zpaq", "a", t("a.zpaq"), path, "-m5", "-t1"], t("a.zpaq"))]
        elif modality == "image":
            with open(path, "rb") as f:
                head = f.read(26)
            w, h = struct.unpack(">II", head[16:24])
            assert head[25] == 2 and head[24] == 8, rel + ": expected 8-bit RGB PNG"
            raw = w * h * 3
            sizes = [os.path.getsize(path),
                     size_of(["cwebp", "-quiet", "-lossless", "-z", "9", path, "-o", t("a.webp")],
                             t("a.webp")),
                     size_of(["cjxl", "--quiet", "-d", "0", "-e", "7", path, t("a.jxl")],
                             t("a.jxl"))]
        else:
            wav = t("a.wav")
            subprocess.run(["flac", "-d", "-s", "-f", "-o", wav, path], check=True)
            raw = os.path.getsize(wav) - 44  # flac -d writes the 44-byte canonical header
            sizes = [size_of(["flac", "-8", "-s", "-f", "--no-padding", "-o", t("b.flac"), wav],
                             t("b.flac")),
                     size_of(["wavpack", "-q", "-hh", "-y", wav, "-o", t("b.wv")], t("b.wv"))]
    return rel, raw, sizes


def versions():
    def first(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0].strip() if text else "?"
    return [("zstd", first(["zstd", "--version"])), ("xz", first(["xz", "--version"])),
            ("zpaq", first(["sh", "-c", "zpaq 2>&1 | head -1"])),
            ("cwebp", first(["cwebp", "-version"])), ("cjxl", first(["sh", "-c", "cjxl --version 2>&1 | head -1"])),
            ("flac", first(["flac", "--version"])),
            ("wavpack", first(["sh", "-c", "wavpack --version 2>&1 | grep -i 'wavpack' | head -1"]))]


def zpaq_header():
    """Bytes of a zpaq -m5 archive of an empty file: its per-archive headers (about 1 KB,
    which swamps small files; the last text column subtracts it, as a solid archive would)."""
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "e")
        open(empty, "w").close()
        return size_of(["zpaq", "a", os.path.join(tmp, "a.zpaq"), empty, "-m5", "-t1"],
                       os.path.join(tmp, "a.zpaq"))


def main():
    t0 = time.time()
    header = zpaq_header()
    rels = []
    with open(os.path.join(CORPORA, "SHA256SUMS")) as f:
        for line in f:
            rel = line.rstrip("\n").split("  ", 1)[1]
            if rel.split("/")[1] in ("valid", "unseen"):
                rels.append(rel)
    os.makedirs(OUTDIR, exist_ok=True)
    results = []
    if "--report-only" in sys.argv:  # rewrite BASELINES.md from data/baselines/per_file.tsv
        rels = []
        with open(os.path.join(OUTDIR, "per_file.tsv")) as f:
            for line in f:
                if not line.startswith("#"):
                    cols = line.rstrip("\n").split("\t")
                    sizes = [int(x) for x in cols[2:]]
                    if cols[0].startswith("text/") and len(sizes) == 3:
                        sizes.append(max(1, sizes[2] - header))
                    results.append((cols[0], int(cols[1]), sizes))
    with multiprocessing.Pool(2) as pool:
        for i, r in enumerate(pool.imap(measure, rels, chunksize=4), 1):
            if r[0].startswith("text/"):
                r[2].append(max(1, r[2][2] - header))
            results.append(r)
            if i % 200 == 0 or i == len(rels):
                sys.stderr.write("[%6.0fs] %d/%d files\n" % (time.time() - t0, i, len(rels)))
    with open(os.path.join(OUTDIR, "per_file.tsv"), "w") as f:
        for m in ("text", "image", "audio"):
            f.write("#file\traw\t" + "\t".join(kTools[m]) + "\n")
            for rel, raw, sizes in results:
                if rel.startswith(m + "/"):
                    f.write("%s\t%d\t%s\n" % (rel, raw, "\t".join(map(str, sizes))))
    sums = {}
    for rel, raw, sizes in results:
        modality, split, kind = rel.split("/")[:3]
        for key in ((modality, split, kind), (modality, split, "all")):
            s = sums.setdefault(key, [0, 0, [0] * len(sizes)])
            s[0] += 1
            s[1] += raw
            s[2] = [a + b for a, b in zip(s[2], sizes)]
    lines = ["# Baselines: classic compressors on the valid and unseen splits", "",
             "Produced by `corpora/baselines.sh` (corpora/baselines.py) from the corpus that "
             "`corpora/build.sh` rebuilds",
             "(checked against corpora/MANIFEST.tsv). Every file is compressed on its own and "
             "the sizes are summed.",
             "Each cell: **bits per byte** of raw data (images: bits per subpixel; audio: bits "
             "per byte of 16-bit PCM,", "double it for bits per sample) / compressed size as "
             "% of raw. Raw is the file's bytes (text),", "width x height x 3 (images), "
             "PCM bytes without header (audio).", ""]
    unit = {"text": "bits/byte", "image": "bits/subpixel", "audio": "bits/byte of PCM"}
    for m in ("text", "image", "audio"):
        lines += ["## %s (%s / %% of raw)" % (m, unit[m]), "",
                  "| split | kind | files | raw MiB | " + " | ".join(kTools[m]) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(kTools[m])]
        for key in sorted(k for k in sums if k[0] == m):
            n, raw, sizes = sums[key]
            cells = ["%.3f / %.1f%%" % (8 * s / raw, 100 * s / raw) for s in sizes]
            name = "**all**" if key[2] == "all" else key[2]
            lines.append("| %s | %s | %d | %.2f | %s |" % (key[1], name, n, raw / 2**20,
                                                             " | ".join(cells)))
        lines.append("")
    lines += ["## Tool versions (Debian 12 packages)", ""]
    lines += ["- %s: `%s`" % v for v in versions()]
    lines += ["- zpaq -m5 archive of an empty file: %d bytes (counted once per file in the "
              "zpaq -m5 column, subtracted in the last one)" % header]
    if "--report-only" in sys.argv:
        lines += ["", "Rewritten from data/baselines/per_file.tsv (measuring all files took "
                  "2040 s on 2 shared cores).", ""]
    else:
        lines += ["", "Generated in %.0f s on 2 cores." % (time.time() - t0), ""]
    with open(REPORT, "w") as f:
        f.write("\n".join(lines))
    sys.stderr.write("wrote %s\n" % REPORT)


if __name__ == "__main__":
    main()

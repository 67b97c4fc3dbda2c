#!/usr/bin/python3
"""mbz against the classic tools on a corpus split, one modality at a time, in one run.

Every file is compressed on its own, as corpora/BASELINES.md does. Images (PNG) are first
decoded to PPM and audio (FLAC) to WAV, so that every tool and mbz start from the same
pixels and samples. Every coder's round trip is checked: byte for byte for text and for
mbz (which codes the PPM's pixels in tiles and the WAV's samples, and restores both files
exactly), pixel for pixel and sample for sample for the image and audio codecs. mbz runs
as one process for all files of a set (start-up once), compress then decompress, timed
whole; a classic tool runs once per file, and its seconds are summed.

  bench/splits.py [--mbz build/mbz] [--mbz-set "LABEL=ARGS" ...] [--mbz-args "..."]
                  [--every N] [--min-bytes B] [--tools] [--json OUT.json] [--host-note TEXT]
                  [--paq8px PATH [--paq8px-level -8] [--paq8px-check-every N]]
                  text|image|audio DIR [MODALITY DIR ...]

--mbz-set LABEL=ARGS runs mbz once more per setting, in the same run on the same files
(e.g. --mbz-set "level 1=--level 1" --mbz-set "level 3=--level 3"); without it mbz runs
once, labelled "mbz". --mbz-args are added to every setting. ARGS go to `mbz compress`;
those that `mbz decompress --help` also lists go to decompress as well. A setting naming
an option this mbz's `compress --help` does not list is skipped with a warning (and
recorded as skipped in the JSON), so one command line serves older and newer builds.
The binary is copied aside at start, so a rebuild during the run changes nothing.

Units: text bits per byte; images bits per subpixel (width x height x 3 bytes of RGB);
audio bits per byte of 16-bit PCM. Speeds: MB/s of those raw bytes, whole processes.
--every N takes every Nth file (sorted by path) of a large split; --min-bytes B first drops
the files smaller than B bytes as stored (PNG, FLAC or text). --tools also runs the
classic tools of the modality (text: zstd -19, xz -9e, zpaq -m5; images: cwebp -lossless
-z 9, cjxl -d 0 -e 7; audio: flac -8, wavpack -hh) on the same files.

stdout: a Markdown table, one row per set and coder. --json OUT writes the same rows with
the host (CPU model from /proc/cpuinfo, nproc, memory, OS), the load average before and
after each row and the whole run, the mbz binary's version and hash, and the command line;
bench/plot_tradeoff.py draws it.

--paq8px PATH also runs paq8px (built by yourself from github.com/hxim/paq8px; measured
only, see bench/paq8px.sh) at --paq8px-level (default -8, no flags) on the same staged
files, one process per file like the classic tools, so every file pays paq8px's start-up
(about 3 to 7 s at -8 on the 2-core machine: it fills 2.4 GB of tables). paq8px decompresses as slowly as
it compresses: --paq8px-check-every N decompresses and checks only files 0, N, 2N, ... of
each set, and its decompression speed is then measured on those files alone.
"""
import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import wave

# name, compress command, decompress command, extension of the compressed file. {src} is
# the staged file (text, PPM or WAV), {dst} the compressed file, {out} the restored one.
TOOLS = {
    "text": [("zstd -19", "zstd -19 -q -c {src} > {dst}", "zstd -d -q -c {dst} > {out}", ".zst"),
             ("xz -9e", "xz -9e -c {src} > {dst}", "xz -d -c {dst} > {out}", ".xz"),
             ("zpaq -m5", "zpaq a {dst} {src} -m5 >/dev/null 2>&1",
              "zpaq x {dst} {src} -to {out} >/dev/null 2>&1", ".zpaq")],
    "image": [("cwebp -lossless -z 9", "cwebp -quiet -lossless -z 9 {src} -o {dst}",
               "dwebp -quiet {dst} -ppm -o {out}", ".webp"),
              ("cjxl -d 0 -e 7", "cjxl -d 0 -e 7 --quiet {src} {dst} 2>/dev/null",
               "djxl --quiet {dst} {out} 2>/dev/null", ".jxl")],
    "audio": [("flac -8", "flac -8 --no-padding --no-seektable -s -f {src} -o {dst}", "flac -d -s -f {dst} -o {out}", ".flac"),
              ("wavpack -hh", "wavpack -hh -q -y {src} -o {dst}", "wvunpack -q -y {dst} -o {out}",
               ".wv")],
}
EXT = {"text": "", "image": ".ppm", "audio": ".wav"}
UNIT = {"text": "byte", "image": "subpixel", "audio": "byte of 16-bit PCM"}


def files_of(root, every, min_bytes=0):
    out = []
    for d, _, names in sorted(os.walk(root)):
        out += [os.path.join(d, n) for n in sorted(names)]
    return [f for f in out if os.path.getsize(f) >= min_bytes][::every]


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


def same_content(modality, a, b):
    """Whether b restores a: bytes for text; RGB pixels for images; samples for audio (the
    codecs may write their own header, which is not what they were asked to keep)."""
    if modality == "image":
        from PIL import Image
        with Image.open(a) as x, Image.open(b) as y:
            return x.size == y.size and x.convert("RGB").tobytes() == y.convert("RGB").tobytes()
    if modality == "audio":
        with wave.open(a) as x, wave.open(b) as y:
            return (x.getparams()[:3] == y.getparams()[:3]
                    and x.readframes(x.getnframes()) == y.readframes(y.getnframes()))
    return same_bytes(a, b)


def same_bytes(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def host():
    """What the speeds were measured on."""
    info = {"cpu": "", "nproc": os.cpu_count(), "os": "", "kernel": os.uname().release}
    try:
        with open("/proc/cpuinfo") as f:
            names = re.findall(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        info["cpu"] = names[0] if names else ""
        info["cpu_threads"] = len(names)
    except OSError:
        pass
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(re.search(r"MemTotal:\s*(\d+)", f.read())[1]) / 2**20, 1)
        with open("/etc/os-release") as f:
            info["os"] = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)[1]
    except (OSError, TypeError):
        pass
    return info


def options_of(mbz, command):
    """{option: takes a value} for every option `mbz COMMAND --help` lists (CLI11's layout:
    '  -T,--threads UINT:...', '  --level INT:...', '  --verify'); empty if it fails."""
    try:
        text = subprocess.run([mbz, command, "--help"], capture_output=True, text=True).stdout
    except OSError:
        return {}
    opts = {}
    for m in re.finditer(r"^ {2}((?:-\w,)?--[\w-]+)(?: ([A-Z]+)\b)?", text, re.M):
        for name in m[1].split(","):
            opts[name] = m[2] is not None
    return opts


def split_args(args, compress_opts, decompress_opts):
    """Returns (compress args, decompress args, None) or (None, None, the first option this
    mbz does not know). Options are taken as this mbz's help describes them."""
    c, d, i = [], [], 0
    while i < len(args):
        name = args[i].split("=", 1)[0]
        if not name.startswith("-") or name not in compress_opts:
            return None, None, args[i]
        group = [args[i]]
        if compress_opts[name] and "=" not in args[i] and i + 1 < len(args):
            group.append(args[i + 1])
        i += len(group)
        c += group
        if name in decompress_opts:
            d += group
    return c, d, None


def run_mbz(mbz, args, paths):
    """Runs mbz over paths in one process (batched under the argument limit); wall seconds."""
    start = time.monotonic()
    for i in range(0, len(paths), 500):
        subprocess.run([mbz] + args + paths[i:i + 500], check=True)
    return time.monotonic() - start


def load():
    return [round(x, 2) for x in os.getloadavg()]


def row_of(modality, root, tool, kind, command, files, raw, packed, t_c, t_d, load_before):
    return {"modality": modality, "split": root, "tool": tool, "kind": kind, "command": command,
            "files": files, "raw_bytes": raw, "compressed_bytes": packed,
            "ratio": raw / packed, "unit": UNIT[modality], "bits_per_unit": 8.0 * packed / raw,
            "compress_s": t_c, "decompress_s": t_d, "compress_mb_s": raw / t_c / 1e6,
            "decompress_mb_s": raw / t_d / 1e6, "load_before": load_before,
            "load_after": load(), "round_trip": "checked"}


def mbz_rows(modality, root, files, raw, staged, opts, settings):
    keep = {s: s + ".orig" for s in staged}
    for s, k in keep.items():
        shutil.copyfile(s, k)
    for label, c_args, d_args in settings:
        load_before = load()
        t_c = run_mbz(opts.mbz_copy, ["compress", "-q", "-f"] + c_args, staged)
        packed = sum(os.path.getsize(s + ".mbz") for s in staged)
        for s in staged:
            os.remove(s)
        t_d = run_mbz(opts.mbz_copy, ["decompress", "-q", "-f"] + d_args,
                      [s + ".mbz" for s in staged])
        for i, (s, k) in enumerate(keep.items()):
            if not same_bytes(k, s):  # mbz restores the PPM and WAV byte for byte too
                sys.exit("splits.py: %s: %s (from %s) did not round-trip" % (label, s, files[i]))
            os.remove(s + ".mbz")
        command = " ".join(["mbz compress"] + c_args + [";", "mbz decompress"] + d_args)
        yield row_of(modality, root, label, "mbz", command, len(files), raw, packed, t_c, t_d,
                     load_before)


def tool_rows(modality, root, files, raw, staged, work):
    for name, c_cmd, d_cmd, ext in TOOLS[modality]:
        load_before = load()
        total, t_c, t_d = 0, 0.0, 0.0
        dst = os.path.join(work, "tool" + ext)
        out = os.path.join(work, "restored" + EXT[modality])
        for i, s in enumerate(staged):
            for p in (dst, out):
                if os.path.exists(p):
                    os.remove(p)
            q = {"src": shlex.quote(s), "dst": shlex.quote(dst), "out": shlex.quote(out)}
            start = time.monotonic()
            subprocess.run(c_cmd.format(**q), shell=True, check=True)
            t_c += time.monotonic() - start
            total += os.path.getsize(dst)
            start = time.monotonic()
            subprocess.run(d_cmd.format(**q), shell=True, check=True)
            t_d += time.monotonic() - start
            if not same_content(modality, s, out):
                sys.exit("splits.py: %s did not round-trip %s (from %s)" % (name, s, files[i]))
        yield row_of(modality, root, name, "classic", c_cmd + " ; " + d_cmd, len(files), raw, total,
                     t_c, t_d, load_before)


def run_quiet(argv):
    """Runs argv with its output (paq8px's progress) kept, shown only when it fails."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        sys.stderr.write(r.stdout.decode(errors="replace")[-2000:])
        sys.exit("splits.py: %s exited with %d" % (shlex.join(argv), r.returncode))


def paq8px_rows(modality, root, files, raws, staged, work, opts):
    """paq8px on every staged file, one process each; decompressed and checked on every
    opts.paq8px_check_every-th file, whose seconds and raw bytes give the decompression
    speed."""
    level, load_before = opts.paq8px_level, load()
    dst, out = os.path.join(work, "paq8px.paq"), os.path.join(work, "restored" + EXT[modality])
    total, t_c, t_d, raw_d, checked = 0, 0.0, 0.0, 0, 0
    for i, s in enumerate(staged):
        for p in (dst, out):
            if os.path.exists(p):
                os.remove(p)
        start = time.monotonic()
        run_quiet([opts.paq8px_copy, level, s, dst])
        t_c += time.monotonic() - start
        total += os.path.getsize(dst)
        if i % opts.paq8px_check_every:
            continue
        start = time.monotonic()
        run_quiet([opts.paq8px_copy, "-d", dst, out])
        t_d += time.monotonic() - start
        if not same_bytes(s, out):
            sys.exit("splits.py: paq8px did not round-trip %s (from %s)" % (s, files[i]))
        raw_d += raws[i]
        checked += 1
    row = row_of(modality, root, "paq8px " + level, "paq8px",
                 "paq8px %s SRC DST ; paq8px -d DST OUT" % level, len(files), sum(raws), total,
                 t_c, t_d, load_before)
    row.update({"decompress_mb_s": raw_d / t_d / 1e6, "decompress_s": t_d,
                "decompress_raw_bytes": raw_d,
                "round_trip": "checked on %d of %d files (every %d)" % (
                    checked, len(files), opts.paq8px_check_every)})
    yield row


def one_set(modality, root, opts, settings):
    files = files_of(root, opts.every, opts.min_bytes)
    if not files:
        sys.exit("splits.py: no files under %s" % root)
    work = tempfile.mkdtemp(prefix="mbz-splits-")
    try:
        staged, raws = [], []
        for i, f in enumerate(files):
            s = os.path.join(work, "%05d%s" % (i, EXT[modality]))
            raws.append(stage(modality, f, s))
            staged.append(s)
        raw = sum(raws)
        yield from mbz_rows(modality, root, files, raw, staged, opts, settings)
        if opts.tools:
            yield from tool_rows(modality, root, files, raw, staged, work)
        if opts.paq8px:
            yield from paq8px_rows(modality, root, files, raws, staged, work, opts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mbz_settings(opts):
    """[(label, compress args, decompress args)] this mbz accepts, and [(label, why)] not."""
    c_opts = options_of(opts.mbz_copy, "compress")
    d_opts = options_of(opts.mbz_copy, "decompress")
    wanted = [s.partition("=")[::2] for s in opts.mbz_set] or [("mbz", "")]
    ok, skipped = [], []
    for label, args in wanted:
        args = shlex.split(args) + shlex.split(opts.mbz_args)
        c, d, unknown = split_args(args, c_opts, d_opts)
        if unknown is not None:
            why = "this mbz's compress --help does not list %s" % unknown
            print("splits.py: skipping mbz setting %r: %s" % (label, why), file=sys.stderr)
            skipped.append({"tool": label, "args": shlex.join(args), "why": why})
        else:
            ok.append((label, c, d))
    return ok, skipped


def paq8px_info(opts):
    """paq8px's version line (from its usage text), hash, and the level measured."""
    usage = subprocess.run([opts.paq8px_copy], capture_output=True, text=True)
    lines = (usage.stdout + usage.stderr).splitlines()
    with open(opts.paq8px_copy, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"path": opts.paq8px, "version": lines[0] if lines else "", "sha256": digest,
            "level": opts.paq8px_level, "check_every": opts.paq8px_check_every}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbz", default="build/mbz")
    ap.add_argument("--mbz-set", action="append", default=[], metavar="LABEL=ARGS",
                    help="an mbz setting to measure (repeatable)")
    ap.add_argument("--mbz-args", default="", help="extra arguments for every mbz setting")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--min-bytes", type=int, default=0, metavar="B",
                    help="only files of at least B bytes as stored (before --every)")
    ap.add_argument("--tools", action="store_true")
    ap.add_argument("--json", metavar="OUT", help="write every row, the host and the load here")
    ap.add_argument("--host-note", default="", help="words on the machine, for the figures")
    ap.add_argument("--paq8px", metavar="PATH", help="also run this paq8px binary")
    ap.add_argument("--paq8px-level", default="-8", help="paq8px's level and flags (-8)")
    ap.add_argument("--paq8px-check-every", type=int, default=1, metavar="N",
                    help="decompress and check every Nth file only (1: all)")
    ap.add_argument("sets", nargs="+", metavar="MODALITY DIR")
    opts = ap.parse_args()
    if len(opts.sets) % 2:
        ap.error("give MODALITY DIR pairs")
    for m in opts.sets[::2]:
        if m not in TOOLS:
            ap.error("modality %r: expected text, image or audio" % m)
    for s in opts.mbz_set:
        if "=" not in s:
            ap.error("--mbz-set %r: expected LABEL=ARGS" % s)

    keep_dir = tempfile.mkdtemp(prefix="mbz-splits-bin-")
    try:
        opts.mbz_copy = os.path.join(keep_dir, "mbz")
        shutil.copy2(opts.mbz, opts.mbz_copy)
        settings, skipped = mbz_settings(opts)
        if opts.paq8px:
            opts.paq8px_copy = os.path.join(keep_dir, "paq8px")
            shutil.copy2(opts.paq8px, opts.paq8px_copy)
        version = subprocess.run([opts.mbz_copy, "--version"], capture_output=True,
                                 text=True).stdout.splitlines()
        with open(opts.mbz_copy, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "host": host(),
                  "host_note": opts.host_note, "argv": ["bench/splits.py"] + sys.argv[1:],
                  "mbz": {"path": opts.mbz, "version": version[0] if version else "",
                          "sha256": digest,
                          # what "default" and each --level meant for this build
                          "compress_help": subprocess.run(
                              [opts.mbz_copy, "compress", "--help"], capture_output=True,
                              text=True).stdout.replace(opts.mbz_copy, "mbz")},
                  "paq8px": paq8px_info(opts) if opts.paq8px else None,
                  "every": opts.every, "min_bytes": opts.min_bytes, "load_before": load(), "rows": [],
                  "skipped": skipped}
        print("| set | tool | files | raw bytes | bytes | ratio | bits/unit | MB/s c / d |")
        print("|---|---|---|---|---|---|---|---|")
        for modality, root in zip(opts.sets[::2], opts.sets[1::2]):
            for r in one_set(modality, root, opts, settings):
                report["rows"].append(r)
                print("| %s %s | %s | %d | %d | %d | %.3f | %.3f | %.3f / %.3f |" %
                      (modality, root, r["tool"], r["files"], r["raw_bytes"],
                       r["compressed_bytes"], r["ratio"], r["bits_per_unit"],
                       r["compress_mb_s"], r["decompress_mb_s"]), flush=True)
        report["load_after"] = load()
        print("load average (1, 5, 15 min) before %s, after %s" %
              (" ".join("%.2f" % x for x in report["load_before"]),
               " ".join("%.2f" % x for x in report["load_after"])), file=sys.stderr)
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(report, f, indent=1)
                f.write("\n")
    finally:
        shutil.rmtree(keep_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

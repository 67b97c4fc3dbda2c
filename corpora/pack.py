#!/usr/bin/python3
"""Pack data/corpora into self-checking shards of at most 48 MiB for the GPU machine.

    data/shards/<modality>-<split>-<NNN>.tar.zst   text (zstd -19, tar inside)
    data/shards/<modality>-<split>-<NNN>.tar       images (PNG) and audio (FLAC), stored as is
    data/shards/INDEX.tsv                          shard, modality, split, files, raw bytes,
                                                   shard bytes, sha256
    data/shards/SHA256SUMS                         sha256sum format, of the shard files

Each tar begins with SHARDS/<shard>.sha256, the sha256sum list of the corpus files it holds
(paths relative to data/corpora), so a shard checks itself with nothing beside it
(corpora/unpack.sh does that). Files go to shards in the order of a hash of their path, so
every shard is a random sample of its modality and split: training can start on whichever
shards have arrived. The shards are byte-identical on every run (fixed tar header fields,
fixed zstd level and thread count).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import build  # one log() and sha256_file() for both scripts
from build import log, sha256_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = os.path.join(ROOT, "data", "corpora")
SHARDS = os.path.join(ROOT, "data", "shards")

kMaxShard = 48 << 20         # the limit on one shard file
kRawText = 64 << 20          # text bytes per shard before zstd (about 15 MiB after it)
kRawStored = 47 << 20        # PNG/FLAC shards: tar bytes (tar_bytes() below) per shard
kTarArgs = ["--format=gnu", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0",
            "--mode=a=r,u+w", "--no-recursion"]
kZstdArgs = ["-19", "-T2", "-q", "-f"]  # -T2 fixed: zstd output depends on the worker mode


def tar_bytes(rel, size):
    """Bytes that a file takes in a GNU tar: header, data in 512-byte blocks, and a long-name
    entry for paths of 100 bytes or more (many audio files are small, so this matters)."""
    n = 512 + (size + 511) // 512 * 512
    if len(rel.encode()) >= 100:
        n += 512 + (len(rel.encode()) + 1 + 511) // 512 * 512
    return n


def main():
    sums = os.path.join(CORPORA, "SHA256SUMS")
    if not os.path.exists(sums):
        sys.exit("no %s: run corpora/build.sh first" % sums)
    groups = {}
    with open(sums) as f:
        for line in f:
            digest, rel = line.rstrip("\n").split("  ", 1)
            modality, split = rel.split("/")[:2]
            size = os.path.getsize(os.path.join(CORPORA, rel))
            groups.setdefault((modality, split), []).append((rel, digest, size))
    shutil.rmtree(SHARDS, ignore_errors=True)
    os.makedirs(SHARDS)
    index = ["shard\tmodality\tsplit\tfiles\traw_bytes\tshard_bytes\tsha256\n"]
    for (modality, split) in sorted(groups):
        files = sorted(groups[(modality, split)],
                       key=lambda r: hashlib.sha256(("shard:" + r[0]).encode()).digest())
        budget = kRawText if modality == "text" else kRawStored
        shards, cur, cur_bytes = [], [], 0
        for row in files:
            cost = row[2] if modality == "text" else tar_bytes(row[0], row[2])
            if cur and cur_bytes + cost > budget:
                shards.append(cur)
                cur, cur_bytes = [], 0
            cur.append(row)
            cur_bytes += cost
        if cur:
            shards.append(cur)
        for n, rows in enumerate(shards):
            name = "%s-%s-%03d" % (modality, split, n)
            fname = name + (".tar.zst" if modality == "text" else ".tar")
            with tempfile.TemporaryDirectory(dir=SHARDS) as tmp:
                os.makedirs(os.path.join(tmp, "SHARDS"))
                listing = "".join("%s  %s\n" % (d, r) for r, d, _ in rows)
                with open(os.path.join(tmp, "SHARDS", name + ".sha256"), "w") as f:
                    f.write(listing)
                members = os.path.join(tmp, "members")
                with open(members, "w") as f:
                    f.write("".join(r + "\n" for r, _, _ in rows))
                tar = os.path.join(tmp, "shard.tar")
                subprocess.run(["tar", "-cf", tar] + kTarArgs +
                               ["-C", tmp, "SHARDS/%s.sha256" % name,
                                "-C", CORPORA, "-T", members], check=True)
                out = os.path.join(SHARDS, fname)
                if modality == "text":
                    subprocess.run(["zstd"] + kZstdArgs + [tar, "-o", out], check=True)
                else:
                    os.replace(tar, out)
            size = os.path.getsize(out)
            if size > kMaxShard:
                sys.exit("%s is %d bytes, over the %d limit: lower the budget in pack.py"
                         % (fname, size, kMaxShard))
            raw = sum(r[2] for r in rows)
            digest = sha256_file(out)
            index.append("%s\t%s\t%s\t%d\t%d\t%d\t%s\n" % (fname, modality, split, len(rows),
                                                          raw, size, digest))
            log("%-26s %5d files %7.1f MiB -> %5.1f MiB" % (fname, len(rows), raw / 2**20,
                                                            size / 2**20))
    with open(os.path.join(SHARDS, "INDEX.tsv"), "w") as f:
        f.writelines(index)
    with open(os.path.join(SHARDS, "SHA256SUMS"), "w") as f:
        f.writelines("%s  %s\n" % (line.split("\t")[6].strip(), line.split("\t")[0])
                     for line in index[1:])
    total = sum(int(line.split("\t")[5]) for line in index[1:])
    log("%d shards, %.1f MiB in data/shards (INDEX.tsv, SHA256SUMS beside them)"
        % (len(index) - 1, total / 2**20))


if __name__ == "__main__":
    build.T0 = time.time()
    main()

#!/usr/bin/env python3
"""Makes the broken archives of tests/golden-errors from tests/golden/mixed.bin.mbz.

Each file breaks one rule of codec/FORMAT.md; EXPECTED.tsv (written by
`MBZ_UPDATE_GOLDEN=1 tests/codec_golden_test`) holds the exact error each must give.
Run from the repository root: python3 tests/golden-errors/make_errors.py
mixed.bin.mbz is made with --chunk-size 2K: chunk 0 stored, chunk 1 zstd, chunks 2-4 model.
"""
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = open(os.path.join(HERE, "..", "golden", "mixed.bin.mbz"), "rb").read()
HEADER = struct.unpack_from("<H", BASE, 6)[0]


def xxh64(data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["xxhsum", "-H1", f.name], capture_output=True, check=True, text=True)
    return int(out.stdout.split()[0], 16)


def reseal(data):
    """Recomputes the header checksum, so that a header edit reaches the later checks."""
    data = bytearray(data)
    struct.pack_into("<I", data, HEADER - 4, xxh64(bytes(data[: HEADER - 4])) & 0xFFFFFFFF)
    return bytes(data)


def chunks(data):
    """Offsets of the chunk headers, in order."""
    at, found = HEADER, []
    while data[at] != 0xFF:
        found.append(at)
        at += 13 + struct.unpack_from("<I", data, at + 5)[0]
    return found


def patch(data, offset, new):
    return data[:offset] + new + data[offset + len(new):]


def flip(data, offset, bit=0):
    return patch(data, offset, bytes([data[offset] ^ (1 << bit)]))


c = chunks(BASE)
size = len(BASE)
cases = {
    "not-an-archive": b"hello, world\n",
    "empty-file": b"",
    "truncated-in-magic": BASE[:2],
    "version-9": patch(BASE, 4, b"\x09"),
    "reserved-flags": reseal(patch(BASE, 5, b"\x01")),
    "header-checksum": flip(BASE, 8),
    "header-size": reseal(patch(BASE, 6, struct.pack("<H", 200))),
    "chunk-log-27": reseal(patch(BASE, 16, b"\x1b")),
    "modality-9": reseal(patch(BASE, 17, b"\x09")),
    "wrong-model-id": reseal(flip(BASE, HEADER - 20)),
    "truncated-header": BASE[:30],
    "truncated-chunk-header": BASE[: c[0] + 5],
    "truncated-payload": BASE[: c[0] + 13 + 100],
    "no-end-marker": BASE[: size - 25],
    "truncated-trailer": BASE[: size - 10],
    "stored-payload-bitflip": flip(BASE, c[0] + 13 + 7, 3),
    "zstd-payload-bitflip": flip(BASE, c[1] + 13 + 40, 5),
    "model-payload-bitflip": flip(BASE, c[2] + 13 + 50, 1),
    "unknown-method": patch(BASE, c[2], b"\x07"),
    "chunk-checksum": flip(BASE, c[0] + 9),
    "raw-size-too-large": patch(BASE, c[0] + 1, struct.pack("<I", 4096)),
    "raw-size-zero": patch(BASE, c[0] + 1, struct.pack("<I", 0)),
    "stored-size-mismatch": patch(BASE, c[0] + 5, struct.pack("<I", 2047)),
    "zstd-payload-too-large": patch(BASE, c[1] + 5, struct.pack("<I", 2048)),
    # chunk 1's zstd frame followed by an empty skippable frame: FORMAT.md allows one frame
    "zstd-two-frames": BASE[: c[1] + 5]
    + struct.pack("<I", struct.unpack_from("<I", BASE, c[1] + 5)[0] + 8)
    + BASE[c[1] + 9 : c[2]]
    + struct.pack("<II", 0x184D2A50, 0)
    + BASE[c[2] :],
    "short-chunk-not-last": patch(BASE, c[1] + 1, struct.pack("<I", 2000)),
    "chunks-swapped": BASE[: c[2]] + BASE[c[3] : c[4]] + BASE[c[2] : c[3]] + BASE[c[4] :],
    "chunk-dropped": BASE[: c[3]] + BASE[c[4] :],
    "trailer-stream-size": patch(BASE, size - 24, struct.pack("<Q", struct.unpack_from("<Q", BASE, size - 24)[0] + 1)),
    "trailer-stream-checksum": flip(BASE, size - 16),
    "trailer-content-checksum": flip(BASE, size - 8),
    "trailing-garbage": BASE + b"x",
    "second-archive-appended": BASE + BASE,
}
for name, data in cases.items():
    with open(os.path.join(HERE, name + ".mbz"), "wb") as f:
        f.write(data)
print(f"{len(cases)} broken archives written to {HERE}")

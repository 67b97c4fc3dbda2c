#!/usr/bin/python3
"""Draws what bench/splits.py measured: size against speed, per modality, in one PNG.

One row of panels per modality; the left panel puts compression speed on x, the right one
decompression speed (MB/s of raw data, log scale; --speed picks one). y is bits per unit
(bits per byte for text and audio PCM, per subpixel for images), or the ratio with
--y ratio. Every tool and mbz setting is a labelled point; mbz's settings are red stars,
the classic tools grey circles. A panel's title names the split, the file count and the
raw size; the figure's title names the machine, the date and the load average, read from
the JSON. With several JSON files (LABEL=PATH, the label prefixed to every point and row),
each file gets its own marker edge and its own line in the title.

stdout: a Markdown table of the same rows, to paste beside the figure.

  /usr/bin/python3 bench/plot_tradeoff.py -o tradeoff.png [--title TEXT] [--per-modality]
      [--speed both|compress|decompress] [--y bits|ratio] [LABEL=]splits.json ...

--per-modality writes one PNG per modality instead (OUT-text.png, OUT-image.png, ...).
Needs matplotlib, which Debian's /usr/bin/python3 has (the pyenv python3 on PATH does not).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display on the GPU hosts nor in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

MODALITIES = ["text", "image", "audio"]
UNIT_LABEL = {"text": "bits per byte", "image": "bits per subpixel",
              "audio": "bits per byte of 16-bit PCM"}
# where a point's label goes, in points from the point: right, then below and above it,
# further and further, then to its left
OFFSETS = [(8, 0), (8, -10), (8, 10), (8, -20), (8, 20), (8, -30), (8, 30), (-8, 0)]
EDGES = ["black", "tab:blue", "tab:green", "tab:purple"]  # one per JSON file


def read(specs):
    """[(label, report)] from [LABEL=]PATH specs; the label is '' for a single file."""
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not os.path.exists(path) and os.path.exists(spec):
            label, path = "", spec
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"{path}: {e}")
        if not isinstance(report, dict) or not isinstance(report.get("rows"), list):
            sys.exit(f"{path}: expected the JSON of bench/splits.py --json (an object with rows)")
        if not label and len(specs) > 1:
            label = os.path.splitext(os.path.basename(path))[0]
        out.append((label, report))
    return out


def machine(report):
    h = report.get("host", {})
    words = report.get("host_note") or "%s, %s cores" % (h.get("cpu", "?"), h.get("nproc", "?"))
    load = report.get("load_before"), report.get("load_after")
    cores = h.get("nproc")
    if all(load) and cores:
        words += "; load average %.1f → %.1f on %d cores" % (load[0][0], load[1][0], cores)
    return "%s (%s)" % (words, report.get("date", "?")[:10])


def split_words(rows, every):
    """'data/corpora/text/valid (1 file in 50): 22 files, 0.13 MB' for the rows of a panel."""
    seen = {}
    for r in rows:
        seen.setdefault((r["split"], every.get(id(r), 1)), (r["files"], r["raw_bytes"]))
    return "; ".join("%s%s: %d file%s, %.2f MB" % (split, " (1 file in %d)" % n if n > 1 else "",
                                                    files, "s" if files != 1 else "", raw / 1e6)
                     for (split, n), (files, raw) in seen.items())


def draw(ax, rows, speed_key, y_key, edge_of):
    """Plots the rows' points; returns their labels, placed later by place_labels."""
    labels = []
    for r in rows:
        x, y = r[speed_key], r[y_key]
        mbz = r["kind"] == "mbz"
        ax.scatter([x], [y], marker="*" if mbz else "o", s=160 if mbz else 50,
                   color="tab:red" if mbz else "0.6", edgecolors=edge_of[id(r)],
                   linewidths=0.8, zorder=3)
        labels.append(ax.annotate(r["name"], (x, y), xytext=OFFSETS[0], textcoords="offset points",
                                  fontsize=8, fontweight="bold" if mbz else "normal",
                                  color="tab:red" if mbz else "black", va="center"))
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    # room for the labels to the right of the rightmost point
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 3)
    return labels


def place_labels(fig, labels):
    """Moves each label to the first of OFFSETS where it overlaps no marker and no label
    placed before it (points of one tool at several settings are often close); run after the
    layout is final."""
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72
    placed = []
    for t in labels:  # the markers: a star's half width is 6 points, a circle's 3.5
        x, y = t.axes.transData.transform(t.xy)
        r = (6 if t.get_fontweight() == "bold" else 3.5) * px
        placed.append(Bbox.from_extents(x - r, y - r, x + r, y + r))
    for t in labels:
        inside = t.axes.get_window_extent(renderer)
        for offset in OFFSETS:
            t.xyann = offset
            t.set_horizontalalignment("right" if offset[0] < 0 else "left")
            box = t.get_window_extent(renderer)
            if (not any(box.overlaps(p) for p in placed) and inside.x0 <= box.x0
                    and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1):
                break
        else:
            t.xyann = OFFSETS[0]
            t.set_horizontalalignment("left")
            box = t.get_window_extent(renderer)
        placed.append(box)


def figure(rows, modalities, opts, edge_of, every, title, out):
    speeds = {"both": [("compress_mb_s", "compression"), ("decompress_mb_s", "decompression")],
              "compress": [("compress_mb_s", "compression")],
              "decompress": [("decompress_mb_s", "decompression")]}[opts.speed]
    y_key = "bits_per_unit" if opts.y == "bits" else "ratio"
    labels = []
    fig, axes = plt.subplots(len(modalities), len(speeds), squeeze=False,
                             figsize=(6 * len(speeds), 3.6 * len(modalities) + 0.8))
    for i, m in enumerate(modalities):
        mine = [r for r in rows if r["modality"] == m]
        for j, (key, words) in enumerate(speeds):
            ax = axes[i][j]
            labels += draw(ax, mine, key, y_key, edge_of)
            ax.set_xlabel("%s speed (MB/s of raw data, log scale)" % words)
            ax.set_ylabel(UNIT_LABEL[m] if opts.y == "bits" else "compression ratio")
            ax.set_title("%s — %s" % (m, split_words(mine, every)), fontsize=9)
        if opts.y == "bits":
            axes[i][0].annotate("smaller is better ↓", (0.01, 0.02), xycoords="axes fraction",
                                fontsize=7, color="0.4")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    place_labels(fig, labels)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}", file=sys.stderr)


def table(rows, several):
    head = ["modality", "tool", "files", "raw bytes", "bytes", "ratio", "bits/unit",
            "MB/s compress", "MB/s decompress"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        name = "**%s**" % r["name"] if r["kind"] == "mbz" else r["name"]
        print("| %s | %s | %d | %d | %d | %.3f | %.3f | %.3f | %.3f |" %
              (r["modality"], name, r["files"], r["raw_bytes"], r["compressed_bytes"], r["ratio"],
               r["bits_per_unit"], r["compress_mb_s"], r["decompress_mb_s"]))
    if several:
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", metavar="[LABEL=]PATH",
                    help="JSON written by bench/splits.py --json")
    ap.add_argument("-o", dest="out", required=True, metavar="OUT.png", help="PNG to write")
    ap.add_argument("--title", help="first line of the figure's title")
    ap.add_argument("--speed", choices=["both", "compress", "decompress"], default="both")
    ap.add_argument("--y", choices=["bits", "ratio"], default="bits")
    ap.add_argument("--per-modality", action="store_true", help="one PNG per modality")
    opts = ap.parse_args()

    reports = read(opts.reports)
    rows, edge_of, every, lines = [], {}, {}, []
    for i, (label, report) in enumerate(reports):
        for r in report["rows"]:
            r["name"] = "%s: %s" % (label, r["tool"]) if label else r["tool"]
            edge_of[id(r)] = EDGES[i % len(EDGES)] if len(reports) > 1 else "black"
            every[id(r)] = report.get("every", 1)
            rows.append(r)
        lines.append(("%s: " % label if label else "") + "measured on " + machine(report))
    if not rows:
        sys.exit("no rows in %s" % ", ".join(opts.reports))
    modalities = [m for m in MODALITIES if any(r["modality"] == m for r in rows)]
    title = "\n".join(([opts.title] if opts.title else []) + lines)

    if opts.per_modality:
        stem, ext = os.path.splitext(opts.out)
        for m in modalities:
            figure(rows, [m], opts, edge_of, every, title, "%s-%s%s" % (stem, m, ext or ".png"))
    else:
        figure(rows, modalities, opts, edge_of, every, title, opts.out)
    for line in lines:
        print("- " + line)
    print()
    table(rows, len(reports) > 1)


if __name__ == "__main__":
    main()

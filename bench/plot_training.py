#!/usr/bin/python3
"""Plots the CSV logs of `mbz train` into one PNG and prints a summary table.

Left panel: validation bits per byte per modality (colour per modality, line style per
run, a marker at every validated step) with the training bits per byte as a light moving
average. Right panel: training throughput in MB/s and, where the log has it, MFU in % on a
second axis. stdout: per run, the last step, the last validation bits per byte per
modality, the median MB/s and the median MFU.

Each log is LABEL=PATH, or PATH alone (the label is then the name of its folder). A log
resumed from an earlier checkpoint repeats steps; the row written last for a step wins.

  /usr/bin/python3 bench/plot_training.py -o curves.png [--title TEXT] [--raw]
      [--x steps|bytes] [--bytes-per-step LABEL=N ...] [LABEL=]train.csv ...

Needs matplotlib, which Debian's /usr/bin/python3 has (the pyenv python3 on PATH does not).
"""
import argparse
import csv
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")  # no display on the GPU hosts nor in CI
import matplotlib.pyplot as plt  # noqa: E402

# Every column `mbz train` writes, in order. Logs from before MFU was measured stop after
# seconds_left; a resumed run appends all of them under such an old header.
COLUMNS = ["step", "lr", "train_bpb", "valid_raw_bpb", "valid_text_bpb", "valid_image_bpb",
           "valid_audio_bpb", "bytes_per_second", "seconds_left", "model_tflops", "mfu"]

# modality, colour (matplotlib's default cycle, so the figure looks like any other)
MODALITIES = [("raw", "tab:gray"), ("text", "tab:blue"), ("image", "tab:green"),
              ("audio", "tab:red")]
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P"]
SMOOTH_ROWS = 20  # training loss is one batch per row: noisy, so average ~20 rows


def read_log(path):
    """Returns the rows of one log as dicts of floats (None where empty), sorted by step,
    keeping for each step the row that comes last in the file."""
    by_step = {}
    try:
        f = open(path, newline="")
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    with f:
        header = None
        for lineno, fields in enumerate(csv.reader(f), 1):
            if not fields:
                continue
            if fields[0] == "step":
                header = fields
                continue
            if header is None:
                sys.exit(f"{path}:{lineno}: expected the header 'step,lr,...', found {fields[0]!r}")
            names = header
            if len(fields) > len(header) and header == COLUMNS[:len(header)]:
                names = COLUMNS
            if len(fields) != len(names):
                sys.exit(f"{path}:{lineno}: expected {len(names)} fields, found {len(fields)}")
            try:
                row = {n: (float(v) if v != "" else None) for n, v in zip(names, fields)}
            except ValueError as e:
                sys.exit(f"{path}:{lineno}: {e}")
            by_step[int(row["step"])] = row  # a later row for the same step replaces it
    if not by_step:
        sys.exit(f"{path}: no rows")
    return [by_step[s] for s in sorted(by_step)]


def series(rows, column, scale=1.0):
    """(steps, values) of the rows where `column` has a value; an MFU of 0 means unknown."""
    pts = [(r["step"], r[column] * scale) for r in rows
           if r.get(column) is not None and not (column == "mfu" and r[column] <= 0)]
    return [p[0] for p in pts], [p[1] for p in pts]


def moving_average(values, window):
    """Centred moving average; the window shrinks at both ends instead of padding."""
    half = window // 2
    out = []
    for i in range(len(values)):
        part = values[max(0, i - half):i + half + 1]
        out.append(sum(part) / len(part))
    return out


def parse_runs(specs):
    runs = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            path = spec
            label = os.path.basename(os.path.dirname(os.path.abspath(path)))
        if any(r[0] == label for r in runs):
            sys.exit(f"two logs are labelled {label!r}: name them with LABEL=PATH")
        runs.append((label, path))
    return runs


def parse_bytes_per_step(specs, labels):
    out = {}
    for spec in specs:
        label, sep, n = spec.partition("=")
        if not sep or not n.isdigit() or int(n) == 0:
            sys.exit(f"--bytes-per-step: expected LABEL=N with N > 0, found {spec!r}")
        if label not in labels:
            sys.exit(f"--bytes-per-step: no log is labelled {label!r} "
                     f"(labels: {', '.join(labels)})")
        out[label] = int(n)
    return out


def fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", metavar="[LABEL=]PATH",
                    help="train.csv written by mbz train")
    ap.add_argument("-o", dest="out", required=True, metavar="OUT.png", help="PNG to write")
    ap.add_argument("--title", help="title over both panels")
    ap.add_argument("--x", choices=["steps", "bytes"], default="steps",
                    help="x axis: optimizer steps, or training bytes (needs --bytes-per-step)")
    ap.add_argument("--bytes-per-step", action="append", default=[], metavar="LABEL=N",
                    help="training bytes per step of run LABEL (batch × sequence bytes)")
    ap.add_argument("--raw", action="store_true", help="also plot valid_raw_bpb")
    args = ap.parse_args()

    runs = parse_runs(args.logs)
    labels = [label for label, _ in runs]
    per_step = parse_bytes_per_step(args.bytes_per_step, labels)
    if args.x == "bytes":
        missing = [label for label in labels if label not in per_step]
        if missing:
            sys.exit(f"--x bytes: give --bytes-per-step for {', '.join(missing)}")
    modalities = [(m, c) for m, c in MODALITIES if args.raw or m != "raw"]

    fig, (ax_bpb, ax_speed) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax_mfu = None
    table = []
    modalities_seen = set()
    for i, (label, path) in enumerate(runs):
        rows = read_log(path)
        style = LINESTYLES[i % len(LINESTYLES)]
        marker = MARKERS[i % len(MARKERS)]
        # x in steps, or in GB of training bytes
        to_x = (lambda s: s) if args.x == "steps" else (lambda s, n=per_step[label]: s * n / 1e9)

        steps, train = series(rows, "train_bpb")
        ax_bpb.plot([to_x(s) for s in steps], moving_average(train, SMOOTH_ROWS),
                    color="black", alpha=0.3, linewidth=1, linestyle=style)
        last_valid = {}
        for m, colour in modalities:
            steps, bpb = series(rows, f"valid_{m}_bpb")
            if not bpb:
                continue
            modalities_seen.add(m)
            last_valid[m] = bpb[-1]
            ax_bpb.plot([to_x(s) for s in steps], bpb, color=colour, linestyle=style,
                        marker=marker, markersize=3.5)

        steps, speed = series(rows, "bytes_per_second", 1e-6)
        ax_speed.plot([to_x(s) for s in steps], speed, color="tab:blue", linestyle=style,
                      linewidth=1.2)
        steps, mfu = series(rows, "mfu", 100)
        if mfu:
            if ax_mfu is None:
                ax_mfu = ax_speed.twinx()
            ax_mfu.plot([to_x(s) for s in steps], mfu, color="tab:orange", linestyle=style,
                        linewidth=1.2)
        table.append((label, int(rows[-1]["step"]), last_valid,
                      statistics.median(speed) if speed else None,
                      statistics.median(mfu) if mfu else None))

    xlabel = "step" if args.x == "steps" else "training bytes (GB)"
    # Colours name the modalities and series (a legend over each panel); line styles and
    # markers name the runs (one legend under both panels, as they mean the same in each).
    run_handles = [plt.Line2D([], [], color="black", linestyle=LINESTYLES[i % len(LINESTYLES)],
                              marker=MARKERS[i % len(MARKERS)], markersize=3.5, label=label)
                   for i, label in enumerate(labels)]
    bpb_handles = [plt.Line2D([], [], color=c, label=f"valid {m}")
                   for m, c in modalities if m in modalities_seen]
    bpb_handles.append(plt.Line2D([], [], color="black", alpha=0.3,
                                  label=f"train (mean of {SMOOTH_ROWS} rows)"))
    speed_handles = [plt.Line2D([], [], color="tab:blue", label="throughput")]
    if ax_mfu is not None:
        speed_handles.append(plt.Line2D([], [], color="tab:orange", label="MFU"))
    for ax, handles in ((ax_bpb, bpb_handles), (ax_speed, speed_handles)):
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  ncol=len(handles), fontsize=8, frameon=False)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    fig.legend(handles=run_handles, loc="lower center", ncol=len(run_handles), fontsize=8,
               title="run", title_fontsize=8)

    ax_bpb.set_ylabel("bits per byte")
    ax_speed.set_ylabel("throughput (MB/s)", color="tab:blue")
    ax_speed.set_ylim(bottom=0)
    if ax_mfu is not None:
        ax_mfu.set_ylabel("MFU (%)", color="tab:orange")
        ax_mfu.set_ylim(bottom=0)

    if args.title:
        fig.suptitle(args.title)
    # leave room at the bottom for the runs' legend, which tight_layout does not see
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(args.out, dpi=120)

    shown = [m for m, _ in modalities if m in modalities_seen]
    head = ["run", "last step"] + [f"{m} bpb" for m in shown] + ["median MB/s", "median MFU %"]
    widths = [max(len(h), max(len(r[0]) for r in table)) if j == 0 else len(h)
              for j, h in enumerate(head)]

    def line(cells):  # the label left-aligned, numbers right-aligned
        return "  ".join(c.rjust(w) if j else c.ljust(w)
                         for j, (c, w) in enumerate(zip(cells, widths)))

    print(line(head))
    for label, step, last_valid, speed, mfu in table:
        cells = [label, str(step)] + [fmt(last_valid.get(m), ".4f") for m in shown]
        cells += [fmt(speed, ".2f"), fmt(mfu, ".2f")]
        print(line(cells))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

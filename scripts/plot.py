#!/usr/bin/env python3
"""Figures of esapn runs: the paper's Figure 4 and Figure 5, memory per shard,
and the per-batch loss over the stream.

    python3 scripts/plot.py RUN_DIR... --output DIR

Each RUN_DIR is a folder written by `esapn train --output` (results.json,
batches.csv, by_frequency.csv; schema in Sources/Training/Run/Results.swift).
Writes into DIR:

  figure4_<task>.png    accuracy and loss by user / item frequency 1..100, one line per model
  figure5.png           mean chosen embedding size by frequency 1..50, one line per adaptive run
  memory_per_shard.png  resident bytes per rank per run, with what FIXED and soft selection would hold
  batches_<task>.png    per-batch loss and accuracy (rolling mean) over the stream, one line per model

Runs of one (stream, model, task, candidate widths) (e.g. seeds) are pooled:
frequency bins are weighted by their records, batch curves averaged batch by batch.

The candidate widths are each run's own: results.json's options.sizes, the
--sizes it was trained with (2,4,8,16,64,128 by default). The largest is
FIXED's width and that of every formed embedding; soft selection (DARTS,
AutoEmb) stores all of them side by side, their sum in floats per ID (128 and
222 by default). Where runs with different widths are plotted together,
Figure 5 spans the union of their widths, every line and run is labelled with
its widths (a model's lines dashed, dotted, ... per set of widths), and the
memory figure says FIXED's and soft selection's widths per run.
--print-widths prints, as one JSON line at the end, each run's widths and
what the figures drew from them.

Exit status: 0 done, 1 bad input (the message names the file), 2 matplotlib missing.
"""
import argparse
import collections
import csv
import json
import math
import os
import sys

DEFAULT_WIDTHS = [2, 4, 8, 16, 64, 128]  # `esapn train --sizes` when not given
PAPER_ORDER = ["fixed", "darts", "autoemb", "esapn"]
NON_ADAPTIVE = {"fixed", "darts", "autoemb"}
WIDTH_LINESTYLES = ["-", "--", ":", "-."]  # one per set of candidate widths, where runs differ in them
DISPLAY = {"fixed": "FIXED", "darts": "DARTS", "autoemb": "AutoEmb", "esapn": "ESAPN"}
# Fixed colours per model so a model looks the same in every figure.
COLOURS = {"fixed": "tab:gray", "darts": "tab:blue", "autoemb": "tab:green", "esapn": "tab:red"}
BATCHES_HEADER = ["batch", "records", "loss", "accuracy", "sizes_digest", "resident_bytes"]
OPTIONAL_LAST_COLUMNS = {"sizes_digest", "resident_bytes"}  # added later: older run folders lack them
BY_FREQUENCY_HEADER = ["side", "frequency", "records", "accuracy", "loss", "mean_size"]
DPI = 120


class BadInput(Exception):
    """Bad run folder; the message names the file."""


# MARK: - Reading run folders

def model_key(model):
    m = model.lower()
    return (PAPER_ORDER.index(m) if m in PAPER_ORDER else len(PAPER_ORDER), m)


def task_key(task):
    known = ["binary", "multiclass"]
    return (known.index(task) if task in known else len(known), task)


def display(model):
    return DISPLAY.get(model.lower(), model)


def stream_name(stream):
    name = stream.rsplit("/", 1)[-1]
    for ext in (".stream", ".esapn", ".bin"):
        if name.endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
    return name or stream


def loss_label(task):
    return {"binary": "MSE loss", "multiclass": "CE loss"}.get(task, "loss")


def read_results(directory):
    path = os.path.join(directory, "results.json")
    if not os.path.isdir(directory):
        raise BadInput(f"{directory}: not a directory (expected a run folder written by `esapn train --output`)")
    if not os.path.isfile(path):
        raise BadInput(f"{path}: missing (is {directory} a run folder written by `esapn train --output`?)")
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot be read: {e.strerror}") from None
    if not isinstance(results, dict):
        raise BadInput(f"{path}: the top level is not a JSON object")
    required = {"model": str, "task": str, "stream": str, "seed": int, "ranks": int, "records": int,
                "test": dict, "memory": dict}
    for key, kind in required.items():
        if key not in results:
            raise BadInput(f"{path}: missing key '{key}'")
        if not isinstance(results[key], kind) or (kind is int and isinstance(results[key], bool)):
            raise BadInput(f"{path}: '{key}' is not {'a string' if kind is str else 'an integer' if kind is int else 'an object'}")
    per_rank = results["memory"].get("per_rank")
    if not isinstance(per_rank, list):
        raise BadInput(f"{path}: missing key 'memory.per_rank' (a list)")
    for i, rank in enumerate(per_rank):
        for key in ("rank", "resident_bytes", "fixed_resident_bytes", "soft_resident_bytes"):
            if not isinstance(rank, dict) or not isinstance(rank.get(key), int):
                raise BadInput(f"{path}: 'memory.per_rank[{i}].{key}' is missing or not an integer")
    return results


def candidate_widths(results, path):
    """The run's candidate widths, ascending: options.sizes, the string given to
    `esapn train --sizes` (every run folder records it). A folder without it
    (written by hand) has the default widths, or, for ESAPN, those its
    sizes.users / sizes.items are keyed by (ESAPN keeps a row count per candidate;
    FIXED and soft selection only one, at their stored width)."""
    options = results.get("options")
    text = options.get("sizes") if isinstance(options, dict) else None
    if text is None:
        sizes = results.get("sizes")
        keys = set()
        if results["model"].lower() == "esapn" and isinstance(sizes, dict):
            keys = {k for side in ("users", "items") if isinstance(sizes.get(side), dict) for k in sizes[side]}
        try:
            return sorted(int(k) for k in keys) if keys else list(DEFAULT_WIDTHS)
        except ValueError:
            raise BadInput(f"{path}: 'sizes' is keyed by '{','.join(sorted(keys))}'; expected widths") from None
    try:
        widths = [int(w) for w in str(text).split(",")]
    except ValueError:
        widths = []
    if not widths or widths[0] < 1 or any(a >= b for a, b in zip(widths, widths[1:])):
        raise BadInput(f"{path}: 'options.sizes' is '{text}'; expected positive, strictly increasing "
                       f"comma-separated widths like {','.join(map(str, DEFAULT_WIDTHS))}")
    return widths


def union_widths(runs):
    """The candidate widths of any of the runs, ascending."""
    return sorted({w for r in runs for w in r.widths})


def read_csv(directory, name, header, parse):
    """Rows of a CSV whose header must be exactly `header`; `parse` turns a row
    (dict of strings) into a value or raises ValueError with what is wrong."""
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise BadInput(f"{path}: missing (every run folder written by `esapn train` has {name})")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                raise BadInput(f"{path}: empty; expected the header '{','.join(header)}'")
            while [c.strip() for c in first] != header and header[-1] in OPTIONAL_LAST_COLUMNS:
                header = header[:-1]  # a run folder written before that column existed
            if [c.strip() for c in first] != header:
                raise BadInput(f"{path}: line 1: header is '{','.join(first)}'; expected '{','.join(header)}'")
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise BadInput(f"{path}: line {reader.line_num}: {len(row)} fields; expected {len(header)} ({','.join(header)})")
                try:
                    rows.append(parse(dict(zip(header, (c.strip() for c in row)))))
                except ValueError as e:
                    raise BadInput(f"{path}: line {reader.line_num}: {e}") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot be read: {e.strerror}") from None
    return rows


def number(row, key, kind=float):
    text = row[key]
    if kind is float and text.lower() in ("", "nan"):
        return math.nan
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{key} is '{text}'; expected {'an integer' if kind is int else 'a number'}") from None


def parse_batch(row):
    digest = row.get("sizes_digest", "00000000")
    if len(digest) != 8 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"sizes_digest is '{digest}'; expected eight hex digits")
    resident = row.get("resident_bytes", "")
    try:
        per_rank = [int(x) for x in resident.split()]
    except ValueError:
        raise ValueError(f"resident_bytes is '{resident}'; expected each rank's bytes, space-separated") from None
    return (number(row, "batch", int), number(row, "records", int), number(row, "loss"), number(row, "accuracy"), per_rank)


def parse_frequency(row):
    side = row["side"]
    if side not in ("users", "items"):
        raise ValueError(f"side is '{side}'; expected users or items")
    return (side, number(row, "frequency", int), number(row, "records", int), number(row, "accuracy"),
            number(row, "loss"), number(row, "mean_size"))


class Run:
    def __init__(self, directory):
        self.directory = directory
        self.results = read_results(directory)
        self.batches = read_csv(directory, "batches.csv", BATCHES_HEADER, parse_batch)
        self.by_frequency = read_csv(directory, "by_frequency.csv", BY_FREQUENCY_HEADER, parse_frequency)
        r = self.results
        self.model, self.task, self.stream = r["model"], r["task"], r["stream"]
        self.seed, self.ranks = r["seed"], r["ranks"]
        self.widths = candidate_widths(r, os.path.join(directory, "results.json"))

    @property
    def fixed_width(self):
        """FIXED's width and that of every formed embedding: the largest candidate."""
        return self.widths[-1]

    @property
    def soft_width(self):
        """Floats per ID of a soft-selection row: every candidate side by side."""
        return sum(self.widths)

    @property
    def adaptive(self):
        return self.model.lower() not in NON_ADAPTIVE

    @property
    def key(self):
        """What runs pooled together (seeds) share."""
        return (self.stream, self.model, self.task, tuple(self.widths))

    def label(self, streams, with_seed=False, widths=()):
        """The model, with the stream where `streams` has several, the widths where
        `widths` (the sets of candidate widths plotted together) has several."""
        text = display(self.model)
        notes = [stream_name(self.stream)] if len(streams) > 1 else []
        if len(widths) > 1:
            notes.append("sizes " + ",".join(map(str, self.widths)))
        if notes:
            text += f" ({', '.join(notes)})"
        if with_seed:
            text += f" seed {self.seed}"
        return text


def width_sets(runs):
    """The runs' sets of candidate widths, by largest width; labels and line styles
    tell them apart where there are several."""
    return sorted({tuple(r.widths) for r in runs}, key=lambda w: (w[-1], w))


def linestyle(run, widths):
    return WIDTH_LINESTYLES[widths.index(tuple(run.widths)) % len(WIDTH_LINESTYLES)]


def sort_key(run):
    return (run.stream, model_key(run.model), task_key(run.task), run.widths[-1], run.widths)


def pooled(runs):
    """Groups runs by (stream, model, task, widths), in the report's order."""
    groups = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    return sorted(groups.values(), key=lambda g: sort_key(g[0]))


# MARK: - Numerics

def frequency_curve(runs, side, metric, max_frequency):
    """Per frequency 1..max: the records-weighted mean of `metric` over the runs (NaN where no records)."""
    index = {"accuracy": 3, "loss": 4, "mean_size": 5}[metric]
    sums = [0.0] * max_frequency
    weights = [0] * max_frequency
    for run in runs:
        for row in run.by_frequency:
            if row[0] != side or not 1 <= row[1] <= max_frequency or row[2] <= 0 or math.isnan(row[index]):
                continue
            sums[row[1] - 1] += row[index] * row[2]
            weights[row[1] - 1] += row[2]
    return [s / w if w else math.nan for s, w in zip(sums, weights)]


def rolling_mean(values, window):
    """Trailing mean over up to `window` values (shorter at the start), NaNs skipped."""
    out, total, count, queue = [], 0.0, 0, collections.deque()
    for v in values:
        queue.append(v)
        if not math.isnan(v):
            total += v
            count += 1
        if len(queue) > window:
            old = queue.popleft()
            if not math.isnan(old):
                total -= old
                count -= 1
        out.append(total / count if count else math.nan)
    return out


def mean_batches(runs):
    """Batch-by-batch mean of loss and accuracy over runs, with records seen at each batch's end."""
    n = min(len(r.batches) for r in runs)
    ordered = [sorted(r.batches)[:n] for r in runs]
    seen, records = [], 0
    for b in ordered[0]:
        records += b[1]
        seen.append(records)
    loss = [sum(o[i][2] for o in ordered) / len(ordered) for i in range(n)]
    accuracy = [sum(o[i][3] for o in ordered) / len(ordered) for i in range(n)]
    return seen, loss, accuracy


# MARK: - Figures

def save(fig, output, name):
    path = os.path.join(output, name)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path


def frequency_bins(spec, max_frequency=100):
    """The frequency bins of Figure 4 as (first, last) pairs covering 1..max_frequency:
    "log2" (1, 2, 3-4, 5-8, ..., doubling) or a positive integer width ("10": 1-10, 11-20, ...)."""
    if spec == "log2":
        bins, first = [], 1
        while first <= max_frequency:
            last = min(max_frequency, 1 if first == 1 else 2 * first - 2)
            bins.append((first, last))
            first = last + 1
        return bins
    try:
        width = int(spec)
    except ValueError:
        width = 0
    if width < 1:
        raise BadInput(f"--frequency-bins takes log2 or a positive bin width, got '{spec}'")
    return [(first, min(max_frequency, first + width - 1)) for first in range(1, max_frequency + 1, width)]


def bin_label(first, last):
    return str(first) if first == last else f"{first}\u2013{last}"


def binned_curve(runs, side, metric, bins):
    """Per bin: the records-weighted mean of `metric` over the runs' records whose
    `side` frequency falls in the bin (NaN without records), and the records in it."""
    index = {"accuracy": 3, "loss": 4, "mean_size": 5}[metric]
    values, counts = [], []
    for first, last in bins:
        total, weight = 0.0, 0
        for run in runs:
            for row in run.by_frequency:
                if row[0] == side and first <= row[1] <= last and row[2] > 0 and not math.isnan(row[index]):
                    total += row[index] * row[2]
                    weight += row[2]
        values.append(total / weight if weight else math.nan)
        counts.append(weight)
    return values, counts


def binned_band(runs, side, metric, bins):
    """The band drawn around a curve: with several runs (seeds), their range per
    bin; with one run, for accuracy, a 95% interval of a share of n records
    (p ± 1.96 sqrt(p(1-p)/n)); otherwise none."""
    if len(runs) > 1:
        per_run = [binned_curve([r], side, metric, bins)[0] for r in runs]
        low = [min((v[i] for v in per_run if not math.isnan(v[i])), default=math.nan) for i in range(len(bins))]
        high = [max((v[i] for v in per_run if not math.isnan(v[i])), default=math.nan) for i in range(len(bins))]
        return low, high, "range over seeds"
    if metric == "accuracy":
        values, counts = binned_curve(runs, side, metric, bins)
        half = [1.96 * math.sqrt(p * (1 - p) / n) if n else math.nan for p, n in zip(values, counts)]
        return ([p - h for p, h in zip(values, half)], [p + h for p, h in zip(values, half)], "95% interval")
    return None


def figure4(plt, runs, output, bin_spec="log2"):
    """Accuracy and loss by user and item frequency, in bins (log2 by default), with
    a band (seed range, or a 95% interval for one run's accuracy) and the records
    of each bin below."""
    written = []
    bins = frequency_bins(bin_spec)
    labels = [bin_label(*b) for b in bins]
    xs = list(range(len(bins)))
    streams, widths = {r.stream for r in runs}, width_sets(runs)
    for task in sorted({r.task for r in runs}, key=task_key):
        groups = [g for g in pooled(runs) if g[0].task == task and any(row[2] > 0 for r in g for row in r.by_frequency)]
        if not groups:
            print(f"note: figure4_{task}.png skipped: no run of task {task} has by-frequency data")
            continue
        fig, axes = plt.subplots(3, 2, figsize=(11, 9), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.4]})
        bands = set()
        for col, side in enumerate(("users", "items")):
            for row, metric in enumerate(("accuracy", "loss")):
                ax = axes[row][col]
                for g in groups:
                    scale = 100 if metric == "accuracy" else 1
                    y, _ = binned_curve(g, side, metric, bins)
                    colour = COLOURS.get(g[0].model.lower())
                    n = f" ({len(g)} seeds)" if len(g) > 1 else ""
                    ax.plot(xs, [scale * v for v in y], marker="o", markersize=3.5, linewidth=1.5, color=colour,
                            linestyle=linestyle(g[0], widths), label=g[0].label(streams, widths=widths) + n)
                    band = binned_band(g, side, metric, bins)
                    if band:
                        ax.fill_between(xs, [scale * v for v in band[0]], [scale * v for v in band[1]],
                                        color=colour, alpha=0.15, linewidth=0)
                        bands.add(band[2])
                ax.set_title(f"{'Accuracy' if metric == 'accuracy' else loss_label(task)} by {side[:-1]} frequency")
                ax.set_ylabel("accuracy (%)" if metric == "accuracy" else loss_label(task))
                ax.grid(True, alpha=0.3)
            # Records per bin: the same for every model of a stream; the first group's mean over its runs.
            ax = axes[2][col]
            _, counts = binned_curve(groups[0], side, "accuracy", bins)
            ax.bar(xs, [c / len(groups[0]) for c in counts], 0.6, color="lightgray", edgecolor="dimgray")
            ax.set_yscale("log")
            ax.set_ylabel("records")
            ax.grid(True, axis="y", alpha=0.3)
            ax.set_xticks(xs)
            ax.set_xticklabels(labels, fontsize=8)
            ax.set_xlabel(f"{side[:-1]} frequency (records of that {side[:-1]} so far), "
                          + ("log2 bins" if bin_spec == "log2" else f"bins of {bin_spec}"))
        axes[0][0].legend(loc="best", fontsize=9)
        names = ", ".join(sorted(stream_name(s) for s in {r.stream for g in groups for r in g}))
        band_text = f"; bands: {' or '.join(sorted(bands))}" if bands else ""
        fig.suptitle(f"Figure 4 — {task} task on {names}: performance by frequency (all records of the stream{band_text})")
        fig.tight_layout()
        written.append(save(fig, output, f"figure4_{task}.png"))
        plt.close(fig)
    return written


def size_axis(top):
    """Figure 5's y limit and ticks for sizes up to `top`: 0, top/8, top/4, top/2,
    3top/4 and top, those that are whole widths (0, 16, 32, 64, 96, 128 for 128)."""
    ticks = sorted({top * k // 8 for k in (0, 1, 2, 4, 6, 8) if top * k % 8 == 0})
    return top * 17 / 16, ticks


def figure5(plt, runs, output, summary=None):
    adaptive = [r for r in runs if r.adaptive and any(row[2] > 0 and not math.isnan(row[5]) for row in r.by_frequency)]
    if not adaptive:
        print("note: figure5.png skipped: no adaptive run (ESAPN) with mean sizes among the inputs")
        return []
    adaptive.sort(key=lambda r: (sort_key(r), r.seed))
    streams, widths = {r.stream for r in adaptive}, width_sets(adaptive)
    repeated = len({r.key for r in adaptive}) < len(adaptive)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    frequencies = list(range(1, 51))
    styles = {"binary": "-", "multiclass": "--"}
    candidates = union_widths(adaptive)
    top, ticks = size_axis(candidates[-1])
    for ax, side in zip(axes, ("users", "items")):
        for run in adaptive:
            ax.plot(frequencies, frequency_curve([run], side, "mean_size", 50), linestyle=styles.get(run.task, ":"),
                    linewidth=1.4, label=f"{run.label(streams, repeated, widths)}, {run.task}")
        ax.set_title(f"Mean {side[:-1]} embedding size by frequency")
        ax.set_xlabel(f"{side[:-1]} frequency")
        ax.set_xlim(1, 50)
        ax.set_ylim(0, top)
        ax.set_yticks(ticks)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean chosen width (dims per row)")
    axes[0].legend(loc="best", fontsize=9)
    title = "Figure 5 — embedding sizes chosen for users and items by frequency"
    if candidates != DEFAULT_WIDTHS:
        title += f" (candidate widths {', '.join(map(str, candidates))})"
    fig.suptitle(title)
    fig.tight_layout()
    path = save(fig, output, "figure5.png")
    if summary is not None:
        summary["figure5"] = {"widths": candidates, "ylim": top, "yticks": ticks, "title": title}
    plt.close(fig)
    return [path]


def byte_unit(largest):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if largest >= scale:
            return unit, scale
    return "B", 1


def baseline_labels(runs):
    """The legend labels of FIXED's and soft selection's bars, and whether each
    run's group label must say its own widths (they differ between the runs)."""
    fixed, soft = {r.fixed_width for r in runs}, {r.soft_width for r in runs}
    per_run = len(fixed) > 1 or len(soft) > 1
    if per_run:
        return "FIXED (largest width) would hold", "soft (all widths side by side) would hold", True
    return f"FIXED-{fixed.pop()} would hold", f"soft, {soft.pop()} floats/ID, would hold", False


def memory_per_shard(plt, runs, output, summary=None):
    """One slot per rank, grouped by run: the resident bytes as a solid bar in
    the model's colour, in front of what FIXED (the largest width, hatched) and
    soft selection (all widths side by side, dotted outline) would hold for
    that rank's IDs."""
    from matplotlib.patches import Patch

    runs = [r for r in runs if r.results["memory"]["per_rank"]]
    if not runs:
        print("note: memory_per_shard.png skipped: no run has per-rank memory")
        return []
    runs = sorted(runs, key=lambda r: (sort_key(r), r.seed, r.ranks))
    streams, widths = {r.stream for r in runs}, width_sets(runs)
    repeated = len({r.key for r in runs}) < len(runs)
    fixed_label, soft_label, per_run = baseline_labels(runs)
    slots, groups = [], []  # slots: (x, model, resident, fixed, soft); groups: (first x, last x, label)
    x = 0.0
    for run in runs:
        first = x
        for m in sorted(run.results["memory"]["per_rank"], key=lambda m: m["rank"]):
            slots.append((x, m["rank"], run.model, m["resident_bytes"], m["fixed_resident_bytes"], m["soft_resident_bytes"]))
            x += 1
        label = run.label(streams, repeated)
        if len(widths) > 1:
            label += "\nsizes " + ",".join(map(str, run.widths))
        label += f"\n{run.task}, {run.ranks} rank{'s' if run.ranks != 1 else ''}"
        if per_run:
            label += f"\nFIXED-{run.fixed_width}, soft {run.soft_width}"
        groups.append((first, x - 1, label))
        x += 0.8  # gap between runs
    unit, scale = byte_unit(max(max(s[3:]) for s in slots))
    inches = 0.42  # per slot
    if len(widths) > 1:  # longer labels: room for each under its run (about 0.08 inch a character, and a gap)
        inches = max([inches] + [(0.08 * max(map(len, label.split("\n"))) + 0.15) / (last - first + 1.8)
                                 for first, last, label in groups])
    fig, ax = plt.subplots(figsize=(min(max(6.5, inches * x + 2), 24), 5.2))
    xs = [s[0] for s in slots]
    ax.bar(xs, [s[5] / scale for s in slots], 0.9, color="none", edgecolor="tab:blue", linestyle=":", linewidth=1.2)
    ax.bar(xs, [s[4] / scale for s in slots], 0.9, color="none", edgecolor="dimgray", hatch="///", linewidth=0.8)
    ax.bar(xs, [s[3] / scale for s in slots], 0.5, color=[COLOURS.get(s[2].lower(), "tab:purple") for s in slots],
           edgecolor="black", linewidth=0.5)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"r{s[1]}" for s in slots], fontsize=8)
    for first, last, label in groups:
        ax.text((first + last) / 2, -0.11, label, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.8, x - 0.5)
    ax.set_ylabel(f"embedding memory per shard ({unit} per rank)")
    ax.set_title("Resident embedding bytes per shard (values + optimizer state + index)", pad=30)
    ax.grid(True, axis="y", alpha=0.3)
    models = sorted({s[2] for s in slots}, key=model_key)
    handles = [Patch(facecolor=COLOURS.get(m.lower(), "tab:purple"), edgecolor="black", label=f"resident: {display(m)}")
               for m in models]
    handles += [Patch(facecolor="none", edgecolor="dimgray", hatch="///", label=fixed_label),
                Patch(facecolor="none", edgecolor="tab:blue", linestyle=":", label=soft_label)]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 6),
              fontsize=8, frameon=False)
    fig.tight_layout()
    path = save(fig, output, "memory_per_shard.png")
    if summary is not None:
        summary["memory_per_shard"] = {"legend": [h.get_label() for h in handles],
                                       "groups": [label for _, _, label in groups]}
    plt.close(fig)
    return [path]


def batches(plt, runs, output, window):
    from matplotlib.ticker import EngFormatter

    written = []
    streams, widths = {r.stream for r in runs}, width_sets(runs)
    for task in sorted({r.task for r in runs}, key=task_key):
        groups = [g for g in pooled(runs) if g[0].task == task and all(r.batches for r in g)]
        if not groups:
            print(f"note: batches_{task}.png skipped: no run of task {task} has batches")
            continue
        fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
        longest = max(len(r.batches) for g in groups for r in g)
        w = window or max(1, min(200, longest // 20))
        for g in groups:
            seen, loss, accuracy = mean_batches(g)
            n = f" (n={len(g)})" if len(g) > 1 else ""
            colour = COLOURS.get(g[0].model.lower())
            style = linestyle(g[0], widths)
            axes[0].plot(seen, rolling_mean(loss, w), label=g[0].label(streams, widths=widths) + n, linewidth=1.3,
                         color=colour, linestyle=style)
            axes[1].plot(seen, [100 * v for v in rolling_mean(accuracy, w)], linewidth=1.3, color=colour, linestyle=style)
        # Shade the test part of Table 1 when every run has the same one.
        starts = {r.results["records"] - r.results["test"]["records"] for g in groups for r in g
                  if isinstance(r.results["test"].get("records"), int)}
        end = max(mean_batches(g)[0][-1] for g in groups if min(len(r.batches) for r in g))
        if len(starts) == 1 and 0 < next(iter(starts)) < end:
            for ax in axes:
                ax.axvspan(next(iter(starts)), end, color="tab:orange", alpha=0.08,
                           label="test part (Table 1)" if ax is axes[0] else None)
        axes[0].set_ylabel(f"{loss_label(task)} (rolling mean)")
        axes[1].set_ylabel("accuracy (%) (rolling mean)")
        axes[1].set_xlabel("records of the stream seen")
        axes[1].xaxis.set_major_formatter(EngFormatter(sep=""))
        for ax in axes:
            ax.grid(True, alpha=0.3)
        axes[0].legend(loc="best", fontsize=9)
        axes[0].set_title(f"{task} task: per-batch loss and accuracy over the stream "
                          f"(trailing mean of {w} batch{'es' if w != 1 else ''})")
        fig.tight_layout()
        written.append(save(fig, output, f"batches_{task}.png"))
        plt.close(fig)
    return written


# MARK: - Accuracy against memory (scripts/frontier.sh)

def configuration(run):
    """The frontier's configuration of a run: FIXED-W, ESAPN, DARTS…, with its shard budget."""
    label = DISPLAY.get(run.model.lower(), run.model)
    if run.model.lower() == "fixed":
        label = f"FIXED-{run.fixed_width}"
    budget = run.results.get("options", {}).get("shard_budget_mib")
    return (label, float(f"{float(budget):.4g}") if budget else None)


def shard_mib(run):
    """The largest rank's peak resident embedding bytes, in MiB."""
    ranks = run.results["memory"]["per_rank"]
    return max(m.get("peak_resident_bytes", m["resident_bytes"]) for m in ranks) / 2**20


def frontier(plt, runs, output):
    groups = {}
    for r in runs:
        groups.setdefault(configuration(r), []).append(r)
    points = []
    for (label, budget), g in groups.items():
        acc = [100 * r.results["test"]["accuracy"] for r in g]
        mib = sum(shard_mib(r) for r in g) / len(g)
        points.append((mib, sum(acc) / len(acc), min(acc), max(acc), label, budget, len(g)))
    fig, ax = plt.subplots(figsize=(9, 6))

    def family(p):
        # FIXED without a budget: one line over its widths; FIXED-W under budgets: one line each; the rest by model.
        if p[4].startswith("FIXED-"):
            return f"{p[4]} under budgets" if p[5] else "FIXED (one point per width)"
        return p[4]
    for name in sorted({family(p) for p in points}):
        fam = sorted(p for p in points if family(p) == name)
        colour = COLOURS.get(name.split("-")[0].split(" ")[0].lower())
        budgeted = name.endswith("under budgets")
        x = [p[0] for p in fam]
        budgets = [f"{p[5]:g}" for p in fam if p[5]]
        ax.plot(x, [p[1] for p in fam], marker="s" if budgeted else "o", linestyle="--" if budgeted else "-",
                color="tab:purple" if budgeted else colour,
                label=name + (f" (budgets {', '.join(budgets)} MiB)" if budgets else ""))
        ax.fill_between(x, [p[2] for p in fam], [p[3] for p in fam], color=colour, alpha=0.15, linewidth=0)
        if name.startswith("FIXED (one"):
            for p in fam:
                ax.annotate(p[4].split("-")[1], (p[0], p[1]), textcoords="offset points", xytext=(0, -12),
                            ha="center", fontsize=7, color="dimgray")
    best = [p for p in points if not any(q[1] >= p[1] and q[0] <= p[0] and (q[1] > p[1] or q[0] < p[0]) for q in points)]
    best.sort()
    ax.step([p[0] for p in best], [p[1] for p in best], where="post", color="black", alpha=0.4, linewidth=1,
            label="frontier (no run beats it on both)")
    ax.set_xscale("log")
    ax.set_xlabel("MiB per shard (largest rank's peak resident embedding bytes; log scale)")
    ax.set_ylabel("test accuracy (%), mean over seeds (band: min–max)")
    streams = sorted({r.stream for r in runs})
    ax.set_title(f"Accuracy against memory per shard: {', '.join(streams)}, {runs[0].ranks} rank(s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    written = [save(fig, output, "frontier.png")]
    plt.close(fig)

    # ESAPN's (and any budgeted run's) resident bytes over the stream: the largest rank, mean over seeds.
    fig, ax = plt.subplots(figsize=(9, 5))
    for (label, budget), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if not (label.lower().startswith("esapn") or budget):
            continue
        n = min(len(r.batches) for r in g)
        if n == 0 or any(not r.batches[0][4] for r in g):
            continue
        seen, records, ys = [], 0, []
        for i in range(n):
            records += g[0].batches[i][1]
            seen.append(records)
            ys.append(sum(max(r.batches[i][4]) for r in g) / len(g) / 2**20)
        name = label + (f" @ {budget:g} MiB" if budget else " (no budget)")
        line, = ax.plot(seen, ys, label=name, linewidth=1.2, color=COLOURS.get(label.split("-")[0].lower()) if not budget else None)
        if budget:
            ax.axhline(budget, color=line.get_color(), linestyle=":", linewidth=0.8)
    ax.set_xlabel("records of the stream seen")
    ax.set_ylabel("resident embedding MiB, largest rank")
    ax.set_yscale("log")
    ax.set_title("Memory over the stream, with and without a shard budget (dotted: the budget)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(save(fig, output, "memory_over_stream.png"))
    plt.close(fig)
    return written


# MARK: - Main

def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Draw the paper's Figure 4 and 5, memory per shard and per-batch loss from esapn run folders.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by `esapn train --output`")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder for the PNG files (created)")
    parser.add_argument("--frequency-bins", default="log2", metavar="log2|WIDTH",
                        help="Figure 4's frequency bins: log2 (1, 2, 3-4, 5-8, ...; default) or a bin width such as 10")
    parser.add_argument("--window", type=int, default=0,
                        help="batches in the rolling mean of batches_<task>.png (default: about 1/20 of the batches, at most 200)")
    parser.add_argument("--frontier", action="store_true",
                        help="draw accuracy against memory per shard (frontier.png) and memory over the stream "
                             "(memory_over_stream.png) instead of the paper's figures (the runs of scripts/frontier.sh)")
    parser.add_argument("--print-widths", action="store_true",
                        help="at the end, print one JSON line: each run's candidate widths and what the figures drew from them")
    args = parser.parse_args(argv)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot.py: matplotlib is not available ({e}).\n"
              f"Install it with: python3 -m pip install -r scripts/requirements.txt", file=sys.stderr)
        return 2

    try:
        frequency_bins(args.frequency_bins)
        runs = [Run(d) for d in args.runs]
    except BadInput as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 1
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as e:
        print(f"plot.py: {args.output}: cannot create the output folder: {e.strerror}", file=sys.stderr)
        return 1

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": DPI})
    summary = {"widths": union_widths(runs),
               "runs": [{"run": r.directory, "model": r.model, "widths": r.widths, "fixed_width": r.fixed_width,
                         "soft_width": r.soft_width} for r in runs]}
    written = []
    if args.frontier:
        written += frontier(plt, runs, args.output)
        print(f"{len(written)} figures in {args.output}")
        return 0
    written += figure4(plt, runs, args.output, args.frequency_bins)
    written += figure5(plt, runs, args.output, summary)
    written += memory_per_shard(plt, runs, args.output, summary)
    written += batches(plt, runs, args.output, args.window)
    print(f"{len(written)} figure{'s' if len(written) != 1 else ''} in {args.output}")
    if args.print_widths:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

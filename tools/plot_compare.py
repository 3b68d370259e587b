#!/usr/bin/python3
"""Plot a raisin comparison folder: importance sampling (RAIS) against plain SGD.

Usage:
    /usr/bin/python3 tools/plot_compare.py runs/cmp [--title TEXT]

Input
    A comparison folder holding one subfolder per run, named after the run
    (e.g. uniform, rais, oracle, uniform-short).  Each run folder holds:

      steps.csv   step,epoch,loss,accuracy,lr,lr_multiplier,wall_seconds,images_per_second
                  one row per optimizer step.  `epoch` is progress in epochs for
                  uniform samplers and in epochs-equivalent for rais/oracle;
                  `lr_multiplier` is the gain estimate r-hat (1 for uniform);
                  `loss` is the batch's weighted mean loss.
      epochs.csv  step,epoch,train_loss,train_accuracy,test_loss,test_error,wall_seconds,images_per_second
                  one row per epoch boundary; test metrics are on the whole test set,
                  train_loss is the mean of the epoch's minibatch losses.
      train_eval.csv  step,epoch,loss,accuracy,wall_seconds,eval_seconds
                  one row per evaluation of the whole training set in evaluation
                  mode (every --eval-train-every epochs and at the end): the
                  training loss `raisin compare` measures its targets with.

    Every wall_seconds column is training time: evaluations and checkpoint
    writes are excluded.  Subfolders holding none of the files are ignored
    (with a note on stderr); a run missing some is plotted from the others.
    Other files in the folder (summary.csv, ...) are ignored.  Extra CSV
    columns are ignored.

Output (written into the comparison folder, paths printed one per line)
    loss_vs_epochs.png  training loss over the whole training set (train_eval.csv,
                        line with dots), the per-step minibatch loss as a thin
                        moving average over about 1/10 epoch of steps, and test
                        error, against epochs / epochs-equivalent;
    loss_vs_steps.png   the same against optimizer steps;
    loss_vs_time.png    the same against wall-clock seconds;
    gain_ratio.png      lr_multiplier (r-hat) against steps for every run whose
                        r-hat is not identically 1 (runs named "oracle..." are
                        labelled "exact r").  If no run qualifies, the figure
                        says so instead.

    Losses and test errors use log-scaled y axes.  Each run keeps the same
    colour in all figures.

Exit status
    0 on success; 2 with a one-line message on stderr if the folder does not
    exist, holds no runs, or a CSV is malformed (missing header/columns,
    non-numeric values, ragged rows).
"""

import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402

STEPS_COLUMNS = ["step", "epoch", "loss", "accuracy", "lr", "lr_multiplier",
                 "wall_seconds", "images_per_second"]
EPOCHS_COLUMNS = ["step", "epoch", "train_loss", "train_accuracy", "test_loss",
                  "test_error", "wall_seconds", "images_per_second"]
TRAIN_EVAL_COLUMNS = ["step", "epoch", "loss", "accuracy", "wall_seconds",
                      "eval_seconds"]

# Preferred ordering (and hence colours) for well-known run names.
PREFERRED_ORDER = ["uniform", "rais", "oracle"]

X_AXES = {
    # key: (steps column, epochs column, axis label, file name, title word)
    "epochs": ("epoch", "epoch", "epochs (epochs-equivalent for rais/oracle)",
               "loss_vs_epochs.png", "epochs"),
    "steps": ("step", "step", "optimizer steps", "loss_vs_steps.png",
              "optimizer steps"),
    "time": ("wall_seconds", "wall_seconds",
             "training time (s; evaluations excluded)",
             "loss_vs_time.png", "training time"),
}


class InputError(Exception):
    """A problem with the input folder; reported as a one-line message."""


def read_csv(path, required):
    """Read a numeric CSV; returns {column: float ndarray}. Raises InputError."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    except (csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"malformed CSV {path}: {e}")
    # Drop fully blank lines (e.g. a trailing newline pair).
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"malformed CSV {path}: file is empty (no header)")
    header = [c.strip() for c in rows[0][1]]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"malformed CSV {path}: missing column(s) "
                         f"{', '.join(missing)} (header: {','.join(header)})")
    index = {c: header.index(c) for c in required}
    data = {c: [] for c in required}
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise InputError(f"malformed CSV {path} line {lineno}: expected "
                             f"{len(header)} fields, got {len(row)}")
        for c, j in index.items():
            try:
                data[c].append(float(row[j]))
            except ValueError:
                raise InputError(f"malformed CSV {path} line {lineno}: column "
                                 f"{c} is not a number: {row[j]!r}")
    return {c: np.asarray(v, dtype=float) for c, v in data.items()}


def load_runs(folder):
    """Returns an ordered list of (name, steps, epochs, train_eval); absent
    or empty files give None."""
    if not os.path.isdir(folder):
        raise InputError(f"not a directory: {folder}")
    runs = []
    for name in sorted(os.listdir(folder)):
        d = os.path.join(folder, name)
        if not os.path.isdir(d):
            continue
        files = [("steps.csv", STEPS_COLUMNS), ("epochs.csv", EPOCHS_COLUMNS),
                 ("train_eval.csv", TRAIN_EVAL_COLUMNS)]
        paths = [os.path.join(d, f) for f, _ in files]
        present = [os.path.isfile(p) for p in paths]
        if not any(present):
            print(f"note: skipping {d}: no steps.csv, epochs.csv or "
                  f"train_eval.csv", file=sys.stderr)
            continue
        tables = []
        for (fname, columns), path, has in zip(files, paths, present):
            if not has:
                print(f"note: {d} has no {fname}", file=sys.stderr)
                tables.append(None)
                continue
            table = read_csv(path, columns)
            tables.append(table if len(table["step"]) > 0 else None)
        if all(t is None for t in tables):
            print(f"note: skipping {d}: its CSVs have no data rows",
                  file=sys.stderr)
            continue
        runs.append((name, *tables))
    if not runs:
        raise InputError(f"no runs in {folder} (expected subfolders with "
                         f"steps.csv / epochs.csv / train_eval.csv)")

    def key(run):
        name = run[0]
        for i, p in enumerate(PREFERRED_ORDER):
            if name == p:
                return (i, 0, name)
        for i, p in enumerate(PREFERRED_ORDER):
            if name.startswith(p):
                return (i, 1, name)
        return (len(PREFERRED_ORDER), 0, name)

    return sorted(runs, key=key)


def steps_per_epoch(steps):
    """Steps per unit of the `epoch` column, or None if it cannot be told."""
    e = steps["epoch"]
    e = e[np.isfinite(e)]
    if len(e) < 2 or e[-1] <= e[0]:
        return None
    return (len(e) - 1) / (e[-1] - e[0])


def moving_average(y, window):
    """Centred moving average ignoring non-finite values; edges use what exists."""
    if window <= 1 or len(y) < 2:
        return y.copy()
    ok = np.isfinite(y)
    kernel = np.ones(window)
    s = np.convolve(np.where(ok, y, 0.0), kernel, mode="same")
    n = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / n
    out[n == 0] = np.nan
    return out


def positive(y):
    """Values unusable on a log axis become NaN (matplotlib leaves gaps)."""
    y = np.asarray(y, dtype=float).copy()
    y[~(y > 0)] = np.nan
    return y


def log_y(ax):
    """Log y axis with readable plain-number ticks; call after plotting.  An
    axis with no positive value (e.g. a test error of 0 throughout) stays
    linear.  Returns whether the axis is logarithmic."""
    if not any(np.any(np.asarray(line.get_ydata(), dtype=float) > 0)
               for line in ax.get_lines()):
        return False
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    fmt = mticker.FuncFormatter(lambda v, _: f"{v:.3g}")
    ax.yaxis.set_major_formatter(fmt)
    if lo > 0 and hi / lo < 3:
        # Under half a decade: log ticks would leave the axis nearly bare.
        ax.yaxis.set_major_locator(mticker.MaxNLocator(6))
        ax.yaxis.set_minor_locator(mticker.NullLocator())
    elif lo > 0 and hi / lo < 30:
        ax.yaxis.set_minor_formatter(fmt)
        ax.tick_params(axis="y", which="minor", labelsize=8)
    else:
        ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    return True


def suptitle(fig, what, folder, title):
    head = title if title else os.path.normpath(folder)
    sub = f"{what}  [{os.path.normpath(folder)}]" if title else what
    fig.suptitle(f"{head}\n{sub}", fontsize=12)


def plot_loss(folder, runs, colors, xkey, title):
    scol, ecol, xlabel, fname, word = X_AXES[xkey]
    fig, (ax_loss, ax_err) = plt.subplots(2, 1, figsize=(10, 9), sharex=True)
    for name, steps, epochs, evals in runs:
        c = colors[name]
        if steps is not None:
            spe = steps_per_epoch(steps)
            window = max(1, int(round(spe / 10))) if spe else 1
            smooth = moving_average(steps["loss"], window)
            label = f"{name} (minibatch loss, avg over {window} steps)"
            ax_loss.plot(steps[scol], positive(smooth), color=c, lw=0.8,
                         alpha=0.45, label=label)
        if evals is not None:
            ax_loss.plot(evals[ecol], positive(evals["loss"]), "o-", color=c,
                         lw=1.8, ms=5, mec="black", mew=0.6,
                         label=f"{name} (whole training set)")
        if epochs is not None:
            ax_err.plot(epochs[ecol], positive(epochs["test_error"]), "o-",
                        color=c, lw=1.6, ms=5, label=name)
    ax_loss.set_ylabel("training loss" + (" (log scale)" if log_y(ax_loss) else ""))
    ax_loss.set_title(f"Training loss vs {word} (dots: whole training set, "
                      f"evaluation mode; thin: minibatch losses)")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_loss.legend(fontsize=8)
    ax_err.set_ylabel("test error (fraction" + (", log scale)" if log_y(ax_err) else ")"))
    ax_err.set_xlabel(xlabel)
    ax_err.set_title(f"Test error vs {word} (whole test set, per epoch)")
    ax_err.grid(True, which="both", alpha=0.3)
    if any(e is not None for _, _, e, _ in runs):
        ax_err.legend(fontsize=9)
    else:
        ax_err.text(0.5, 0.5, "no epochs.csv data", transform=ax_err.transAxes,
                    ha="center", va="center")
    ax_err.tick_params(labelbottom=True)
    suptitle(fig, f"loss vs {word}", folder, title)
    fig.tight_layout()
    out = os.path.join(folder, fname)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_gain(folder, runs, colors, title):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    plotted = 0
    for name, steps, _, _ in runs:
        if steps is None:
            continue
        r = steps["lr_multiplier"]
        finite = r[np.isfinite(r)]
        if len(finite) == 0 or np.allclose(finite, 1.0, rtol=0, atol=1e-9):
            continue
        label = f"{name} (exact r)" if "oracle" in name.lower() else f"{name} (r\u0302)"
        ax.plot(steps["step"], r, color=colors[name], lw=1.0, label=label)
        plotted += 1
    ax.axhline(1.0, color="gray", ls="--", lw=1, label="r = 1 (uniform)")
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("lr_multiplier (gain ratio r)")
    ax.set_title("Estimated gain ratio r\u0302 (lr multiplier) vs optimizer steps")
    ax.grid(True, alpha=0.3)
    if plotted == 0:
        ax.text(0.5, 0.5, "no run has lr_multiplier \u2260 1",
                transform=ax.transAxes, ha="center", va="center", fontsize=12)
    ax.legend(fontsize=9)
    suptitle(fig, "gain ratio", folder, title)
    fig.tight_layout()
    out = os.path.join(folder, "gain_ratio.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Plot loss/test-error/gain-ratio curves for a raisin "
                    "comparison folder (one subfolder per run).")
    p.add_argument("folder", help="comparison folder, e.g. runs/cmp")
    p.add_argument("--title", default=None,
                   help="figure title (default: the folder path)")
    args = p.parse_args(argv)
    try:
        runs = load_runs(args.folder)
    except InputError as e:
        print(f"plot_compare: error: {e}", file=sys.stderr)
        return 2
    cmap = plt.get_cmap("tab10")
    colors = {name: cmap(i % 10) for i, (name, *_) in enumerate(runs)}
    written = [plot_loss(args.folder, runs, colors, k, args.title)
               for k in ("epochs", "steps", "time")]
    written.append(plot_gain(args.folder, runs, colors, args.title))
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())

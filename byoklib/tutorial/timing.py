"""Measure steps, tabulate them with pandas, chart them with matplotlib.

Timing is for looking at, not for asserting: machines differ, so nothing in the tests
depends on a number from here. Each run is timed with `time.perf_counter()` (monotonic,
the highest resolution Python offers) around one call; warm-up runs are made first and
thrown away, so one-off costs (imports, first-use caches) do not pose as the step's cost.

Charts are drawn on `matplotlib.figure.Figure` objects, never through `pyplot`, so no GUI
backend is touched (rendering uses Agg, which needs no display) and a figure shows once
in a notebook when returned from a cell.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

COLUMNS = ["step", "run", "seconds"]
# Matplotlib 3.10 replaced boxplot(vert=False) with orientation="horizontal" (and warns on
# vert from 3.11); requirements allow 3.8 onwards, so pick by version.
_HORIZONTAL_BOX = ({"orientation": "horizontal"}
                   if tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)
                   else {"vert": False})
SUMMARY_COLUMNS = ["runs", "median", "mean", "min", "max", "stdev"]


# --- measuring -----------------------------------------------------------------------------

def measure(fn: Callable[[], object], repeat: int = 5, warmup: int = 1,
            label: str | None = None, progress: bool = False) -> pd.DataFrame:
    """Call `fn()` `warmup` times unrecorded, then `repeat` times, one row per timed call.

    Returns a DataFrame with columns step (the label, default the function's name),
    run (1..repeat) and seconds. `progress=True` shows a tqdm bar; `progress="lines"`
    prints one line when the loop is done (what a notebook should store).
    """
    _check_counts(repeat, warmup)
    if not callable(fn):
        raise TypeError("fn must be callable")
    step = label or getattr(fn, "__name__", "step")
    bar = _progress_bar(repeat + warmup, step, progress)
    began = time.perf_counter()
    try:
        for _ in range(warmup):
            fn()
            _tick(bar)
        rows = []
        for run in range(1, repeat + 1):
            rows.append((step, run, _time_one(fn)))
            _tick(bar)
    finally:
        _close(bar)
    _line(progress, step, repeat, warmup, time.perf_counter() - began)
    return pd.DataFrame(rows, columns=COLUMNS)


def measure_steps(steps: Mapping[str, Callable[[], object]], repeat: int = 5,
                  warmup: int = 1, progress: bool = False) -> pd.DataFrame:
    """`measure` each named step in order; one DataFrame with all their rows."""
    _check_counts(repeat, warmup)
    if not steps:
        raise ValueError("steps is empty")
    bar = _progress_bar(len(steps) * (repeat + warmup), "steps", progress)
    frames = []
    try:
        for name, fn in steps.items():
            if not callable(fn):
                raise TypeError(f"step {name!r} is not callable")
            began = time.perf_counter()
            for _ in range(warmup):
                fn()
                _tick(bar)
            rows = []
            for run in range(1, repeat + 1):
                rows.append((name, run, _time_one(fn)))
                _tick(bar)
            _line(progress, name, repeat, warmup, time.perf_counter() - began)
            frames.append(pd.DataFrame(rows, columns=COLUMNS))
    finally:
        _close(bar)
    return pd.concat(frames, ignore_index=True)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per step, in first-seen order: runs, median, mean, min, max, stdev (seconds)."""
    _check_frame(df)
    grouped = df.groupby("step", sort=False)["seconds"]
    summary = pd.DataFrame({
        "runs": grouped.count(),
        "median": grouped.median(),
        "mean": grouped.mean(),
        "min": grouped.min(),
        "max": grouped.max(),
        "stdev": grouped.std(),  # sample stdev; NaN for a single run
    })
    return summary[SUMMARY_COLUMNS]


def _time_one(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _check_counts(repeat: int, warmup: int) -> None:
    if int(repeat) != repeat or repeat < 1:
        raise ValueError("repeat must be a whole number >= 1")
    if int(warmup) != warmup or warmup < 0:
        raise ValueError("warmup must be a whole number >= 0")


def _check_frame(df: pd.DataFrame) -> None:
    missing = {"step", "seconds"} - set(df.columns)
    if missing:
        raise ValueError(f"expected a frame from measure()/measure_steps(); missing {sorted(missing)}")
    if df.empty:
        raise ValueError("the frame has no rows")


# --- progress (tqdm, only when asked) ------------------------------------------------------

def _line(progress, step: str, repeat: int, warmup: int, seconds: float) -> None:
    if progress == "lines":
        extra = f" (+{warmup} warm-up)" if warmup else ""
        print(f"{step}: {repeat} runs{extra} in {seconds:.1f} s", flush=True)


def _progress_bar(total: int, desc: str, enabled):
    if enabled is not True:      # False, None, or "lines" (one line per loop, no bar)
        return None
    # The text bar, not tqdm.auto: the notebook widget needs ipywidgets, which we do not
    # install, and Jupyter renders the text bar's carriage returns well enough.
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False)


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)


def _close(bar) -> None:
    if bar is not None:
        bar.close()


# --- charts --------------------------------------------------------------------------------

def time_unit(seconds: float) -> tuple[str, float]:
    """A readable unit for a typical value: ('s', 1), ('ms', 1e3) or ('µs', 1e6)."""
    if seconds >= 1:
        return "s", 1.0
    if seconds >= 1e-3:
        return "ms", 1e3
    return "µs", 1e6


class NotebookFigure(Figure):
    """A Figure that shows itself as a PNG when it is the value of a notebook cell.

    Figures made without pyplot have no backend to display them, and IPython's
    figure formatter is only registered once pyplot has activated the inline backend;
    `_repr_png_` works either way."""

    def _repr_png_(self) -> bytes:
        from io import BytesIO

        buffer = BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _axes(ax, figsize=(7, 3.5)):
    if ax is not None:
        return ax.figure, ax
    fig = NotebookFigure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_steps(df: pd.DataFrame, ax=None, title: str = "Median time per step",
               log: bool | None = None) -> Figure:
    """Bars of each step's median, with whiskers from its fastest to its slowest run.

    Steps of a secure import differ by orders of magnitude (AES-GCM on 12 bytes against an
    RSA-4096 private-key operation), so with `log=None` the axis turns logarithmic when the
    largest median is over 100 times the smallest; each bar is labelled with its median.
    """
    summary = summarize(df)
    unit, scale = time_unit(float(summary["median"].max()))
    fig, ax = _axes(ax)
    medians = summary["median"] * scale
    lower = medians - summary["min"] * scale
    upper = summary["max"] * scale - medians
    positions = list(range(len(summary)))
    bars = ax.bar(positions, medians, yerr=[lower, upper], capsize=4, color="tab:blue",
                  alpha=0.8)
    smallest = float(summary["median"].min())
    if log is None:
        log = smallest > 0 and float(summary["median"].max()) / smallest > 100
    if log:
        ax.set_yscale("log")
    ax.bar_label(bars, labels=[f"{m:.3g}" for m in medians], padding=2, fontsize=8)
    ax.set_xticks(positions, [str(s) for s in summary.index], rotation=20, ha="right")
    ax.set_ylabel(f"median ({unit}{', log scale' if log else ''})\nwhiskers: min–max")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_runs(df: pd.DataFrame, ax=None, title: str = "Every run, one dot each",
              log: bool | None = None) -> Figure:
    """A strip plot: one dot per timed run, one row per step, the median as a bar.

    With few runs a histogram says nothing (five runs make five bars of height one); the
    dots show each run and so the spread, however many there are. Rows share one time
    axis, logarithmic (with `log=None`) when the steps differ by more than 100 times."""
    _check_frame(df)
    summary = summarize(df)
    unit, scale = time_unit(float(summary["median"].min()))
    fig, ax = _axes(ax, figsize=(7, 0.8 + 0.55 * len(summary)))
    rng = random.Random(0)   # the same jitter on every run of the notebook
    for row, step in enumerate(summary.index):
        values = df.loc[df["step"] == step, "seconds"] * scale
        ax.scatter(values, [row + rng.uniform(-0.18, 0.18) for _ in values], s=14,
                   color="tab:blue", alpha=0.7, zorder=2)
        median = float(summary.loc[step, "median"]) * scale
        ax.plot([median, median], [row - 0.3, row + 0.3], color="tab:red", linewidth=2,
                zorder=3, label="median" if row == 0 else None)
    smallest, largest = float(df["seconds"].min()), float(df["seconds"].max())
    if log is None:
        log = smallest > 0 and largest / smallest > 100
    if log:
        ax.set_xscale("log")
    ax.set_yticks(range(len(summary)),
                  [f"{s} ({int(summary.loc[s, 'runs'])} runs)" for s in summary.index])
    ax.set_ylim(len(summary) - 0.5, -0.5)
    ax.set_xlabel(f"time per run ({unit}{', log scale' if log else ''})")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_distribution(df: pd.DataFrame, step: str, ax=None, bins: int = 20) -> Figure:
    """Histogram of one step's runs with its median marked; with no `ax`, a box plot
    below it shows the spread and outliers."""
    _check_frame(df)
    values = df.loc[df["step"] == step, "seconds"]
    if values.empty:
        raise ValueError(f"no runs of step {step!r}; steps are {list(df['step'].unique())}")
    unit, scale = time_unit(float(values.median()))
    scaled = values * scale
    if ax is None:
        fig = NotebookFigure(figsize=(7, 4), layout="constrained")
        hist_ax, box_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        box_ax.boxplot(scaled, widths=0.6, **_HORIZONTAL_BOX)
        box_ax.set_yticks([])
        box_ax.set_xlabel(f"time per run ({unit})")
    else:
        fig, hist_ax = ax.figure, ax
        hist_ax.set_xlabel(f"time per run ({unit})")
    hist_ax.hist(scaled, bins=min(bins, max(len(scaled), 1)), color="tab:blue", alpha=0.8)
    hist_ax.axvline(float(scaled.median()), color="tab:red", linestyle="--", label="median")
    hist_ax.set_ylabel("runs")
    hist_ax.yaxis.set_major_locator(MaxNLocator(integer=True))   # runs come whole
    hist_ax.set_title(f"{step}: {len(values)} runs")
    hist_ax.legend()
    return fig


def plot_breakdown(parts: Mapping[str, float], ax=None,
                   title: str = "Where the time of one import goes") -> Figure:
    """One horizontal bar split into the parts of one operation (seconds each), with
    each part's share written on it, so the dominant step is obvious."""
    if not parts:
        raise ValueError("parts is empty")
    if any(v < 0 for v in parts.values()):
        raise ValueError("times cannot be negative")
    total = float(sum(parts.values()))
    if total <= 0:
        raise ValueError("the parts add up to zero")
    unit, scale = time_unit(total)
    own_figure = ax is None
    fig, ax = _axes(ax, figsize=(8, 2.6))
    left = 0.0
    colours = [f"C{i}" for i in range(len(parts))]
    for (name, seconds), colour in zip(parts.items(), colours):
        width = seconds * scale
        ax.barh(0, width, left=left, color=colour, edgecolor="white", label=name)
        share = seconds / total
        if share >= 0.08:  # only where the text fits inside its segment
            ax.text(left + width / 2, 0, f"{share:.0%}", ha="center", va="center", color="white")
        left += width
    ax.set_yticks([])
    ax.set_xlim(0, left)
    ax.set_xlabel(f"time ({unit}); total {total * scale:.3g} {unit}")
    ax.set_title(title)
    if own_figure:  # room for the legend below the bar, inside the saved image
        fig.legend(loc="outside lower center", ncol=min(len(parts), 3), frameon=False)
    else:
        ax.legend(loc="best", fontsize=8)
    return fig

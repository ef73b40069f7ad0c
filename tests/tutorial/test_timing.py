"""byoklib.tutorial.timing: shapes and behaviour, never timing numbers (machines differ)."""
from __future__ import annotations

import io

import pandas as pd
import pytest
from matplotlib.figure import Figure

from byoklib.tutorial.timing import (
    COLUMNS,
    SUMMARY_COLUMNS,
    measure,
    measure_steps,
    plot_breakdown,
    plot_distribution,
    plot_runs,
    plot_steps,
    summarize,
    time_unit,
)


class Counter:
    """A step that counts its calls, to check warm-up and repeat without reading clocks."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def _renders(fig: Figure) -> bool:
    """Draw the figure to PNG bytes: proves it renders with no display attached."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG")


def test_measure_shape_and_calls():
    step = Counter()
    df = measure(step, repeat=4, warmup=2, label="count")
    assert list(df.columns) == COLUMNS
    assert len(df) == 4 and step.calls == 6  # warm-up calls are made but not recorded
    assert list(df["run"]) == [1, 2, 3, 4]
    assert set(df["step"]) == {"count"}
    assert (df["seconds"] >= 0).all()


def test_measure_labels_with_the_function_name():
    def encrypt_nonce_step():
        return None
    assert set(measure(encrypt_nonce_step, repeat=1)["step"]) == {"encrypt_nonce_step"}


def test_measure_rejects_bad_arguments():
    with pytest.raises(ValueError):
        measure(Counter(), repeat=0)
    with pytest.raises(ValueError):
        measure(Counter(), warmup=-1)
    with pytest.raises(TypeError):
        measure("not callable")


def test_errors_in_the_step_propagate():
    def broken():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        measure(broken, repeat=2)


def test_measure_steps_keeps_order_and_counts():
    steps = {"b-second": Counter(), "a-first": Counter(), "c": Counter()}
    df = measure_steps(steps, repeat=3)
    assert list(df.columns) == COLUMNS and len(df) == 9
    assert list(df["step"].unique()) == ["b-second", "a-first", "c"]
    assert all(s.calls == 4 for s in steps.values())  # 1 warm-up + 3 timed
    with pytest.raises(ValueError):
        measure_steps({})


def test_progress_bar_runs(capsys):
    df = measure(Counter(), repeat=2, progress=True)
    df2 = measure_steps({"x": Counter()}, repeat=2, progress=True)
    assert len(df) == len(df2) == 2


def test_progress_lines_print_one_line_per_loop_and_no_bar(capsys):
    measure(Counter(), repeat=2, warmup=1, label="one", progress="lines")
    measure_steps({"a": Counter(), "b": Counter()}, repeat=3, progress="lines")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["one", "a", "b"]
    assert "2 runs (+1 warm-up) in" in lines[0] and "3 runs (+1 warm-up) in" in lines[1]
    assert "\r" not in out and err == ""


def test_plot_runs_draws_one_dot_per_run_and_a_row_per_step():
    df = pd.DataFrame({"step": ["a"] * 5 + ["b"] * 3, "run": [1, 2, 3, 4, 5, 1, 2, 3],
                       "seconds": [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 1.0, 2.0, 3.0]})
    fig = plot_runs(df)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 8
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (5 runs)", "b (3 runs)"]
    assert ax.get_xscale() == "log"                      # 1 ms against 3 s
    assert plot_runs(df[df.step == "a"]).axes[0].get_xscale() == "linear"
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_summarize_statistics_on_known_numbers():
    df = pd.DataFrame({"step": ["a", "a", "a", "b"], "run": [1, 2, 3, 1],
                       "seconds": [1.0, 2.0, 6.0, 0.5]})
    summary = summarize(df)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary.index) == ["a", "b"]
    a = summary.loc["a"]
    assert (a["runs"], a["median"], a["mean"], a["min"], a["max"]) == (3, 2.0, 3.0, 1.0, 6.0)
    assert a["stdev"] == pytest.approx(2.6457513, rel=1e-6)
    assert pd.isna(summary.loc["b", "stdev"])
    with pytest.raises(ValueError):
        summarize(pd.DataFrame({"x": [1]}))


def test_time_unit():
    assert time_unit(2.0) == ("s", 1.0)
    assert time_unit(0.02) == ("ms", 1e3)
    assert time_unit(2e-5) == ("µs", 1e6)


@pytest.fixture(scope="module")
def frame():
    return measure_steps({"fast": lambda: None, "slow": lambda: sum(range(2000))}, repeat=5)


def test_plot_steps_returns_a_rendered_figure(frame):
    fig = plot_steps(frame, title="steps")
    assert isinstance(fig, Figure) and _renders(fig)
    ax = fig.axes[0]
    assert ax.get_title() == "steps"
    assert len(ax.patches) == 2  # one bar per step
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fast", "slow"]


def test_plot_steps_on_a_given_axes(frame):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_steps(frame, ax=ax) is fig
    assert len(ax.patches) == 2


def test_plot_distribution(frame):
    fig = plot_distribution(frame, "slow")
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and _renders(fig)
    with pytest.raises(ValueError, match="no runs"):
        plot_distribution(frame, "missing")


def test_plot_breakdown():
    parts = {"RSA-OAEP wrap": 0.004, "AES-GCM nonce": 0.0001, "HTTP": 0.002}
    fig = plot_breakdown(parts)
    assert isinstance(fig, Figure) and _renders(fig)
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    widths = [p.get_width() for p in ax.patches]
    assert widths[0] > widths[2] > widths[1]  # drawn in proportion to the parts
    with pytest.raises(ValueError):
        plot_breakdown({})
    with pytest.raises(ValueError):
        plot_breakdown({"a": -1.0})


def test_plot_steps_turns_logarithmic_for_wide_ranges():
    wide = pd.DataFrame({"step": ["aes", "rsa"], "run": [1, 1], "seconds": [1e-5, 0.3]})
    narrow = pd.DataFrame({"step": ["a", "b"], "run": [1, 1], "seconds": [0.2, 0.3]})
    assert plot_steps(wide).axes[0].get_yscale() == "log"
    assert plot_steps(narrow).axes[0].get_yscale() == "linear"
    assert plot_steps(wide, log=False).axes[0].get_yscale() == "linear"

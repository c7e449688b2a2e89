"""The report's PNG plots, drawn on matplotlib's Agg canvas without pyplot, so that plotting
neither picks nor changes the process's matplotlib backend, rcParams or open figures.

Sizes grow with the number of runs and labels (within limits); numbers are written into bars
and cells only where they fit at a readable font size.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mmenc.comparison.report import RunResult

_DPI = 120
_TOP1, _TOP5, _CHANCE = "#1f5fa8", "#9ec3ea", "#d9480f"


def accuracy(runs: list[RunResult], names: list[list[str]], path: Path) -> Path:
    """Grouped bars: top-1 and top-5 (%) per run, with each run's top-1 chance level (1/K).

    ``names`` are each run's name as lines (model, method, dataset), stacked under its bars.
    """
    n = len(runs)
    stacked = n <= 6
    longest = max(len(line) for lines in names for line in lines)
    group = max(1.3, 0.08 * longest + 0.3) if stacked else 0.9
    fig = _figure(min(max(6.0, group * n + 3.0), 30.0), 5.0 if stacked else 4.5 + 0.06 * longest)
    ax = fig.add_subplot()
    x = np.arange(n)
    top1 = [100 * run.metrics.top1 for run in runs]
    top5 = [100 * run.metrics.top5 for run in runs]
    bars1 = ax.bar(x - 0.2, np.nan_to_num(top1), 0.4, label="top-1", color=_TOP1)
    bars5 = ax.bar(x + 0.2, np.nan_to_num(top5), 0.4, label="top-5", color=_TOP5)
    if n <= 20:
        size = 9 if n <= 8 else 7
        for bars, values in ((bars1, top1), (bars5, top5)):
            ax.bar_label(bars, [_percent(v) for v in values], padding=2, fontsize=size)
    chance = [100.0 / len(run.labels) for run in runs]
    ax.hlines(chance, x - 0.45, x + 0.45, colors=_CHANCE, linestyles="--", linewidth=1.5,
              label="chance (top-1)")  # fmt: skip
    margin = max(0, 3 - n) / 2  # one or two runs: narrower bars, not the whole width
    ax.set_xlim(-0.6 - margin, n - 0.4 + margin)
    ax.set_ylim(0, 110)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Zero-shot accuracy by model\n{_datasets(runs)}", fontsize=12)
    ax.set_xticks(x)
    if stacked:
        ax.set_xticklabels(["\n".join(lines) for lines in names], fontsize=9)
    else:
        one_line = [" ".join(lines) for lines in names]
        ax.set_xticklabels(one_line, rotation=35, ha="right", rotation_mode="anchor", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _save(fig, path)


def confusion(run: RunResult, path: Path) -> Path:
    """The confusion matrix, coloured by the share of each true class (so rare classes read as
    well as common ones), counts written in the cells where they fit."""
    counts = np.asarray(run.metrics.confusion, dtype=np.int64)
    k = len(run.labels)
    support = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    side = min(max(5.0, 0.32 * k + 3.0), 16.0)
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    if k <= 30:
        size = 10 if k <= 10 else 7
        for (t, p), count in np.ndenumerate(counts):
            color = "white" if share[t, p] > 0.55 else ("#999999" if count == 0 else "black")
            ax.text(p, t, str(count), ha="center", va="center", fontsize=size, color=color)
    _label_ticks(ax, run.labels, run.labels, k)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(
        f"{_wrap(f'{run.model} · {run.method}', 60)}\n{_wrap(run.dataset, 60)} ({run.modality}), "
        f"{run.examples} examples: top-1 {_percent(100 * run.metrics.top1)}",
        fontsize=12,
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return _save(fig, path)


def recall_heatmap(runs: list[RunResult], names: list[str], path: Path) -> Path:
    """Runs × labels, recall per class (%); grey where a run has no examples of the label."""
    from matplotlib import colormaps

    labels = list(dict.fromkeys(label for run in runs for label in run.labels))
    values = np.full((len(runs), len(labels)), np.nan)
    column = {label: j for j, label in enumerate(labels)}
    for i, run in enumerate(runs):
        for label, recall in zip(run.labels, run.metrics.per_class_recall, strict=True):
            values[i, column[label]] = recall
    k, n = len(labels), len(runs)
    cell = 0.6 if k <= 20 else 0.4
    width = cell * k + 0.075 * max(map(len, names)) + 2.5
    height = 0.5 * n + 1.8 + 0.06 * max(map(len, labels))
    fig = _figure(min(max(6.0, width), 28.0), min(max(3.0, height), 18.0))
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    if k <= 40 and n <= 40:
        size = 9 if k <= 20 else 7
        for (i, j), value in np.ndenumerate(values):
            text, color = ("–", "#666666") if math.isnan(value) else (
                f"{100 * value:.0f}", "white" if value < 0.6 else "black")  # fmt: skip
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
    _label_ticks(ax, labels, names, max(k, n))
    ax.set_xlabel("true label")
    ax.set_title("Per-class recall (%)", fontsize=12)
    fig.colorbar(image, ax=ax, shrink=0.9, label="recall", format=lambda v, _: f"{100 * v:.0f}%")
    return _save(fig, path)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI, facecolor="white")
    return path


def _label_ticks(ax: Any, columns: list[str], rows: list[str], count: int) -> None:
    """Label names on both axes; smaller with many labels, left out past 120."""
    if count > 120:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    size = 10 if count <= 15 else 8 if count <= 40 else 6
    ax.set_xticks(range(len(columns)))
    if max(map(len, columns)) <= 3:  # digits and the like read best upright
        ax.set_xticklabels(columns, fontsize=size)
    else:
        ax.set_xticklabels(columns, rotation=45, ha="right", rotation_mode="anchor", fontsize=size)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=size)


def _datasets(runs: list[RunResult]) -> str:
    seen = dict.fromkeys(
        f"{run.dataset} ({run.modality}, {len(run.labels)} labels)" for run in runs
    )
    return _wrap("on " + "; ".join(seen), 90)


def _percent(percent: float) -> str:
    return "n/a" if math.isnan(percent) else f"{percent:.1f}%"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text

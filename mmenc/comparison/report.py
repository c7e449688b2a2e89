"""``ComparisonReport``: the results of zero-shot runs as a Markdown table, CSV, JSON and plots.

A ``RunResult`` is one model × method × dataset evaluation; the harness (``mmenc.compare``)
builds them, and a report can also be built by hand or read back with
``ComparisonReport.from_json``. Rates are stored in [0, 1] and shown as percentages.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmenc.comparison.metrics import Metrics

FORMAT = "mmenc-comparison/1"
_MAX_LISTED_ERRORS = 20
# a JSON list of numbers / nulls that json.dumps(indent=...) spread over lines
_NUMBER = r"(?:-?[0-9][0-9.eE+-]*|null)"
_NUMBER_LIST = re.compile(rf"\[\s*{_NUMBER}(?:,\s*{_NUMBER})*\s*\]")


@dataclass
class RunResult:
    """One model × method evaluated on one dataset.

    ``examples`` counts the inputs evaluated (those in ``errors``, as ``(source, why)``, are
    left out of the metrics). ``examples_per_second``, ``load_seconds`` and ``peak_memory_mb``
    are as the harness measured them (NaN where not measured, shown as "n/a").
    """

    model: str
    method: str
    dataset: str
    modality: str
    labels: list[str]
    metrics: Metrics
    examples: int
    examples_per_second: float
    load_seconds: float
    peak_memory_mb: float
    errors: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.metrics.confusion) != len(self.labels):
            raise ValueError(
                f"run {self.model!r} on {self.dataset!r}: {len(self.labels)} labels but a "
                f"{len(self.metrics.confusion)}-row confusion matrix; they must match."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": self.method,
            "dataset": self.dataset,
            "modality": self.modality,
            "labels": list(self.labels),
            "examples": self.examples,
            "examples_per_second": _finite_or_none(self.examples_per_second),
            "load_seconds": _finite_or_none(self.load_seconds),
            "peak_memory_mb": _finite_or_none(self.peak_memory_mb),
            "metrics": self.metrics.to_dict(),
            "errors": [{"source": source, "error": why} for source, why in self.errors],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            model=data["model"],
            method=data["method"],
            dataset=data["dataset"],
            modality=data["modality"],
            labels=list(data["labels"]),
            metrics=Metrics.from_dict(data["metrics"]),
            examples=int(data["examples"]),
            examples_per_second=_float(data["examples_per_second"]),
            load_seconds=_float(data["load_seconds"]),
            peak_memory_mb=_float(data["peak_memory_mb"]),
            errors=[(e["source"], e["error"]) for e in data["errors"]],
        )


@dataclass
class ComparisonReport:
    """The runs of one comparison, plus the runs that could not be made.

    ``skipped`` lists ``(run, reason)`` pairs, e.g. ``("minilm-l6 · similarity on shapes",
    "minilm-l6 has no image tower")``: they appear in the table's notes, report.md and the JSON.
    """

    runs: list[RunResult]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.table()

    def _repr_markdown_(self) -> str:  # rendered by Jupyter
        return self.table()

    def table(self) -> str:
        """A Markdown table, one row per run, then notes (top-5 with < 5 labels, skipped runs)."""
        header = [
            "model", "method", "dataset", "modality", "examples", "top-1", "top-5",
            "mean recall", "macro-F1", "examples/s", "load (s)", "peak memory (MB)", "errors",
        ]  # fmt: skip
        rows = [_table_row(run) for run in self.runs]
        lines = [_md_row(header), _md_row(["---"] * 4 + ["---:"] * (len(header) - 4))]
        lines += [_md_row(row) for row in rows]
        return "\n".join(lines + self._notes())

    def _notes(self) -> list[str]:
        notes = []
        if any(len(run.labels) < 5 for run in self.runs):
            notes.append("top-5 with fewer than 5 labels counts every label, so it is 100%.")
        notes += [f"skipped {what}: {why}" for what, why in self.skipped]
        return ["", *(f"- {note}" for note in notes)] if notes else []

    def to_csv(self, path: str | Path | None = None) -> str:
        """One row per run: rates in [0, 1] at full precision, empty where undefined, and a
        ``recall:<label>`` column per label (of every run's labels). Written to ``path`` if
        given; returned either way. Confusion matrices and errors are in the JSON only."""
        labels = _all_labels(self.runs)
        fields = [
            "model", "method", "dataset", "modality", "num_labels", "examples", "errors",
            "top1", "top5", "mean_recall", "macro_f1",
            "examples_per_second", "load_seconds", "peak_memory_mb",
        ]  # fmt: skip
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(fields + [f"recall:{label}" for label in labels])
        for run in self.runs:
            m = run.metrics
            recall = dict(zip(run.labels, m.per_class_recall, strict=True))
            writer.writerow(
                [run.model, run.method, run.dataset, run.modality, len(run.labels)]
                + [run.examples, len(run.errors)]
                + [_csv_float(v) for v in (m.top1, m.top5, m.mean_recall, m.macro_f1)]
                + [_csv_float(run.examples_per_second), _csv_float(run.load_seconds)]
                + [_csv_float(run.peak_memory_mb)]
                + [_csv_float(recall.get(label, math.nan)) for label in labels]
            )
        return _written(buffer.getvalue(), path)

    def to_json(self, path: str | Path | None = None) -> str:
        """Everything: every run with its labels, metrics, confusion matrix and errors, and the
        skipped runs. NaN is written as null. Read back with ``ComparisonReport.from_json``."""
        data = {
            "format": FORMAT,
            "runs": [run.to_dict() for run in self.runs],
            "skipped": [{"run": what, "reason": why} for what, why in self.skipped],
        }
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
        return _written(_NUMBER_LIST.sub(_one_line_list, text), path)

    @classmethod
    def from_json(cls, text: str) -> ComparisonReport:
        """The report ``to_json`` wrote (the text, not a path)."""
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(
                f"not an mmenc comparison report (format {data.get('format')!r}, "
                f"expected {FORMAT!r})."
            )
        return cls(
            runs=[RunResult.from_dict(run) for run in data["runs"]],
            skipped=[(s["run"], s["reason"]) for s in data["skipped"]],
        )

    def plot(self, folder: str | Path) -> list[Path]:
        """PNG plots in ``folder``: accuracy.png (top-1 and top-5 by run, chance marked),
        per_class_recall.png (runs × labels) and confusion-NN-<run>.png per run. None when
        there are no runs. Uses matplotlib's Agg canvas directly: no pyplot, no global state."""
        from mmenc.comparison import _plots

        if not self.runs:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lines = name_lines(self.runs)
        names = [_one_line(*name) for name in lines]
        paths = [
            _plots.accuracy(self.runs, lines, folder / "accuracy.png"),
            _plots.recall_heatmap(self.runs, names, folder / "per_class_recall.png"),
        ]
        for i, (run, name) in enumerate(zip(self.runs, names, strict=True), 1):
            paths.append(_plots.confusion(run, folder / f"confusion-{i:02d}-{_slug(name)}.png"))
        return paths

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write report.md, results.csv, results.json and the plots to ``folder`` (created if
        needed). Returns every written file by its name, e.g. ``paths["report.md"]``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        plots = self.plot(folder)
        files = {"report.md": folder / "report.md", "results.csv": folder / "results.csv"}
        files["results.json"] = folder / "results.json"
        files["report.md"].write_text(self._document(plots), encoding="utf-8")
        self.to_csv(files["results.csv"])
        self.to_json(files["results.json"])
        return {**files, **{path.name: path for path in plots}}

    def _document(self, plots: list[Path]) -> str:
        """report.md: the table, the plots, each run's details and the metric definitions."""
        parts = ["# Zero-shot comparison", "", self.table(), ""]
        if plots:
            parts += ["## Plots", ""]
            parts += [f"![{path.stem}]({path.name})\n" for path in plots]
        names = run_names(self.runs)
        if self.runs:
            parts += ["## Runs", ""]
            for run, name in zip(self.runs, names, strict=True):
                parts += [f"### {name}", "", *_run_details(run), ""]
        return "\n".join([*parts, _DEFINITIONS])


_DEFINITIONS = """## Metrics

- **top-1**: share of examples whose highest-scoring label is the true one.
- **top-5**: share whose true label is among the 5 highest (with fewer than 5 labels: all of
  them, so 100%).
- **mean recall**: the mean over classes of the share of that class's examples predicted
  correctly (balanced accuracy); classes without examples are left out.
- **macro-F1**: the mean over classes with examples of F1 = 2PR / (P + R); a class never
  predicted has F1 0.
- **examples/s**, **load (s)**, **peak memory (MB)**: scoring speed, loading time and peak
  memory as `mmenc.compare` measured them (see its documentation); n/a where not measured.
- Inputs that could not be read are listed under their run and left out of every metric.
"""


def run_names(runs: list[RunResult]) -> list[str]:
    """Short, unique names: the model, plus the method and dataset where the runs differ."""
    return [_one_line(*lines) for lines in name_lines(runs)]


def name_lines(runs: list[RunResult]) -> list[list[str]]:
    """``run_names`` as lines (model, method, "on dataset"), for plot labels."""
    vary_method = len({run.method for run in runs}) > 1
    vary_data = len({run.dataset for run in runs}) > 1
    names = [
        [run.model, *([run.method] * vary_method), *([f"on {run.dataset}"] * vary_data)]
        for run in runs
    ]
    counts, seen = Counter(map(tuple, names)), Counter[tuple[str, ...]]()
    for lines in names:
        key = tuple(lines)
        if counts[key] > 1:
            seen[key] += 1
            lines[-1] += f" #{seen[key]}"
    return names


def _one_line(model: str, *rest: str) -> str:
    """The lines of ``name_lines`` in one: "model · method on dataset"."""
    return " ".join([model, *(part if part.startswith("on ") else f"· {part}" for part in rest)])


def _run_details(run: RunResult) -> list[str]:
    lines = [
        f"- model `{run.model}`, method `{run.method}`",
        f"- dataset `{run.dataset}` ({run.modality}), {len(run.labels)} labels: "
        + ", ".join(f"`{label}`" for label in run.labels),
        f"- {run.examples} examples evaluated"
        + (f", {len(run.errors)} left out:" if run.errors else ""),
    ]
    for source, why in run.errors[:_MAX_LISTED_ERRORS]:
        lines.append(f"  - `{source}`: {why}")
    if len(run.errors) > _MAX_LISTED_ERRORS:
        lines.append(f"  - ... and {len(run.errors) - _MAX_LISTED_ERRORS} more (results.json)")
    return lines


def _table_row(run: RunResult) -> list[str]:
    m = run.metrics
    return [
        run.model, run.method, run.dataset, run.modality, str(run.examples),
        _percent(m.top1), _percent(m.top5), _percent(m.mean_recall), _percent(m.macro_f1),
        _number(run.examples_per_second, 1), _number(run.load_seconds, 2),
        _number(run.peak_memory_mb, 0), str(len(run.errors)),
    ]  # fmt: skip


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def _number(value: float, digits: int) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:,.{digits}f}"


def _all_labels(runs: list[RunResult]) -> list[str]:
    """Every run's labels, in order of first appearance."""
    return list(dict.fromkeys(label for run in runs for label in run.labels))


def _slug(name: str) -> str:
    """A file-name-safe version of a run name."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    return "-".join(part for part in safe.split("-") if part)[:60]


def _csv_float(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _one_line_list(match: re.Match[str]) -> str:
    """One line per number list (a confusion row, per-class recalls): a K × K matrix then takes
    K lines, not K²; strings are never touched, as json.dumps writes them on one line."""
    return re.sub(r"\s+", "", match.group()).replace(",", ", ")


def _written(text: str, path: str | Path | None) -> str:
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text

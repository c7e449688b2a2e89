"""``mmenc.compare``: each model × method zero-shot on labelled datasets, in one report.

The datasets are streamed ``batch_size`` examples at a time, so a folder of a million images
needs the memory of one batch (plus one score row per example). Each model is loaded once and
serves every method and dataset; it is released before the next model loads, so that the peak
memory of one run is not inflated by the model before it.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mmenc.comparison.datasets import Dataset, Example, load_dataset
from mmenc.comparison.metrics import compute_metrics
from mmenc.comparison.report import ComparisonReport, RunResult
from mmenc.encoder import Encoder
from mmenc.errors import IncompatibleModelError, InvalidInputError, UnsupportedModalityError
from mmenc.zeroshot import ZeroShotClassifier, resolve_templates
from mmenc.zeroshot.classifier import check_labels
from mmenc.zeroshot.methods import method_class

DatasetSpec = str | Path | Sequence[tuple[Any, str]] | Dataset
MEMORY_SAMPLE_SECONDS = 0.005


def compare(
    models: Sequence[str | Encoder],
    dataset: DatasetSpec | Sequence[str | Path | Dataset],
    *,
    labels: Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool | None = None,
    device: Any = None,
    dtype: Any = None,
) -> ComparisonReport:
    """Classify ``dataset`` zero-shot with every model and method; return the report.

    ``dataset`` is anything ``mmenc.comparison.datasets.load_dataset`` takes ("digits", "shapes",
    "topics", an ImageFolder directory, a .csv / .jsonl file, (input, label) pairs) or a list of
    several of them (names, paths or Datasets) that share one label set, such as a text and an
    image set. ``labels`` fixes the label set and its order (default: the dataset's); every
    example's label must be in it. ``methods`` are ``ZeroShotClassifier`` methods (default
    ``["similarity"]``); a model is loaded once for all of them. ``limit`` takes a seeded,
    class-balanced subset of each dataset.

    An input the model cannot read (a broken image file) is listed in its run's ``errors`` with
    its source and left out; the rest are evaluated. A model that cannot classify a dataset's
    modality (a text model on images) or cannot serve a method is listed in
    ``report.skipped`` with the reason. Progress bars show unless ``progress=False``, or
    ``progress=None`` and stderr is not a terminal.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int of at least 1, got {batch_size!r}")
    if not models:
        raise ValueError("compare() needs at least one model")
    chosen_methods = list(methods or ["similarity"])
    for method in chosen_methods:
        method_class(method)  # bad arguments fail here, before any model loads
    for modality in ("text", "image"):
        resolve_templates(templates, modality)
    datasets = _datasets(dataset, limit)
    plan = _Plan(
        datasets=datasets,
        labels=check_labels(_label_set(datasets, labels)),
        templates=templates,
        methods=chosen_methods,
        batch_size=batch_size,
        progress=sys.stderr.isatty() if progress is None else progress,
        device=device,
        dtype=dtype,
    )
    report = ComparisonReport(runs=[])
    for model in models:
        _compare_model(model, plan, report)
    return report


@dataclass
class _Plan:
    """What every model runs: the arguments of ``compare`` after checking."""

    datasets: list[Dataset]
    labels: list[str]
    templates: str | Sequence[str] | None
    methods: list[str]
    batch_size: int
    progress: bool
    device: Any
    dtype: Any


def _compare_model(model: str | Encoder, plan: _Plan, report: ComparisonReport) -> None:
    """Every method × dataset run of one model, appended to ``report``.

    Methods that load the model the same way (``mmenc.load`` for similarity, likelihood and
    itm; a pipeline for nli) share one loaded object and its load time. The peak memory of a
    run includes the peak of those loads.
    """
    gc.collect()  # the previous model's memory goes back before this one is measured
    named = isinstance(model, (str, Path))
    name = str(model) if named else getattr(model, "name", type(model).__name__)
    loaded: dict[type, tuple[Any, float, float]] = {}  # loader: (object, seconds, peak MB)
    with _PeakMemory() as memory:
        for method in plan.methods:
            kind = method_class(method)
            loader = next(c for c in kind.__mro__ if "load" in vars(c))
            try:
                if loader not in loaded:
                    memory.reset()
                    start = time.perf_counter()
                    obj = kind.load(model, device=plan.device, dtype=plan.dtype, options={})
                    seconds = time.perf_counter() - start if named else 0.0
                    loaded[loader] = (obj, seconds, memory.peak_mb)
            except (UnsupportedModalityError, IncompatibleModelError) as exc:
                report.skipped += [
                    (f"{name} · {method} on {d.name}", str(exc)) for d in plan.datasets
                ]
                continue
            obj, load_seconds, load_peak = loaded[loader]
            for data in plan.datasets:
                memory.reset()
                what = f"{name} · {method} on {data.name}"
                try:
                    run = _run(obj, name, method, data, plan, what)
                except (UnsupportedModalityError, IncompatibleModelError) as exc:
                    report.skipped.append((what, str(exc)))
                    continue
                run.load_seconds += load_seconds
                run.peak_memory_mb = max(load_peak, memory.peak_mb)
                report.runs.append(run)


def _run(model: Any, name: str, method: str, data: Dataset, plan: _Plan, what: str) -> RunResult:
    """One method on one dataset: scores streamed batch by batch, then the metrics.

    ``load_seconds`` here is the classifier's construction; the caller adds the model's load.
    ``examples_per_second`` counts the examples evaluated over the scoring time, which includes
    building the label weights (part of the cost of classifying a dataset zero-shot).
    """
    start = time.perf_counter()
    classifier = ZeroShotClassifier(
        model, plan.labels, templates=plan.templates, method=method, batch_size=plan.batch_size
    )
    built = time.perf_counter()
    column = {label: k for k, label in enumerate(plan.labels)}
    scores: list[torch.Tensor] = []
    targets: list[int] = []
    errors = list(data.problems)
    bar = tqdm(total=len(data), desc=what, disable=not plan.progress, unit="example", leave=False)
    with bar:
        for batch in _batches(data, plan.batch_size):
            kept, batch_scores = _score(classifier, batch, errors)
            scores.append(batch_scores)
            targets += [column[example.label] for example in kept]
            bar.update(len(batch))
    seconds = time.perf_counter() - built
    table = torch.cat(scores) if scores else torch.empty(0, len(plan.labels))
    return RunResult(
        model=name,
        method=method,
        dataset=data.name,
        modality=data.modality,
        labels=list(plan.labels),
        metrics=compute_metrics(table, targets, len(plan.labels)),
        examples=len(targets),
        examples_per_second=len(targets) / seconds if seconds > 0 else float("nan"),
        load_seconds=built - start,
        peak_memory_mb=float("nan"),
        errors=errors,
    )


def _score(
    classifier: ZeroShotClassifier, batch: list[Example], errors: list[tuple[str, str]]
) -> tuple[list[Example], torch.Tensor]:
    """Scores of the batch's readable examples; the others are added to ``errors``."""
    while batch:
        try:
            return batch, classifier.scores([example.input for example in batch])
        except InvalidInputError as exc:
            bad = {index for index, _ in exc.problems if 0 <= index < len(batch)}
            if not bad:
                raise
            errors += [(batch[i].source, why) for i, why in exc.problems if i in bad]
            batch = [example for i, example in enumerate(batch) if i not in bad]
    return [], torch.empty(0, len(classifier.labels))


def _batches(examples: Iterable[Example], size: int) -> Iterator[list[Example]]:
    batch: list[Example] = []
    for example in examples:
        batch.append(example)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _datasets(spec: Any, limit: int | None) -> list[Dataset]:
    """One dataset, or several: a list whose items are all names, paths or Datasets."""
    several = isinstance(spec, (list, tuple)) and spec
    if several and all(isinstance(item, (str, Path, Dataset)) for item in spec):
        return [load_dataset(item, limit=limit) for item in spec]
    return [load_dataset(spec, limit=limit)]


def _label_set(datasets: list[Dataset], labels: Sequence[str] | None) -> list[str]:
    """The label set every run scores against; every dataset's labels must be in it."""
    if labels is None:
        first = datasets[0]
        for other in datasets[1:]:
            if set(other.labels) != set(first.labels):
                raise ValueError(
                    f"datasets {first.name!r} and {other.name!r} have different label sets "
                    f"({sorted(first.labels)} vs {sorted(other.labels)}); pass labels=[...] "
                    "with the label set to score them against"
                )
        return list(first.labels)
    chosen = list(labels)
    for data in datasets:
        extra = {label for label in data.labels if label not in chosen}
        row = next((e for e in data if e.label in extra), None) if extra else None
        if row is not None:  # a label of the dataset's that no example uses does no harm
            raise ValueError(
                f"{row.source}: label {row.label!r} of dataset {data.name!r} is not in the "
                f"label set {chosen}; add it to labels= or drop those rows"
            )
    return chosen


class _PeakMemory:
    """The peak resident memory (RSS) of this process, in MB, sampled on a thread every
    ``MEMORY_SAMPLE_SECONDS``: psutil's RSS counts what the process really holds (torch's and
    PIL's native buffers included), which ``tracemalloc`` would miss. A spike shorter than a
    sample can be missed; GPU memory is not counted."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="mmenc-memory")
        self._peak = 0

    @property
    def peak_mb(self) -> float:
        self._peak = max(self._peak, self._process.memory_info().rss)
        return self._peak / 2**20

    def reset(self) -> None:
        """Start a new peak from the memory held now."""
        self._peak = self._process.memory_info().rss

    def _sample(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_SECONDS):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakMemory:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

"""Embed and classify large collections on Ray Data, with the same encoders and the same
numbers as on one machine.

    >>> import ray
    >>> from mmenc.integrations import ray as mmenc_ray
    >>> ds = mmenc_ray.embed("texts.parquet", "minilm-l6", column="text", concurrency=4)
    >>> mmenc_ray.write_parquet(ds, "embeddings.parquet")  # runs the job
    >>> print(mmenc_ray.summarize(ray.data.read_parquet("embeddings.parquet")))

Each Ray actor loads the encoder once, in its constructor, and embeds batch after batch with it:
loading takes seconds, a batch milliseconds. A bad row (a None text, an unreadable image) must
not fail a job of millions of rows, so it gets a null embedding and its reason in the ``error``
column, and the rest of its batch is embedded as usual. Needs the ``mmenc[ray]`` extra.
See docs/cluster.md.
"""

from __future__ import annotations

import glob
import inspect
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mmenc.errors import UnsupportedModalityError
from mmenc.inputs import check_nonblank_text, check_text, decode_image

if TYPE_CHECKING:
    import ray.data
    import torch

logger = logging.getLogger(__name__)

ERROR_COLUMN = "error"
"""The column that says why a row has no embedding (null for good rows)."""
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff")
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "json"}
_FORMATS.update({f".{ext}": "images" for ext in IMAGE_EXTENSIONS})

TEXT_BATCHES_PER_CALL = 8
"""Model batches of texts per actor call by default: ``encode_text`` sorts a call's texts by
length before batching them, so that a batch pads little, as it does over all its texts in one
process; with one batch per call, each batch would pad to the longest of random rows (measured
1.6x slower for MiniLM on sentences of 5-120 words)."""
_LOADS = 0
"""Encoder loads in this process: an actor loads once, so on a worker this stays at 1."""


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto", "ray://host:10001", "host:6379"), or start
    a local Ray instance when None; nothing when Ray is already initialised. Ray's own logging
    is kept to warnings, and no dashboard is started."""
    import ray

    if ray.is_initialized():
        return
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)


def read(path: str | os.PathLike[str]) -> ray.data.Dataset:
    """A Dataset of the rows at ``path``: a Parquet, CSV or JSON Lines file, a glob of them, a
    folder of them (an output ``DIR.parquet`` of :func:`embed` too), or a folder of images.

    Images are read as raw bytes with a ``path`` column, not decoded by Ray (``read_images``):
    a corrupt file then becomes one bad row of the job instead of failing the read. Local paths
    are made absolute, since Ray's workers do not share the driver's working directory.
    """
    import ray.data

    kind, paths = _source(path)
    if kind == "parquet":
        with _reads_without_listing_task():
            return ray.data.read_parquet(paths, **_no_cpu(ray.data.read_parquet))
    if kind == "csv":
        return ray.data.read_csv(paths, **_no_cpu(ray.data.read_csv))
    if kind in ("json", "jsonl"):
        options = _no_cpu(ray.data.read_json)
        if kind == "jsonl" and "lines" in inspect.signature(ray.data.read_json).parameters:
            options["lines"] = True  # newer Ray reads a .json file as one row without it
        return ray.data.read_json(paths, **options)
    return ray.data.read_binary_files(
        paths,
        include_paths=True,
        file_extensions=list(IMAGE_EXTENSIONS),
        **_no_cpu(ray.data.read_binary_files),
    )


@contextmanager
def _reads_without_listing_task() -> Iterator[None]:
    """Newer Ray Data (``DataContext.use_datasource_v2``) lists Parquet files in a task of its
    own that asks for a whole CPU, whatever the reader's ``num_cpus``; with the actors holding
    every CPU it is never scheduled and the job hangs. The classic reader lists on the driver."""
    from ray.data import DataContext

    context = DataContext.get_current()
    if not getattr(context, "use_datasource_v2", False):
        yield
        return
    context.use_datasource_v2 = False
    try:
        yield
    finally:
        context.use_datasource_v2 = True


def _no_cpu(reader: Any) -> dict[str, Any]:
    """Read tasks that reserve no CPU: with actors holding every CPU (concurrency = cores, as
    sized), a read task asking for one would never be scheduled and the job would hang.
    Reading is light next to the model, so it shares the actors' cores."""
    if "num_cpus" in inspect.signature(reader).parameters:
        return {"num_cpus": 0}
    return {"ray_remote_args": {"num_cpus": 0}}  # Ray before 2.4x


def write_parquet(dataset: ray.data.Dataset, path: str) -> None:
    """Run ``dataset`` and write it as Parquet files under the folder ``path``, with write tasks
    that reserve no CPU (as :func:`read` reads): the actors hold the CPUs for as long as they
    embed, and a write waiting for one would stall the stream until they finish."""
    dataset.write_parquet(path, ray_remote_args={"num_cpus": 0})


def embed(
    dataset: ray.data.Dataset | str | os.PathLike[str],
    model: str | os.PathLike[str],
    *,
    column: str | None = None,
    modality: str | None = None,
    batch_size: int = 32,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    dtype: str | None = None,
    rows_per_call: int | None = None,
    normalize: bool = True,
    output_column: str = "embedding",
    preserve_order: bool = False,
    keep_input: bool | None = None,
    worker_column: str | None = None,
) -> ray.data.Dataset:
    """The rows of ``dataset`` with an ``output_column`` of float32 embeddings (lists) and an
    ``error`` column: null embedding and the reason for each bad row, null error otherwise.

    ``dataset``: a ``ray.data.Dataset`` or a path for :func:`read`. ``column`` holds the texts
    or images (bytes, file paths as str, uint8 arrays, or ``{"bytes", "path"}`` records);
    default ``"bytes"`` for images, ``"text"`` for texts. ``modality``: ``"text"`` or
    ``"image"`` (default: image for a folder of images, else text). ``concurrency`` actors
    (or ``(min, max)`` for an autoscaling pool) each load ``model`` once, with ``num_cpus``
    torch threads, or on a GPU when ``num_gpus`` > 0. ``batch_size`` is the model's batch, as
    in ``encode_text``; Ray hands an actor ``rows_per_call`` rows at a time (default: 8 batches
    of texts, which ``encode_text`` sorts by length so that batches pad little; one batch of
    images).
    ``preserve_order=True`` keeps the input row order (Ray may otherwise finish blocks out of
    order). ``keep_input=False`` drops the input column (default: kept, except image bytes
    read from a folder). ``worker_column`` adds ``"HOST:PID#N"`` per row: which actor
    embedded it, N being its process's encoder loads so far (1: loaded once per actor).

    Lazy, as Ray datasets are: nothing runs until the result is written or iterated.
    """
    _check_options(batch_size, rows_per_call, concurrency, output_column)
    connect()  # before anything reads: Ray would otherwise start itself, with its defaults
    ds, column, modality, drop = _prepare(dataset, column, modality, keep_input)
    options = dict(
        model=_model_name(model),
        batch_size=batch_size,
        column=column,
        modality=modality,
        device="cuda" if num_gpus else "cpu",
        dtype=dtype,
        normalize=normalize,
        threads=max(1, int(num_cpus)),
        output_column=output_column,
        drop_input=drop,
        worker_column=worker_column,
    )
    rows = rows_per_call or _rows_per_call(batch_size, modality)
    return _map(ds, _Embedder, options, rows, concurrency, num_cpus, num_gpus, preserve_order)


def classify(
    dataset: ray.data.Dataset | str | os.PathLike[str],
    model: str | os.PathLike[str],
    labels: Sequence[str],
    *,
    templates: str | Sequence[str] | None = None,
    column: str | None = None,
    modality: str | None = None,
    batch_size: int = 32,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    dtype: str | None = None,
    rows_per_call: int | None = None,
    output_column: str | None = None,
    preserve_order: bool = False,
    keep_input: bool | None = None,
    worker_column: str | None = None,
) -> ray.data.Dataset:
    """The rows of ``dataset`` with ``label`` (the best of ``labels``), ``score`` (its
    probability) and ``error`` columns, classified zero-shot as ``ZeroShotClassifier`` does.

    The label weights (``ZeroShotClassifier.label_weights``, with ``templates``) are built once
    here on the driver, which loads ``model`` for it, and shipped to every actor through Ray's
    object store, so the actors only embed their rows. Bad rows (also blank texts, which have
    nothing to classify) get null ``label`` and ``score`` and their reason in ``error``.
    ``output_column`` also keeps the embeddings. Other options as in :func:`embed`.
    """
    import ray

    from mmenc.zeroshot import ZeroShotClassifier

    _check_options(batch_size, rows_per_call, concurrency, output_column or "embedding")
    connect()
    ds, column, modality, drop = _prepare(dataset, column, modality, keep_input)
    name = _model_name(model)
    classifier = ZeroShotClassifier(name, labels, templates=templates, device="cpu", dtype=dtype)
    if modality not in classifier.modalities:
        raise UnsupportedModalityError(
            f"{name!r} cannot classify {modality}s zero-shot: it classifies "
            f"{', '.join(sorted(classifier.modalities)) or 'nothing'}"
        )
    weights = classifier.label_weights(modality).float().cpu().numpy()
    options = dict(
        model=name,
        batch_size=batch_size,
        column=column,
        modality=modality,
        device="cuda" if num_gpus else "cpu",
        dtype=dtype,
        normalize=True,  # the scores compare unit vectors
        threads=max(1, int(num_cpus)),
        output_column=output_column,
        drop_input=drop,
        worker_column=worker_column,
        labels=list(classifier.labels),
        weights=ray.put(weights),
    )
    del classifier  # the driver's copy of the model is no longer needed
    rows = rows_per_call or _rows_per_call(batch_size, modality)
    return _map(ds, _Classifier, options, rows, concurrency, num_cpus, num_gpus, preserve_order)


@dataclass(frozen=True)
class Summary:
    """How a run went: its rows, how many were bad, and the first distinct reasons."""

    rows: int
    bad: int
    reasons: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.rows} rows, {self.bad} bad"
        return text + "".join(f"\n  {reason}" for reason in self.reasons)


def summarize(dataset: ray.data.Dataset, *, reasons: int = 3) -> Summary:
    """Count the rows and bad rows (non-null ``error``) of a finished run.

    This runs ``dataset`` (reading only its error column): give it the written output read
    back (``ray.data.read_parquet(out)``) or a materialised dataset, not the lazy result of
    :func:`embed`, which would embed everything a second time.
    """
    rows = bad = 0
    seen: list[str] = []
    batches = dataset.select_columns([ERROR_COLUMN]).iter_batches(
        batch_format="pyarrow", batch_size=None
    )
    for batch in batches:
        assert isinstance(batch, pa.Table)  # as batch_format asks
        errors = batch.column(ERROR_COLUMN)
        rows += batch.num_rows
        bad += batch.num_rows - errors.null_count
        if errors.null_count < batch.num_rows and len(seen) < reasons:
            for reason in errors.drop_null().to_pylist():
                if reason not in seen and len(seen) < reasons:
                    seen.append(reason)
    return Summary(rows, bad, seen)


# -- the actors -------------------------------------------------------------------------------
class _Embedder:
    """One per actor: loads the encoder once, then embeds the batches Ray sends it."""

    nonblank = False
    """Whether a blank text is a bad row (it is for classifying: nothing to classify)."""

    def __init__(
        self,
        *,
        model: str,
        batch_size: int,
        column: str,
        modality: str,
        device: str,
        dtype: str | None,
        normalize: bool,
        threads: int,
        output_column: str | None,
        drop_input: bool,
        worker_column: str | None,
    ) -> None:
        import torch

        if device == "cpu":
            torch.set_num_threads(threads)
        self.encoder = _load_encoder(model, device, dtype)
        self.batch_size, self.column, self.modality = batch_size, column, modality
        self.normalize = normalize
        self.output_column, self.drop_input = output_column, drop_input
        self.worker_column = worker_column
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: pa.Table) -> pa.Table:
        items = _column_items(batch, self.column, self.modality)
        vectors, errors = self._embed(items)
        return self._finish(batch, vectors, errors, {})

    def _embed(self, items: list[Any]) -> tuple[torch.Tensor, list[str | None]]:
        """(n, dim) vectors and, per row, None or why it has none, in the words of
        ``InvalidInputError``. One pass: bad rows come back as NaN rows; only those are
        looked at again, to say why."""
        options = dict(batch_size=self.batch_size, normalize=self.normalize, on_error="nan")
        if self.modality == "text":
            check = check_nonblank_text if self.nonblank else check_text
            errors = [check(item) for item in items]
            texts = [None if why else item for item, why in zip(items, errors, strict=True)]
            vectors = self.encoder.encode_text(texts, **options)
        else:
            errors = [None] * len(items)
            vectors = self.encoder.encode_image(items, **options)
        finite = vectors.isfinite().all(dim=1).tolist()
        for index, ok in enumerate(finite):
            if not ok and errors[index] is None:
                errors[index] = self._why(items[index])
        return vectors, errors

    def _why(self, item: Any) -> str:
        """Why this row has no embedding: the decoding error of an image (as the encoder
        reports it), else non-finite numbers from the model."""
        if self.modality == "image":
            try:
                decode_image(item)
            except ValueError as exc:
                return str(exc)
        return "the encoder returned non-finite values for this row"

    def _finish(
        self,
        batch: pa.Table,
        vectors: torch.Tensor,
        errors: list[str | None],
        extra: dict[str, pa.Array],
    ) -> pa.Table:
        bad = np.array([why is not None for why in errors], dtype=bool)
        if self.drop_input:
            batch = batch.drop_columns([self.column])
        if self.output_column:
            batch = _with_column(batch, self.output_column, _list_array(vectors.numpy(), bad))
        for name, values in extra.items():
            batch = _with_column(batch, name, values)
        batch = _with_column(batch, ERROR_COLUMN, pa.array(errors, type=pa.string()))
        if self.worker_column:
            stamp = f"{self.worker}#{_LOADS}"
            batch = _with_column(batch, self.worker_column, pa.array([stamp] * len(errors)))
        return batch


class _Classifier(_Embedder):
    """An ``_Embedder`` that also scores its rows against the label weights from the driver."""

    nonblank = True

    def __init__(self, *, labels: list[str], weights: Any, **options: Any) -> None:
        import ray
        import torch

        super().__init__(**options)
        self.labels = labels
        array = ray.get(weights) if isinstance(weights, ray.ObjectRef) else weights
        self.weights = torch.from_numpy(np.array(array, dtype=np.float32))

    def __call__(self, batch: pa.Table) -> pa.Table:
        from mmenc.zeroshot.classifier import similarity_scores

        items = _column_items(batch, self.column, self.modality)
        vectors, errors = self._embed(items)
        good = [i for i, why in enumerate(errors) if why is None]
        best = np.zeros(len(items), dtype=np.int64)
        score = np.zeros(len(items), dtype=np.float32)
        if good:
            probabilities = similarity_scores(self.encoder, vectors[good], self.weights)
            top = probabilities.max(dim=1)  # the first of equal scores, as predict() ranks
            best[good], score[good] = top.indices.numpy(), top.values.float().numpy()
        bad = np.array([why is not None for why in errors], dtype=bool)
        labels = [None if no else self.labels[i] for i, no in zip(best, bad, strict=True)]
        extra = {
            "label": pa.array(labels, type=pa.string()),
            "score": pa.array(score, type=pa.float32(), mask=bad),
        }
        return self._finish(batch, vectors, errors, extra)


# -- helpers ----------------------------------------------------------------------------------
def _load_encoder(model: str, device: str, dtype: str | None) -> Any:
    global _LOADS
    import mmenc

    try:  # an actor's log is no place for transformers' per-load progress bar
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:
        pass
    start = time.perf_counter()
    encoder = mmenc.load(model, device=device, dtype=dtype)
    _LOADS += 1
    logger.info("mmenc: loaded %s on %s in %.1f s", model, device, time.perf_counter() - start)
    return encoder


def _map(
    ds: ray.data.Dataset,
    actor: type[_Embedder],
    options: dict[str, Any],
    rows_per_call: int,
    concurrency: int | tuple[int, int],
    num_cpus: float,
    num_gpus: float,
    preserve_order: bool,
) -> ray.data.Dataset:
    from ray.data import ActorPoolStrategy

    if isinstance(concurrency, tuple):
        pool = ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    else:
        pool = ActorPoolStrategy(size=concurrency)
    result = ds.map_batches(
        actor,
        fn_constructor_kwargs=options,
        batch_size=rows_per_call,
        batch_format="pyarrow",
        compute=pool,
        num_cpus=num_cpus,
        num_gpus=num_gpus or None,
    )
    if preserve_order:
        result.context.execution_options.preserve_order = True
    return result


def _prepare(
    dataset: Any, column: str | None, modality: str | None, keep_input: bool | None
) -> tuple[ray.data.Dataset, str, str, bool]:
    """The dataset (read when a path), its input column and modality, and whether to drop the
    input column from the output."""
    from_folder = False
    read_here = isinstance(dataset, (str, os.PathLike))
    if read_here:
        from_folder = _source(dataset)[0] == "images"
        dataset = read(dataset)
    modality = modality or ("image" if from_folder else "text")
    if modality not in ("text", "image"):
        raise ValueError(f"modality must be 'text' or 'image', not {modality!r}")
    column = column or ("bytes" if modality == "image" else "text")
    # the schema of files read here is cheap to fetch (one file); a user's pipeline is not
    known = dataset.columns(fetch_if_missing=read_here)
    if known is not None and column not in known:
        raise ValueError(
            f"the dataset has no column {column!r}; its columns are {', '.join(known)}. "
            "Name the column that holds the inputs with column= (--column)"
        )
    drop = (from_folder and column == "bytes") if keep_input is None else not keep_input
    return dataset, column, modality, drop


def _rows_per_call(batch_size: int, modality: str | None) -> int:
    return batch_size * TEXT_BATCHES_PER_CALL if modality == "text" else batch_size


def _check_options(
    batch_size: int, rows_per_call: int | None, concurrency: Any, output_column: str
) -> None:
    for name, value in (("batch_size", batch_size), ("rows_per_call", rows_per_call or 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int of at least 1, got {value!r}")
    sizes = concurrency if isinstance(concurrency, tuple) else (concurrency,)
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(
            f"concurrency must be a number of actors (at least 1) or a (min, max) pair, "
            f"got {concurrency!r}"
        )
    if output_column == ERROR_COLUMN:
        raise ValueError(f"output_column cannot be {ERROR_COLUMN!r}: that column names bad rows")


def _model_name(model: str | os.PathLike[str]) -> str:
    """A model folder as an absolute path (workers do not share the driver's working
    directory); registry names and hub ids as they are."""
    text = os.fspath(model)
    if (isinstance(model, os.PathLike) or os.sep in text) and Path(text).is_dir():
        return str(Path(text).resolve())
    return text


def _source(path: str | os.PathLike[str]) -> tuple[str, str | list[str]]:
    """The kind of data at ``path`` (parquet, csv, jsonl, json, images) and the path(s) to
    hand to Ray's reader."""
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):  # s3://, gs://...: by name only
        kind = _FORMATS.get(Path(text.rstrip("/")).suffix.lower())
        if kind is None:
            raise ValueError(
                f"cannot tell the format of {text!r} from its name; read it with ray.data "
                "and pass the Dataset instead"
            )
        return kind, text
    if glob.has_magic(text):
        files = sorted(str(Path(p).resolve()) for p in glob.glob(text, recursive=True))
        if not files:
            raise FileNotFoundError(f"no files match {text!r}")
        return _one_kind(text, files), files
    local = Path(text).expanduser()
    if local.is_dir():
        files = sorted(str(p) for p in local.rglob("*") if p.is_file() and _visible(p, local))
        return _one_kind(text, files), str(local.resolve())
    if local.is_file():
        return _one_kind(text, [text]), str(local.resolve())
    raise FileNotFoundError(f"no such file or folder: {text!r}")


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def _one_kind(text: str, files: list[str]) -> str:
    kinds = {_FORMATS.get(Path(f).suffix.lower()) for f in files} - {None}
    if len(kinds) != 1:
        found = ", ".join(sorted(k for k in kinds if k)) or "none"
        raise ValueError(
            f"{text!r} must hold one kind of data (Parquet, CSV, JSON Lines, or images); "
            f"found: {found}"
        )
    return str(kinds.pop())


def _column_items(batch: pa.Table, column: str, modality: str) -> list[Any]:
    if column not in batch.column_names:
        raise ValueError(
            f"the dataset has no column {column!r}; its columns are "
            f"{', '.join(batch.column_names)}. Name the inputs' column with column= (--column)"
        )
    values = batch.column(column)
    if isinstance(values.type, pa.ExtensionType):  # Ray's tensor columns: image arrays
        return [row for chunk in values.chunks for row in chunk.to_numpy(zero_copy_only=False)]
    items = values.to_pylist()
    return [_image_item(item) for item in items] if modality == "image" else items


def _image_item(value: Any) -> Any:
    """A str in an image column is a file path (mmenc reads every str as a text); a record
    ``{"bytes", "path"}`` (as Hugging Face datasets store images) is its bytes or its file."""
    if isinstance(value, str):
        return Path(value)
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return value["bytes"]
        if value.get("path"):
            return Path(value["path"])
    return value


def _list_array(vectors: np.ndarray, bad: np.ndarray) -> pa.Array:
    """Rows of ``vectors`` as a list<float32> column, null where ``bad``; built from offsets,
    without a Python list per row."""
    n, dim = vectors.shape
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.where(bad, 0, dim), out=offsets[1:])
    values = pa.array(np.ascontiguousarray(vectors[~bad], dtype=np.float32).reshape(-1))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(bad))


def _with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    if index >= 0:
        return table.set_column(index, name, values)
    return table.append_column(name, values)

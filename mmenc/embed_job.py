"""``mmenc embed`` as a job that a kill at any moment cannot spoil.

Rows go to ``OUT.partial/rows.npy`` (or ``.jsonl``), laid out as the final file, one chunk of
inputs at a time. After each chunk the rows are flushed to disk and ``manifest.json`` is
replaced atomically to record them, with a fingerprint of the chunk's inputs. A run stopped at
any point (Ctrl-C, SIGKILL, a full disk, a bad input) keeps the rows of its recorded chunks;
``--resume`` cuts the rows file back to them, reuses every leading chunk whose inputs are
unchanged and embeds the rest. The finished file is renamed to OUT, so OUT is never
half-written, and an earlier OUT stays as it was until then.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mmenc.errors import InvalidInputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one run per output is then up to the user
    fcntl = None  # type: ignore[assignment]

FORMAT = "mmenc-embed-partial/1"
MANIFEST = "manifest.json"
DEFAULT_CHUNK = 1024
"""Inputs per chunk: memory stays bounded whatever the number of inputs, texts are still
sorted by length within a chunk (so batches pad little), and a kill loses at most one chunk."""


@dataclass(frozen=True)
class EmbedJob:
    """What must be the same for a resumed run to give the rows of an uninterrupted one."""

    model: str
    device: str
    dtype: str
    modality: str
    normalize: bool
    batch_size: int
    chunk_size: int
    dim: int
    suffix: str


@dataclass
class _Chunk:
    rows: int
    end: int  # the byte offset in the rows file after this chunk
    inputs: str  # sha256 of the chunk's inputs


@dataclass
class PartialOutput:
    """The work folder of one output file: its rows, its manifest and a lock."""

    out: Path
    job: EmbedJob | None = None
    chunks: list[_Chunk] = field(default_factory=list)
    header: int = 0  # the bytes before the first row

    @property
    def folder(self) -> Path:
        return self.out.with_name(f"{self.out.name}.partial")

    @property
    def rows_file(self) -> Path:
        return self.folder / f"rows{self.out.suffix}"

    def saved_rows(self) -> int:
        """Rows a resume would find (0 with no folder, no manifest or no rows file)."""
        manifest = self._manifest()
        return sum(c["rows"] for c in manifest["chunks"]) if manifest else 0

    def check(self, resume: bool) -> None:
        """Refuse to start over an interrupted run's rows unless told to resume; say so when
        told to resume with nothing saved."""
        saved = self.saved_rows()
        if saved and not resume:
            raise SystemExit(
                f"mmenc: error: an interrupted run left {saved:,} rows in {self.folder}; run "
                "the same command with --resume to go on from there, or delete that folder to "
                "start over"
            )
        if resume and not saved:
            print(
                f"mmenc: nothing to resume in {self.folder}; starting at the first input",
                file=sys.stderr,
            )

    @contextmanager
    def opened(self, job: EmbedJob, count: int, resume: bool) -> Iterator[BinaryIO]:
        """The rows file, locked against a second run, ready for the next chunk: cut back to
        the recorded chunks when resuming, else fresh."""
        self.job = job
        self.folder.mkdir(exist_ok=True)
        with (self.folder / "lock").open("w") as lock:
            _lock_or_exit(lock, self.folder)
            manifest = self._manifest() if resume else None
            if manifest is not None:
                _check_same_job(manifest, job, self.folder)
            with self.rows_file.open("w+b" if manifest is None else "r+b") as handle:
                if manifest is None:
                    if job.suffix == ".npy":
                        _npy_header(handle, (count, job.dim))
                    self.chunks, self.header = [], handle.tell()
                    self._record()
                else:
                    self.chunks = [_Chunk(**c) for c in manifest["chunks"]]
                    self.header = int(manifest["header"])
                    self.cut(handle, len(self.chunks))  # drop rows written but not recorded
                yield handle

    def append(self, handle: BinaryIO, data: bytes, rows: int, inputs: str) -> None:
        """Write one chunk's rows, make them durable, then record them."""
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        self.chunks.append(_Chunk(rows, handle.tell(), inputs))
        self._record()

    def cut(self, handle: BinaryIO, keep: int) -> None:
        """Keep the first ``keep`` chunks; drop whatever was written after them."""
        self.chunks = self.chunks[:keep]
        end = self.chunks[-1].end if self.chunks else self.header
        handle.truncate(end)
        handle.seek(end)
        self._record()

    def finish(self, handle: BinaryIO) -> int:
        """Give the rows file its final header and move it to ``out``; the number of rows."""
        assert self.job is not None
        rows = sum(c.rows for c in self.chunks)
        if self.job.suffix == ".npy":
            handle.seek(0)
            _npy_header(handle, (rows, self.job.dim))
            if handle.tell() != self.header:  # numpy leaves room for the count to grow
                raise RuntimeError("the .npy header changed size")
        handle.flush()
        os.fsync(handle.fileno())
        os.replace(self.rows_file, self.out)
        return rows

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def wrote(self, exc: OSError) -> bool:
        """Whether an OSError came from writing the output, not from reading an input."""
        if exc.filename is None:
            return True
        path = Path(exc.filename)
        return path in (self.out, self.folder) or path.parent == self.folder

    def _record(self) -> None:
        assert self.job is not None
        manifest = {
            "format": FORMAT,
            "job": asdict(self.job),
            "header": self.header,
            "chunks": [asdict(c) for c in self.chunks],
        }
        temporary = self.folder / f".{MANIFEST}.tmp"
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / MANIFEST)

    def _manifest(self) -> dict[str, Any] | None:
        """The recorded manifest, or None when there is nothing to resume."""
        try:
            manifest = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if manifest.get("format") != FORMAT or not self.rows_file.is_file():
            return None
        return dict(manifest)


def embed_to_file(
    encode: Callable[..., Any],
    items: Iterable[str],
    count: int,
    out: Path,
    job: EmbedJob,
    *,
    resume: bool = False,
    progress: bool = True,
) -> tuple[int, int]:
    """Embed ``items`` into ``out`` chunk by chunk; (rows written, rows reused from an
    interrupted run). ``count`` sizes the progress bar and the first .npy header."""
    from tqdm.auto import tqdm

    partial = PartialOutput(out)
    bar = tqdm(total=count, disable=not progress, unit=job.modality, desc=job.model, leave=False)
    try:
        with partial.opened(job, count, resume) as handle, bar:
            reused = _embed_chunks(encode, items, job, partial, handle, bar)
            rows = partial.finish(handle)
    except KeyboardInterrupt:
        print(f"\nmmenc: interrupted; {_kept(partial)}", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as exc:
        if not partial.wrote(exc):
            raise  # an input that could not be read
        earlier = f"the earlier {out} is left as it was" if out.exists() else "no output"
        raise SystemExit(
            f"mmenc: error: cannot write {out}: {exc.strerror or exc} ({earlier}); free some "
            f"space or choose a writable folder. {_kept(partial)}"
        ) from None
    except InvalidInputError as exc:
        fix = "Fix or remove these inputs (counted from 0, in input order) and run again."
        raise InvalidInputError(exc.problems, job.modality, f"{fix} {_kept(partial)}") from None
    partial.remove()
    return rows, reused


def _embed_chunks(
    encode: Callable[..., Any],
    items: Iterable[str],
    job: EmbedJob,
    partial: PartialOutput,
    handle: BinaryIO,
    bar: Any,
) -> int:
    """Append each chunk not already recorded with the same inputs; the rows reused."""
    from mmenc.runtime import release_freed_memory

    options = {"batch_size": job.batch_size, "normalize": job.normalize, "progress": False}
    done = reused = chunks = 0
    for number, chunk in enumerate(_chunked(items, job.chunk_size)):
        inputs = _fingerprint(chunk, job.modality)
        if number < len(partial.chunks) and partial.chunks[number].inputs == inputs:
            reused += len(chunk)
        else:
            if number < len(partial.chunks):  # the inputs changed here: redo from here on
                partial.cut(handle, number)
            rows = _encode_chunk(encode, chunk, done, options)
            partial.append(handle, _row_bytes(job, done, chunk, rows), len(chunk), inputs)
            release_freed_memory()
        done += len(chunk)
        chunks = number + 1
        bar.update(len(chunk))
    if chunks < len(partial.chunks):  # the inputs shrank since the interrupted run
        partial.cut(handle, chunks)
    return reused


def _kept(partial: PartialOutput) -> str:
    """What a stopped run leaves, and how to go on; the folder goes when it holds no rows."""
    saved = partial.saved_rows()
    if not saved:
        partial.remove()
        return "Nothing was saved."
    return (
        f"{saved:,} rows are saved in {partial.folder}: run the same command with --resume to "
        "embed only the rest."
    )


def _lock_or_exit(lock: Any, folder: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(
            f"mmenc: error: another mmenc embed is writing {folder}; wait for it to end or stop it"
        ) from None


def _check_same_job(manifest: dict[str, Any], job: EmbedJob, folder: Path) -> None:
    """A resume must embed as the interrupted run did; name every setting that differs."""
    recorded = manifest.get("job", {})
    changed = [
        f"{key}={recorded.get(key)!r} then, {value!r} now"
        for key, value in asdict(job).items()
        if recorded.get(key) != value
    ]
    if changed:
        raise SystemExit(
            f"mmenc: error: cannot resume {folder}: it was started with other settings "
            f"({'; '.join(changed)}); run with the same options, or delete {folder} to start over"
        )


def _fingerprint(chunk: list[str], modality: str) -> str:
    """A chunk's inputs as a digest: the texts, or each file's path, size and change time."""
    described: list[Any] = chunk
    if modality == "image":
        described = [[path, *_stat(path)] for path in chunk]
    return hashlib.sha256(json.dumps(described).encode("utf-8")).hexdigest()


def _stat(path: str) -> tuple[int, int] | tuple[None, None]:
    try:
        status = os.stat(path)
    except OSError:
        return None, None
    return status.st_size, status.st_mtime_ns


def _chunked(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _encode_chunk(
    encode: Callable[..., Any], chunk: list[str], start: int, options: dict[str, Any]
) -> Any:
    """One chunk's embeddings as a float32 array; a bad input is named by its place among all
    the inputs, not within the chunk."""
    import numpy as np

    try:
        vectors = encode(chunk, **options)
    except InvalidInputError as exc:
        raise InvalidInputError([(start + i, why) for i, why in exc.problems]) from None
    return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)


def _row_bytes(job: EmbedJob, start: int, inputs: list[str], rows: Any) -> bytes:
    """One chunk as it sits in the output file: raw float32 rows, or JSON lines."""
    if rows.shape != (len(inputs), job.dim):  # the .npy header promised this shape
        raise RuntimeError(f"the encoder returned {rows.shape} for {len(inputs)} inputs")
    if job.suffix == ".npy":
        return bytes(rows.tobytes())
    lines = (
        json.dumps({"index": index, "input": item, "embedding": row}) + "\n"
        for index, (item, row) in enumerate(zip(inputs, rows.tolist(), strict=True), start)
    )
    return "".join(lines).encode("utf-8")


def _npy_header(handle: BinaryIO, shape: tuple[int, int]) -> None:
    """The header ``numpy.save`` writes for a float32 C-order array of ``shape``; numpy pads
    it so that its size does not depend on the row count."""
    import numpy as np

    descr = np.lib.format.dtype_to_descr(np.dtype(np.float32))
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)

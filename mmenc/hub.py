"""Where weights come from: local folders and the Hugging Face cache, with clear offline errors.

Everything goes through huggingface_hub, so ``HF_HOME`` and ``HF_HUB_OFFLINE=1`` behave as in
transformers; what we add is one error type that names the repo, the file and the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmenc.errors import WeightsUnavailableError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SHORT_COMMIT = re.compile(r"^[0-9a-f]{7,39}$")


def hf_reference(name: str) -> str | None:
    """The repo id or folder a user name points to: ``hf:X`` → X, a folder, or ``org/name``."""
    if name.startswith("hf:"):
        return name[3:]
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if _REPO_ID.match(name):
        return name
    return None


def is_local(ref: str) -> bool:
    return Path(ref).is_dir()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def unavailable(
    ref: str, filename: str | None = None, cause: object = None, revision: str | None = None
) -> WeightsUnavailableError:
    """The error for weights we cannot get, saying where we looked and how to fix it."""
    what = f"{filename!r} of {ref!r}" if filename else repr(ref)
    if is_local(ref):
        where = f"the folder {ref!r} has no {filename!r}"
        fix = "point to a complete model folder (config.json and weights)"
    else:
        from huggingface_hub.constants import HF_HUB_CACHE

        mode = "HF_HUB_OFFLINE=1 is set" if offline() else "it could not be downloaded"
        where = f"it is not in the Hugging Face cache ({HF_HUB_CACHE}) and {mode}"
        fix = (
            f"download it once where there is network (`hf download {ref}"
            f"{f' --revision {revision}' if revision else ''}`) into the same HF_HOME, "
            "or pass the path of a local folder that holds it"
        )
    reason = f" ({cause})" if cause else ""
    return WeightsUnavailableError(f"weights unavailable: {what}: {where}{reason}. To fix: {fix}.")


@contextmanager
def hub_errors(
    ref: str, filename: str | None = None, revision: str | None = None
) -> Iterator[None]:
    """Turn the many 'not found / offline' errors of huggingface_hub and transformers into one."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        yield
    except WeightsUnavailableError:
        raise
    except (
        LocalEntryNotFoundError,
        EntryNotFoundError,
        RepositoryNotFoundError,
        HFValidationError,
        FileNotFoundError,
    ) as exc:
        raise unavailable(ref, filename, _first_line(exc), revision) from exc
    except OSError as exc:  # transformers wraps hub errors in OSError
        raise unavailable(ref, filename, _first_line(exc), revision) from exc


def fetch_file(ref: str, filename: str, *, required: bool = True) -> Path | None:
    """A file of a local folder or a hub repo (the cached copy when offline).

    An optional file that the folder or repo does not have gives None; a required one raises
    ``WeightsUnavailableError``.
    """
    if is_local(ref):
        path = Path(ref) / filename
        if path.is_file():
            return path
        if required:
            raise unavailable(ref, filename)
        return None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError

    if offline():
        cached = try_to_load_from_cache(ref, filename)
        if isinstance(cached, str):
            return Path(cached)
        if required:
            raise unavailable(ref, filename)
        return None
    try:
        with hub_errors(ref, filename):
            return Path(hf_hub_download(ref, filename))
    except WeightsUnavailableError as exc:
        if required or not isinstance(exc.__cause__, EntryNotFoundError):
            raise
        return None


def read_json(ref: str, filename: str, *, required: bool = True) -> Any:
    import json

    path = fetch_file(ref, filename, required=required)
    return None if path is None else json.loads(path.read_text(encoding="utf-8"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def cached_revision(ref: str, revision: str | None) -> str | None:
    """Offline, the full commit id of the cached snapshot a short one (``"714eb0f"``, as task
    defaults pin them) names; the hub resolves short ids itself when online."""
    if not revision or not offline() or is_local(ref) or not _SHORT_COMMIT.match(revision):
        return revision
    from huggingface_hub.constants import HF_HUB_CACHE

    snapshots = Path(HF_HUB_CACHE) / f"models--{ref.replace('/', '--')}" / "snapshots"
    found = sorted(p.name for p in snapshots.glob(f"{revision}*")) if snapshots.is_dir() else []
    return found[0] if len(found) == 1 else revision


def model_config(ref: str) -> dict[str, Any] | None:
    """``config.json`` of a folder (None if it has none) or of a hub repo (required there)."""
    return read_json(ref, "config.json", required=not is_local(ref))

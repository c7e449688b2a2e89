"""Task pipelines: ``mmenc.pipeline(task, model)`` for the classic text and image tasks.

Tasks are registered by plugins through the ``mmenc_tasks`` hook, like encoders; this module
finds a task by name, picks its default model when none is given, and calls the task's factory.
It imports no torch until a pipeline is built.

    >>> classify = mmenc.pipeline("sentiment-analysis")
    >>> classify("I love it")
    {'label': 'POSITIVE', 'score': 0.9998}
"""

from __future__ import annotations

import difflib
import functools
import importlib
import json
import logging
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmenc.errors import MmencError, PluginLoadError, UnknownTaskError, UnsafeCheckpointError
from mmenc.plugins import get_host
from mmenc.specs import TaskSpec

if TYPE_CHECKING:
    import torch

    from mmenc.tasks.base import Pipeline

PIPELINE_FILE = "mmenc_pipeline.json"
logger = logging.getLogger("mmenc")

__all__ = ["PIPELINE_FILE", "Pipeline", "get_task", "list_tasks", "pipeline", "pipeline_factory"]


def pipeline_factory(target: str) -> Callable[..., Pipeline]:
    """A ``TaskSpec.factory`` for ``"package.module:PipelineClass"``: it imports the module only
    when a pipeline is built, and calls the class's ``build``, so a plugin stays torch-free."""
    return functools.partial(_build_from, target)


def _build_from(target: str, *args: Any, **kwargs: Any) -> Pipeline:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr).build(*args, **kwargs)


def list_tasks() -> list[TaskSpec]:
    """Every registered task, sorted by name; each record names its default model."""
    return sorted(get_host().tasks().values(), key=lambda t: t.name)


def get_task(name: str) -> tuple[TaskSpec, dict[str, str]]:
    """The task for a name or alias, and the options a patterned name carries.

    ``translation_en_to_fr`` gives the ``translation`` task and ``{"src_lang": "en",
    "tgt_lang": "fr"}``.
    """
    host = get_host()
    spec = host.lookup_task(name)
    if spec is not None:
        return spec, {}
    for spec in host.tasks().values():
        match = spec.name_pattern and re.fullmatch(spec.name_pattern, name)
        if match:
            return spec, {k: v for k, v in match.groupdict().items() if v is not None}
    close = difflib.get_close_matches(name.lower(), host.known_tasks(), n=3, cutoff=0.5)
    raise UnknownTaskError(name, close)


def pipeline(
    task: str | None = None,
    model: Any = None,
    *,
    tokenizer: Any = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    batch_size: int | None = None,
    revision: str | None = None,
    **options: Any,
) -> Pipeline:
    """Build the pipeline for ``task``, e.g. ``pipeline("sentiment-analysis")``.

    ``model`` is a registry name, a hub id, a local folder, a folder written by
    ``Pipeline.save_pretrained`` (then ``task`` may be left out), or a model object passed with
    its ``tokenizer`` (or processor). Without a model, the task's default model is used at its
    pinned revision. ``options`` are the task's own (``top_k``, ``num_labels``, ...): options of
    the call can be given here once as defaults.
    """
    saved = _saved_pipeline(model)
    if task is None:
        if saved is None:
            raise ValueError(
                "pipeline() needs a task (see `mmenc tasks`), unless `model` is a folder "
                "written by Pipeline.save_pretrained"
            )
        task = saved["task"]
    if saved is not None and "model" in saved:  # the folder names its model instead of holding it
        model = saved["model"]
    assert task is not None
    spec, name_options = get_task(task)
    options = {**(saved or {}).get("options", {}), **name_options, **options}
    if model is None:
        model, revision = spec.default_model, revision or spec.default_revision
        if model is None:
            raise ValueError(f"task {spec.name!r} has no default model; pass model=...")
        pinned = f" at revision {revision}" if revision else ""
        logger.warning(
            "No model was given for task %r; using its default %s%s.", spec.name, model, pinned
        )
    return _build(spec, model, tokenizer, device, dtype, batch_size, revision, options)


def _build(
    spec: TaskSpec,
    model: Any,
    tokenizer: Any,
    device: Any,
    dtype: Any,
    batch_size: int | None,
    revision: str | None,
    options: dict[str, Any],
) -> Pipeline:
    from mmenc.runtime import check_fast, resolve_device, resolve_dtype

    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    check_fast(torch_device, torch_dtype)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    try:
        return spec.factory(
            model,
            task=spec.name,
            tokenizer=tokenizer,
            device=torch_device,
            dtype=torch_dtype,
            batch_size=batch_size,
            revision=revision,
            **options,
        )
    except pickle.UnpicklingError as exc:  # weights_only=True met a code-carrying pickle
        raise UnsafeCheckpointError(f"{model!r} for task {spec.name!r}", exc) from exc
    except (MmencError, ValueError, TypeError):  # ours, or a bad option the user can fix
        raise
    except Exception as exc:  # a plugin bug or a broken install: say whose
        raise PluginLoadError(
            f"task {spec.name!r} (plugin {spec.plugin!r}) failed to build a pipeline for "
            f"{model!r}: {type(exc).__name__}: {exc}"
        ) from exc


def _saved_pipeline(model: Any) -> dict[str, Any] | None:
    if not isinstance(model, (str, Path)):
        return None
    path = Path(model).expanduser() / PIPELINE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def __getattr__(name: str) -> Any:
    if name == "Pipeline":
        from mmenc.tasks.base import Pipeline

        return Pipeline
    raise AttributeError(f"module 'mmenc.tasks' has no attribute {name!r}")

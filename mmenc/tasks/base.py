"""``Pipeline``: what every task shares — one input or a list, option checks, bad-input
reports, batching and saving. A task implements ``_run`` for a list of checked inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mmenc._locks import lock_of
from mmenc.errors import InvalidInputError
from mmenc.inputs import check_text


class Pipeline:
    """A loaded model plus its pre-processor, callable on one input or a list of inputs.

    A subclass sets ``defaults`` (every call option with its default value; no other option is
    accepted) and implements ``_run(items, options) -> list``, one result per item. It may
    override ``_check`` (why an item is invalid, or None) and ``_is_single``. Options given to
    ``mmenc.pipeline(...)`` become the defaults of every call; a call's own options win.
    ``model_reference`` is the name the model was loaded by, for saving models that have no
    ``save_pretrained``.
    """

    defaults: ClassVar[dict[str, Any]] = {}
    default_batch_size: ClassVar[int] = 8

    def __init__(
        self,
        model: Any,
        preprocessor: Any = None,
        *,
        task: str,
        batch_size: int | None = None,
        options: dict[str, Any] | None = None,
        model_reference: str | None = None,
    ) -> None:
        self.model = model
        self.model_reference = model_reference
        self.preprocessor = preprocessor
        self.task = task
        self.batch_size = batch_size or self.default_batch_size
        self.options = {**self.defaults, **self._checked_options(options or {})}

    @property
    def tokenizer(self) -> Any:
        return self.preprocessor

    @property
    def device(self) -> Any:
        return getattr(self.model, "device", None)

    def __repr__(self) -> str:
        name = (
            getattr(getattr(self.model, "config", None), "name_or_path", None)
            or type(self.model).__name__
        )
        return f"<{type(self).__name__} task={self.task!r} model={name!r}>"

    # -- calling --------------------------------------------------------------------------
    def __call__(self, inputs: Any, **options: Any) -> Any:
        """Results for one input (one result) or a list of inputs (a list of results)."""
        options = {**self.options, **self._checked_options(options)}
        single = self._is_single(inputs)
        items = [inputs] if single else list(inputs)
        if not items:
            raise ValueError(f"{self.task}: the list of inputs is empty; pass at least one input")
        problems = [(i, why) for i, item in enumerate(items) if (why := self._check(item, options))]
        if problems:
            raise InvalidInputError(
                problems, what=f"{self.task} input", fix="Fix or drop these items and call again."
            )
        with lock_of(self):  # a tokenizer or model state shared between threads
            results = self._run(items, options)
        return results[0] if single else results

    def _is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, (str, dict, Path)) or not isinstance(inputs, Sequence)

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        """Why ``item`` cannot be processed, or None. The default checks a text."""
        return check_text(item)

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"{self.task} pipeline got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(sorted(self.defaults)) or 'none'}"
            )
        return options

    def batches(self, items: Sequence[Any]) -> Iterator[list[Any]]:
        """``items`` in slices of ``batch_size``."""
        for start in range(0, len(items), self.batch_size):
            yield list(items[start : start + self.batch_size])

    # -- saving ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the model, its pre-processor and this pipeline's task and options to a folder,
        which ``mmenc.pipeline(model=folder)`` loads again.

        A model without ``save_pretrained`` (an mmenc encoder, say) is recorded by the name it
        was loaded from (``model_reference``), so the folder stays small and loads the same way.
        """
        from mmenc.tasks import PIPELINE_FILE

        folder = Path(folder)
        saved = {k: v for k, v in self.options.items() if v != self.defaults.get(k)}
        try:  # before any file is written
            json.dumps(saved)
        except TypeError as exc:
            raise ValueError(
                f"pipeline options must be JSON values to be saved ({exc}): {saved!r}"
            ) from exc
        folder.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"task": self.task}
        load_options = self._save_model(folder)
        if load_options is None:  # nothing to write: the folder names the model instead
            if self.model_reference is None:
                raise ValueError(
                    f"this {self.task} pipeline cannot be saved: its model has no "
                    "save_pretrained and was not loaded by name; build it with a registry name, "
                    "hub id or folder"
                )
            record["model"] = self.model_reference
        record["options"] = {**saved, **(load_options or {})}
        (folder / PIPELINE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        return folder

    def _save_model(self, folder: Path) -> dict[str, Any] | None:
        """Write the model and its pre-processor into ``folder``; return the load options needed
        to open them again (``{}`` for a transformers folder), or None when the model has nothing
        to write and is recorded by ``model_reference``."""
        if not hasattr(self.model, "save_pretrained"):
            return None
        self.model.save_pretrained(folder)
        if self.preprocessor is not None:
            self.preprocessor.save_pretrained(folder)
        return {}


def is_positive_int(value: Any) -> bool:
    """Whether an option is an integer >= 1 (True and False are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def checked_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Option ``name``'s ``value`` in lower case, when it is one of ``choices``."""
    choice = str(value).lower()
    if choice not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return choice

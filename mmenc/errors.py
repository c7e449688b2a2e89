"""The errors mmenc raises. Every message says what was wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence


class MmencError(Exception):
    """Base class of every error mmenc raises on purpose."""


class UnknownEncoderError(MmencError, KeyError):
    """A name that no registry entry, alias or resolver knows."""

    def __init__(self, name: str, suggestions: Sequence[str] = (), reason: str = "") -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        reason = f" ({reason})" if reason else ""
        super().__init__(
            f"unknown encoder {name!r}{reason}.{hint} Run `mmenc list` for the registered names, "
            "or use 'hf:ORG/NAME', 'open_clip:ARCH/TAG', 'timm:NAME' or a local model folder."
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownTaskError(MmencError, KeyError):
    """A pipeline task name that no plugin registers."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown task {name!r}.{hint} Run `mmenc tasks` for the task names.")

    def __str__(self) -> str:
        return str(self.args[0])


class IncompatibleModelError(MmencError, ValueError):
    """The model's architecture (its head) cannot do the asked task."""


class UnsupportedModalityError(MmencError, TypeError):
    """The encoder has no tower (or no shared space) for the asked modality."""


class SettingError(MmencError, ValueError):
    """An argument or ``MMENC_*`` environment variable has a value mmenc cannot use."""


class UnsafeCheckpointError(MmencError, ValueError):
    """A pickle checkpoint holds objects other than tensors, which loading would execute."""

    def __init__(self, where: str, cause: BaseException) -> None:
        lines = str(cause).splitlines() or [""]
        found = next((line.strip() for line in lines if "GLOBAL" in line.upper()), lines[0])
        super().__init__(
            f"refused to load {where}: its pickle checkpoint holds objects other than tensors "
            f"({found[:200]}). mmenc loads pickles with "
            "weights_only=True and never executes code from a checkpoint; get the weights as "
            "safetensors (model.safetensors) from a source you trust."
        )


class WeightsUnavailableError(MmencError, OSError):
    """Weights are in no local folder nor the Hugging Face cache, and may not be downloaded."""


class InvalidInputError(MmencError, ValueError):
    """One or more items of a batch cannot be encoded.

    ``problems`` lists every bad item as ``(index, cause)``, so a caller can fix them all at once;
    ``index`` and ``cause`` are the first of them.
    """

    def __init__(
        self,
        problems: Sequence[tuple[int, str]],
        what: str = "input",
        fix: str = "Fix or drop these items, or pass on_error='nan' to get NaN rows for them "
        "and embeddings for the rest.",
    ) -> None:
        self.problems = list(problems)
        self.index, self.cause = self.problems[0]
        shown = "; ".join(f"item {i}: {cause}" for i, cause in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} invalid {what} item(s): {shown}{more}. {fix}")


class PluginLoadError(MmencError):
    """A plugin failed to import, registered an invalid record, or implements an unknown hook."""


class PluginConflictError(MmencError):
    """Two plugins register the same encoder or task name."""


class PluginWarning(UserWarning):
    """A plugin failed and was skipped; the others keep working (see ``mmenc plugins``)."""

"""Finding and loading encoders by name: the registry, the resolvers, and ``load``."""

from __future__ import annotations

import contextvars
import difflib
import fnmatch
import functools
import numbers
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmenc.errors import (
    MmencError,
    PluginLoadError,
    SettingError,
    UnknownEncoderError,
    UnsafeCheckpointError,
    WeightsUnavailableError,
)
from mmenc.plugins import get_host
from mmenc.specs import EncoderSpec

if TYPE_CHECKING:
    import torch

    from mmenc.encoder import Encoder


def list_encoders(
    pattern: str = "*", *, family: str | None = None, modality: str | None = None
) -> list[str]:
    """Registered encoder names matching an fnmatch ``pattern`` (an alias match counts too)."""
    specs = get_host().specs().values()
    pattern = pattern.lower()
    return sorted(
        spec.name
        for spec in specs
        if any(fnmatch.fnmatchcase(n.lower(), pattern) for n in (spec.name, *spec.aliases))
        and (family is None or spec.family == family)
        and (modality is None or modality in spec.modalities)
    )


def get_spec(name: str) -> EncoderSpec:
    """The spec for a registry name, alias, or a name a plugin resolves (``hf:``, paths...)."""
    host = get_host()
    spec = host.lookup(name) or host.resolve(name)
    if spec is None:
        close = difflib.get_close_matches(name.lower(), host.known_names(), n=3, cutoff=0.6)
        raise UnknownEncoderError(name, close, _why_unresolved(name))
    return spec


def _why_unresolved(name: str) -> str:
    """For a folder or hub repo that no plugin claimed, say what it looked like."""
    from mmenc.hub import hf_reference, model_config

    ref = hf_reference(name)
    if ref is None:
        return ""
    config = model_config(ref)
    if config is None:
        return (
            "the folder has no config.json, modules.json or open_clip_config.json, so no plugin "
            "recognises it as a model folder"
        )
    kind = config.get("model_type") or config.get("architecture") or "unknown"
    return f"its config.json describes {kind!r}, which no installed plugin handles"


LOAD_TIMEOUT_VARIABLE = "MMENC_LOAD_TIMEOUT"
CHECK_TIMEOUT = 60.0
"""Seconds each encoder may take in ``check_plugin`` if neither a limit nor the variable is set."""


def load(
    name: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    timeout: float | None = None,
    **options: Any,
) -> Encoder:
    """Load an encoder by registry name, alias, ``hf:``/``open_clip:``/``timm:`` name or folder.

    ``device=None`` picks cuda, then mps, then cpu; ``dtype`` is None (float32), "float32",
    "bfloat16" or "float16". Other options go to the family's loader.

    ``timeout`` (seconds; None: ``MMENC_LOAD_TIMEOUT`` if set) bounds the plugin's factory, so
    that one that hangs raises ``PluginLoadError`` instead of blocking for ever. There is no
    limit by default: a first download from the Hub or a very large model can rightly take
    long. With a limit the factory runs in a daemon thread, which Python cannot stop: after a
    timeout it goes on in the background and its result is dropped. Thread-local torch state
    (grad mode, the current CUDA device) is then that thread's default, so name "cuda:N".
    A registered encoder that crashes or times out is shown against its plugin by
    ``list_plugins()``.
    """
    from mmenc.runtime import check_fast, resolve_device, resolve_dtype

    limit = load_timeout(timeout)
    host = get_host()
    registered = host.lookup(name) is not None
    spec = get_spec(name)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    check_fast(torch_device, torch_dtype)
    build = functools.partial(
        spec.factory, name=spec.name, device=torch_device, dtype=torch_dtype, **options
    )
    try:
        return _build(spec, build, limit)
    except PluginLoadError as exc:
        if registered:  # a hub id or folder that fails is more likely the model's fault
            host.note_encoder_failure(spec.plugin, str(exc))
        raise


def _build(spec: EncoderSpec, build: Callable[[], Encoder], limit: float | None) -> Encoder:
    """Call the factory (within ``limit`` seconds if any), naming the plugin if it fails."""
    try:
        return build() if limit is None else _call_within(limit, build, spec)
    except pickle.UnpicklingError as exc:  # weights_only=True met a code-carrying pickle
        raise UnsafeCheckpointError(f"encoder {spec.name!r}", exc) from exc
    except (MmencError, ValueError, TypeError):  # ours, or a bad option the user can fix
        raise
    except Exception as exc:  # a plugin bug or a broken install: say whose
        raise PluginLoadError(
            f"encoder {spec.name!r} (plugin {spec.plugin!r}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _call_within(limit: float, build: Callable[[], Encoder], spec: EncoderSpec) -> Encoder:
    """``build()`` in a daemon thread, waited for ``limit`` seconds; its exception is re-raised.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so a hung factory
    would hang the exit too.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["encoder"] = build()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(run,), name=f"mmenc-load-{spec.name}", daemon=True
    )
    thread.start()
    thread.join(min(limit, threading.TIMEOUT_MAX))
    if thread.is_alive():
        raise PluginLoadError(_timed_out(spec, limit))
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome["encoder"]


def _timed_out(spec: EncoderSpec, limit: float) -> str:
    return (
        f"encoder {spec.name!r} of plugin {get_host().who(spec.plugin)} did not finish loading "
        f"within {limit:g} s. Its factory is probably waiting on the network (a first download "
        "from the Hugging Face Hub), on a lock, or on input. If the model is just large or slow "
        f"to fetch, raise the limit (timeout=SECONDS or {LOAD_TIMEOUT_VARIABLE}=SECONDS); "
        "otherwise report it to the plugin's authors. The load goes on in a background thread "
        "and its result will be dropped."
    )


def load_timeout(timeout: float | None) -> float | None:
    """The limit for a factory in seconds: ``timeout``, else ``MMENC_LOAD_TIMEOUT``, else None."""
    if timeout is not None:
        return _positive_seconds(timeout, "timeout")
    value = os.environ.get(LOAD_TIMEOUT_VARIABLE, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise SettingError(
            f"{LOAD_TIMEOUT_VARIABLE}={value!r} is not a number of seconds; set it to e.g. 600, "
            "or unset it for no limit"
        ) from None
    return _positive_seconds(seconds, LOAD_TIMEOUT_VARIABLE)


def _positive_seconds(seconds: Any, source: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise TypeError(f"{source} must be a number of seconds or None, not {seconds!r}")
    if not float(seconds) > 0:  # also catches NaN
        raise SettingError(
            f"{source} must be a positive number of seconds, not {seconds!r}; "
            "leave it unset (None) for no limit"
        )
    return float(seconds)


@dataclass(frozen=True)
class PluginCheck:
    """What ``check_plugin`` found: the encoders that loaded, those not downloaded, an error."""

    plugin: str
    loaded: tuple[str, ...] = ()
    not_downloaded: tuple[str, ...] = ()
    error: str | None = None

    @property
    def status(self) -> str:
        """ "failed", "ok" (an encoder or more loaded), "not downloaded" or "no encoders"."""
        if self.error is not None:
            return "failed"
        if self.loaded:
            return "ok"
        return "not downloaded" if self.not_downloaded else "no encoders"


def check_plugin(plugin: str, *, timeout: float | None = None) -> PluginCheck:
    """Load each encoder ``plugin`` registers on cpu, within ``timeout`` seconds each.

    Listing never calls factories; this does, to find one that crashes or hangs. It stops at
    the first failure. It never downloads: the Hub is put offline meanwhile, and an encoder
    whose weights are not cached is reported as not downloaded, not as failed. ``timeout``
    None means ``MMENC_LOAD_TIMEOUT``, else ``CHECK_TIMEOUT``.
    """
    limit = load_timeout(timeout) or CHECK_TIMEOUT
    names = sorted(s.name for s in get_host().specs().values() if s.plugin == plugin)
    loaded: list[str] = []
    missing: list[str] = []
    with _hub_offline():
        for name in names:
            try:
                load(name, device="cpu", timeout=limit)
            except WeightsUnavailableError:
                missing.append(name)
            except Exception as exc:  # any failure is the check's answer, not a crash
                return PluginCheck(plugin, tuple(loaded), tuple(missing), _load_error(name, exc))
            else:
                loaded.append(name)
    return PluginCheck(plugin, tuple(loaded), tuple(missing))


def _load_error(name: str, exc: Exception) -> str:
    if isinstance(exc, PluginLoadError):  # already names the encoder and the plugin
        return str(exc)
    return f"encoder {name!r} failed to load: {type(exc).__name__}: {exc}"


@contextmanager
def _hub_offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` meanwhile: a check must not start downloads of gigabytes."""
    from huggingface_hub import constants

    saved_variable, saved_constant = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True  # huggingface_hub read the variable at import
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_constant
        if saved_variable is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_variable

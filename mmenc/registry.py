"""Finding and loading encoders by name: the registry, the resolvers, and ``load``."""

from __future__ import annotations

import difflib
import fnmatch
import pickle
from typing import TYPE_CHECKING, Any

from mmenc.errors import MmencError, PluginLoadError, UnknownEncoderError, UnsafeCheckpointError
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


def load(
    name: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    **options: Any,
) -> Encoder:
    """Load an encoder by registry name, alias, ``hf:``/``open_clip:``/``timm:`` name or folder.

    ``device=None`` picks cuda, then mps, then cpu; ``dtype`` is None (float32), "float32",
    "bfloat16" or "float16". Other options go to the family's loader.
    """
    from mmenc.runtime import check_fast, resolve_device, resolve_dtype

    spec = get_spec(name)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    check_fast(torch_device, torch_dtype)
    try:
        return spec.factory(name=spec.name, device=torch_device, dtype=torch_dtype, **options)
    except pickle.UnpicklingError as exc:  # weights_only=True met a code-carrying pickle
        raise UnsafeCheckpointError(f"encoder {spec.name!r}", exc) from exc
    except (MmencError, ValueError, TypeError):  # ours, or a bad option the user can fix
        raise
    except Exception as exc:  # a plugin bug or a broken install: say whose
        raise PluginLoadError(
            f"encoder {spec.name!r} (plugin {spec.plugin!r}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc

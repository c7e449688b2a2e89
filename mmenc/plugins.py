"""The plugin host: the only place that loads entry points and calls hooks.

It is built on first use and cached. Each plugin is loaded and called on its own, so one that
fails to import, implements a misspelled hook or yields an invalid record is reported by
``list_plugins()`` and left out, while every other plugin keeps working. An encoder whose
factory crashes or hangs in ``mmenc.load`` is remembered against its plugin too.
"""

from __future__ import annotations

import functools
import os
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import pluggy

from mmenc import hookspecs
from mmenc.errors import MmencError, PluginConflictError, PluginLoadError, PluginWarning
from mmenc.specs import REGISTRY_NAME, EncoderSpec, TaskSpec

ENTRY_POINT_GROUP = "mmenc"


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as the host saw it: ``status`` is "loaded", "failed" or "disabled".

    "failed" means the plugin is left out: none of its hooks is called. A loaded plugin may
    still carry an ``error``: the first of its registered encoders that failed or timed out in
    ``mmenc.load``. It stays "loaded", because its hooks and its other encoders still work.
    """

    name: str
    distribution: str | None
    version: str | None
    status: Literal["loaded", "failed", "disabled"]
    error: str | None = None


class PluginHost:
    """A pluggy manager plus what we learnt loading each plugin, and the encoder registry."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("mmenc")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._specs: dict[str, EncoderSpec] | None = None
        self._aliases: dict[str, str] = {}
        self._tasks: dict[str, TaskSpec] | None = None
        self._task_aliases: dict[str, str] = {}

    # -- loading --------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        allow = _env_names("MMENC_PLUGINS")
        deny = _env_names("MMENC_DISABLE_PLUGINS") or set()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist, version = _distribution(ep)
            if ep.name in deny or (allow is not None and ep.name not in allow):
                self.plugins[ep.name] = PluginInfo(ep.name, dist, version, "disabled")
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(ep.name, dist, version, f"import failed: {_describe(exc)}")
                continue
            self.register(plugin, ep.name, distribution=dist, version=version)

    def register(
        self,
        plugin: Any,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo:
        """Register a plugin object (usually a module); its hooks are validated at once."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if self.pm.has_plugin(name):
            raise PluginConflictError(
                f"two plugins are named {name!r}: {self.who(name)} and one from "
                f"{distribution or 'no distribution'}. Uninstall one, or disable it with "
                "MMENC_DISABLE_PLUGINS."
            )
        try:
            self.pm.register(plugin, name=name)
            self._check_hook_names(plugin, name)
        except Exception as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            return self._fail(name, distribution, version, _describe(exc))
        info = PluginInfo(name, distribution, version, "loaded")
        self.plugins[name] = info
        self._specs = self._tasks = None
        return info

    def _check_hook_names(self, plugin: Any, name: str) -> None:
        known = {n for n in dir(hookspecs) if n.startswith("mmenc_")}
        for attr in dir(plugin):
            if not attr.startswith("mmenc_"):
                continue
            if attr not in known:
                raise PluginLoadError(
                    f"plugin {name!r} defines {attr!r}, which is not a mmenc hook "
                    f"(known hooks: {', '.join(sorted(known))}); rename it or remove it"
                )
            if self.pm.parse_hookimpl_opts(plugin, attr) is None:
                raise PluginLoadError(
                    f"plugin {name!r} defines {attr!r} without the @mmenc.hookimpl decorator"
                )
        self.pm.check_pending()

    def _fail(self, name: str, dist: str | None, version: str | None, error: str) -> PluginInfo:
        warnings.warn(
            f"mmenc plugin {name!r} failed and is skipped: {error}", PluginWarning, stacklevel=2
        )
        info = PluginInfo(name, dist, version, "failed", error)
        self.plugins[name] = info
        self._specs = self._tasks = None
        return info

    def _disable(self, plugin_name: str, error: str) -> None:
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is not None:
            self.pm.unregister(plugin)
        old = self.plugins.get(plugin_name)
        dist, version = (old.distribution, old.version) if old else (None, None)
        self._fail(plugin_name, dist, version, error)

    # -- the registries -------------------------------------------------------------------
    def specs(self) -> dict[str, EncoderSpec]:
        """Every registered encoder by name, gathered from each plugin separately."""
        if self._specs is None:
            self._specs, self._aliases = self._collect("mmenc_encoders", EncoderSpec, "encoder")
        return self._specs

    def tasks(self) -> dict[str, TaskSpec]:
        """Every registered pipeline task by name, gathered from each plugin separately."""
        if self._tasks is None:
            self.specs()  # a plugin that fails there is left out here too
            self._tasks, self._task_aliases = self._collect("mmenc_tasks", TaskSpec, "task")
        return self._tasks

    def _collect(
        self, hook: str, kind: type[EncoderSpec | TaskSpec], what: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One hook's records from every plugin by name, and each name and alias's owner."""
        per_plugin: dict[str, list[Any]] = {}
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                per_plugin[impl.plugin_name] = _checked(impl.function(), kind, impl.plugin_name)
            except Exception as exc:
                self._disable(impl.plugin_name, f"{hook} failed: {_describe(exc)}")
        records: dict[str, Any] = {}
        owner: dict[str, str] = {}  # name or alias -> plugin
        aliases: dict[str, str] = {}
        for plugin_name, plugin_records in per_plugin.items():
            for item in plugin_records:
                for key in map(str.lower, (item.name, *item.aliases)):
                    if key in owner:
                        raise PluginConflictError(
                            f"{what} name {key!r} is registered twice: by plugin "
                            f"{self.who(owner[key])} and by plugin {self.who(plugin_name)}. "
                            "Uninstall or disable one of them (MMENC_DISABLE_PLUGINS=name)."
                        )
                    owner[key] = plugin_name
                    aliases[key] = item.name
                records[item.name] = item
        return records, aliases

    def note_encoder_failure(self, plugin_name: str, error: str) -> None:
        """Show ``error`` against a loaded plugin whose encoder failed to load (the first one)."""
        info = self.plugins.get(plugin_name)
        if info is not None and info.status == "loaded" and info.error is None:
            self.plugins[plugin_name] = replace(info, error=error)

    def who(self, plugin_name: str) -> str:
        """The plugin's name and distribution, for messages."""
        info = self.plugins.get(plugin_name)
        dist = info.distribution if info and info.distribution else "no distribution"
        return f"{plugin_name!r} (from {dist})"

    def lookup(self, name: str) -> EncoderSpec | None:
        """A registry name or alias (case-insensitive), or None."""
        specs = self.specs()
        canonical = self._aliases.get(name.lower())
        return specs[canonical] if canonical else None

    def known_names(self) -> list[str]:
        self.specs()
        return sorted(self._aliases)

    def lookup_task(self, name: str) -> TaskSpec | None:
        """A task name or alias (case-insensitive), or None."""
        tasks = self.tasks()
        canonical = self._task_aliases.get(name.lower())
        return tasks[canonical] if canonical else None

    def known_tasks(self) -> list[str]:
        self.tasks()
        return sorted(self._task_aliases)

    def resolve(self, name: str) -> EncoderSpec | None:
        """Ask each plugin's ``mmenc_resolve`` in turn; the first spec wins."""
        # pluggy calls the last registered first; keep that order, but call one at a time so
        # a crashing resolver is named instead of breaking every lookup.
        for impl in reversed(self.pm.hook.mmenc_resolve.get_hookimpls()):
            try:
                spec = impl.function(name)
            except MmencError:
                raise
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {impl.plugin_name!r} crashed resolving {name!r}: {_describe(exc)}"
                ) from exc
            if spec is not None:
                if not isinstance(spec, EncoderSpec):
                    raise PluginLoadError(
                        f"plugin {impl.plugin_name!r} resolved {name!r} to {spec!r}, "
                        "not an EncoderSpec"
                    )
                return replace(spec, plugin=impl.plugin_name)
        return None


def _checked(records: Any, kind: type[EncoderSpec | TaskSpec], plugin_name: str) -> list[Any]:
    checked = []
    if not isinstance(records, Iterable):
        raise PluginLoadError(f"returned {records!r}; the hook must yield {kind.__name__} records")
    for record in records:
        if not isinstance(record, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise PluginLoadError(f"yielded {record!r}, which is not {article} {kind.__name__}")
        if kind is EncoderSpec and not REGISTRY_NAME.match(record.name):
            raise PluginLoadError(
                f"registry name {record.name!r} must be lower-case letters, digits, '.', '_', '-'"
            )
        checked.append(replace(record, plugin=plugin_name))
    return checked


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _distribution(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{place}"


@functools.cache
def get_host() -> PluginHost:
    """The process-wide plugin host, loading installed plugins on first call."""
    host = PluginHost()
    host.load_entry_points()
    return host


def reset() -> None:
    """Forget the cached host, so the next call reloads plugins (tests, env changes)."""
    get_host.cache_clear()


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Register a plugin object in this process, without an entry point (scripts, notebooks)."""
    return get_host().register(plugin, name)


def list_plugins() -> list[PluginInfo]:
    """Each plugin the host knows: loaded, failed (with its error) or disabled."""
    host = get_host()
    host.tasks()  # calling the hooks may mark more plugins failed
    return sorted(host.plugins.values(), key=lambda p: p.name)

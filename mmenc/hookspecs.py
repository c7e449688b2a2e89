"""The hooks a mmenc plugin can implement.

A plugin is a module (or any object) with functions decorated by ``mmenc.hookimpl`` and named
after these specs; it is found through the ``mmenc`` entry-point group. Hook implementations run
when the registry is first used, so they must be cheap: no torch, no weights. See
docs/plugin_hooks.md for each hook with an example.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from mmenc.specs import EncoderSpec, TaskSpec

hookspec = pluggy.HookspecMarker("mmenc")
hookimpl = pluggy.HookimplMarker("mmenc")


@hookspec
def mmenc_encoders() -> Iterable[EncoderSpec]:
    """Yield the named encoders this plugin provides.

    Example::

        @mmenc.hookimpl
        def mmenc_encoders():
            yield mmenc.EncoderSpec(name="my-model", family="bert", modalities={"text"},
                                    factory=load_my_model)
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def mmenc_resolve(name: str) -> EncoderSpec | None:
    """Turn a name that is not in the registry (a scheme like ``hf:``, a local folder) into a spec.

    Return ``None`` when the name is not for this plugin; the first non-None answer wins.

    Example::

        @mmenc.hookimpl
        def mmenc_resolve(name):
            if name.startswith("mymodels:"):
                return mmenc.EncoderSpec(name=name.lower(), family="bert", modalities={"text"},
                                         factory=functools.partial(load, name[9:]))
            return None
    """
    raise NotImplementedError


@hookspec
def mmenc_tasks() -> Iterable[TaskSpec]:
    """Yield the pipeline tasks this plugin provides (``mmenc.pipeline(name)`` builds them).

    Example::

        @mmenc.hookimpl
        def mmenc_tasks():
            yield mmenc.TaskSpec(name="shout", factory=ShoutPipeline.build,
                                 default_model="tiny-bert", description="upper-cases texts")
    """
    raise NotImplementedError

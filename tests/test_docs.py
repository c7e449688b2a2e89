"""Every hook is documented with its exact signature, and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from mmenc import hookspecs

ROOT = Path(__file__).parents[1]
HOOKS = [name for name in dir(hookspecs) if name.startswith("mmenc_")]


def _signature(name: str) -> str:
    text = f"{name}{inspect.signature(getattr(hookspecs, name))}"
    return text.replace("'", "")


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    reference = (ROOT / "docs" / "plugin_hooks.md").read_text()
    assert f"## `{_signature(hook)}`" in reference


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_in_a_test(hook):
    tests = [p.read_text() for p in (ROOT / "tests").glob("test_*.py")]
    template = ROOT / "examples" / "plugin_template" / "mmenc_hashtext" / "__init__.py"
    assert any(f"def {hook}(" in text for text in [*tests, template.read_text()])


def test_hook_docstrings_have_an_example():
    for hook in HOOKS:
        assert "Example::" in (getattr(hookspecs, hook).__doc__ or ""), hook


def test_every_task_default_is_in_the_pipelines_guide():
    import mmenc

    guide = (ROOT / "docs" / "pipelines.md").read_text()
    for task in mmenc.list_tasks():
        if task.plugin in {"text", "image"}:
            row = f"| `{task.default_model}` | " + (
                f"`{task.default_revision}` |" if task.default_revision else ""
            )
            assert f"`{task.name}" in guide and row in guide, task.name
            assert f"### {task.name}" in guide, f"{task.name} has no section"

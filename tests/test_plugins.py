"""The plugin host: discovery, isolation of broken plugins, conflicts, allow/deny lists."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
from helpers import install_fake_distribution

import mmenc
from mmenc.plugins import PluginHost

GOOD = """
import mmenc

def _factory(**kwargs):
    raise RuntimeError("never loaded in these tests")

@mmenc.hookimpl
def mmenc_encoders():
    yield mmenc.EncoderSpec(name="{name}", family="test", modalities={{"text"}},
                            factory=_factory)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh site folder on sys.path; modules imported from it are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("fake_"):
            del sys.modules[name]


def _host(site, monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    host = PluginHost()
    host.load_entry_points()
    return host


def test_builtin_plugins_are_registered_through_entry_points():
    names = {p.name: p for p in mmenc.list_plugins()}
    assert names["bert"].status == "loaded"
    assert names["bert"].distribution == "mmenc"
    assert "minilm-l6" in mmenc.list_encoders()


def test_entry_point_plugin_is_found_with_distribution_and_version(site, monkeypatch):
    install_fake_distribution(
        site, "fake-good", {"fakegood": "fake_good"}, {"fake_good": GOOD.format(name="fake-one")}
    )
    host = _host(site, monkeypatch)
    info = host.plugins["fakegood"]
    assert (info.status, info.distribution, info.version) == ("loaded", "fake-good", "1.0")
    assert host.lookup("fake-one").plugin == "fakegood"


def test_plugin_that_fails_to_import_is_reported_and_others_still_work(site, monkeypatch):
    install_fake_distribution(
        site,
        "fake-broken",
        {"fakebroken": "fake_broken"},
        {"fake_broken": "raise ImportError('missing dependency xyz')"},
    )
    with pytest.warns(mmenc.errors.PluginWarning, match="'fakebroken' failed"):
        host = _host(site, monkeypatch)
    info = host.plugins["fakebroken"]
    assert info.status == "failed"
    assert "missing dependency xyz" in info.error
    assert host.lookup("minilm-l6") is not None


def test_misspelled_hook_is_an_error_not_silence(site, monkeypatch):
    source = "import mmenc\n\n@mmenc.hookimpl\ndef mmenc_encoder():\n    return []\n"
    install_fake_distribution(site, "fake-typo", {"faketypo": "fake_typo"}, {"fake_typo": source})
    host = _host(site, monkeypatch)
    assert host.plugins["faketypo"].status == "failed"
    assert "mmenc_encoder" in host.plugins["faketypo"].error


def test_hook_without_decorator_is_an_error(monkeypatch):
    plugin = types.SimpleNamespace(mmenc_encoders=lambda: [])
    info = PluginHost().register(plugin, "undecorated")
    assert info.status == "failed"
    assert "without the @mmenc.hookimpl decorator" in info.error


def test_invalid_record_fails_only_that_plugin():
    host = PluginHost()

    class Bad:
        @mmenc.hookimpl
        def mmenc_encoders(self):
            yield {"name": "not-a-spec"}

    host.register(Bad(), "bad")
    assert host.specs() == {}
    assert host.plugins["bad"].status == "failed"
    assert "not an EncoderSpec" in host.plugins["bad"].error


def test_spec_with_bad_fields_names_them():
    with pytest.raises(ValueError, match="modalities"):
        mmenc.EncoderSpec(name="x", family="f", modalities={"audio"}, factory=print)
    with pytest.raises(ValueError, match="factory"):
        mmenc.EncoderSpec(name="x", family="f", modalities={"text"}, factory="nope")


def test_duplicate_names_raise_naming_both_distributions(site, monkeypatch):
    install_fake_distribution(
        site, "fake-a", {"fakea": "fake_a"}, {"fake_a": GOOD.format(name="same-name")}
    )
    install_fake_distribution(
        site, "fake-b", {"fakeb": "fake_b"}, {"fake_b": GOOD.format(name="same-name")}
    )
    host = _host(site, monkeypatch)
    with pytest.raises(mmenc.PluginConflictError) as caught:
        host.specs()
    assert "fake-a" in str(caught.value) and "fake-b" in str(caught.value)


def test_disable_and_allow_lists(site, monkeypatch):
    install_fake_distribution(
        site, "fake-good", {"fakegood": "fake_good"}, {"fake_good": GOOD.format(name="fake-one")}
    )
    host = _host(site, monkeypatch, MMENC_DISABLE_PLUGINS="fakegood")
    assert host.plugins["fakegood"].status == "disabled"
    assert host.lookup("fake-one") is None
    monkeypatch.delenv("MMENC_DISABLE_PLUGINS")
    host = _host(site, monkeypatch, MMENC_PLUGINS="fakegood")
    assert host.plugins["fakegood"].status == "loaded"
    assert host.plugins["bert"].status == "disabled"
    assert host.lookup("minilm-l6") is None


def test_crashing_resolver_is_named():
    host = PluginHost()

    class Crash:
        @mmenc.hookimpl
        def mmenc_resolve(self, name):
            raise KeyError("oops")

    host.register(Crash(), "crashy")
    with pytest.raises(mmenc.PluginLoadError, match="crashy"):
        host.resolve("anything")


def test_factory_failure_is_reported_with_the_plugin(monkeypatch):
    def boom(**kwargs):
        raise ImportError("kaboom")

    class Plugin:
        @mmenc.hookimpl
        def mmenc_encoders(self):
            yield mmenc.EncoderSpec(name="boom", family="t", modalities={"text"}, factory=boom)

    mmenc.plugins.reset()
    try:
        mmenc.register_plugin(Plugin(), "boomer")
        with pytest.raises(mmenc.PluginLoadError, match=r"boomer.*kaboom"):
            mmenc.load("boom", device="cpu")
    finally:
        mmenc.plugins.reset()


def test_unknown_name_suggests_close_names():
    with pytest.raises(mmenc.UnknownEncoderError) as caught:
        mmenc.load("minilm-l7")
    assert "minilm-l6" in caught.value.suggestions
    assert "mmenc list" in str(caught.value)


def test_list_encoders_filters():
    assert mmenc.list_encoders("tiny-be*") == ["tiny-bert"]
    assert "minilm-l6" in mmenc.list_encoders(family="bert", modality="text")
    assert "minilm-l6" not in mmenc.list_encoders(modality="image")
    assert mmenc.list_encoders("all-minilm*") == ["minilm-l6"]  # aliases match too


def test_unrecognised_folder_says_why(tmp_path):
    with pytest.raises(mmenc.UnknownEncoderError, match=r"no config\.json"):
        mmenc.load(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(mmenc.UnknownEncoderError, match="'t5', which no installed plugin"):
        mmenc.load(str(tmp_path))


def test_device_and_dtype_choices():
    import torch

    from mmenc.runtime import resolve_device, resolve_dtype

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cuda", "mps", "cpu")
    assert resolve_dtype(None) is torch.float32
    assert resolve_dtype("bf16") is resolve_dtype(torch.bfloat16) is torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        mmenc.load("tiny-bert", dtype="int8")


def test_bfloat16_on_a_cpu_without_native_support_warns(monkeypatch):
    import torch

    from mmenc import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="slower than float32"):
        runtime.check_fast(torch.device("cpu"), torch.bfloat16)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runtime.check_fast(torch.device("cpu"), torch.bfloat16)


def test_two_plugins_with_one_name_conflict(site, monkeypatch):
    install_fake_distribution(
        site, "fake-a", {"same": "fake_a"}, {"fake_a": GOOD.format(name="fake-a-model")}
    )
    install_fake_distribution(
        site, "fake-b", {"same": "fake_b"}, {"fake_b": GOOD.format(name="fake-b-model")}
    )
    with pytest.raises(mmenc.PluginConflictError) as caught:
        _host(site, monkeypatch)
    assert "fake-a" in str(caught.value) and "fake-b" in str(caught.value)

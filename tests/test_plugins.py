"""The plugin host: discovery, isolation of broken plugins, conflicts, allow/deny lists."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
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


# -- factories that hang or raise: mmenc.load(timeout=...), list_plugins, check_plugin --------
def _plugin_with(**factories):
    """A plugin object registering one text encoder per ``name=factory``."""

    class Plugin:
        @mmenc.hookimpl
        def mmenc_encoders(self):
            for name, factory in factories.items():
                yield mmenc.EncoderSpec(name=name, family="t", modalities={"text"}, factory=factory)

    return Plugin()


@pytest.fixture
def fresh_host():
    """The process-wide host, rebuilt before and after the test."""
    mmenc.plugins.reset()
    yield
    mmenc.plugins.reset()


@pytest.fixture
def hang():
    """A factory that blocks until teardown, so its daemon thread ends with the test."""
    release = threading.Event()
    yield lambda **kwargs: release.wait()
    release.set()


def test_hanging_factory_times_out_and_the_host_keeps_working(fresh_host, hang):
    import mmenc.runtime  # imports torch, before the clock starts

    mmenc.register_plugin(_plugin_with(hang=hang), "hanger")
    mmenc.register_plugin(_plugin_with(fine=dict), "other")
    start = time.perf_counter()
    with pytest.raises(mmenc.PluginLoadError) as caught:
        mmenc.load("hang", device="cpu", timeout=0.5)
    assert time.perf_counter() - start < 1.5
    message = str(caught.value)
    for part in ("'hang'", "'hanger'", "within 0.5 s", "network", "lock", "MMENC_LOAD_TIMEOUT"):
        assert part in message
    assert mmenc.load("fine", device="cpu", timeout=0.5)["name"] == "fine"
    infos = {p.name: p for p in mmenc.list_plugins()}
    assert infos["hanger"].status == "loaded"
    assert "did not finish loading within 0.5 s" in infos["hanger"].error
    assert (infos["other"].status, infos["other"].error) == ("loaded", None)


def test_load_timeout_from_the_environment_and_bad_values(fresh_host, hang, monkeypatch):
    mmenc.register_plugin(_plugin_with(hang=hang), "hanger")
    monkeypatch.setenv("MMENC_LOAD_TIMEOUT", "0.2")
    with pytest.raises(mmenc.PluginLoadError, match=r"within 0\.2 s"):
        mmenc.load("hang", device="cpu")
    with pytest.raises(mmenc.PluginLoadError, match=r"within 0\.3 s"):  # the argument wins
        mmenc.load("hang", device="cpu", timeout=0.3)
    monkeypatch.setenv("MMENC_LOAD_TIMEOUT", "soon")
    with pytest.raises(mmenc.SettingError, match="MMENC_LOAD_TIMEOUT='soon' is not a number of"):
        mmenc.load("hang", device="cpu")
    monkeypatch.setenv("MMENC_LOAD_TIMEOUT", "0")
    with pytest.raises(mmenc.SettingError, match="MMENC_LOAD_TIMEOUT must be a positive number"):
        mmenc.load("hang", device="cpu")
    monkeypatch.delenv("MMENC_LOAD_TIMEOUT")
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
            mmenc.load("hang", device="cpu", timeout=bad)
    with pytest.raises(TypeError, match="timeout must be a number of seconds"):
        mmenc.load("hang", device="cpu", timeout="5")


def _raise(exc):
    def factory(**kwargs):
        raise exc

    return factory


@pytest.mark.parametrize(
    ("raised", "surfaced"),
    [
        (ImportError("kaboom"), mmenc.PluginLoadError),
        (ValueError("bad option"), ValueError),
        (mmenc.WeightsUnavailableError("not cached"), mmenc.WeightsUnavailableError),
        (pickle.UnpicklingError("GLOBAL os.system"), mmenc.UnsafeCheckpointError),
    ],
)
def test_raising_factory_surfaces_the_same_error_with_and_without_a_limit(
    fresh_host, raised, surfaced
):
    mmenc.register_plugin(_plugin_with(boom=_raise(raised)), "boomer")
    errors = []
    for timeout in (None, 5):
        with pytest.raises(surfaced) as caught:
            mmenc.load("boom", device="cpu", timeout=timeout)
        errors.append((type(caught.value), str(caught.value), type(caught.value.__cause__)))
    assert errors[0] == errors[1]


def test_factory_failure_is_shown_against_a_plugin_that_stays_loaded(fresh_host):
    mmenc.register_plugin(_plugin_with(boom=_raise(ImportError("kaboom")), fine=dict), "boomer")
    with pytest.raises(mmenc.PluginLoadError):
        mmenc.load("boom", device="cpu")
    assert mmenc.load("fine", device="cpu")["name"] == "fine"  # its other encoder still loads
    info = {p.name: p for p in mmenc.list_plugins()}["boomer"]
    assert info.status == "loaded"
    assert info.error == "encoder 'boom' (plugin 'boomer') failed to load: ImportError: kaboom"


def test_a_hung_load_does_not_hang_the_interpreter_exit():
    """The factory runs in a daemon thread: an executor's thread would be joined at exit."""
    code = """if True:
        import sys, threading, types
        runtime = types.ModuleType("mmenc.runtime")  # no torch: the exit is what is tested
        runtime.resolve_device = runtime.resolve_dtype = lambda value: value
        runtime.check_fast = lambda device, dtype: None
        sys.modules["mmenc.runtime"] = runtime
        import mmenc

        class Plugin:
            @mmenc.hookimpl
            def mmenc_encoders(self):
                yield mmenc.EncoderSpec(name="hang", family="t", modalities={"text"},
                                        factory=lambda **kwargs: threading.Event().wait())

        mmenc.register_plugin(Plugin(), "hanger")
        try:
            mmenc.load("hang", timeout=0.2)
        except mmenc.PluginLoadError:
            print("timed out")
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "timed out"
    assert time.perf_counter() - start < 5


def test_check_plugin_loads_each_encoder_offline(fresh_host, hang, monkeypatch):
    from huggingface_hub import constants

    from mmenc.registry import check_plugin

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    seen = []

    def offline_only(**kwargs):
        seen.append((os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE))
        raise mmenc.WeightsUnavailableError("not in the cache")

    mmenc.register_plugin(_plugin_with(a_fine=dict, b_missing=offline_only), "mixed")
    mmenc.register_plugin(_plugin_with(c_fine=dict, d_hang=hang, e_never=dict), "stuck")
    mixed = check_plugin("mixed", timeout=5)
    assert (mixed.status, mixed.loaded, mixed.not_downloaded) == ("ok", ("a_fine",), ("b_missing",))
    assert seen == [("1", True)]  # the Hub was offline during the check...
    assert "HF_HUB_OFFLINE" not in os.environ and constants.HF_HUB_OFFLINE is False  # ...only
    stuck = check_plugin("stuck", timeout=0.3)
    assert (stuck.status, stuck.loaded) == ("failed", ("c_fine",))  # stops at the first failure
    assert stuck.error.startswith("encoder 'd_hang' of plugin 'stuck'")
    assert "did not finish loading within 0.3 s" in stuck.error

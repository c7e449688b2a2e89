"""The third-party plugin template, installed for real and found through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).parents[1] / "examples" / "plugin_template"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install`` the template into a private folder: real wheel metadata, no network."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(TEMPLATE),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return target


def _run(site: Path, code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_template_plugin_is_discovered_and_works(installed):
    result = _run(
        installed,
        (
            "import json, mmenc\n"
            "info = {p.name: p for p in mmenc.list_plugins()}['hashtext']\n"
            "enc = mmenc.load('hash:64', device='cpu')\n"
            "sims = enc.similarity(['red apple pie'], ['apple pie red', 'blue car'])\n"
            "print(json.dumps({'status': info.status, 'dist': info.distribution,\n"
            "  'names': mmenc.list_encoders('hash-*'), 'dim': enc.embed_dim,\n"
            "  'sims': sims[0].tolist(), 'family': enc.family}))\n"
        ),
    )
    assert result["status"] == "loaded" and result["dist"] == "mmenc-hashtext"
    assert result["names"] == ["hash-text-256"]
    assert result["dim"] == 64 and result["family"] == "hashtext"
    assert result["sims"][0] == pytest.approx(1.0) and result["sims"][1] < 0.5


def test_template_plugin_can_be_disabled(installed):
    code = "import json, mmenc; print(json.dumps(mmenc.list_encoders('hash-*')))"
    env_code = "import os; os.environ['MMENC_DISABLE_PLUGINS'] = 'hashtext'\n" + code
    assert _run(installed, env_code) == []


def test_template_plugin_adds_a_task(installed, tmp_path):
    result = _run(
        installed,
        (
            "import json, mmenc\n"
            "task = {t.name: t for t in mmenc.list_tasks()}['sentence-similarity']\n"
            "pipe = mmenc.pipeline('sentence-similarity', 'hash:64', device='cpu')\n"
            "item = {'source_sentence': 'red apple pie',\n"
            "        'sentences': ['blue car', 'apple pie red']}\n"
            "ranked = pipe(item)\n"
            "top = pipe([item, item], top_k=1)\n"
            f"pipe.save_pretrained({str(tmp_path)!r})\n"
            f"again = mmenc.pipeline(model={str(tmp_path)!r}, device='cpu')(item)\n"
            "try:\n"
            "    pipe([item, {'source_sentence': 'x'}])\n"
            "except mmenc.InvalidInputError as exc:\n"
            "    bad = exc.problems\n"
            "print(json.dumps({'plugin': task.plugin, 'default': task.default_model,\n"
            "  'ranked': ranked, 'top': top, 'again': again, 'bad': bad}))\n"
        ),
    )
    assert result["plugin"] == "hashtext" and result["default"] == "hash-text-256"
    assert [r["sentence"] for r in result["ranked"]] == ["apple pie red", "blue car"]
    assert result["ranked"][0]["score"] == pytest.approx(1.0)
    assert result["top"] == [result["ranked"][:1]] * 2
    assert result["again"] == result["ranked"]
    assert result["bad"] == [[1, "expected a dict with 'source_sentence' and 'sentences'"]]

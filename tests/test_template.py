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

"""LiT: the trainer (tiny runs on a tiny timm backbone and tiny-bert), its folder format, resume,
bad input, the CLI, and the accuracy of the shipped ``lit-demo`` on held-out data."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import mmenc
from mmenc.cli import main
from mmenc.comparison.datasets import DatasetError, generated_shapes
from mmenc.train import lit_trainer

BACKBONE = "test_convnext"  # timm's tiny test ConvNeXt: 0.2M parameters
TINY = dict(captions=["a {}", "a photo of a {}"], batch_size=6, image_size=32, progress=False)


def _shape_pairs(per_label: int = 3) -> list[tuple[Image.Image, str]]:
    return [(e.input, e.label) for e in generated_shapes(per_label, seed=11)]


def _folder(root, counts: dict[str, int]):
    """An ImageFolder of drawn squares: ``counts`` images per class."""
    for n, (label, count) in enumerate(counts.items()):
        (root / label).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (40, 40), (40 * n, 200 - 10 * i, 90)).save(root / label / f"{i}.png")
    return root


def test_training_lowers_the_loss_and_saves_a_model_that_loads_the_same(tmp_path):
    pairs = _shape_pairs()
    result = mmenc.train.lit(
        BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "m", epochs=4, lr=3e-3, **TINY
    )
    losses = [epoch["loss"] for epoch in result.history]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert sorted(p.name for p in result.path.iterdir()) == ["lit_config.json", "model.safetensors"]
    loaded = mmenc.load(str(result.path), device="cpu")
    assert loaded.family == "lit" and loaded.modalities == {"text", "image"}
    images = [image for image, _ in pairs[:5]]
    assert torch.equal(result.encoder.encode_image(images), loaded.encode_image(images))
    assert torch.equal(
        loaded.encode_text(["a star"]), mmenc.load("tiny-bert").encode_text(["a star"])
    )  # the text side is the frozen text encoder
    assert loaded.logit_scale == pytest.approx(result.history[-1]["logit_scale"], abs=1e-3)


def test_validation_can_be_a_dataset_or_none(tmp_path):
    pairs = _shape_pairs(2)
    held = [(e.input, e.label) for e in generated_shapes(1, seed=12)]
    result = mmenc.train.lit(
        BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "a", epochs=1, validation=held, **TINY
    )
    assert 0 <= result.history[0]["val_top1"] <= 1
    assert mmenc.load(str(result.path)).config["training"]["validation_images"] == 6
    result = mmenc.train.lit(
        BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "b", epochs=1, validation=0, **TINY
    )
    assert result.history[0]["val_top1"] is None


def test_the_same_seed_gives_the_same_weights(tmp_path):
    pairs = _shape_pairs(2)
    a = mmenc.train.lit(BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "a", epochs=2, **TINY)
    b = mmenc.train.lit(BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "b", epochs=2, **TINY)
    c = mmenc.train.lit(
        BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "c", epochs=2, seed=1, **TINY
    )
    assert _same_weights(a.path, b.path)
    assert not _same_weights(a.path, c.path)


def test_resume_after_an_interruption_ends_with_the_same_weights(tmp_path, monkeypatch):
    pairs = _shape_pairs()
    whole = mmenc.train.lit(BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "a", epochs=3, **TINY)

    save = lit_trainer._Run.save

    def save_then_stop(run, out, state_dir):
        save(run, out, state_dir)
        if len(run.history) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after epoch 2

    monkeypatch.setattr(lit_trainer._Run, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        mmenc.train.lit(BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "b", epochs=3, **TINY)
    monkeypatch.setattr(lit_trainer._Run, "save", save)
    assert (tmp_path / "b" / "checkpoint").is_dir()
    with pytest.raises(FileExistsError, match="resume=True"):
        mmenc.train.lit(BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "b", epochs=3, **TINY)

    resumed = mmenc.train.lit(
        BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "b", epochs=3, resume=True, **TINY
    )
    assert _same_weights(whole.path, resumed.path)
    assert [e["loss"] for e in resumed.history] == [e["loss"] for e in whole.history]
    assert not (tmp_path / "b" / "checkpoint").exists()

    with pytest.raises(ValueError, match=r"other settings.*training"):
        mmenc.train.lit(
            BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "b", epochs=3, lr=0.1,
            resume=True, **TINY,
        )  # fmt: skip


def _same_weights(a, b) -> bool:
    left, right = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


# -- bad input ---------------------------------------------------------------------------------


def test_one_class_is_refused(tmp_path):
    pairs = [(image, "star") for image, _ in _shape_pairs(1)]
    with pytest.raises(DatasetError, match=r"one class.*at least two"):
        mmenc.train.lit(BACKBONE, "tiny-bert", pairs, out_dir=tmp_path / "m", **TINY)


def test_a_class_with_no_images_is_named(tmp_path):
    root = _folder(tmp_path / "data", {"cat": 4, "dog": 4})
    (root / "fox").mkdir()
    with pytest.raises(DatasetError, match="no training image: 'fox'"):
        mmenc.train.lit(BACKBONE, "tiny-bert", root, out_dir=tmp_path / "m", **TINY)


def test_unreadable_images_are_reported_skipped_and_counted(tmp_path, caplog):
    root = _folder(tmp_path / "data", {"cat": 5, "dog": 5})
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING, logger="mmenc.train"):
        result = mmenc.train.lit(
            BACKBONE, "tiny-bert", root, out_dir=tmp_path / "m", epochs=1, validation=0.2, **TINY
        )
    assert [source for source, _ in result.skipped] == [str(root / "dog" / "broken.png")]
    assert "skipped 1 unreadable" in caplog.text and "broken.png" in caplog.text
    config = mmenc.load(str(result.path)).config["training"]
    assert config["training_images"] + config["validation_images"] == 10


def test_an_encoder_without_text_is_refused(tmp_path):
    with pytest.raises(mmenc.UnsupportedModalityError, match=r"tiny-vit.*not text"):
        mmenc.train.lit(BACKBONE, "tiny-vit", _shape_pairs(1), out_dir=tmp_path / "m", **TINY)


def test_text_datasets_and_bad_arguments_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="holds texts"):
        mmenc.train.lit(BACKBONE, "tiny-bert", "topics", out_dir=tmp_path / "m", **TINY)
    for bad in ({"epochs": 0}, {"batch_size": 1}, {"lr": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            mmenc.train.lit(
                BACKBONE, "tiny-bert", _shape_pairs(1), out_dir=tmp_path / "m", **{**TINY, **bad}
            )


# -- the command line --------------------------------------------------------------------------


def test_cli_trains_a_model_that_mmenc_loads(tmp_path, capsys):
    root = _folder(tmp_path / "data", {"cat": 4, "dog": 4})
    out = tmp_path / "model"
    args = ["train", "lit", BACKBONE, "--dataset", str(root), "--out", str(out)]
    args += ["--text-encoder", "tiny-bert", "--epochs", "2", "--image-size", "32", "-q"]
    args += ["--batch-size", "4", "-t", "a photo of a {}"]
    assert main(args) == 0
    assert f"wrote {out}: 2 epochs" in capsys.readouterr().out
    assert mmenc.load(str(out)).config["training"]["captions"] == [
        "a photo of a cat",
        "a photo of a dog",
    ]
    with pytest.raises(SystemExit, match="already holds a LiT model"):
        main(args)


# -- the shipped model -------------------------------------------------------------------------

DIGIT_PROMPTS = ("a handwritten {}.", "a scan of a handwritten digit {}.")
SHAPE_PROMPTS = ("a drawing of a {}.", "a {} on a background.")


@pytest.fixture(scope="module")
def demo():
    return mmenc.load("lit-demo", device="cpu")


def test_lit_demo_is_small_and_never_saw_the_test_prompts(demo):
    from mmenc_lit import DEMO

    assert (DEMO / "model.safetensors").stat().st_size <= 5 * 2**20
    captions = set(demo.config["training"]["captions"])
    labels = [*map(str, range(10)), "zero", "seven", "star", "triangle"]
    prompts = {t.format(label) for t in DIGIT_PROMPTS + SHAPE_PROMPTS for label in labels}
    assert not prompts & captions


@pytest.mark.parametrize(
    ("dataset", "prompts"),
    [
        ("digits-test", DIGIT_PROMPTS),
        ("digits-words-test", DIGIT_PROMPTS),
        ("shapes", SHAPE_PROMPTS),
    ],
)
def test_lit_demo_classifies_held_out_images_zero_shot(demo, dataset, prompts):
    report = mmenc.compare([demo], dataset, templates=list(prompts), progress=False)
    (run,) = report.runs
    assert run.examples >= 300 and not run.errors
    assert run.metrics.top1 >= 0.90, f"{dataset}: top-1 {run.metrics.top1:.1%}"

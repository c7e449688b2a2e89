"""Tiny CLIP-family models (transformers CLIP and SigLIP, open_clip) with the real CLIP BPE vocab.

Each is written in its real on-disk format and loaded back through the path a real checkpoint
of that format takes, so the tests exercise the real loaders. The tokenizer is built offline from
the BPE merges that ship inside open_clip and gives OpenAI's token ids.
"""

from __future__ import annotations

import gzip
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from mmenc.tiny import materialize, seeded

VERSION = 1
IMAGE_SIZE = 32
CLIP_CONTEXT = 77
SIGLIP_CONTEXT = 64  # google/siglip-* tokenizers pad to 64
_MERGES = 49152 - 256 - 2  # the merges OpenAI's CLIP uses from the packaged file
_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}


def tiny_clip() -> Path:
    return materialize(f"tiny-clip-v{VERSION}", _build_clip)


def tiny_siglip() -> Path:
    return materialize(f"tiny-siglip-v{VERSION}", _build_siglip)


def tiny_openclip() -> Path:
    return materialize(f"tiny-openclip-v{VERSION}", _build_openclip)


def clip_tokenizer(model_max_length: int = CLIP_CONTEXT, **kwargs: Any) -> Any:
    """A transformers ``CLIPTokenizer`` with OpenAI's vocabulary, built without the Hub.

    Vocab order is OpenAI's: the 256 byte characters, the same with ``</w>``, one token per
    merge, then ``<|startoftext|>`` and ``<|endoftext|>`` (49,408 entries).
    """
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    packaged = resources.files("open_clip") / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(str(packaged), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[1 : _MERGES + 1]
    # tokenizers wants (left, right) pairs, although transformers annotates list[str]
    merges: list[Any] = [tuple(line.split()) for line in lines]
    chars = list(bytes_to_unicode().values())
    words = [*chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges)]
    words += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {word: i for i, word in enumerate(words)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length, **kwargs)


def _text_config(context: int) -> dict[str, Any]:
    return {
        **_TOWER,
        "num_attention_heads": 2,
        "vocab_size": 49408,
        "max_position_embeddings": context,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
    }


def _vision_config() -> dict[str, Any]:
    return {**_TOWER, "num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": 8}


def _build_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    config = CLIPConfig(
        text_config=_text_config(CLIP_CONTEXT), vision_config=_vision_config(), projection_dim=16
    )
    with seeded(0):
        model = CLIPModel(config)
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=clip_tokenizer()).save_pretrained(folder)


def _build_siglip(folder: Path) -> None:
    """SigLIP with the CLIP BPE tokenizer: SigLIP's own is sentencepiece, not packaged offline.

    Like SigLIP's tokenizer it returns only ``input_ids`` (SigLIP was trained without an
    attention mask) and is padded to its maximum length by the encoder.
    """
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    config = SiglipConfig(text_config=_text_config(SIGLIP_CONTEXT), vision_config=_vision_config())
    with seeded(0):
        model = SiglipModel(config)
    model.logit_scale.data.fill_(math.log(10.0))  # SigLIP's initial t' and b, not 0 and 0
    model.logit_bias.data.fill_(-10.0)
    tokenizer = clip_tokenizer(SIGLIP_CONTEXT, model_input_names=["input_ids"])
    images = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    images.save_pretrained(folder)


def _build_openclip(folder: Path) -> None:
    """open_clip's folder layout: ``open_clip_config.json`` + ``open_clip_model.safetensors``."""
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 2, "width": 32, "head_width": 16,
                       "patch_size": 8},
        "text_cfg": {"context_length": CLIP_CONTEXT, "vocab_size": 49408, "width": 32,
                     "heads": 2, "layers": 2},
    }  # fmt: skip
    preprocess_cfg = {"size": IMAGE_SIZE, "interpolation": "bicubic", "resize_mode": "shortest"}
    with seeded(0):
        model = CLIP(**model_cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

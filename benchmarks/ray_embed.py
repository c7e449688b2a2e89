"""all-MiniLM-L6-v2 (real weights) on Ray Data: ``mmenc.integrations.ray.embed`` with 2 actors on
a local Ray instance against ``encode_text`` in one process, on the same machine.

Each timed Ray run is a whole job, as a user runs it: actors start, each loads the model once,
the rows are embedded and gathered in Ray's object store. The fixed part of that (a job of 2
rows) is reported beside the overhead per row, with the throughput once it is taken out, so
the ratio at other sizes can be estimated. The peer's model is loaded before it is timed.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from benchmarks.common import Row, alternate, sentences

TARGET = 0.8
ACTORS = 2


def available() -> bool:
    """Whether the ``mmenc[ray]`` extra is installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def run(n: int = 2000, repeats: int = 3, batch_size: int = 32) -> list[Row]:
    import pyarrow as pa
    import ray
    import ray.data

    import mmenc
    from mmenc.integrations import ray as mmenc_ray

    texts = sentences(n)
    started_here = not ray.is_initialized()
    if started_here:
        cores = os.cpu_count() or 2
        ray.init(num_cpus=cores, include_dashboard=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    cpus = int(ray.cluster_resources().get("CPU", 0))
    try:
        dataset = ray.data.from_items([{"text": t} for t in texts]).materialize()
        encoder = mmenc.load("minilm-l6", device="cpu")

        def job(source: ray.data.Dataset) -> ray.data.Dataset:
            return mmenc_ray.embed(
                source,
                "minilm-l6",
                column="text",
                batch_size=batch_size,
                concurrency=ACTORS,
                preserve_order=True,
            ).materialize()

        # the warm-up pass of each, and the check that they agree
        result = job(dataset)
        table = pa.concat_tables(ray.get(result.to_arrow_refs()))
        ours = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
        theirs = encoder.encode_text(texts, batch_size=batch_size).numpy()
        diff = float(np.abs(ours - theirs).max())
        t_ours, t_peer = alternate(
            lambda: job(dataset),
            lambda: encoder.encode_text(texts, batch_size=batch_size),
            repeats,
            warm_up=False,
        )
        tiny = dataset.limit(2).materialize()
        start = time.perf_counter()
        job(tiny)
        fixed = time.perf_counter() - start
    finally:
        if started_here:
            ray.shutdown()
    overhead_ms = (t_ours - t_peer) / n * 1000
    steady = n / max(t_ours - fixed, 1e-9)  # with the fixed start-up taken out
    return [
        Row(
            f"MiniLM-L6 text, {n} sentences, Ray Data {ACTORS} actors x 1 thread "
            f"(local Ray, {cpus} CPUs)",
            n / t_ours,
            n / t_peer,
            "texts/s",
            f"mmenc encode_text in one process, {_threads()} threads",
            TARGET,
            f"max abs difference {diff:.1e}; overhead {overhead_ms:+.2f} ms/row; a 2-row job "
            f"takes {fixed:.1f} s (actors start, each loads the model); without it "
            f"{steady:.1f} texts/s = {steady / (n / t_peer):.2f}x",
        )
    ]


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    import torch

    torch.set_grad_enabled(False)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for row in run():
        print(row, f"ratio {row.ratio:.2f}")

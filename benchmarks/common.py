"""Timing helpers: alternate the contenders, take medians, report ratios."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    mmenc_rate: float
    peer_rate: float
    unit: str
    peer: str
    target: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.mmenc_rate / self.peer_rate


def alternate(
    ours: Callable[[], object], peer: Callable[[], object], repeats: int, *, warm_up: bool = True
) -> tuple[float, float]:
    """Median seconds of each, run alternately after one warm-up each (unless the caller has
    warmed both already), so drift hits both."""
    if warm_up:
        ours(), peer()
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for _ in range(repeats):
        for key, fn in (("ours", ours), ("peer", peer)):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return statistics.median(times["ours"]), statistics.median(times["peer"])


_WORDS = (
    "the a cat dog photo of on in runs sleeps quickly green field morning market price fell "
    "rose model image text encoder library city river mountain small large bright dark old new "
    "happy people children play music train station"
)


def sentences(n: int, seed: int = 0) -> list[str]:
    """n sentences of 5-120 words drawn from a fixed vocabulary with a fixed seed."""
    rng = random.Random(seed)
    words = _WORDS.split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 120))) for _ in range(n)]


def markdown(rows: list[Row]) -> str:
    lines = [
        "| row | mmenc | peer | peer library | ratio | target | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "✓" if r.ratio >= r.target else "✗"
        lines.append(
            f"| {r.name} | {r.mmenc_rate:,.1f} {r.unit} | {r.peer_rate:,.1f} {r.unit} "
            f"| {r.peer} | {r.ratio:.2f}x {ok} | ≥ {r.target}x | {r.note} |"
        )
    return "\n".join(lines)

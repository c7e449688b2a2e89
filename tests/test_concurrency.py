"""One loaded model shared by many threads (a web service): no exception, and every result equal
to the single-threaded one. Fast tokenizers raise "Already borrowed" when two threads use one
at once; mmenc must not let that reach its callers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch
from helpers import TEST_DEVICE
from mmenc_text._tiny_classify import tiny_sentiment

import mmenc

THREADS, CALLS = 8, 200
TEXTS = [
    "a cat on a mat",
    "two dogs running through a very long and winding field of tall grass at dawn",
    "x",
    "the stock market fell sharply today after the announcement",
    "un café, s'il vous plaît",
    "a photo of a red car parked beside an old stone wall",
]


def _hammer(call: Callable[[int], Any], expected: list[Any]) -> None:
    """``THREADS`` threads make ``CALLS`` calls each, in a seeded random order of the cases;
    every result must equal the single-threaded one for its case."""

    def worker(seed: int) -> list[tuple[int, Any]]:
        order = random.Random(seed).choices(range(len(expected)), k=CALLS)
        return [(case, call(case)) for case in order]

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for rs in pool.map(worker, range(THREADS)) for r in rs]
    assert len(results) == THREADS * CALLS
    for case, result in results:
        _assert_same(result, expected[case])


def _assert_same(result: Any, expected: Any) -> None:
    if isinstance(expected, torch.Tensor):
        assert torch.equal(result, expected)
    else:
        assert result == expected


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Eight callers on 2 cores: torch's own threads on top only oversubscribe them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-bert"])  # fast tokenizers, both
def test_an_encoder_serves_many_threads_with_mixed_text_and_image_batches(name, sample_images):
    encoder = mmenc.load(name, device=TEST_DEVICE)
    cases: list[tuple[str, list[Any]]] = [
        ("text", TEXTS[:3]),
        ("text", TEXTS[2:]),
        ("text", [TEXTS[1]] * 5),
    ]
    if "image" in encoder.modalities:
        cases += [("image", sample_images[:2]), ("image", sample_images[1:])]

    def call(case: int) -> torch.Tensor:
        modality, items = cases[case]
        encode = encoder.encode_text if modality == "text" else encoder.encode_image
        return encode(items, batch_size=2)

    _hammer(call, [call(case) for case in range(len(cases))])


def test_a_pipeline_serves_many_threads():
    pipe = mmenc.pipeline("sentiment-analysis", tiny_sentiment(), batch_size=2, device=TEST_DEVICE)
    cases = [TEXTS[:2], TEXTS[2:5], [TEXTS[5]]]

    def call(case: int) -> Any:
        return pipe(cases[case])

    _hammer(call, [call(case) for case in range(len(cases))])


def test_a_zero_shot_classifier_serves_many_threads(sample_images):
    classifier = mmenc.ZeroShotClassifier("tiny-clip", ["cat", "dog", "car"], device=TEST_DEVICE)
    cases: list[list[Any]] = [TEXTS[:2], sample_images[:2], [TEXTS[3]], sample_images[2:]]

    def call(case: int) -> torch.Tensor:
        return classifier.scores(cases[case])

    _hammer(call, [call(case) for case in range(len(cases))])


def test_a_long_encode_loop_keeps_memory_flat():
    """5,000 calls of 16 texts of varied lengths: resident memory after warm-up grows < 50 MB."""
    psutil = pytest.importorskip("psutil")
    encoder = mmenc.load("tiny-bert", device=TEST_DEVICE)
    rng = random.Random(0)
    words = " ".join(TEXTS).split()
    batches = [
        [" ".join(rng.choices(words, k=rng.randint(1, 24))) for _ in range(16)] for _ in range(50)
    ]
    process = psutil.Process()
    for batch in batches * 4:  # warm-up: every batch shape once, and allocator pools filled
        encoder.encode_text(batch)
    before = process.memory_info().rss
    for call in range(5000):
        encoder.encode_text(batches[call % len(batches)])
    growth_mb = (process.memory_info().rss - before) / 2**20
    print(f"resident memory growth over 5,000 calls: {growth_mb:+.1f} MB")
    assert growth_mb < 50, f"resident memory grew {growth_mb:.1f} MB over 5,000 calls"

"""Property tests: arbitrary texts and bytes either encode or fail with a named, clean error."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmenc
from mmenc.inputs import decode_image

# PIL warns about the broken metadata these tests make on purpose
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

SETTINGS = settings(  # derandomized: the same examples on every run, no example database
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ANY_TEXT = st.one_of(st.text(max_size=300), st.none(), st.integers(), st.binary(max_size=20))


@pytest.fixture(scope="module")
def tiny_bert():
    return mmenc.load("tiny-bert", device="cpu")


def _is_bad(item: object) -> bool:
    if not isinstance(item, str):
        return True
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@SETTINGS
@given(st.lists(ANY_TEXT, max_size=8))
def test_any_text_batch_encodes_or_names_exactly_the_bad_items(tiny_bert, items):
    bad = [i for i, item in enumerate(items) if _is_bad(item)]
    if bad:
        with pytest.raises(mmenc.InvalidInputError) as caught:
            tiny_bert.encode_text(items)
        assert [i for i, _ in caught.value.problems] == bad
    out = tiny_bert.encode_text(items, on_error="nan")
    good = [i for i in range(len(items)) if i not in bad]
    assert out.shape == (len(items), tiny_bert.embed_dim)
    assert torch.isnan(out[bad]).all()
    assert torch.allclose(out[good].norm(dim=1), torch.ones(len(good)), atol=1e-5)


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_another_error(data):
    try:
        image = decode_image(data)
    except ValueError as exc:
        assert str(exc)
    else:
        assert image.mode == "RGB"


def _encoded_samples() -> dict[str, bytes]:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")
    samples = {}
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        samples[fmt] = buffer.getvalue()
    return samples


SAMPLES = _encoded_samples()


@SETTINGS
@given(
    st.sampled_from(sorted(SAMPLES)),
    st.floats(0.0, 1.0),
    st.binary(max_size=16),
    st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
)
def test_truncated_or_corrupted_files_fail_cleanly(fmt, keep, junk, flip):
    damaged = bytearray(SAMPLES[fmt][: int(len(SAMPLES[fmt]) * keep)] + junk)
    if damaged:
        damaged[int(flip[0] * len(damaged))] = flip[1]
    try:
        image = decode_image(bytes(damaged))
    except ValueError as exc:
        assert str(exc)
    else:
        assert image.mode == "RGB" and image.width > 0

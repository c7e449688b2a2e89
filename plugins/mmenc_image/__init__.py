"""mmenc plugin: the image tasks, on transformers heads, timm heads and mmenc encoders.

Zero-shot classification, matching and feature extraction work with any registered encoder
that has the needed towers (CLIP, SigLIP, BLIP, ViT, timm ...). Each task lives in a private
module imported when its pipeline is built; this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterator

from mmenc import TaskSpec, hookimpl
from mmenc.tasks import pipeline_factory


@hookimpl
def mmenc_tasks() -> Iterator[TaskSpec]:
    yield TaskSpec(
        name="image-classification",
        factory=pipeline_factory("mmenc_image._classify:ImageClassificationPipeline"),
        default_model="google/vit-base-patch16-224",
        default_revision="3f49326",
        inputs="image",
        description="labels from the model's id2label (transformers or timm heads)",
    )
    yield TaskSpec(
        name="zero-shot-image-classification",
        factory=pipeline_factory("mmenc_image._zero_shot:ZeroShotImageClassificationPipeline"),
        default_model="openai/clip-vit-base-patch32",
        default_revision="3d74acf",
        inputs="image",
        description="scores for candidate labels with any image-text encoder",
    )
    yield TaskSpec(
        name="image-to-text",
        factory=pipeline_factory("mmenc_image._caption:ImageToTextPipeline"),
        default_model="Salesforce/blip-image-captioning-base",
        inputs="image",
        description="a caption per image (BLIP), optionally continuing a prompt",
    )
    yield TaskSpec(
        name="image-text-matching",
        factory=pipeline_factory("mmenc_image._matching:ImageTextMatchingPipeline"),
        default_model="Salesforce/blip-itm-base-coco",
        inputs="image",
        description="how well a text describes an image: BLIP's matching head or cosine",
    )
    yield TaskSpec(
        name="image-feature-extraction",
        factory=pipeline_factory("mmenc_image._features:ImageFeatureExtractionPipeline"),
        default_model="google/vit-base-patch16-224",
        default_revision="3f49326",
        inputs="image",
        description="an embedding per image from any image encoder",
    )

"""Zero-shot classification of images and texts into labels the model never saw.

>>> from mmenc.zeroshot import ZeroShotClassifier
>>> classifier = ZeroShotClassifier("clip-vit-b-32", ["cat", "dog", "car"])
>>> classifier.predict(["photo.jpg"], top_k=2)
"""

from mmenc.zeroshot.classifier import ZeroShotClassifier
from mmenc.zeroshot.templates import TEMPLATE_SETS, resolve_templates

__all__ = ["TEMPLATE_SETS", "ZeroShotClassifier", "resolve_templates"]

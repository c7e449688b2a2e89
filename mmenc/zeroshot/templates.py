"""Built-in prompt templates for zero-shot classification, and how a user's choice resolves.

A template is a format string with one ``{}`` where the label goes. Several templates per label
are averaged into one label embedding (prompt ensembling), which the CLIP paper found worth a few
points of ImageNet accuracy over a single prompt.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

# The 80 prompts the CLIP paper (Radford et al., 2021) ensembles for ImageNet, in its order.
_OPENAI_IMAGENET = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

# The 7-prompt subset the CLIP authors later recommended as nearly as good as all 80.
_SIMPLE = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "photo": ("a photo of a {}.",),
    "openai-imagenet": _OPENAI_IMAGENET,
    "simple": _SIMPLE,
    "text": ("This text is about {}.",),
}
DEFAULT_SETS = {"image": "photo", "text": "text"}
"""The set used when no templates are given, by the modality of the inputs classified."""


def resolve_templates(templates: str | Sequence[str] | None, modality: str) -> tuple[str, ...]:
    """The templates to fill: the modality's default set for None, a set by name, one format
    string, or a list of format strings (each with exactly one ``{}``).

    Raises ValueError saying what is wrong and what is accepted.
    """
    if modality not in DEFAULT_SETS:
        raise ValueError(f"modality must be 'text' or 'image', not {modality!r}")
    if templates is None:
        return TEMPLATE_SETS[DEFAULT_SETS[modality]]
    if isinstance(templates, str):
        if templates in TEMPLATE_SETS:
            return TEMPLATE_SETS[templates]
        if "{" not in templates:
            raise ValueError(
                f"templates {templates!r} is neither a template set ({', '.join(TEMPLATE_SETS)}) "
                "nor a format string with '{}' where the label goes, such as 'a photo of a {}.'"
            )
        templates = [templates]
    if not isinstance(templates, Sequence) or not templates:
        raise ValueError(
            f"templates must be a set name ({', '.join(TEMPLATE_SETS)}), a format string or a "
            f"non-empty list of format strings, not {templates!r}"
        )
    problems = [f"{i}: {why}" for i, t in enumerate(templates) if (why := _template_problem(t))]
    if problems:
        raise ValueError(
            "each template must be a str with exactly one '{}' where the label goes, such as "
            f"'a photo of a {{}}.'; bad templates (index: cause): {'; '.join(problems)}"
        )
    return tuple(templates)


def _template_problem(template: object) -> str | None:
    """Why ``template`` cannot place a label, or None."""
    if not isinstance(template, str):
        return f"expected a str, got {type(template).__name__}"
    try:
        fields = [
            field for _, field, _, _ in string.Formatter().parse(template) if field is not None
        ]
    except ValueError as exc:  # an unmatched brace
        return f"{template!r} is not a valid format string ({exc}); write a literal brace as {{{{"
    if fields != [""]:
        return f"{template!r} has {len(fields)} replacement fields {fields}, not one '{{}}'"
    return None

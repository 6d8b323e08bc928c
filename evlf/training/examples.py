"""Dataset JSONL cases -> chat examples for TRL: prompt turns, images, the EVLF target and the truth for rewards.

The target is what evlf parses: `<think>...</think><answer>{json}</answer>`,
with boxes in the base model family's own convention (encoded by the same
BoxCodec the backends decode with), so a trained model answers exactly what
the pipeline reads. Truth travels in extra columns (`truth_label`,
`truth_boxes` as JSON in the model's convention) that TRL hands to reward
functions as keyword arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from evlf.core.answer_text import answer_text, region_words, think_text
from evlf.core.errors import InputError
from evlf.core.geometry import BoxCodec, BoxConvention
from evlf.core.types import Box

SYSTEM_PROMPT = (
    "You are evlf, a medical imaging assistant. Look at the image, reason briefly inside <think></think>, "
    "then give the answer as JSON inside <answer></answer>."
)
DEFAULT_QUESTION = "What is the diagnosis? Draw a box around each lesion."
#: The confidence written in targets; the model learns to state it, it is not calibrated.
TARGET_CONFIDENCE = 0.9
BOX_PRECISION = {BoxConvention.UNIT: 2, BoxConvention.GRID_1000: 0, BoxConvention.RESIZED_PIXELS: 0, BoxConvention.PIXELS: 0}


class ChatExample(BaseModel):
    """One training example before it becomes a `datasets` row."""

    id: str
    system: str
    user: str
    image_paths: list[str]
    completion: str
    truth_label: str | None
    truth_boxes: list[list[float]]  # in the model's convention
    image_sizes: list[tuple[int, int]]
    modality: str | None = None


def region_of(box: Box, size: tuple[int, int]) -> str:
    """Coarse place of a box in words ("upper left", "centre", ...)."""
    return region_words((box.x0 + box.x1) / 2 / size[0], (box.y0 + box.y1) / 2 / size[1])


def target_text(label: str | None, boxes: Sequence[Box], codec: BoxCodec, modality: str | None = None) -> str:
    """The EVLF answer the model should write, boxes encoded in the codec's convention.

    Unit boxes are written with exactly two decimals (0.05, 0.40, capped at 0.99): a fixed number of digits
    per coordinate, which a model can copy digit by digit from what its vision tower reports.
    """
    unit = codec.convention is BoxConvention.UNIT
    precision = BOX_PRECISION[codec.convention]
    coords = [codec.encode(b) if unit else codec.encode(b, precision=precision) for b in boxes]
    think = think_text(label, [region_of(b, codec.original) for b in boxes], f"{modality} image. " if modality else "")
    findings = [(label or "lesion", TARGET_CONFIDENCE, c) for c in coords]
    return answer_text(label, TARGET_CONFIDENCE, findings, think, unit_boxes=unit)


#: Makes a codec for one image from its original (width, height).
CodecFactory = Callable[[tuple[int, int]], BoxCodec]


def unit_codec(size: tuple[int, int]) -> BoxCodec:
    return BoxCodec(BoxConvention.UNIT, size)


def pipeline_prompt(case: Any, convention: BoxConvention) -> tuple[str, str]:
    """(system, user) exactly as the graph's reason node builds them for this case (its specialty's prompt).

    Training on these teaches a model the prompts it will be given by `evlf diagnose` and `evlf eval`.
    """
    from evlf.agents.nodes.reason import compose_request
    from evlf.core.imaging import load_image
    from evlf.core.plugins import get_host
    from evlf.eval.runner import case_to_study

    if not case.specialty:
        raise InputError(None, f"case {case.id!r} names no specialty; pipeline prompts need one")
    specialty = get_host().registries.specialties.get(case.specialty)
    options = specialty.Options()
    study = case_to_study(case)
    images = specialty.preprocess([load_image(p) for p in case.images], options)
    request, _ = compose_request(study, images, specialty, options, convention, constrained=False)
    return request.system, request.turns[-1].text


def build_examples(
    dataset: str | Path,
    codec_for: CodecFactory = unit_codec,
    question: str | None = None,
    system: str = SYSTEM_PROMPT,
    prompts: str = "evlf",
) -> list[ChatExample]:
    """Chat examples for every case of a dataset JSONL (cases without a label are refused).

    `prompts="evlf"` uses one short system prompt and the case's question;
    `prompts="pipeline"` uses the graph's own specialty prompts (longer, but what the model will see).
    """
    from PIL import Image

    from evlf.core.dataset import load_jsonl

    cases = load_jsonl(dataset)
    out: list[ChatExample] = []
    for case in cases:
        if case.label is None:
            raise InputError(Path(dataset), f"case {case.id!r} has no label; training needs the true answer")
        paths = [str(p) for p in case.images]
        sizes = []
        for p in case.images:
            try:
                with Image.open(p) as im:
                    sizes.append(im.size)
            except OSError as exc:
                raise InputError(p, f"cannot read image ({exc})") from None
        codec = codec_for(sizes[0])
        boxes = [Box(x0=b[0], y0=b[1], x1=b[2], y1=b[3]) for b in (case.boxes or [])]
        user = question or case.question or DEFAULT_QUESTION
        case_system = system
        if prompts == "pipeline":
            case_system, user = pipeline_prompt(case, codec.convention)
        out.append(
            ChatExample(
                id=case.id,
                system=case_system,
                user=user,
                image_paths=paths,
                completion=target_text(case.label, boxes, codec, case.modality),
                truth_label=case.label,
                truth_boxes=[codec.encode(b) for b in boxes],
                image_sizes=sizes,
                modality=case.modality,
            )
        )
    return out


def with_completions(examples: Sequence[ChatExample], completions: Mapping[str, str], source: Path) -> list[ChatExample]:
    """The examples with each target replaced by `completions[case id]`; a case without one is refused, naming `source`."""
    missing = [ex.id for ex in examples if ex.id not in completions]
    if missing:
        raise InputError(source, f"no completion given for case {missing[0]!r} ({len(missing)} in all)")
    return [ex.model_copy(update={"completion": completions[ex.id]}) for ex in examples]


def prompt_messages(system: str, user: str, n_images: int) -> list[dict[str, Any]]:
    """The conversational prompt TRL expects (image placeholders first, then the question)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": user})
    return [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": content},
    ]


def flip_example(ex: ChatExample, horizontal: bool, vertical: bool, codec_for: CodecFactory) -> tuple[ChatExample, Callable]:
    """A mirrored copy of an example (target and truth rewritten) and the PIL transform to apply to its images."""
    from PIL import Image

    w, h = ex.image_sizes[0]
    codec = codec_for((w, h))
    boxes = []
    for coords in ex.truth_boxes:
        b = codec.decode(coords, clip_to_image=False)
        x0, x1 = (w - b.x1, w - b.x0) if horizontal else (b.x0, b.x1)
        y0, y1 = (h - b.y1, h - b.y0) if vertical else (b.y0, b.y1)
        boxes.append(Box(x0=x0, y0=y0, x1=x1, y1=y1))

    def transform(img: Image.Image) -> Image.Image:
        if horizontal:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if vertical:
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return img

    flipped = ex.model_copy(
        update={
            "id": f"{ex.id}-flip{'h' if horizontal else ''}{'v' if vertical else ''}",
            "completion": target_text(ex.truth_label, boxes, codec, ex.modality),
            "truth_boxes": [codec.encode(b) for b in boxes],
        }
    )
    return flipped, transform


def to_dataset(examples: Sequence[ChatExample], flips: bool = False, codec_for: CodecFactory = unit_codec) -> Any:
    """A `datasets.Dataset` in TRL's conversational prompt-completion form with an `images` column."""
    from datasets import Dataset
    from PIL import Image

    rows: list[dict[str, Any]] = []
    variants = [(False, False)] + ([(True, False), (False, True), (True, True)] if flips else [])
    for ex in examples:
        images = [Image.open(p).convert("RGB") for p in ex.image_paths]
        for horizontal, vertical in variants:
            if horizontal or vertical:
                item, transform = flip_example(ex, horizontal, vertical, codec_for)
                item_images = [transform(im) for im in images]
            else:
                item, item_images = ex, images
            rows.append(
                {
                    "id": item.id,
                    "prompt": prompt_messages(item.system, item.user, len(item_images)),
                    "completion": [{"role": "assistant", "content": [{"type": "text", "text": item.completion}]}],
                    "images": item_images,
                    "truth_label": item.truth_label or "",
                    "truth_boxes": json.dumps(item.truth_boxes),
                }
            )
    return Dataset.from_list(rows)


def answer_corpus(examples: Sequence[ChatExample]) -> list[str]:
    """Texts a tokenizer should encode compactly: prompts and targets."""
    texts = [ex.completion for ex in examples]
    texts += [ex.system for ex in examples] + [ex.user for ex in examples]  # with their frequencies: BPE merges what recurs
    return texts

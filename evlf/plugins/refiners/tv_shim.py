"""Just enough of torchvision for `import segment_anything` where torchvision cannot be installed.

segment-anything imports four functions from torchvision at module import:
`resize` and `to_pil_image` (ResizeLongestSide.apply_image) and `batched_nms`
and `box_area` (the automatic mask generator). `import_segment_anything` puts
these stand-ins into sys.modules only while segment_anything is first
imported, and only when the real torchvision does not import; the real one is
used whenever it works (a GPU user's install).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from evlf.core.geometry import box_iou_matrix

_SHIM_NAMES = (
    "torchvision",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "torchvision.ops",
    "torchvision.ops.boxes",
)


def to_pil_image(image: Any) -> Any:
    """HxWxC uint8 array (or HxW) -> PIL image, as torchvision does for numpy input."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return Image.fromarray(arr)


def resize(img: Any, size: Sequence[int]) -> Any:
    """Resize a PIL image to (height, width) with bilinear filtering (PIL always antialiases)."""
    from PIL import Image

    h, w = int(size[0]), int(size[1])
    return img.resize((w, h), Image.BILINEAR)


def box_area(boxes: Any) -> Any:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou_matrix(a: Any, b: Any) -> Any:
    import torch

    ious = box_iou_matrix(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    return torch.as_tensor(ious, dtype=a.dtype, device=a.device)


def nms(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression; indices of kept boxes by decreasing score."""
    import torch

    order = torch.argsort(scores, descending=True)
    keep: list[int] = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    overlaps = _iou_matrix(boxes[order], boxes[order])
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        suppressed |= overlaps[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def batched_nms(boxes: Any, scores: Any, idxs: Any, iou_threshold: float) -> Any:
    """NMS within each category `idxs` (boxes of different categories never suppress each other)."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _shim_modules() -> dict[str, types.ModuleType]:
    mods = {}
    for name in _SHIM_NAMES:
        mod = types.ModuleType(name, "evlf stand-in for torchvision (segment_anything import only)")
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        mods[name] = mod
    mods["torchvision.transforms.functional"].resize = resize  # type: ignore[attr-defined]
    mods["torchvision.transforms.functional"].to_pil_image = to_pil_image  # type: ignore[attr-defined]
    mods["torchvision.ops.boxes"].batched_nms = batched_nms  # type: ignore[attr-defined]
    mods["torchvision.ops.boxes"].box_area = box_area  # type: ignore[attr-defined]
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]  # type: ignore[attr-defined]
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    mods["torchvision"].transforms = mods["torchvision.transforms"]  # type: ignore[attr-defined]
    mods["torchvision"].ops = mods["torchvision.ops"]  # type: ignore[attr-defined]
    return mods


def torchvision_works() -> bool:
    try:
        importlib.import_module("torchvision.transforms.functional")
        importlib.import_module("torchvision.ops.boxes")
        return True
    except Exception:  # absent, or installed but broken beside this torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def import_segment_anything() -> types.ModuleType:
    """`segment_anything`, with the real torchvision when it imports and the stand-ins otherwise."""
    if "segment_anything" in sys.modules:
        return sys.modules["segment_anything"]
    if torchvision_works():
        return importlib.import_module("segment_anything")
    shims = _shim_modules()
    sys.modules.update(shims)
    try:
        return importlib.import_module("segment_anything")
    finally:  # the stand-ins stay bound inside segment_anything only
        for name, mod in shims.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]

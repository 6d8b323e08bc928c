"""Stage 0 of the demo recipe: train the Lite0 tower's detection head on frozen trunk features, with flips.

The trunk is frozen, so its features are computed once per image (and per
flip) and the head trains on them in seconds an epoch. Images go through the
model's own image processor, so the head sees exactly what the tower sees
when the pipeline runs. Losses: a centre heatmap (penalty-reduced focal loss,
as CenterNet), L1 + GIoU on the box at each true centre cell and its
neighbours, cross-entropy on the image's type.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evlf.models.lite0_vision import LABELS, Detection, DetectionHead, cell_boxes, decode, pixel_key, trunk_features

FLIPS = ((False, False), (True, False), (False, True), (True, True))


@dataclass
class Cached:
    feats: torch.Tensor  # (N, 112, h, w) float16
    labels: torch.Tensor  # (N,)
    boxes: list[list[list[float]]]  # unit boxes per item
    ids: list[str]
    keys: list[str] = field(default_factory=list)  # pixel digests (evlf.models.lite0_vision.pixel_key)


def _flip_boxes(boxes: list[list[float]], horizontal: bool, vertical: bool) -> list[list[float]]:
    out = []
    for x0, y0, x1, y1 in boxes:
        if horizontal:
            x0, x1 = 1 - x1, 1 - x0
        if vertical:
            y0, y1 = 1 - y1, 1 - y0
        out.append([x0, y0, x1, y1])
    return out


def _features(image_processor: Any, items: list[tuple[str, bool, bool]], batch: int = 32) -> tuple[torch.Tensor, list[str]]:
    """Trunk features (float16) of images given as (path, flip left-right, flip top-bottom), one CPU thread."""
    from PIL import Image

    torch.set_num_threads(1)  # on a shared CPU one thread per process wastes far less time spinning
    out, keys = [], []
    for start in range(0, len(items), batch):
        views = []
        for path, horizontal, vertical in items[start : start + batch]:
            with Image.open(path) as im:
                view = im.convert("RGB")
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if horizontal else view
            views.append(view.transpose(Image.Transpose.FLIP_TOP_BOTTOM) if vertical else view)
        pixels = image_processor(images=views, return_tensors="pt")["pixel_values"]
        out.append(trunk_features(pixels).to(torch.float16))
        keys += [pixel_key(p) for p in pixels]
    return torch.cat(out), keys


def cache_features(dataset: Path, image_processor: Any, flips: int = 1, workers: int = 2, cache: Path | None = None) -> Cached:
    """Trunk features of every case (x `flips` mirrored variants), with unit-box and label targets, over `workers` processes.

    With `cache`, features are read from that file when it exists and written there when computed.
    """
    if cache is not None and cache.is_file():
        return torch.load(cache, weights_only=False)
    data = _compute(dataset, image_processor, flips, workers)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(data, cache)
    return data


def _compute(dataset: Path, image_processor: Any, flips: int, workers: int) -> Cached:
    from concurrent.futures import ProcessPoolExecutor

    from PIL import Image

    cases = [json.loads(line) for line in Path(dataset).read_text().splitlines() if line.strip()]
    root = Path(dataset).parent
    items, labels, boxes, ids = [], [], [], []
    for case in cases:
        path = str(root / case["images"][0])
        with Image.open(path) as im:
            w, h = im.size
        unit = [[b[0] / w, b[1] / h, b[2] / w, b[3] / h] for b in case.get("boxes") or []]
        for horizontal, vertical in FLIPS[:flips]:
            items.append((path, horizontal, vertical))
            labels.append(LABELS.index(case["label"]))
            boxes.append(_flip_boxes(unit, horizontal, vertical))
            ids.append(case["id"])
    size = -(-len(items) // max(1, workers))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    if len(chunks) <= 1:
        parts = [_features(image_processor, items)]
    else:
        with ProcessPoolExecutor(len(chunks)) as pool:
            parts = list(pool.map(_features, [image_processor] * len(chunks), chunks))
    keys = [k for _, ks in parts for k in ks]
    return Cached(torch.cat([f for f, _ in parts]), torch.tensor(labels), boxes, ids, keys)


def _targets(boxes: list[list[list[float]]], h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian centre heatmaps (N, h, w), per-cell box targets (N, h, w, 4) and their weights (N, h, w)."""
    n = len(boxes)
    heat = torch.zeros(n, h, w)
    target = torch.zeros(n, h, w, 4)
    weight = torch.zeros(n, h, w)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    for i, bs in enumerate(boxes):
        for b in bs:
            cx, cy = (b[0] + b[2]) / 2 * w - 0.5, (b[1] + b[3]) / 2 * h - 0.5
            sigma = max(0.6, 0.25 * max((b[2] - b[0]) * w, (b[3] - b[1]) * h))
            g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
            heat[i] = torch.maximum(heat[i], g)
            near = ((xs - cx).abs() <= 1) & ((ys - cy).abs() <= 1)
            heat[i][min(h - 1, max(0, round(cy))), min(w - 1, max(0, round(cx)))] = 1.0
            target[i][near] = torch.tensor(b)
            weight[i][near] = torch.maximum(weight[i][near], g[near])
    return heat, target, weight


def _giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ix = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    iy = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = ix * iy
    area = lambda t: (t[:, 2] - t[:, 0]).clamp(min=0) * (t[:, 3] - t[:, 1]).clamp(min=0)
    union = area(a) + area(b) - inter + 1e-7
    cw = torch.maximum(a[:, 2], b[:, 2]) - torch.minimum(a[:, 0], b[:, 0])
    ch = torch.maximum(a[:, 3], b[:, 3]) - torch.minimum(a[:, 1], b[:, 1])
    hull = cw * ch + 1e-7
    return inter / union - (hull - union) / hull


def head_loss(head: DetectionHead, feats: torch.Tensor, labels: torch.Tensor, heat_t: torch.Tensor, box_t: torch.Tensor,
              box_w: torch.Tensor) -> torch.Tensor:
    heat, dist, logits = head(feats)
    p = torch.sigmoid(heat).clamp(1e-4, 1 - 1e-4)
    pos = heat_t.eq(1).float()
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - heat_t) ** 4 * p**2 * torch.log(1 - p)).sum()
    focal = focal / pos.sum().clamp(min=1)
    pred = cell_boxes(dist)
    m = box_w > 0
    if m.any():
        wts = box_w[m]
        l1 = ((pred[m] - box_t[m]).abs().sum(-1) * wts).sum() / wts.sum()
        giou = ((1 - _giou(pred[m], box_t[m])) * wts).sum() / wts.sum()
    else:
        l1 = giou = torch.zeros(())
    return focal + 5 * l1 + 2 * giou + nn.functional.cross_entropy(logits, labels)


def train_head(data: Cached, epochs: int = 15, lr: float = 3e-3, batch: int = 64, seed: int = 0, width: int = 64,
               log: Any = print) -> tuple[DetectionHead, list[dict[str, float]]]:
    """A head fitted on cached features (AdamW, cosine schedule); returns it with the per-epoch loss history."""
    torch.manual_seed(seed)
    head = DetectionHead(width)
    h, w = data.feats.shape[2:]
    heat_t, box_t, box_w = _targets(data.boxes, h, w)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(data.labels) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    history = []
    for epoch in range(epochs):
        t, total, order = time.time(), 0.0, torch.randperm(len(data.labels))
        head.train()
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            loss = head_loss(head, data.feats[idx].float(), data.labels[idx], heat_t[idx], box_t[idx], box_w[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append({"epoch": epoch + 1, "loss": total / len(order), "seconds": time.time() - t})
        log(f"head epoch {epoch + 1}/{epochs} loss {total / len(order):.4f} ({time.time() - t:.1f}s)")
    return head.eval(), history


def predict(head: DetectionHead, feats: torch.Tensor, second: float = 0.3, batch: int = 128) -> list[Detection]:
    out = []
    with torch.no_grad():
        for start in range(0, len(feats), batch):
            heat, dist, logits = head(feats[start : start + batch].float())
            out += decode(heat, dist, logits, second)
    return out


def head_metrics(found: list[Detection], data: Cached) -> dict[str, float]:
    """Type accuracy, mIoU and Acc@0.5 (the harness' Hungarian matching, in unit coordinates)."""
    from evlf.eval.metrics import case_box_ious, grounding_metrics

    entries: list[float] = []
    correct = 0
    for det, truth_label, truth in zip(found, data.labels.tolist(), data.boxes, strict=True):
        correct += int(det.label == LABELS[truth_label])
        entries += case_box_ious(det.boxes, truth)
    g = grounding_metrics(entries)
    return {"cases": len(found), "accuracy": correct / len(found), "miou": g["miou"], "acc50": g["acc50"]}

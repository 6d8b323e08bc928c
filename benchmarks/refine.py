"""Box refinement on the seeded lesion set: how much it tightens a VLM-like box, and what it costs.

Model boxes are simulated by jittering each true box as a VLM errs: the centre
shifts (normal, 15% of the box size per axis), the size scales (log-normal,
sigma 0.25) and the aspect changes (log-normal, sigma 0.2). Reported: mean IoU
to the true box and Acc@0.5 (share with IoU >= 0.5), before and after the
classical refiner, per modality too; time per image for 1, 5 and 20 boxes for
the classical refiner, for a small random SAM (1024 px input, the real prompt
encoder and mask decoder, a 2-block encoder) and for SAM's ViT-B architecture
with random weights (on CUDA in bf16 when present). The SAMs are untrained, so
they are timed only; the headline 20-vs-1-box cost ratio is ViT-B's (the
small SAM's encoder is too cheap for the ratio to mean anything). The last
line is one JSON object of the headline numbers.

    python benchmarks/refine.py [--n-test 200] [--seed 0] [--no-vit-b]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from typing import Any

import numpy as np

from evlf.core.agreement import AgreementPolicy, decide
from evlf.core.geometry import clip, iou
from evlf.core.imaging import load_image
from evlf.core.types import Box, LoadedImage
from evlf.eval.lesions import ensure_lesion_set
from evlf.plugins.refiners.classical import ClassicalRefiner
from evlf.plugins.refiners.sam import SamRefiner


def jitter(rng: np.random.Generator, truth: Box, size: tuple[int, int]) -> Box:
    w, h = truth.width, truth.height
    cx = (truth.x0 + truth.x1) / 2 + rng.normal(0, 0.15) * w
    cy = (truth.y0 + truth.y1) / 2 + rng.normal(0, 0.15) * h
    s, a = float(np.exp(rng.normal(0, 0.25))), float(np.exp(rng.normal(0, 0.2)))
    nw, nh = max(2.0, w * s * np.sqrt(a)), max(2.0, h * s / np.sqrt(a))
    box = clip(Box(x0=cx - nw / 2, y0=cy - nh / 2, x1=cx + nw / 2, y1=cy + nh / 2), size)
    if box.width < 1 or box.height < 1:  # jittered off the image: keep a sliver on the edge
        box = clip(Box(x0=truth.x0, y0=truth.y0, x1=truth.x0 + 2, y1=truth.y0 + 2), size)
    return box


def load_cases(n_test: int, seed: int) -> list[tuple[LoadedImage, list[Box], list[Box], str]]:
    path = ensure_lesion_set("test", seed=seed, n_test=n_test)
    rng = np.random.default_rng(seed)
    cases = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if not rec["boxes"]:
            continue
        image = load_image(path.parent / rec["images"][0])
        truths = [Box(x0=b[0], y0=b[1], x1=b[2], y1=b[3]) for b in rec["boxes"]]
        cases.append((image, truths, [jitter(rng, t, (image.width, image.height)) for t in truths], rec["modality"]))
    return cases


def accuracy(cases: list[Any], refiner: ClassicalRefiner) -> dict[str, Any]:
    """IoU to the truth of the jittered box, the refined box, and the box the default agreement policy keeps."""
    policy = AgreementPolicy()
    before, after, kept, by_mod, statuses = [], [], [], {}, {"verified": 0, "adjusted": 0, "unverified": 0}
    for image, truths, boxes, modality in cases:
        for t, b, r in zip(truths, boxes, refiner.refine(image, boxes)):
            decision = decide(b, r, policy)
            statuses[decision.status] += 1
            before.append(iou(t, b))
            after.append(iou(t, r.box))
            kept.append(iou(t, decision.box))
            by_mod.setdefault(modality, []).append((before[-1], after[-1]))
    b, a, k = np.array(before), np.array(after), np.array(kept)
    return {
        "boxes": len(b),
        "miou_before": round(float(b.mean()), 4),
        "miou_after": round(float(a.mean()), 4),
        "acc50_before": round(float((b >= 0.5).mean()), 4),
        "acc50_after": round(float((a >= 0.5).mean()), 4),
        "miou_policy": round(float(k.mean()), 4),
        "acc50_policy": round(float((k >= 0.5).mean()), 4),
        "policy_status": statuses,
        "per_modality": {
            m: {"boxes": len(v), "miou_before": round(float(np.mean([x for x, _ in v])), 3),
                "miou_after": round(float(np.mean([y for _, y in v])), 3)}
            for m, v in sorted(by_mod.items())
        },
    }


def time_per_image(refiner: Any, cases: list[Any], counts: tuple[int, ...], images: int, reset: Any = None) -> dict[int, float]:
    """Median seconds per image for k boxes (the truth boxes' jitters, repeated to k); caches cleared first."""
    out = {}
    for k in counts:
        times = []
        for image, _, boxes, _ in cases[:images]:
            prompt = [boxes[i % len(boxes)] for i in range(k)]
            if reset:
                reset()
            t = time.perf_counter()
            refiner.refine(image, prompt)
            times.append(time.perf_counter() - t)
        out[k] = statistics.median(times)
    return out


def small_sam() -> Any:
    """SAM at its real input size with the real prompt encoder and decoder, and a 2-block ViT encoder."""
    import torch

    from evlf.plugins.refiners.tv_shim import import_segment_anything

    import_segment_anything()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=1024, patch_size=16, embed_dim=128, depth=2, num_heads=4, mlp_ratio=4.0, out_chans=256,
            qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=14,
            global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256,
        ),
    ).eval()


def vit_b() -> Any:
    from evlf.plugins.refiners.tv_shim import import_segment_anything

    return import_segment_anything().sam_model_registry["vit_b"](checkpoint=None).eval()


def sam_timing(model: Any, cases: list[Any], images: int, label: str) -> dict[str, Any]:
    """Per image: encode once (cache cleared), then decode 1, 5 and 20 boxes from the cached embedding.

    A fresh call costs encode + decode, so s_per_image[k] = encoder + decode(k);
    one fresh 20-box call (cache cleared) is timed as well, as a cross-check.
    """
    import torch

    refiner = SamRefiner.from_model(model)

    def sync() -> None:
        if refiner.device.type == "cuda":
            torch.cuda.synchronize()

    refiner.refine(cases[0][0], cases[0][2][:1])  # warm-up (kernels, allocator)
    encode, decode = [], {1: [], 5: [], 20: []}
    for image, _, boxes, _ in cases[:images]:
        refiner.clear_cache()
        sync()
        t = time.perf_counter()
        refiner.embed(image)
        sync()
        encode.append(time.perf_counter() - t)
        for k in decode:
            t = time.perf_counter()
            refiner.refine(image, [boxes[i % len(boxes)] for i in range(k)])
            sync()
            decode[k].append(time.perf_counter() - t)
    image, _, boxes, _ = cases[0]
    refiner.clear_cache()
    sync()
    t = time.perf_counter()
    refiner.refine(image, [boxes[i % len(boxes)] for i in range(20)])
    sync()
    fresh20 = time.perf_counter() - t
    enc = statistics.median(encode)
    per = {k: enc + statistics.median(v) for k, v in decode.items()}
    return {
        "model": label,
        "device": str(refiner.device) + (" bf16" if refiner.device.type == "cuda" else " fp32"),
        "images": len(encode),
        "encoder_s_per_image": round(enc, 4),
        "s_per_image": {str(k): round(v, 4) for k, v in per.items()},
        "fresh_call_20_boxes_s": round(fresh20, 4),
        "cost_ratio_20_vs_1": round(per[20] / per[1], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="auto", help="classical refiner method")
    parser.add_argument("--timing-images", type=int, default=8)
    parser.add_argument("--no-vit-b", action="store_true", help="skip timing SAM's ViT-B architecture (slow on a CPU)")
    parser.add_argument("--vit-b-images", type=int, default=2)
    args = parser.parse_args(argv)

    cases = load_cases(args.n_test, args.seed)
    print(f"lesion test set: {args.n_test} images, {len(cases)} with lesions, seed {args.seed}")
    classical = ClassicalRefiner(args.method)
    acc = accuracy(cases, classical)
    print(f"classical/{args.method} on {acc['boxes']} jittered boxes:")
    print(f"  mean IoU  {acc['miou_before']:.3f} -> {acc['miou_after']:.3f}")
    print(f"  Acc@0.5   {acc['acc50_before']:.3f} -> {acc['acc50_after']:.3f}")
    print(f"  boxes kept by the default agreement policy (verify 0.7, adjust 0.3): mean IoU {acc['miou_policy']:.3f}, "
          f"Acc@0.5 {acc['acc50_policy']:.3f}; {acc['policy_status']}")
    for m, v in acc["per_modality"].items():
        print(f"  {m:10s} {v['boxes']:4d} boxes  mIoU {v['miou_before']:.3f} -> {v['miou_after']:.3f}")
    ct = time_per_image(classical, cases, (1, 5, 20), args.timing_images)
    print("classical s/image for 1, 5, 20 boxes: " + ", ".join(f"{v:.4f}" for v in ct.values()))

    small = sam_timing(small_sam(), cases, args.timing_images, "small random SAM (untrained; 2-block encoder, 1024 px)")
    sams = [small]
    if not args.no_vit_b:
        sams.append(sam_timing(vit_b(), cases, args.vit_b_images, "SAM ViT-B architecture (random weights)"))
    for sam in sams:
        print(f"{sam['model']} on {sam['device']}: encoder {sam['encoder_s_per_image']:.4f} s/image; "
              "s/image for 1, 5, 20 boxes: " + ", ".join(f"{v:.4f}" for v in sam["s_per_image"].values())
              + f"; 20 vs 1 box: {sam['cost_ratio_20_vs_1']:.2f}x (a fresh 20-box call: {sam['fresh_call_20_boxes_s']:.4f} s)")
    headline = sams[-1]
    result: dict[str, Any] = {
        "benchmark": "refine",
        "seed": args.seed,
        "n_test": args.n_test,
        "method": args.method,
        **{k: acc[k] for k in ("boxes", "miou_before", "miou_after", "acc50_before", "acc50_after", "miou_policy", "acc50_policy")},
        "classical_s_per_image": {str(k): round(v, 4) for k, v in ct.items()},
        "sam_small": small,
        "sam_cost_ratio_20_vs_1": headline["cost_ratio_20_vs_1"],
        "sam_cost_ratio_model": headline["model"],
    }
    if not args.no_vit_b:
        result["sam_vit_b"] = sams[-1]
        result["sam_vit_b_encoder_s"] = sams[-1]["encoder_s_per_image"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

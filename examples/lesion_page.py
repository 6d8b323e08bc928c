"""`make demo`'s lesion page: the truth of the held-out lesion case beside the demo model's report on it.

Usage: python examples/lesion_page.py out/lesion_report.json out/lesion_report.html out/lesion.html
The truth is regenerated from the lesion set's seed (the case is fully
determined by seed, split and index), so nothing here depends on the model.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_examples import lesion_index  # noqa: E402


def _overlay(image: np.ndarray, boxes: list[list[float]], colour: tuple[int, int, int]) -> str:
    """The image with boxes drawn, enlarged 2x, as a PNG data URL."""
    from PIL import Image, ImageDraw

    rgb = Image.fromarray(image).convert("RGB")
    rgb = rgb.resize((rgb.width * 2, rgb.height * 2), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(rgb)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([2 * x0, 2 * y0, 2 * x1 - 1, 2 * y1 - 1], outline=colour, width=3)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def held_out_line() -> str:
    """What the shipped demo model scores on the whole held-out split, from its training_result.json (one case is one case)."""
    from evlf.plugins.backends.demo import DEMO_MODEL_DIR

    result = DEMO_MODEL_DIR / "training_result.json"
    runs = json.loads(result.read_text()).get("pipeline", {}).get("lesions-test", {}) if result.is_file() else {}
    run = runs.get("full") or runs.get("direct")
    if not run:
        return "The demo model's held-out scores are not recorded in its model card."
    return (f"On all {run['n_cases']} held-out cases (<code>{html.escape(run['command'])}</code>) the demo model names the "
            f"lesion type right in {100 * run['accuracy']:.0f}% and its boxes reach mIoU {run['miou']:.2f} "
            f"(Acc@0.5 {run['acc50']:.2f}); see its MODEL_CARD.md. This page shows one case, chosen by a fixed rule "
            "(the first chest-radiograph lesion of the test split), not by how the model did on it.")


def main(report_json: Path, report_html: Path, out: Path) -> int:
    from evlf.eval.lesions import BACKGROUNDS, _tight_box, make_sample
    from evlf.eval.metrics import case_box_ious

    index = lesion_index()
    sample = make_sample(0, "test", index)
    truth = [_tight_box(m) for m in sample.masks]
    report = json.loads(report_json.read_text())
    predicted = [b for f in report.get("findings", []) for b in ([f["refined_box"]] if f.get("refined_box") else f.get("boxes", []))]
    pred_boxes = [[b["x0"], b["y0"], b["x1"], b["y1"]] for b in predicted]
    ious = case_box_ious(pred_boxes, truth)
    label = (report.get("diagnosis") or {}).get("primary", "-")
    verdict = "right" if label == sample.label else "wrong"
    source = BACKGROUNDS[sample.modality].source
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>evlf demo: a held-out synthetic lesion case</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:1150px}} .row{{display:flex;gap:1.5em;align-items:flex-start}}
figure{{margin:0}} figcaption{{font-size:.9em}} .note{{background:#fff3cd;padding:.6em;border-radius:4px}}
iframe{{width:100%;height:1400px;border:1px solid #ccc}}</style></head><body>
<h1>evlf demo: a held-out synthetic lesion case</h1>
<p class="note">This image is <b>not a real lesion</b>: case lesion-test-{index:05d} of evlf's synthetic lesion set
(test split, seed 0, never seen in training) is a computer-drawn <b>{html.escape(sample.label)}</b> on a crop of a real
chest radiograph ({html.escape(source)}). The demo model was trained on such images only. Not for clinical use.</p>
<p>{held_out_line()}</p>
<div class="row">
<figure><img src="{_overlay(sample.image, truth, (0, 170, 0))}"><figcaption><b>Truth</b> (green): {html.escape(sample.label)},
{len(truth)} box(es) {html.escape(json.dumps(truth))}</figcaption></figure>
<figure><img src="{_overlay(sample.image, pred_boxes, (220, 30, 30))}"><figcaption><b>Prediction</b> (red):
{html.escape(label)} ({verdict} type), {len(pred_boxes)} box(es); IoU with the truth (Hungarian-matched):
{html.escape(', '.join(f'{v:.2f}' for v in ious) or '-')}</figcaption></figure>
</div>
<h2>The demo model's report on this image</h2>
<iframe src="{html.escape(report_html.name)}"></iframe>
</body></html>
"""
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}: truth {sample.label}, predicted {label}, IoU {', '.join(f'{v:.2f}' for v in ious) or '-'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.splitlines()[2])
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))

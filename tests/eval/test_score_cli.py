"""`evlf score`: the numbers it prints, and the errors it gives instead of wrong numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evlf.cli import app
from evlf.cli.common import run_app
from evlf.core.errors import InputError
from evlf.eval.aggregate import summarise
from evlf.eval.compare import paired_comparison
from evlf.core.dataset import load_image_folder, load_jsonl
from evlf.eval.scoring import score_files

TRUTH = [
    {"id": "a", "images": ["x.png"], "label": "cyst", "boxes": [[0, 0, 10, 10]], "modality": "CT", "specialty": "radiology"},
    {"id": "b", "images": ["x.png"], "label": "mass", "boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "modality": "MR"},
    {"id": "c", "images": ["x.png"], "label": "cyst", "boxes": [], "modality": "CT"},
    {"id": "d", "images": ["x.png"], "task": "vqa", "question": "Is there a mass?", "answer": "Yes", "modality": "MR"},
]
PRED = [
    {"id": "a", "label": "cyst", "boxes": [[0, 0, 10, 5]]},  # IoU 0.5
    {"id": "b", "label": "cyst", "boxes": [[20, 20, 30, 30]]},  # entries 0, 1
    {"id": "c", "label": "mass", "boxes": [[1, 1, 2, 2]]},  # no true box: one surplus 0
    {"id": "d", "answer": "yes."},
]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_app(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "pred.jsonl", PRED), write(tmp_path / "truth.jsonl", TRUTH)


def test_score_json_by_hand(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pred, truth = files
    code, out, _ = run(["score", "--pred", str(pred), "--truth", str(truth), "--json", "--bootstrap", "200"], capsys)
    assert code == 0
    data = json.loads(out)
    overall = data["overall"]
    assert overall["accuracy"] == pytest.approx(1 / 3)
    # cyst: tp1 fp1 fn1 -> 0.5; mass: tp0 -> 0
    assert overall["f1_macro"] == pytest.approx(0.25)
    assert overall["miou"] == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert overall["acc50"] == pytest.approx(2 / 4)
    assert overall["vqa_exact_match"] == 1.0
    assert overall["n_boxes"] == 4
    ct, mr = data["by_modality"]["CT"], data["by_modality"]["MR"]
    assert ct["accuracy"] == 0.5 and ct["miou"] == pytest.approx(0.25)
    assert mr["accuracy"] == 0.0 and mr["miou"] == pytest.approx(0.5) and mr["n_cases"] == 2
    assert set(data["by_specialty"]) == {"radiology"}
    assert set(overall["ci"]) >= {"accuracy", "f1_macro", "miou", "acc50"}


def test_score_table(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["score", "--pred", str(files[0]), "--truth", str(files[1]), "--bootstrap", "0"], capsys)
    assert code == 0 and "modality=CT" in out and "0.333" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p[:2] + p[3:], "id 'c' has no prediction"),
        (lambda p: [*p, {"id": "zz", "label": "cyst", "boxes": []}], "id 'zz' is not in the truth"),
        (lambda p: [{"id": "a", "label": "cyst"}, *p[1:]], "line 1: missing 'boxes'"),
        (lambda p: [{"id": "a", "boxes": []}, *p[1:]], "line 1: missing 'label'"),
        (lambda p: [p[0], {"id": "b", "label": "cyst", "boxes": [[30, 0, 20, 10]]}, *p[2:]], "line 2: boxes: box 0 [30.0, 0.0, 20.0, 10.0] has x1 < x0"),
        (lambda p: [p[0], p[1], {"id": "c", "label": "banana", "boxes": []}, p[3]], "line 3: label 'banana' is outside the label set"),
        (lambda p: [*p, p[0]], "line 5: duplicate id 'a'"),
    ],
)
def test_bad_input_exits_2_listing_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, expected: str  # type: ignore[no-untyped-def]
) -> None:
    pred = write(tmp_path / "pred.jsonl", edit([dict(r) for r in PRED]))
    truth = write(tmp_path / "truth.jsonl", TRUTH)
    code, out, err = run(["score", "--pred", str(pred), "--truth", str(truth), "--json"], capsys)
    assert code == 2
    assert out == ""
    assert expected in " ".join(err.split())


def test_many_bad_lines_are_listed_up_to_a_limit(tmp_path: Path) -> None:
    truth = write(tmp_path / "truth.jsonl", [{"id": str(i), "label": "x"} for i in range(9)])
    pred = write(tmp_path / "pred.jsonl", [{"id": str(i), "label": "y"} for i in range(9)])
    with pytest.raises(InputError, match=r"line 1: .*line 5: .*and 4 more bad lines"):
        score_files(pred, truth)


def test_explicit_label_set_and_lenient_labels(files: tuple[Path, Path], tmp_path: Path) -> None:
    pred = write(tmp_path / "p2.jsonl", [PRED[0], PRED[1], {"id": "c", "label": "banana", "boxes": []}, PRED[3]])
    with pytest.raises(InputError, match="outside the label set"):
        score_files(pred, files[1], labels=["cyst", "mass"])
    with pytest.raises(InputError, match="truth.jsonl: line 2: label 'mass'"):
        score_files(files[0], files[1], labels=["cyst"])
    results = score_files(pred, files[1], unknown_labels="wrong")
    overall = summarise(results, n_boot=0)["overall"]
    assert overall["n_no_answer"] == 1
    assert overall["accuracy"] == pytest.approx(1 / 3)
    assert set(overall["f1_per_class"]) == {"cyst", "mass"}


def test_null_label_is_a_wrong_answer_not_an_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    pred = write(tmp_path / "p3.jsonl", [{"id": "a", "label": None, "boxes": []}, *PRED[1:]])
    overall = summarise(score_files(pred, files[1]), n_boot=0)["overall"]
    assert overall["accuracy"] == 0.0 and overall["n_no_answer"] == 1


def test_not_json_and_empty_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "label": "x"}\n{oops\n')
    with pytest.raises(InputError, match=r"bad.jsonl: line 2: not JSON"):
        score_files(bad, bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="empty"):
        load_jsonl(empty)
    with pytest.raises(InputError, match="no such file"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_dataset_loader_resolves_paths_and_validates(tmp_path: Path) -> None:
    rows = [*TRUTH, {"id": "e", "images": [], "task": "grounding"}, {"id": "f", "images": ["y.png"], "task": "grounding"}]
    path = write(tmp_path / "ds.jsonl", rows)
    with pytest.raises(InputError) as info:
        load_jsonl(path)
    msg = str(info.value)
    assert "line 5: images: List should have at least 1 item" in msg
    assert "line 6: a grounding case needs 'boxes'" in msg
    cases = load_jsonl(write(tmp_path / "ok.jsonl", TRUTH))
    assert cases[0].images == [tmp_path / "x.png"]
    assert cases[3].task == "vqa" and cases[1].boxes == [[0, 0, 10, 10], [20, 20, 30, 30]]


def test_image_folder_loader(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "img" / name).write_bytes(b"x")
    csv = tmp_path / "labels.csv"
    csv.write_text("filename,label,modality\na.png,cyst,CT\nb.png,mass,\n")
    cases = load_image_folder(tmp_path / "img", csv, modality="MR", specialty="radiology")
    assert [(c.id, c.label, c.modality) for c in cases] == [("a", "cyst", "CT"), ("b", "mass", "MR")]
    csv.write_text("filename,label\na.png,cyst\nc.png,mass\nb.png,\n")
    with pytest.raises(InputError, match=r"line 3: image 'c.png' not found.*line 4: empty label"):
        load_image_folder(tmp_path / "img", csv)


def test_paired_comparison(files: tuple[Path, Path], tmp_path: Path) -> None:
    better = write(
        tmp_path / "b.jsonl",
        [
            {"id": "a", "label": "cyst", "boxes": [[0, 0, 10, 10]]},
            {"id": "b", "label": "mass", "boxes": [[0, 0, 10, 10], [20, 20, 30, 30]]},
            {"id": "c", "label": "cyst", "boxes": []},
            {"id": "d", "answer": "no"},
        ],
    )
    a, b = score_files(files[0], files[1]), score_files(better, files[1])
    cmp = paired_comparison(a, b, n_boot=200, seed=0)
    assert cmp["accuracy"]["diff"] == pytest.approx(2 / 3)
    assert cmp["accuracy"]["only_b_correct"] == 2 and cmp["accuracy"]["only_a_correct"] == 0
    assert cmp["accuracy"]["mcnemar_p"] == pytest.approx(0.5)  # exact binomial, 2 discordant pairs
    assert cmp["miou"]["b"] == pytest.approx(1.0) and cmp["miou"]["diff"] == pytest.approx(1 - 0.375)
    with pytest.raises(InputError, match="different cases"):
        paired_comparison(a, b[:2])


def test_cli_runner_smoke(files: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(app, ["score", "--pred", str(files[0]), "--truth", str(files[1]), "--json"])
    assert result.exit_code == 0, result.output

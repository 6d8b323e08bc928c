"""SFT then GRPO on a tiny LLaVA-style model: a handful of steps each, through the CLI and the library."""

import json
from pathlib import Path

import pytest

from evlf.cli import app
from evlf.cli.common import run_app


def _history(out: Path) -> list[dict]:
    return json.loads((out / "log_history.json").read_text())


@pytest.fixture(scope="session")
def sft_out(tmp_path_factory, lesions, tiny_base) -> Path:
    out = tmp_path_factory.mktemp("sft")
    config = out.parent / "sft.json"
    config.write_text(json.dumps({"max_steps": 24, "batch_size": 6, "learning_rate": 0.005, "logging_steps": 4,
                                  "save_steps": 12, "warmup_ratio": 0.0, "lr_scheduler": "constant"}))
    assert run_app(app, ["train", "sft", str(lesions), "--base", str(tiny_base), "--out", str(out), "--config", str(config)]) == 0
    return out


def test_sft_loss_falls_and_outputs_land(sft_out):
    losses = [h["loss"] for h in _history(sft_out) if "loss" in h]
    assert len(losses) == 6
    assert losses[-1] < 0.6 * losses[0]
    for name in ("model.safetensors", "config.json", "tokenizer.json", "curves.png", "train_summary.json"):
        assert (sft_out / name).is_file(), name
    assert (sft_out / "checkpoints" / "checkpoint-24").is_dir()  # resumable
    summary = json.loads((sft_out / "train_summary.json").read_text())
    assert summary["box_convention"] == "unit" and summary["lora"] is False


def test_sft_resumes_from_its_last_checkpoint(sft_out, lesions, tmp_path):
    from evlf.training.config import SftSettings
    from evlf.training.sft import run_sft

    # same out dir, a longer run: the trainer picks up at step 24 and only does the rest
    summary = run_sft(lesions, sft_out, sft_out, SftSettings(max_steps=28, batch_size=6, learning_rate=0.005, logging_steps=4))
    assert summary["steps"] == 28
    steps = [h["step"] for h in _history(sft_out) if "loss" in h]
    losses = [h["loss"] for h in _history(sft_out) if "loss" in h]
    assert losses[-1] < 0.6 * losses[0]  # it went on from the trained weights, not from the base
    assert steps[-2:] == [24, 28]


def test_grpo_rewards_move(sft_out, lesions, tmp_path):
    from evlf.training.config import GrpoSettings
    from evlf.training.grpo import run_grpo

    settings = GrpoSettings(max_steps=3, batch_size=4, num_generations=4, max_completion_length=64, logging_steps=1,
                            learning_rate=1e-3, temperature=1.0)
    summary = run_grpo(lesions, sft_out, tmp_path / "grpo", settings)
    assert summary["steps"] == 3 and summary["rewards"] == ["format", "accuracy", "grounding"]
    logs = [h for h in _history(tmp_path / "grpo") if "reward" in h]
    assert len(logs) == 3
    # the SFT model writes parts of the EVLF shape, and the rewards tell its samples apart
    assert max(h["rewards/format_reward/mean"] for h in logs) > 0
    assert max(h["reward_std"] for h in logs) > 0
    assert max(h["grad_norm"] for h in logs) > 0  # so the policy was updated
    assert (tmp_path / "grpo" / "curves.png").is_file()


def test_cli_bad_inputs_exit_2(tmp_path, tiny_base, capsys):
    missing = tmp_path / "none.jsonl"
    assert run_app(app, ["train", "sft", str(missing), "--base", str(tiny_base), "--out", str(tmp_path / "o")]) == 2
    assert "none.jsonl" in capsys.readouterr().err
    bad = tmp_path / "cfg.json"
    bad.write_text('{"batch_size": 0}')
    assert run_app(app, ["train", "grpo", str(missing), "--base", str(tiny_base), "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    assert run_app(app, ["train", "sft", str(missing), "--base", str(tmp_path), "--out", str(tmp_path / "o")]) == 2


def test_sft_trains_on_given_completions_and_refuses_a_missing_one(lesions, tiny_base, tmp_path):
    from evlf.core.errors import InputError
    from evlf.training.config import SftSettings
    from evlf.training.sft import run_sft

    ids = [json.loads(line)["id"] for line in lesions.read_text().splitlines()]
    reply = '<think>Seen.</think><answer>{"diagnosis":"cyst","confidence":0.5,"findings":[]}</answer>'
    settings = SftSettings(max_steps=2, batch_size=4, logging_steps=1)
    with pytest.raises(InputError, match=f"no completion given for case '{ids[-1]}'"):
        run_sft(lesions, tiny_base, tmp_path / "missing", settings, completions=dict.fromkeys(ids[:-1], reply))
    summary = run_sft(lesions, tiny_base, tmp_path / "given", settings, completions=dict.fromkeys(ids, reply))
    assert summary["steps"] == 2 and summary["cases"] == len(ids)

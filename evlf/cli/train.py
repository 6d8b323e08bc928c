"""`evlf train sft|grpo`: the paper's two training stages on a dataset JSONL."""

from __future__ import annotations

from pathlib import Path

import typer

from evlf.cli.common import err_console, print_json

train_app = typer.Typer(help="Train a model: SFT, then GRPO with rule-based rewards.", no_args_is_help=True)

DATASET = typer.Argument(..., help="Dataset JSONL (docs/dataset-format.md) with labels and boxes.")
BASE = typer.Option(..., "--base", help="Local model directory to start from.")
OUT = typer.Option(..., "--out", help="Where the trained model, checkpoints, logs and curves go.")
CONFIG = typer.Option(None, "--config", help="JSON file with hyperparameters (see evlf.training.config).")


def _summary(result: dict) -> None:
    err_console.print(
        f"[green]done[/green] {result['stage']}: {result['steps']} steps, loss {result['first_loss']} -> {result['last_loss']}"
    )
    print_json({k: v for k, v in result.items() if k != "settings"})


@train_app.command("sft")
def sft(dataset: Path = DATASET, base: Path = BASE, out: Path = OUT, config: Path | None = CONFIG) -> None:
    """Supervised fine-tuning on EVLF-format targets (completion-only loss)."""
    from evlf.training.config import SftSettings, load_settings
    from evlf.training.sft import run_sft

    settings = load_settings(SftSettings, config)
    _summary(run_sft(dataset, base, out, settings))  # type: ignore[arg-type]


@train_app.command("grpo")
def grpo(dataset: Path = DATASET, base: Path = BASE, out: Path = OUT, config: Path | None = CONFIG) -> None:
    """GRPO with format, accuracy and grounding rewards (usually on the SFT output)."""
    from evlf.training.config import GrpoSettings, load_settings
    from evlf.training.grpo import run_grpo

    settings = load_settings(GrpoSettings, config)
    _summary(run_grpo(dataset, base, out, settings))  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

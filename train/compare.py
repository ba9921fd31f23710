"""Model comparison: several models / epoch budgets trained on one split, tabulated and plotted."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cifar_edge.cli.atomic import atomic_path, write_text_atomic

from . import models
from .training import STATE_FILE, TrainConfig, train

#: Recipe ablations for ``compare --ablate``, per recipe: each drops or swaps one ingredient.
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "classic": {
        "recipe": {},
        "no-augment": {"augment": False},
        "no-label-smoothing": {"label_smoothing": 0.0},
        "no-warmup": {"warmup_epochs": 0.0},
        "adamw": {"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.1},
    },
    "airbench": {
        "recipe": {},
        "no-photo-augment": {"photo_augment": False},
        "no-lookahead": {"lookahead": False},
        "no-label-smoothing": {"label_smoothing": 0.0},
        "bias-lr-1x": {"bias_lr_scale": 1.0},
        "classic-recipe": {"recipe": "classic"},
    },
}

COLUMNS = (
    ("model", "model"),
    ("variant", "recipe"),
    ("epochs", "epochs"),
    ("params", "params"),
    ("macs", "MACs"),
    ("train_wall_s", "wall s"),
    ("cpu_ms_per_image_median", "CPU ms/img"),
    ("val_accuracy", "val acc"),
    ("val_loss", "val loss"),
    ("test_accuracy", "test acc"),
    ("test_loss", "test loss"),
)


def _run_or_reuse(config: TrainConfig) -> dict[str, Any]:
    """Train the run, resume it if it was interrupted, or reuse its summary if it finished."""
    run_dir = Path(config.out)
    summary_file = run_dir / "summary.json"
    state_file = run_dir / STATE_FILE
    if state_file.is_file():
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if summary_file.is_file() and state.get("epochs_done", 0) >= config.epochs:
            return json.loads(summary_file.read_text(encoding="utf-8"))
        return train(config, resume=True)
    return train(config)


def ablation_configs(base: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """``base`` and one variant per ablation of its recipe (:data:`ABLATIONS`), each in its own run
    folder under ``base.out``."""
    recipe = base.recipe or models.recipe_of(base.model)
    return [
        (name, replace(base, out=f"{base.out}/{name}", **changes))
        for name, changes in ABLATIONS.get(recipe, ABLATIONS["classic"]).items()
    ]


def compare_runs(configs: list[TrainConfig], out: str | Path, variants: list[str] | None = None) -> dict[str, Any]:
    """Run every config (same data split: same data, seed and validation size) and write the comparison.

    ``variants`` names each config's recipe in the table (default ``"recipe"``).
    """
    out = Path(out)
    rows = []
    for i, config in enumerate(configs):
        s = _run_or_reuse(config)
        variant = variants[i] if variants else "recipe"
        rows.append({key: s.get(key) for key, _ in COLUMNS} | {"variant": variant, "run": config.out})
    markdown = to_markdown(rows)
    write_text_atomic(out / "comparison.md", markdown + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[k for k, _ in COLUMNS] + ["run"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "comparison.csv", buf.getvalue())
    plot_comparison(rows, out / "comparison.png")
    return {"runs": rows, "markdown": markdown, "table": str(out / "comparison.md")}


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("val_accuracy", "test_accuracy"):
        return f"{100 * value:.2f}%"
    if key in ("val_loss", "test_loss", "cpu_ms_per_image_median"):
        return f"{value:.3f}"
    if key in ("params", "macs"):
        return f"{value:,}"
    if key == "train_wall_s":
        return f"{value:.0f}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the comparison rows."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(key, row[key]) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def plot_comparison(rows: list[dict[str, Any]], path: Path) -> Path:
    """Test accuracy against training wall time, one labelled point per run."""
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row in rows:
        x, y = row["train_wall_s"] or 0.0, 100 * (row["test_accuracy"] or 0.0)
        ax.scatter([x], [y])
        label = f"{row['model']} ({row['epochs']} ep)" + ("" if row["variant"] == "recipe" else f" {row['variant']}")
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Model comparison")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path

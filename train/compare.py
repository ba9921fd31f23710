"""Model comparison: several models / epoch budgets trained on one split, tabulated and plotted."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from edge_sdk._atomic import atomic_path, write_text_atomic

from .training import STATE_FILE, TrainConfig, train

COLUMNS = (
    ("model", "model"),
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


def compare_runs(configs: list[TrainConfig], out: str | Path) -> dict[str, Any]:
    """Run every config (same data split: same data, seed and validation size) and write the comparison."""
    out = Path(out)
    rows = []
    for config in configs:
        s = _run_or_reuse(config)
        rows.append({key: s.get(key) for key, _ in COLUMNS} | {"run": config.out})
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
        ax.annotate(f"{row['model']} ({row['epochs']} ep)", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Model comparison")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path

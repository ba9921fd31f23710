"""Figures of a training-run report: learning curves, confusion matrix, sample predictions.

Everything is drawn with matplotlib's non-interactive Agg backend on explicit
:class:`matplotlib.figure.Figure` objects (never ``pyplot``), so the functions
hold no global state, are safe to call from worker threads and never open a
window. Each function writes one PNG atomically (a temporary file in the same
folder, renamed when complete), creating the output folder if needed, and
returns the path written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cifar_edge.cli.atomic import atomic_path

__all__ = ["plot_confusion_matrix", "plot_curves", "plot_latency_accuracy", "plot_predictions"]

PathLike = str | os.PathLike[str]

DPI = 110
TRAIN_COLOR = "tab:blue"
VAL_COLOR = "tab:orange"
CORRECT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A fresh figure bound to its own Agg canvas (no pyplot, no window)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically and return the path."""
    target = Path(path)
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return target


# ---------------------------------------------------------------------------
# learning curves


def _epoch_axis(ax, epochs: int) -> None:
    """Integer epoch ticks on the x axis, with a sensible range even for one epoch."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if epochs:
        margin = max(0.5, 0.03 * epochs)
        ax.set_xlim(1 - margin, epochs + margin)


def _plot_pair(ax, history: dict[str, list[float]], key: str, title: str) -> None:
    """Draw ``key`` (train) and ``val_key`` (validation) per epoch on ``ax``."""
    drawn = 0
    for name, label, color in ((key, "train", TRAIN_COLOR), (f"val_{key}", "validation", VAL_COLOR)):
        values = history.get(name)
        if values is None or len(values) == 0:
            continue
        y = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=4, color=color, label=label)
        drawn = max(drawn, len(y))
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.grid(True, alpha=0.3)
    _epoch_axis(ax, drawn)
    if drawn:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def plot_curves(history: dict[str, list[float]], path: PathLike) -> Path:
    """Plot accuracy and loss per epoch (train vs validation), plus the learning rate if present.

    ``history`` is a Keras ``History.history`` dict (``accuracy``, ``val_accuracy``,
    ``loss``, ``val_loss``, optionally ``lr``); missing keys are skipped.
    """
    lr = history.get("lr", history.get("learning_rate"))
    has_lr = lr is not None and len(lr) > 0
    ratios = [1.0, 1.0, 0.65] if has_lr else [1.0, 1.0]
    fig = _new_figure((4.6 * sum(ratios) + 0.6, 4.0))
    axes = fig.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    _plot_pair(axes[0], history, "accuracy", "Accuracy")
    _plot_pair(axes[1], history, "loss", "Loss")
    if has_lr:
        ax = axes[2]
        y = np.asarray(lr, dtype=float)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, color="tab:purple")
        finite = y[np.isfinite(y)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
            ax.set_yscale("log")
        ax.set_title("Learning rate")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        _epoch_axis(ax, len(y))
        if ax.get_yscale() == "linear":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return _save(fig, path)


# ---------------------------------------------------------------------------
# confusion matrix


def _row_fractions(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum; rows summing to zero stay zero (no warning, no NaN)."""
    sums = matrix.sum(axis=1, keepdims=True)
    out = np.zeros(matrix.shape, dtype=float)
    np.divide(matrix, sums, out=out, where=sums > 0)
    return out


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    normalize: bool = True,
    title: str = "Confusion matrix",
) -> Path:
    """Draw a confusion-matrix heatmap; ``matrix[i, j]`` counts true class ``i`` predicted as ``j``.

    With ``normalize`` the colours are row fractions and each cell shows its count
    and percentage; otherwise colours and labels are raw counts.
    """
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    n = counts.shape[0]
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for a {n}x{n} confusion matrix")
    counts = counts.astype(float)
    values = _row_fractions(counts) if normalize else counts
    vmax = 1.0 if normalize else max(float(values.max(initial=0.0)), 1.0)

    side = max(4.5, 0.62 * n + 2.5)
    fig = _new_figure((side + 1.0, side))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["Blues"]
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")

    ticks = np.arange(n)
    ax.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.tick_params(length=0)

    fontsize = max(5.0, min(10.0, 70.0 / max(n, 1)))
    for i in range(n):
        for j in range(n):
            count = round(counts[i, j])
            text = f"{count}\n{100.0 * values[i, j]:.1f}%" if normalize else f"{count}"
            r, g, b, _ = cmap(values[i, j] / vmax)
            luminance = 0.299 * r + 0.587 * g + 0.114 * b
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if luminance < 0.5 else "black")
    return _save(fig, path)


# ---------------------------------------------------------------------------
# sample predictions


def _as_displayable(image: np.ndarray) -> np.ndarray:
    """An image array imshow renders as-is: uint8, or floats clipped to [0, 1]; HxWx1 squeezed."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.dtype == np.uint8:
        return img
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img, 0.0, 1.0) if img.max(initial=0.0) <= 1.0 else np.clip(img, 0, 255).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def plot_predictions(
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    n: int = 12,
    top_k: int = 3,
    seed: int = 0,
) -> Path:
    """Show ``n`` sample images (seeded random choice) each beside a bar chart of its top-k probabilities.

    ``images`` are uint8 ``HxWx3``; ``labels`` the true class indices; ``probs``
    the ``(N, classes)`` softmax outputs. Bars are green for the true class, red otherwise.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1).astype(int)
    probs = np.asarray(probs, dtype=float)
    total = len(images)
    if len(labels) != total or len(probs) != total:
        raise ValueError(f"{total} images, {len(labels)} labels and {len(probs)} probability rows")
    if total and probs.ndim != 2:
        raise ValueError(f"probs must be 2-D (images, classes), got shape {probs.shape}")
    num_classes = probs.shape[1] if total else len(class_names)
    if total and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} probability columns")

    count = min(max(n, 0), total)
    if count < total:
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    else:
        chosen = np.arange(total)
    k = max(1, min(top_k, num_classes))

    per_row = min(3, max(count, 1))
    rows = max(1, math.ceil(count / per_row))
    fig = _new_figure((4.4 * per_row, 1.9 * rows + 0.4))
    if count == 0:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no images", ha="center", va="center", transform=ax.transAxes, color="gray")
        return _save(fig, path)

    grid = fig.add_gridspec(rows, 2 * per_row, width_ratios=[1.0, 1.5] * per_row)
    positions = np.arange(k)[::-1]
    for slot, index in enumerate(chosen):
        row, col = divmod(slot, per_row)
        true = int(labels[index])
        true_name = class_names[true] if 0 <= true < len(class_names) else str(true)

        ax_img = fig.add_subplot(grid[row, 2 * col])
        ax_img.imshow(_as_displayable(images[index]), interpolation="nearest",
                      cmap="gray" if images[index].ndim == 2 else None)
        ax_img.set_title(true_name, fontsize=9)
        ax_img.set_xticks([])
        ax_img.set_yticks([])

        ax_bar = fig.add_subplot(grid[row, 2 * col + 1])
        top = np.argsort(-probs[index], kind="stable")[:k]
        values = probs[index, top]
        colors = [CORRECT_COLOR if c == true else WRONG_COLOR for c in top]
        ax_bar.barh(positions, values, color=colors, height=0.7)
        ax_bar.set_yticks(positions, labels=[class_names[c] for c in top], fontsize=8)
        ax_bar.set_xlim(0.0, 1.0)
        ax_bar.set_xticks([0.0, 0.5, 1.0])
        ax_bar.tick_params(axis="x", labelsize=7)
        ax_bar.grid(True, axis="x", alpha=0.3)
        ax_bar.set_axisbelow(True)
        for y, v in zip(positions, values):
            ax_bar.text(min(v, 1.0) + 0.02 if v < 0.75 else v - 0.02, y, f"{v:.2f}", va="center",
                        ha="left" if v < 0.75 else "right", fontsize=7,
                        color="black" if v < 0.75 else "white")
    fig.suptitle(f"Predictions (top-{k}; green = true class)", fontsize=10)
    return _save(fig, path)


def plot_latency_accuracy(points: Sequence[tuple[str, float, float]], path: PathLike, title: str = "") -> Path:
    """A scatter of ``(label, batch-1 latency p50 in ms, accuracy in [0, 1])`` points, latency on a
    log axis: the trade-off between model files and runtimes at a glance. Raises ``ValueError``
    when no point is given."""
    if not points:
        raise ValueError("no (label, latency, accuracy) point to plot")
    fig = _new_figure((7.5, 4.8))
    ax = fig.add_subplot()
    for i, (label, latency_ms, accuracy) in enumerate(points):
        ax.scatter([latency_ms], [100.0 * accuracy], color=f"C{i % 10}", s=40, zorder=3)
        ax.annotate(label, (latency_ms, 100.0 * accuracy), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency p50 (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


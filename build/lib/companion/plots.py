"""The book's matplotlib figures: confusion matrices and training curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes


def confusion(matrix: list[list[int]], labels: list[str], title: str = "", ax: Axes | None = None) -> Axes:
    """Draw a confusion matrix (rows: true label, columns: predicted) with counts in the cells."""
    ax = ax or plt.subplots(figsize=(3.6, 3.2))[1]
    values = np.asarray(matrix)
    ax.imshow(values, cmap="Blues")
    for (i, j), count in np.ndenumerate(values):
        ax.text(j, i, f"{count:,}", ha="center", va="center",
                color="white" if count > values.max() / 2 else "black")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    return ax


def curves(histories: dict[str, list[dict[str, float]]], key: str, ylabel: str, ax: Axes | None = None) -> Axes:
    """One line per run of ``key`` (e.g. ``eval_accuracy``) against epochs, from ``Run.history``."""
    ax = ax or plt.subplots(figsize=(5, 3.2))[1]
    for name, rows in histories.items():
        ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], marker="o", label=name)
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax

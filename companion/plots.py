"""The book's matplotlib figures: confusion matrices, training curves and scores with their intervals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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


def scores(rows: pd.DataFrame, title: str = "", ax: Axes | None = None) -> Axes:
    """Horizontal bars of ``rows["score"]`` (one per index label, top row first) with the 95 % interval
    of each row's ``interval`` ([low, high] or None) as an error bar and the value written beside it."""
    ax = ax or plt.subplots(figsize=(8, 0.6 + 0.42 * len(rows)))[1]
    y = np.arange(len(rows))[::-1]
    values = rows["score"].to_numpy(float)
    low = np.array([v - (i[0] if i else v) for v, i in zip(values, rows["interval"])])
    high = np.array([(i[1] if i else v) - v for v, i in zip(values, rows["interval"])])
    ax.barh(y, values, xerr=[low, high], color="tab:blue", ecolor="black", capsize=3)
    for position, value, upper in zip(y, values, high):
        ax.text(value + upper + 0.005, position, f"{value:.3f}", va="center")
    ax.set(yticks=y, yticklabels=[str(label) for label in rows.index], xlim=(0.4, 1.05), title=title,
           xlabel="accuracy (bars: 95 % Wilson interval)")
    return ax

"""The ablation's pictures (matplotlib, PNG): metric bars with error bars, loss curves, the
distribution of mixer weights per encoder, and the mean weight per encoder by class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def metric_bars(summary: list[dict], metric: str, path: Path) -> Path:
    plt = _plt()
    rows = [s for s in summary if s[metric] is not None]
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(rows) + 2), 4))
    x = np.arange(len(rows))
    ax.bar(x, [s[metric] for s in rows], yerr=[s[f"{metric}_std"] for s in rows], capsize=4,
           color="#4c78a8")  # fmt: skip
    ax.set_xticks(x, [s["variant"] for s in rows], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean ± std over seeds)")
    ax.set_title(f"{metric} per variant")
    return _save(plt, fig, path)


def loss_curves(runs: dict[str, Path], path: Path) -> Path:
    """Training loss per step of each variant (its first seed), from its metrics.jsonl."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, run in runs.items():
        lines = (run / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(x) for x in lines]
        ax.plot([s["step"] for s in steps], [s["loss"] for s in steps], label=name, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    return _save(plt, fig, path)


def weight_distribution(weights, path: Path, title: str) -> Path:
    """Box plot of each encoder's per-video weight over the evaluation videos."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.boxplot([weights.weights[:, e] for e in range(len(weights.encoders))])
    ax.set_xticks(np.arange(1, len(weights.encoders) + 1), weights.encoders, fontsize=8)
    ax.set_ylabel("mixer weight per video")
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, path)


def weights_by_class(weights, path: Path, title: str) -> Path:
    """Mean weight of each encoder per class: grouped bars."""
    plt = _plt()
    classes = sorted(set(weights.labels))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(classes) + 2), 4))
    width = 0.8 / len(weights.encoders)
    labels = np.array(weights.labels)
    for e, name in enumerate(weights.encoders):
        means = [weights.weights[labels == c, e].mean() for c in classes]
        ax.bar(np.arange(len(classes)) + e * width, means, width, label=name)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, fontsize=8)
    ax.set_ylabel("mean mixer weight")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

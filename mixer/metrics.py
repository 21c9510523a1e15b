"""What a researcher watches: one JSON line per logging step, and the curves as a PNG at the end.

``OUT/metrics.jsonl``: step, epoch, loss, lr, grad norm (before clipping), mean mixer weight per
encoder over the step's rows, and data-wait seconds (time the step waited for its batch).
A resumed run first drops the lines after its checkpoint, so the file reads as one clean run.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS_NAME = "metrics.jsonl"
CURVES_NAME = "curves.png"


class MetricsLog:
    def __init__(self, out: Path | None, resume_step: int = 0):
        self.path = None if out is None else Path(out) / METRICS_NAME
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(out: Path) -> Path | None:
    """``OUT/curves.png``: loss and learning rate against the step."""
    records = read_metrics(Path(out) / METRICS_NAME)
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    loss_ax.plot(steps, [r["loss"] for r in records], lw=1)
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("training")
    lr_ax.plot(steps, [r["lr"] for r in records], lw=1, color="tab:orange")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("step")
    fig.tight_layout()
    path = Path(out) / CURVES_NAME
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

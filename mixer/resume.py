"""Training checkpoints: everything a run needs to continue exactly where it stopped.

``OUT/checkpoints/step-000000012/`` holds ``model.safetensors`` (the weights and model spec, as
``mixer.checkpoint`` writes them) and ``trainer.safetensors``: the optimizer's tensors, the torch
RNG state, and in its metadata the optimizer's groups, the scheduler, where the data order
stands (epoch, next batch, step: the stream's order is a function of the seed and those), the
history so far and the store's encoder fingerprints. No pickle anywhere.

A checkpoint is written under a temporary name and renamed into place, so a kill never leaves
half a checkpoint that ``--resume`` could pick; only the last ``keep`` are kept.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .checkpoint import WEIGHTS_NAME, read_spec, save_model

CHECKPOINTS = "checkpoints"
STATE_NAME = "trainer.safetensors"
PREFIX = "step-"


@dataclass
class Progress:
    """Where a run stands: the next batch to train is ``batch`` of ``epoch``."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    # per finished epoch: train loss, train accuracy, val accuracy; the epoch in progress:
    # summed loss, correct and seen rows, summed mixer weights (so results equal a clean run)
    history: dict = field(default_factory=lambda: {"loss": [], "acc": [], "val": []})
    running: dict = field(default_factory=dict)


def save_checkpoint(
    out: Path, model, opt, sched, progress: Progress, fingerprints: dict, keep: int, rows: str = ""
) -> Path:
    """``rows``: a digest of the run's train / val rows (``TrainRows.digest``)."""
    root = Path(out) / CHECKPOINTS
    final = root / f"{PREFIX}{progress.step:09d}"
    tmp = root / f".tmp-{final.name}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    save_model(model, tmp / WEIGHTS_NAME)
    tensors, groups = _optimizer_tensors(opt)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "param_groups": json.dumps(groups),
        "scheduler": json.dumps(sched.state_dict()),
        "progress": json.dumps(asdict(progress)),
        "fingerprints": json.dumps(fingerprints, sort_keys=True),
        "rows": rows,
    }
    save_file(tensors, str(tmp / STATE_NAME), metadata=meta)
    if final.exists():  # the same step saved again (the end of a run that just resumed)
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(root.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted((Path(out) / CHECKPOINTS).glob(f"{PREFIX}*"))
    return found[-1] if found else None


def load_checkpoint(path: Path, model, opt, sched, fingerprints: dict, rows: str = "") -> Progress:
    """Restore model, optimizer, scheduler and RNG from ``path``; the progress saved there.
    Raises ValueError (one line) for another model spec, changed encoder features or other
    train / val rows (``rows``, the digest ``save_checkpoint`` stored)."""
    saved_spec = read_spec(path / WEIGHTS_NAME)
    if saved_spec != model.spec:
        diff = [k for k, v in saved_spec.to_dict().items() if model.spec.to_dict().get(k) != v]
        raise ValueError(
            f"checkpoint {path} was trained with another model spec (differs in {diff}): "
            "resume with the config it was made with, or train into a new --out"
        )
    with safe_open(str(path / STATE_NAME), framework="pt") as f:
        meta = f.metadata()
    saved_fp = json.loads(meta["fingerprints"])
    changed = sorted(e for e in saved_fp if fingerprints.get(e) != saved_fp[e])
    if changed:
        raise ValueError(
            f"checkpoint {path} was trained on other features of encoder(s) {changed} (their "
            "fingerprint in the store changed since): train into a new --out"
        )
    if meta.get("rows") and rows and meta["rows"] != rows:
        raise ValueError(
            f"checkpoint {path} was trained on other train / val rows (the store's ok rows, "
            "the labels or the split changed since): resume with the same ones, or train "
            "into a new --out"
        )
    model.load_state_dict(load_file(str(path / WEIGHTS_NAME)), strict=True)
    tensors = load_file(str(path / STATE_NAME))
    torch.set_rng_state(tensors.pop("rng.torch"))
    opt.load_state_dict(_optimizer_state(tensors, json.loads(meta["param_groups"])))
    sched.load_state_dict(json.loads(meta["scheduler"]))
    return Progress(**json.loads(meta["progress"]))


def _optimizer_tensors(opt) -> tuple[dict, list]:
    state = opt.state_dict()
    tensors = {
        f"opt.{index}.{name}": value.detach().cpu().contiguous()
        for index, values in state["state"].items()
        for name, value in values.items()
    }
    return tensors, state["param_groups"]


def _optimizer_state(tensors: dict, groups: list) -> dict:
    state: dict = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for group in groups:  # JSON made the betas a list
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}

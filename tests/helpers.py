"""Helpers shared by several test modules (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import numpy as np


def direct_encode(name_or_spec, frames: np.ndarray, pad_to: int) -> np.ndarray:
    """What the extraction job stores for one decoded video, computed in-process.

    The job's encoder actor runs one torch thread (its one reserved CPU) and pads every forward
    to ``batch_size``; doing the same here makes the promise bitwise equality, so a test can use
    exact comparison (reduction order changes with the thread count).
    """
    import torch

    from encoders import build_encoder
    from encoders.align import align_tokens

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        grid = build_encoder(name_or_spec).encode([torch.from_numpy(frames)], pad_to=pad_to)
        return align_tokens(grid).to(torch.float16).numpy()[0]
    finally:
        torch.set_num_threads(threads)


def quiet(*_args, **_kwargs) -> None:
    """A ``log=`` / ``echo=`` callback that prints nothing."""


def store_files(root, *prefixes: str, mtimes: bool = False, skip: tuple[str, ...] = ()) -> dict:
    """Every file under ``root/prefix`` (the whole store when no prefix): relative path ->
    bytes, or (bytes, mtime_ns) with ``mtimes`` (proof that a file was not rewritten).
    ``skip``: top-level folders left out (``_jobs`` holds timings that differ run to run)."""
    from pathlib import Path

    root = Path(root)
    out = {}
    for prefix in prefixes or ("",):
        base = root / prefix
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for p in paths:
            rel = p.relative_to(root)
            if p.is_file() and rel.parts[0] not in skip:
                out[str(rel)] = (p.read_bytes(), p.stat().st_mtime_ns) if mtimes else p.read_bytes()
    return out


def run_extract_quietly(input_, store, encoders: str, **config):
    """The extraction job in-process (on the test session's Ray), no progress, no echo."""
    from jobs.config import ExtractConfig
    from jobs.extract import run_extract

    cfg = ExtractConfig(
        input=str(input_), store=str(store), encoders=encoders, progress=False, **config
    )
    return run_extract(cfg, echo=quiet)


def noise_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [n, h, w, 3] noise with a bright red marker top-left (orientation is visible)."""
    out = np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    out[:, : max(1, h // 5), : max(1, w // 3)] = (255, 0, 0)
    return out


def cli_extract_argv(corpus, store, address: str, encoders: str, *extra: str) -> list[str]:
    """`merv extract` as a subprocess argv on the test session's Ray (``--address``), with the
    small shards and batches the job-level tests use."""
    import sys

    return [sys.executable, "-c", "from jobs.cli import main; main()", "extract", str(corpus)] + [
        *("--store", str(store), "--encoders", encoders, "--shard-size", "2"),
        *("--batch-size", "2", "--address", address, "--no-progress", *extra),
    ]


def cli_env(**set_vars: str) -> dict[str, str]:
    """The environment for a CLI subprocess: offline hub, no fault or pause hooks unless set."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MERV_FAULT", "MERV_LOCK"))}
    return {**env, "HF_HUB_OFFLINE": "1", **set_vars}

"""Fixtures: write synthetic features into a real `pipeline.store.FeatureStore`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.store import FeatureStore

T, G = 16, 8


def write_store(
    url: str,
    features: dict[str, np.ndarray],
    labels: Sequence[object] | None,
    failed: Sequence[int] = (),
    shard_size: int = 16,
    columns: dict[str, Sequence[object]] | None = None,
) -> FeatureStore:
    """features[name]: [N, T, G*G, C]; labels go into the manifest's `label` column if given,
    and each of `columns` (name -> one value per row) into a manifest column of its own."""
    n = next(iter(features.values())).shape[0]
    vids = [f"vid{i:04d}" for i in range(n)]
    encoders = {
        name: (int(a.shape[-1]), {"name": name, "fingerprint": name})
        for name, a in features.items()
    }
    st = FeatureStore.create(url, vids, encoders, shard_size=shard_size, time_steps=T, grid=G)
    for shard in range(st.num_shards):
        rows = st.shard_rows(shard)
        block = {name: a[rows.start : rows.stop].copy() for name, a in features.items()}
        man = []
        for r in rows:
            bad = r in failed
            row = {
                "row": r,
                "video_id": vids[r],
                "status": "failed" if bad else "ok",
                "error": "decode error" if bad else None,
            }
            if labels is not None:
                row["label"] = labels[r]
            for name, values in (columns or {}).items():
                row[name] = values[r]
            if bad:
                for a in block.values():
                    a[r - rows.start] = 0
            man.append(row)
        st.write_shard(shard, block, man)
    return FeatureStore.open(url)


def separable(n: int, widths: dict[str, int], informative: str, seed: int = 0, margin: float = 1.0):
    """Two classes; only `informative` carries the class (a shift along one random direction)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    feats = {}
    for name, c in widths.items():
        x = rng.normal(size=(n, T, G * G, c)).astype(np.float32)
        if name == informative:
            direction = rng.normal(size=c).astype(np.float32)
            direction /= np.linalg.norm(direction)
            x += margin * (2 * y - 1)[:, None, None, None] * direction
        feats[name] = x.astype(np.float16)
    return feats, y


def moving_blob(n: int, c: int = 8, seed: int = 0, noise: float = 0.3):
    """Class 0: a blob moves left -> right over time; class 1: the same path right -> left.

    Both classes visit exactly the same positions, so the mean over time is identical and only
    the temporal order tells them apart.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    pattern = rng.normal(size=c).astype(np.float32)
    x = noise * rng.normal(size=(n, T, G, G, c)).astype(np.float32)
    cols = np.round(np.linspace(0, G - 1, T)).astype(int)
    for i in range(n):
        row = rng.integers(G)
        path = cols if y[i] == 0 else cols[::-1]
        for t in range(T):
            x[i, t, row, path[t]] += 2.0 * pattern
    return x.reshape(n, T, G * G, c).astype(np.float16), y


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[..., tuple[str, FeatureStore]]:
    counter = iter(range(1000))

    def make(features, labels, **kw) -> tuple[str, FeatureStore]:
        url = str(tmp_path / f"store{next(counter)}.zarr")
        return url, write_store(url, features, labels, **kw)

    return make


@pytest.fixture(autouse=True)
def _few_threads():
    # Tiny tensors: one intra-op thread is as fast, and far faster when other jobs share the
    # 2 cores (spinning OpenMP workers then dominate).
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture
def synth():
    """Synthetic-data builders (test modules cannot import conftest under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(separable=separable, moving_blob=moving_blob, T=T, G=G)

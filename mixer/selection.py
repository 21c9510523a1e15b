"""What a training run reads: the encoders, the rows, their labels and the split; no features.

Everything here is small (a few numbers per row), so it is decided once, in the driver, and
the features themselves are streamed (``mixer.stream``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .config import TrainConfig
from .dataset import choose_encoders, label_targets, open_store, read_labels
from .objectives import objective_encoders, target_kind
from .splits import read_named_split, split_indices


@dataclass
class TrainRows:
    store_url: str
    encoders: list[str]
    widths: list[int]
    time_steps: int  # after read-time pooling
    grid: int  # after read-time pooling
    classes: list[str]
    rows: np.ndarray  # every selected row (ok for every chosen encoder), ascending
    targets: np.ndarray  # class index of each of ``rows``
    train: np.ndarray  # positions into rows / targets
    val: np.ndarray
    fingerprints: dict[str, str | None]  # per encoder: what a checkpoint was trained on
    texts: list | None = None  # objective lm: the conversation of each of ``rows``
    # Encoders the objective reads beside the model's (a distillation: its teacher's).
    extra_encoders: list[str] = field(default_factory=list)
    # How the model's inputs are made from a video: `feature_recipe` (saved with a checkpoint).
    recipe: dict = field(default_factory=dict)

    @property
    def read_encoders(self) -> list[str]:
        """What a batch holds, in order: the model's encoders, then the objective's own."""
        return self.encoders + self.extra_encoders

    def part(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, targets) of the positions ``which``."""
        return self.rows[which], self.targets[which]

    def digest(self) -> str:
        """What a checkpoint remembers of the rows: their train / val split and targets."""
        h = hashlib.sha256()
        for part in (self.rows[self.train], self.rows[self.val], self.targets):
            h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
            h.update(b"|")
        return h.hexdigest()


def select_rows(config: TrainConfig, log: Callable[[str], None] = print) -> TrainRows:
    """Rows ok for every chosen encoder, their labels, and the split: the named one of
    ``config.split_file`` / ``config.split_column`` (test rows dropped), else the seeded
    stratified ``val_fraction``."""
    st = open_store(config.store)
    url = config.store if isinstance(config.store, str) else st.url
    _refuse_while_written(url)
    chosen, extra, needed = _encoders(st, config, url)
    kind = target_kind(config)  # class labels, conversations, or the rows themselves
    text_run = kind == "text"
    label_map, source = read_labels(st, config.labels, url) if kind == "labels" else (None, "")
    rows = np.sort(np.asarray(st.ok_rows(needed), dtype=np.int64))
    if rows.size == 0:
        raise ValueError(f"store {url} has no rows ok for every encoder of {needed}")
    skipped = len(st.video_ids) - rows.size
    if skipped:
        log(f"dataset: skipping {skipped} row(s) not ok (failed or not yet extracted)")
    texts = None
    if text_run:
        rows, texts = _rows_with_text(st, rows, config, url, log)
    named = read_named_split(
        st, [st.video_ids[r] for r in rows], config.split_file, config.split_column, url
    )
    if named is not None:  # test rows are held out of this run altogether
        counts = named.counts()
        log(f"split from {named.source}: {counts['train']} train, {counts['val']} val, "
            f"{counts['test']} test (held out); val_fraction unused")  # fmt: skip
        kept = named.parts != "test"
        rows, parts = rows[kept], named.parts[kept]
        texts = None if texts is None else [t for t, k in zip(texts, kept, strict=True) if k]
        if rows.size == 0:
            raise ValueError(f"{named.source} puts every ok video in test: nothing to train on")
    if kind != "labels":  # target i is the run's conversation (or row) i; unstratified split
        classes, targets = [], np.arange(rows.size, dtype=np.int64)
        strata = np.zeros(rows.size, dtype=np.int64)
    else:
        classes, labels = label_targets([st.video_ids[r] for r in rows], label_map, source)
        targets = strata = labels.numpy()
    if named is None:
        train, val = split_indices(strata, config.val_fraction, config.seed)
    else:
        train, val = np.nonzero(parts == "train")[0], np.nonzero(parts == "val")[0]
        if train.size == 0:
            raise ValueError(f"{named.source} has no train video among the ok rows")
    return TrainRows(
        store_url=url,
        encoders=chosen,
        widths=[int(st.width(e)) for e in chosen],
        time_steps=config.pool_time or int(st.time_steps),
        grid=config.pool_grid or int(st.grid),
        classes=[str(c) for c in classes],
        rows=rows,
        targets=targets,
        train=train,
        val=val,
        fingerprints={e: (st.encoder_attrs(e) or {}).get("fingerprint") for e in chosen},
        texts=texts,
        extra_encoders=extra,
        recipe=feature_recipe(st, url, chosen, config.pool_grid, config.pool_time),
    )


def _encoders(st, config: TrainConfig, url: str) -> tuple[list[str], list[str], list[str]]:
    """The model's encoders, the objective's own, and every encoder a row must be ok for."""
    chosen = choose_encoders(st, config.encoders, url)
    extra = choose_encoders(st, objective_encoders(config), url)
    row_encoders = choose_encoders(st, config.row_encoders or [], url)
    return chosen, extra, list(dict.fromkeys(chosen + row_encoders + extra))


def feature_recipe(st, url: str, encoders: list[str], pool_grid, pool_time) -> dict:
    """How a model's inputs are made from a video, saved with its checkpoint so `merv embed`
    can make them from new videos: each encoder's spec (as the store recorded it), the store's
    alignment (time steps, grid) and the read-time pooling."""
    specs, decode = {}, {}
    for name in encoders:
        spec = dict((st.encoder_attrs(name) or {}).get("spec") or {})
        spec.pop("fingerprint", None)  # derived: EncoderSpec recomputes it
        decode[name] = spec.pop("decode", None)  # how its frames were decoded (None: exact)
        specs[name] = spec
    return {"store": url, "time_steps": int(st.time_steps), "grid": int(st.grid),
            "pool_grid": pool_grid, "pool_time": pool_time, "encoders": specs,
            "decode": decode}  # fmt: skip


def _rows_with_text(st, rows: np.ndarray, config: TrainConfig, url: str, log):
    """The rows that have text, and their conversations; what does not join is reported."""
    from .lm.text import read_text

    text = read_text(config.objective_options.get("text"), st.manifest(), url)
    vids = [st.video_ids[r] for r in rows]
    no_text, not_ok = text.report(vids)
    if not_ok:
        log(f"text: {len(not_ok)} video(s) of {text.source} are not ok in the store, not "
            f"trained on: {', '.join(not_ok[:5])}{' ...' if len(not_ok) > 5 else ''}")  # fmt: skip
    if no_text:
        log(f"text: {len(no_text)} ok video(s) have no text in {text.source}, left out")
    keep = np.array([v in text.by_video for v in vids], dtype=bool)
    if not keep.any():
        raise ValueError(f"no ok video of store {url} has text in {text.source}")
    return rows[keep], [text.by_video[v] for v, k in zip(vids, keep, strict=True) if k]


def _refuse_while_written(url: str) -> None:
    """A store an extract job is still writing (its lock held by a live job) is refused: its
    rows would change under the run."""
    from pipeline.store.lock import StoreLock, stale_reason

    held = StoreLock(url).read()
    if held is not None and stale_reason(held) is None:
        raise ValueError(
            f"store {url} is still being written by merv extract (host {held['host']}, pid "
            f"{held['pid']}, since {held['started']}): wait until it finishes, then train"
        )

"""Is ``--store`` usable? Checked before anything is created or started, so a wrong path ends
in one line with the fix instead of a traceback from deep inside Zarr."""

from __future__ import annotations

import posixpath

import fsspec

from pipeline.config import ConfigError
from pipeline.store import FeatureStore
from pipeline.store.layout import JOBS_DIR
from pipeline.store.lock import LOCK_FILE


def check_store_target(url: str) -> None:
    """Accept nothing at ``url``, an empty folder, or a store (``zarr.json`` at its root, which
    opening then checks further); refuse a file or a folder holding anything else.

    Raises:
        ConfigError: one line naming ``url``, what is there, and what to pass instead.
    """
    if FeatureStore.exists(url):
        return
    fs, root = fsspec.core.url_to_fs(url)
    if fs.isfile(root):
        raise ConfigError(
            f"--store {url} is a file, not a feature store: pass a folder that does not exist "
            "yet (it is created) or a store an earlier `merv extract` made"
        )
    # ours: the lock a first run takes before it creates the store (and its temporary files),
    # and the job records folder, where the Ray log of a run that stopped early may be
    others = (
        [p for p in fs.ls(root, detail=False) if not _ours(posixpath.basename(p))]
        if fs.isdir(root)
        else []
    )
    if others:
        raise ConfigError(
            f"--store {url} is a folder that holds other files and no feature store (no "
            "zarr.json): pass a new or empty folder; if a first run was interrupted before it "
            "created the store, delete the folder and rerun"
        )


def _ours(name: str) -> bool:
    return name.startswith(LOCK_FILE) or name == JOBS_DIR

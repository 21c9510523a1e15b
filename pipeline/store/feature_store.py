"""``FeatureStore``: a store created or opened, with every part (reading, commit markers,
growth, writing) on one object."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

import fsspec
import zarr

from pipeline.store.errors import StoreError
from pipeline.store.growth import StoreGrowth
from pipeline.store.ids import create_ids
from pipeline.store.layout import FORMAT_VERSION, SAMPLING_RULE, zarr_store
from pipeline.store.root import refuse_missing_root
from pipeline.store.writing import StoreWriting


class FeatureStore(StoreWriting, StoreGrowth):
    @classmethod
    def create(
        cls,
        url: str,
        video_ids: Sequence[str],
        encoders: Mapping[str, tuple[int, dict]],
        shard_size: int,
        time_steps: int = 16,
        grid: int = 8,
        attrs: Mapping[str, Any] | None = None,
    ) -> FeatureStore:
        """A new store (current format version) with one feature array per encoder.

        Args:
            url: where (local path or fsspec URL); nothing may be there yet.
            video_ids: row -> video id (planning passes the sorted ids).
            encoders: name -> (width, spec dict); the spec's ``fingerprint`` is kept apart.
            shard_size: videos per Zarr shard, the unit of writing.
            time_steps, grid: every encoder's features are [time_steps, grid * grid, width].
            attrs: extra group attributes (e.g. ``num_frames``).

        Raises:
            zarr.errors.ContainsGroupError (or ContainsArrayError): something is already at
                ``url``.
            StoreError: a video id contains a NUL character.
        """
        # not open_group(mode="w-"): that refuses any file in the folder, and the job's lock
        # file (``_lock.json``, pipeline/store/lock.py) is there before the store is
        group = zarr.create_group(store=zarr_store(url), zarr_format=3, overwrite=False)
        group.attrs.update(
            {
                "merv_store_version": FORMAT_VERSION,
                "sampling": SAMPLING_RULE,
                "time_steps": time_steps,
                "grid": grid,
                "shard_size": shard_size,
                "num_rows": len(video_ids),
                "encoders": list(encoders),
                **(attrs or {}),
            }
        )
        create_ids(group, FORMAT_VERSION, video_ids)
        store = cls(url, group)
        for name, (width, spec) in encoders.items():
            store._create_feature_array(name, width, spec)
        return store

    @classmethod
    def open(cls, url: str, mode: str = "r") -> FeatureStore:
        """An existing store, of format version 1 or 2.

        Args:
            url: local path or fsspec URL of the store.
            mode: ``"r"`` to read, ``"r+"`` to write and grow it.

        Raises:
            StoreError: nothing at ``url``, a Zarr group that is not a merv store, or a format
                version this code does not know.
        """
        try:
            group = zarr.open_group(store=zarr_store(url), mode=mode, zarr_format=3)
        except FileNotFoundError as err:
            refuse_missing_root(url)
            raise StoreError(f"no feature store at {url}: run `merv extract` first") from err
        return cls(url, group)

    @staticmethod
    def exists(url: str) -> bool:
        """A store is at ``url`` (StoreError when its data is there but its root is lost)."""
        refuse_missing_root(url)
        fs, root = fsspec.core.url_to_fs(url)
        return fs.exists(posixpath.join(root, "zarr.json"))

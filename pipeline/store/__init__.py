"""The feature store: one Zarr v3 group, sharded float16 arrays, a Parquet manifest.

Layout (see README "Store layout")::

    STORE/
      zarr.json                  group attrs: format version, sampling rule, T, grid, shard size
      index/video_id             [N, L] uint8: row -> video id as UTF-8, zero-padded
      features/video_id          [N] strings: the same ids, the features' video_id coordinate
      features/<encoder>         [N, T, G*G, C] float16; chunk = 1 video; shard = shard_size videos
                                 dims (video_id, time, token, channel_<encoder>)
      _manifest/shard-00000.parquet   per-shard manifest rows (status, error, metadata)
      _commits/<encoder>/shard-00000.json   written last: rows committed for that encoder, and
                                 the size + sha256 of its Zarr shard file
      manifest.parquet           all rows, consolidated at the end of a job

Format version 1 (still read and grown as it is): ``index/video_id`` is [N] strings, there is
no ``features/video_id``, and every feature array's dims are (video, time, token, channel).

Modules: ``layout`` (version, paths, dimension names, the shared base), ``ids`` (the id index),
``markers`` (commit markers, per-row status), ``reading``, ``integrity`` (shard checksums,
``merv verify``), ``growth``, ``writing``, ``files`` (atomic small writes, sha256), ``root``
(a lost root ``zarr.json``: refused, rebuilt) and ``feature_store`` (create / open, the class
that has them all).
"""

from pipeline.store.errors import StoreError
from pipeline.store.feature_store import FeatureStore
from pipeline.store.layout import FORMAT_VERSION, SAMPLING_RULE

__all__ = ["FORMAT_VERSION", "SAMPLING_RULE", "FeatureStore", "StoreError"]

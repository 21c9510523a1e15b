"""Growing a store: videos appended as new rows, encoders added or dropped.

Existing rows never move, so features already written stay where they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.store.errors import StoreError
from pipeline.store.ids import rewrite_ids
from pipeline.store.markers import CommitMarkers


class StoreGrowth(CommitMarkers):
    def append_videos(self, video_ids: Sequence[str]) -> None:
        """Add rows at the end (existing rows never move), growing every feature array."""
        if not video_ids:
            return
        n = self.num_rows + len(video_ids)
        rewrite_ids(self.group, self.version, self.video_ids + list(video_ids))
        for name in self.encoders:
            arr = self.array(name)
            arr.resize((n, *arr.shape[1:]))
        self._set_attr("num_rows", n)
        self._video_ids = None
        self._plan = None

    def add_encoder(self, name: str, width: int, spec: dict) -> None:
        if name in self.encoders:
            raise StoreError(f"encoder {name!r} is already in store {self.url}")
        self._create_feature_array(name, width, spec)
        self._set_attr("encoders", [*self.encoders, name])

    def drop_encoder(self, name: str) -> None:
        """Remove an encoder's array and commit markers (to re-extract it with a new spec)."""
        for path in self._commit_glob(name):
            self.fs.rm(path)
        del self.group[f"features/{name}"]
        self._set_attr("encoders", [e for e in self.encoders if e != name])

"""The shard plan of a corpus: rows from the sorted video ids, cut into shards.

Rows are assigned from the sorted video ids, so the same corpus always gives the same rows and
the same shards, whichever machine plans it. A shard is the unit of work and of writing.
Listing the corpus (folders, globs, manifests, LLaVA JSON, WebDataset tars, any fsspec URL) is
``pipeline.sources.list_videos``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.sources.item import VideoItem


@dataclass(frozen=True)
class ShardPlan:
    video_ids: tuple[str, ...]
    shard_size: int

    @property
    def num_rows(self) -> int:
        return len(self.video_ids)

    @property
    def num_shards(self) -> int:
        return -(-self.num_rows // self.shard_size)

    def shard_rows(self, shard: int) -> range:
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.num_rows))

    def shard_of(self, row: int) -> int:
        return row // self.shard_size


def plan_shards(items: list[VideoItem], shard_size: int) -> ShardPlan:
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ids = tuple(it.video_id for it in items)
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate video ids in the corpus")
    return ShardPlan(tuple(sorted(ids)), shard_size)

"""Text that joins the store by ``video_id``: captions or conversations per video.

Sources, any of:

- LLaVA-style JSON: ``[{"id", "video", "conversations": [{"from", "value"}, ...]}, ...]``;
- a CSV / JSONL / Parquet table of ``video_id,caption`` or ``video_id,question,answer``;
- no file: the ``conversations`` (or ``caption``) column that extraction carried from a LLaVA
  JSON or a manifest into the store's manifest.

A video with several entries gets one conversation holding all their turns, in file order (the
reference trains each entry as a sample of its own; here a row of the store is one sample).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}


@dataclass
class Conversation:
    turns: list[tuple[str, str]] = field(default_factory=list)  # (human | gpt, text), alternating

    @property
    def caption(self) -> str:
        """The align stage's text: the last answer (the human turn is dropped)."""
        return self.turns[-1][1]


@dataclass
class TextData:
    by_video: dict[str, Conversation]
    source: str

    def report(self, ok_videos: Iterable[str]) -> tuple[list[str], list[str]]:
        """(ok videos without text, videos with text that are not ok in the store)."""
        ok = set(ok_videos)
        return sorted(ok - self.by_video.keys()), sorted(self.by_video.keys() - ok)


def read_text(path: str | None, manifest=None, store_name: str = "the store") -> TextData:
    """The text of every video, from ``path`` (see the module doc) or the store's manifest."""
    if path is None:
        return _from_manifest(manifest, store_name)
    lower = path.lower()
    if lower.endswith(".json") and _is_llava(path):
        return TextData(_group(_llava_entries(_load_json(path), path)), f"LLaVA JSON {path}")
    from mixer.dataset import read_table

    table = read_table(path, ("video_id",), "text file")
    return TextData(_group(_table_entries(table, path)), f"text file {path}")


def _load_json(path: str):
    import fsspec

    with fsspec.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _is_llava(path: str) -> bool:
    data = _load_json(path)
    return isinstance(data, list) and any(
        isinstance(r, dict) and "conversations" in r for r in data
    )


def _llava_entries(records: Sequence[dict], source: str) -> Iterable[tuple[str, list]]:
    for i, r in enumerate(records):
        if "video" not in r:
            continue  # image or text-only samples of a mixed file
        if "id" not in r:
            raise ValueError(f"{source}: entry {i} has a video but no 'id' (the store's video_id)")
        yield str(r["id"]), _turns(r["conversations"], f"{source} entry {i}")


def _turns(conversation: Sequence[dict], where: str) -> list[tuple[str, str]]:
    turns = []
    for k, turn in enumerate(conversation):
        role = ROLES.get(str(turn.get("from", "")).lower())
        if role is None or "value" not in turn:
            raise ValueError(f"{where}: turn {k} needs from (human/gpt) and value, got {turn}")
        if role != ("human" if k % 2 == 0 else "gpt"):
            raise ValueError(f"{where}: turn {k} is from {role}; turns alternate human, gpt")
        turns.append((role, str(turn["value"])))
    if not turns or turns[-1][0] != "gpt":
        raise ValueError(f"{where}: a conversation ends with a gpt answer")
    return turns


def _table_entries(table, source: str) -> Iterable[tuple[str, list]]:
    cols = set(table.column_names)
    if {"question", "answer"} <= cols:
        rows = zip(*(table.column(c).to_pylist() for c in ("video_id", "question", "answer")),
                   strict=True)  # fmt: skip
        for vid, q, a in rows:
            yield str(vid), [("human", str(q)), ("gpt", str(a))]
    elif "caption" in cols:
        for vid, cap in zip(
            table.column("video_id").to_pylist(), table.column("caption").to_pylist(), strict=True
        ):
            yield str(vid), [("human", "<video>"), ("gpt", str(cap))]
    else:
        raise ValueError(
            f"text file {source} needs video_id,caption or video_id,question,answer columns; "
            f"has {table.column_names}"
        )


def _from_manifest(manifest, store_name: str) -> TextData:
    cols = manifest.column_names
    source = f"the manifest of store {store_name}"
    if "conversations" in cols:  # a JSON list of conversations per video (LLaVA input)
        entries = []
        for vid, text in zip(manifest.column("video_id").to_pylist(),
                             manifest.column("conversations").to_pylist(), strict=True):  # fmt: skip
            for conv in json.loads(text) if text else []:
                entries.append((str(vid), _turns(conv, f"{source}, video {vid}")))
        return TextData(_group(entries), f"{source} (column 'conversations')")
    if "caption" in cols or {"question", "answer"} <= set(cols):
        return TextData(_group(_table_entries(manifest, source)), source)
    raise ValueError(
        f"{source} has no conversations, caption or question/answer column (columns: {cols}): "
        "pass objective_options.text=<LLaVA JSON or a CSV of video_id,caption>"
    )


def _group(entries: Iterable[tuple[str, list]]) -> dict[str, Conversation]:
    out: dict[str, Conversation] = {}
    for vid, turns in entries:
        out.setdefault(vid, Conversation()).turns.extend(turns)
    return out

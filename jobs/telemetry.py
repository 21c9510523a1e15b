"""Per-batch timings of a job: is it decode-bound, encode-bound or write-bound?

Decode and encode seconds are measured on the workers and summed over videos; idle seconds are
how long the encoder actors waited for input between batches (time the accelerator sat idle).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Telemetry:
    store: str
    videos: int
    planned: int
    processed: int = 0
    ok: int = 0
    failed: int = 0
    decode_s: float = 0.0
    encode_s: float = 0.0
    encoder_idle_s: float = 0.0
    write_s: float = 0.0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    # Ray node (``ip/node-id``) -> videos it decoded and encoded: where the work ran
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)
    # encoder -> {"preprocess_s", "forward_s"}: worker seconds spent on each encoder
    encoders: dict[str, dict[str, float]] = field(default_factory=dict)
    batches: list[dict] = field(default_factory=list)
    _start: float = field(default_factory=time.perf_counter, repr=False)
    _last_write_s: float = field(default=0.0, repr=False)
    _batch: dict = field(default_factory=dict, repr=False)

    def record(self, row: dict) -> dict:
        self.processed += 1
        if row["status"] == "ok":
            self.ok += 1
        else:
            self.failed += 1
            self.failures[str(row["video_id"])] = row["error"]
        for stage, column in (("decoded", "decode_node"), ("encoded", "encode_node")):
            if node := row.get(column):
                counts = self.nodes.setdefault(str(node), {"decoded": 0, "encoded": 0})
                counts[stage] += 1
        for key in ("decode_s", "encode_s", "idle_s"):
            self._batch[key] = self._batch.get(key, 0.0) + float(row.get(key, 0.0))
        for key, value in row.items():
            part, _, encoder = key.partition(":")
            if encoder and part in ("preprocess_s", "forward_s"):
                spent = self.encoders.setdefault(encoder, {"preprocess_s": 0.0, "forward_s": 0.0})
                spent[part] += float(value)
        return row

    def batch_done(self, videos: int, write_s_total: float) -> None:
        elapsed = time.perf_counter() - self._start
        entry = {
            "videos": videos,
            "t": round(elapsed, 3),
            "write_s": round(write_s_total - self._last_write_s, 4),
            **{k: round(v, 4) for k, v in self._batch.items()},
        }
        self.decode_s += self._batch.get("decode_s", 0.0)
        self.encode_s += self._batch.get("encode_s", 0.0)
        self.encoder_idle_s += self._batch.get("idle_s", 0.0)
        self._last_write_s, self._batch = write_s_total, {}
        self.batches.append(entry)

    def finish(self, write_s: float) -> None:
        self.write_s = write_s
        self.seconds = time.perf_counter() - self._start

    @property
    def videos_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 and self.processed else 0.0

    def summary(self) -> dict:
        return {
            "store": self.store,
            "videos": self.videos,
            "processed": self.processed,
            "ok": self.ok,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "videos_per_s": round(self.videos_per_s, 3),
            "decode_s": round(self.decode_s, 3),
            "encode_s": round(self.encode_s, 3),
            "encoder_idle_s": round(self.encoder_idle_s, 3),
            "write_s": round(self.write_s, 3),
            "failures": self.failures,
            "nodes": self.nodes,
            "encoders": {
                e: {k: round(v, 4) for k, v in t.items()} for e, t in self.encoders.items()
            },
            "batches": self.batches,
        }

    def report(self) -> str:
        lines = [
            f"done: {self.ok} ok, {self.failed} failed of {self.processed} processed in "
            f"{self.seconds:.1f}s ({self.videos_per_s:.2f} videos/s); worker seconds: decode "
            f"{self.decode_s:.1f}, encode {self.encode_s:.1f}, encoder idle "
            f"{self.encoder_idle_s:.1f}; driver write {self.write_s:.1f}"
        ]
        if self.nodes:
            lines.append(
                f"work on {len(self.nodes)} Ray node(s): "
                + "; ".join(
                    f"{node} decoded {c['decoded']}, encoded {c['encoded']}"
                    for node, c in sorted(self.nodes.items())
                )
            )
        lines += [f"  failed {vid}: {why}" for vid, why in sorted(self.failures.items())]
        return "\n".join(lines)

"""What runs on Ray workers: CPU decode tasks and the encoder actor.

Both take and return Ray Data numpy batches (dict of column -> array). Decode failures never
raise: they come back as rows with ``status == "failed"`` and a one-line ``error``, which the
encoder actor passes through untouched, so one bad file costs one row, not the job.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.embed import FUSED
from pipeline import failures, fetch
from pipeline.decode_rows import decode_rows
from pipeline.decode_settings import DecodeSettings
from pipeline.faults import fault_point


def this_node() -> str:
    """The Ray node this code runs on, as ``ip/node-id-prefix`` (for the job's per-node counts;
    nodes of a one-machine test cluster share the IP, not the id)."""
    import ray

    if not ray.is_initialized():  # called outside Ray (a test holding an actor directly)
        return "local"
    node_id = ray.get_runtime_context().get_node_id()
    return f"{ray.util.get_node_ip_address()}/{node_id[:8]}"


def decode_batch(
    batch: dict[str, np.ndarray],
    num_frames: int,
    read_timeout_s: float = fetch.READ_TIMEOUT_S,
    decode: dict | None = None,
) -> dict[str, np.ndarray]:
    """``decode``: the job's ``DecodeSettings`` as a dict (mode, short side, threads)."""
    fetch.READ_TIMEOUT_S = read_timeout_s  # this worker's time limit for a remote read
    # Each row's source (path, URL or tar member) honouring its start/end; how to reach it and
    # listing-time failures are the work row's own columns (see pipeline.decode_rows).
    out = decode_rows(batch, num_frames, DecodeSettings(**decode) if decode else None)
    out["decode_node"] = np.full(len(out["row"]), this_node())
    return out


def _torch_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


class EncoderActor:
    """Holds every frozen encoder of the job; encodes batches of decoded videos.

    Built once per actor (the expensive part: weights), then called per batch. Output columns
    ``feat:<encoder>`` hold aligned float16 features [n, T, G*G, C]; rows that failed, or that
    did not need that encoder (column ``encoders``), hold zeros. Every forward runs on exactly
    ``batch_size`` videos (zero-padded), so a video's features never depend on which videos
    shared its batch: a resumed job reproduces an uninterrupted one bit for bit.
    """

    def __init__(
        self,
        encoders: list[dict],
        weights: dict[str, str],
        dtype: str,
        use_gpu: bool,
        cpu_threads: int,
        time_steps: int,
        grid: int,
        batch_size: int = 0,
        random_weights: bool = False,
        model: dict | None = None,
    ):
        """``model``: `merv embed`'s model stage (``jobs.embed.EmbedPlan.actor``): ``encoders``
        are then exactly the ones the model reads, aligned to its training store's grid, and
        only its fused tokens leave the actor."""
        import torch

        from encoders import EncoderSpec, build_encoder

        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)
        self.device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
        self.time_steps, self.grid, self.batch_size = time_steps, grid, batch_size
        compute_dtype = _torch_dtype(dtype, self.device)
        # Specs travel as dicts: the registry is per process, and a spec registered from a job's
        # config file on the driver does not exist in a worker's registry.
        specs = [EncoderSpec.from_dict(d) for d in encoders]
        self.encoders = {
            spec.name: build_encoder(
                spec,
                device=self.device,
                dtype=compute_dtype,
                weights=weights.get(spec.name),
                random_init=random_weights and not spec.tiny,
            )
            for spec in specs
        }
        self.stage = None
        if model is not None:
            from jobs.model_stage import ModelStage

            self.time_steps, self.grid = int(model["time_steps"]), int(model["grid"])
            self.stage = ModelStage(model, self.device)
        self.node = this_node()
        self._idle_since = time.perf_counter()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        start = time.perf_counter()
        idle = start - self._idle_since
        frames = batch.pop("frames")
        status, error = list(batch["status"]), list(batch["error"])
        wanted = [set(str(e).split(",")) for e in batch["encoders"]]
        if self.stage is not None:  # a row that needs the model's tokens needs all its inputs
            wanted = [set(self.encoders) if FUSED in w else set() for w in wanted]
        n = len(status)
        fault_point("actor_batch")
        for name, encoder in self.encoders.items():
            rows = [i for i in range(n) if status[i] == "ok" and name in wanted[i]]
            feats = np.zeros(
                (n, self.time_steps, self.grid * self.grid, encoder.spec.width), np.float16
            )
            spent: dict[str, float] = {}
            if rows:
                try:
                    feats[rows] = self._encode(encoder, [frames[i] for i in rows], spent)
                except Exception:  # noqa: BLE001 - one video at a time isolates the culprit
                    for i in rows:
                        try:
                            feats[i] = self._encode(encoder, [frames[i]])[0]
                        except Exception as err:  # noqa: BLE001 - recorded, job goes on
                            status[i] = "failed"
                            # "<class>: <detail>" like every recorded failure, so
                            # reason_class() groups it: "encoder: siglip: <error>".
                            error[i] = f"{failures.ENCODER}: {name}: {failures.one_line(err)}"
            batch[f"feat:{name}"] = feats
            # this encoder's seconds, shared by the batch's rows (telemetry: cost per encoder)
            for part in ("preprocess_s", "forward_s"):
                batch[f"{part}:{name}"] = np.full(n, spent.get(part, 0.0) / max(n, 1))
        if self.stage is not None:
            spent = {}
            self.stage(batch, status, error, spent)
            batch["forward_s:fused"] = np.full(n, spent["forward_s"] / max(n, 1))
        if self.device == "cuda":
            torch.cuda.synchronize()
        batch["status"], batch["error"] = np.asarray(status), np.asarray(error)
        self._idle_since = time.perf_counter()
        batch["encode_s"] = np.full(n, (self._idle_since - start) / max(n, 1))
        batch["idle_s"] = np.full(n, idle / max(n, 1))
        batch["encode_node"] = np.full(n, self.node)
        return batch

    def _encode(self, encoder, videos: list[np.ndarray], spent: dict | None = None) -> np.ndarray:
        """Aligned float16 features of ``videos``, forwarded in fixed-size padded chunks;
        ``spent`` gains the preprocessing and forward seconds."""
        import torch

        from encoders.align import align_tokens

        size = self.batch_size or len(videos)
        out = []
        for lo in range(0, len(videos), size):
            chunk = [torch.from_numpy(np.ascontiguousarray(v)) for v in videos[lo : lo + size]]
            grid = encoder.encode(chunk, pad_to=size, timings=spent)
            out.append(align_tokens(grid, self.time_steps, self.grid).to(torch.float16).cpu())
        return torch.cat(out).numpy()

"""The encoder actor's model stage (`merv embed`): a trained model applied to the features the
actor just made, so only its fused tokens (and its probe's prediction) leave the actor.

The inputs are made as training read them from its store: aligned to the store's grid,
rounded to float16 (the store's dtype), pooled at read time as the run pooled them
(``mixer.readers.pool_features``), then float32. So the tokens equal the model applied to the
stored features of the same video.
"""

from __future__ import annotations

import json

import numpy as np

from jobs.embed import FUSED
from pipeline import failures


class ModelStage:
    def __init__(self, options: dict, device: str):
        from mixer.checkpoint import load_model

        self.model = load_model(options["path"], device).eval()
        self.encoders = list(options["encoders"])
        self.grid = int(options["grid"])
        self.pool = (options.get("pool_grid"), options.get("pool_time"))
        self.device = device
        spec = self.model.spec
        self.probe = spec.objective == "probe" and bool(spec.classes)
        self.shape = (spec.time_steps, spec.tokens_per_step, spec.d_model)

    def __call__(self, batch: dict, status: list, error: list, spent: dict) -> None:
        """Replace the batch's ``feat:<encoder>`` columns with ``feat:fused``; a probe's
        prediction goes into each row's ``extra`` (manifest columns)."""
        import time

        import torch

        from mixer.readers import pool_features

        start = time.perf_counter()
        feats = [batch.pop(f"feat:{e}") for e in self.encoders]
        n = len(status)
        fused = np.zeros((n, *self.shape), np.float16)
        rows = [i for i in range(n) if status[i] == "ok"]
        extra = [json.loads(str(x)) for x in batch["extra"]]
        if rows:
            try:
                inputs = [
                    torch.from_numpy(pool_features(f[rows], self.grid, *self.pool)).float()
                    for f in feats
                ]
                with torch.no_grad():
                    tokens, _ = self.model.fuse([x.to(self.device) for x in inputs])
                    scores = self.model.head(tokens).float().softmax(-1) if self.probe else None
                fused[rows] = tokens.reshape(len(rows), *self.shape).to(torch.float16).cpu()
                for k, i in enumerate(rows):
                    if scores is not None:
                        p, c = scores[k].max(-1)
                        extra[i].update(prediction=self.model.spec.classes[int(c)],
                                        prediction_score=round(float(p), 6))  # fmt: skip
            except Exception as err:  # noqa: BLE001 - recorded, the job goes on
                for i in rows:
                    status[i] = "failed"
                    error[i] = f"{failures.ENCODER}: model: {failures.one_line(err)}"
        batch[f"feat:{FUSED}"] = fused
        batch["extra"] = np.asarray([json.dumps(x, sort_keys=True) for x in extra])
        spent["forward_s"] = time.perf_counter() - start

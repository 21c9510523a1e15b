"""`merv train STORE --workers N [--address ADDR]`: the same training loop as a Ray Train
`TorchTrainer` job. Ray Train starts N workers and their torch process group (gloo on CPU,
nccl on GPU); each runs `mixer.train`, which sees the group and reads its rank's part of every
global batch, exactly as under torchrun."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


def train_loop(loop_config: dict) -> None:
    """What each Ray Train worker runs: the run's config, in this process's group (rank 0
    writes OUT, as under torchrun)."""
    from mixer import TrainConfig, train

    train(TrainConfig.from_dict({**loop_config["config"], "workers": 0, "address": None}))


def train_on_ray(config):
    """Run ``config`` on ``config.workers`` Ray Train workers; rank 0's TrainResult, read from
    the ``results.json`` it writes (OUT must be on storage every node sees; without OUT, a
    temporary folder)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from jobs.cluster import connect_ray
    from mixer import TrainResult

    config = config.replace(out=config.out or tempfile.mkdtemp(prefix="merv-train-"))
    owned = connect_ray(config.address)
    try:
        import ray

        gpus = ray.cluster_resources().get("GPU", 0) >= config.workers and config.device != "cpu"
        cpu = (
            1.0
            if gpus
            else max(0.5, min(1.0, (ray.cluster_resources().get("CPU", 1) - 1) / config.workers))
        )
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={"config": config.to_dict()},
            scaling_config=ScalingConfig(
                num_workers=config.workers, use_gpu=gpus, resources_per_worker={"CPU": cpu}
            ),
            run_config=RunConfig(name="ray-train", storage_path=config.out),
        )
        trainer.fit()
        return TrainResult(**json.loads((Path(config.out) / "results.json").read_text()))
    finally:
        if owned:
            import ray

            ray.shutdown()

"""Run one extract job on Ray's multi-node test cluster (``ray.cluster_utils.Cluster``): a head
and two worker nodes, every address on loopback. Run as a subprocess by test_multinode.py, so
the test session's own Ray stays untouched.

    python tests/jobs/cluster_run.py CORPUS STORE SUMMARY_JSON [--remove-node-after N]

``--remove-node-after N`` removes a worker node (all its processes, Ray's own way of losing a
machine) once the driver has received N batches.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only; read when ray is imported
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LOOPBACK = "127.0.0.1"
NODE_MEMORY = {"object_store_memory": 150 * 2**20}
# A lost node is declared dead after 3 missed 1 s health checks (Ray's default: about 30 s), so
# the test waits seconds, not half a minute, for Ray to give up on it.
FAST_DEATH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("store")
    parser.add_argument("summary")
    parser.add_argument("--remove-node-after", type=int, default=0)
    args = parser.parse_args()

    from ray.cluster_utils import Cluster

    from jobs.config import ExtractConfig
    from jobs.extract import run_extract

    # The head runs the driver and no work; each worker node offers two CPUs, so losing one
    # still leaves room for both encoder actors and a decode task.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": LOOPBACK,
            "_system_config": FAST_DEATH,
            **NODE_MEMORY,
        },
    )
    workers = [
        cluster.add_node(num_cpus=3, node_ip_address=LOOPBACK, **NODE_MEMORY) for _ in range(2)
    ]
    cluster.wait_for_nodes()
    removed = []

    def on_batch(telemetry) -> None:
        if args.remove_node_after and not removed:
            if len(telemetry.batches) >= args.remove_node_after:
                removed.append(workers[0].node_id)
                cluster.remove_node(workers[0], allow_graceful=False)

    cfg = ExtractConfig(
        input=args.corpus,
        store=args.store,
        encoders="tiny",
        shard_size=2,
        batch_size=2,
        encoder_actors=2,
        address=cluster.address,
        progress=False,
    )
    try:
        telemetry = run_extract(cfg, echo=lambda *a: None, on_batch=on_batch)
        summary = {**telemetry.summary(), "removed_node": removed[0][:8] if removed else None}
        Path(args.summary).write_text(json.dumps(summary))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()

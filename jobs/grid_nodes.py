"""Before an ablation grid runs on a cluster: can every node open the store and see the output
folder the driver reads?

Each variant trains on some worker node: it opens the store there and writes its attempt folder
under the grid's ``out``, which the driver then renames and reads. A store or an ``out`` that only
the driver's machine holds would fail every variant after the grid started, or leave results
the driver never sees. So one small task per node checks both first: it opens the store (the
same videos and encoders as the driver's) and reads a file the driver has just written into
``out`` (the same folder, not one of the same name). A failure stops the grid before anything
trains: one line, exit code 2.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.failures import one_line

CHECK_FILE = ".node-check"
ANSWER_TIMEOUT_S = 120.0  # a node's first task starts a worker process: seconds, not minutes


def check_nodes_can_train(store_url: str, out: Path) -> None:
    """Raise ConfigError naming the first node that cannot open the store or see ``out``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from pipeline.store import FeatureStore

    store = FeatureStore.open(store_url)
    expected = {"videos": len(store.video_ids), "encoders": list(store.encoders)}
    token = uuid.uuid4().hex
    check = Path(out) / CHECK_FILE
    check.write_text(token)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        probe = ray.remote(num_cpus=0, max_retries=0)(train_probe)
        refs = [
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(store_url, str(check))
            for n in nodes
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=ANSWER_TIMEOUT_S)
        answers = ray.get(ready)
    finally:
        check.unlink(missing_ok=True)
    for a in answers:
        if a["store"] != expected:
            why = a["store"] if isinstance(a["store"], str) else "another store at that path"
            raise ConfigError(
                f"the store {store_url} cannot be opened from Ray node {a['node']}: {why}; "
                "variants train on every node and read the store there: put it where every "
                "node sees it at the same path (a shared filesystem, s3://, gs://) and rerun"
            )
        if a["out"] != token:
            why = a["out"] or "another folder of the same name"
            raise ConfigError(
                f"the output folder {out} is not the driver's on Ray node {a['node']}: {why}; "
                "variants write their results there and the driver reads them: put `out` on a "
                "filesystem the driver and every node share (NFS) and rerun"
            )


def train_probe(store_url: str, check_file: str) -> dict:
    """On a node: what it sees of the store (videos and encoders, or why not) and the token in
    the driver's check file (or why not; a folder it cannot write is an answer too)."""
    from jobs.workers import this_node
    from pipeline.store import FeatureStore

    try:
        store = FeatureStore.open(store_url)
        seen = {"videos": len(store.video_ids), "encoders": list(store.encoders)}
    except Exception as err:  # noqa: BLE001 - any failure to open is the answer
        seen = f"{type(err).__name__}: {one_line(err, 160)}"
    try:
        token = Path(check_file).read_text()
        if not os.access(Path(check_file).parent, os.W_OK):
            token = f"{Path(check_file).parent} is not writable there"
    except OSError as err:
        token = f"{type(err).__name__}: {one_line(err, 160)}"
    return {"node": this_node(), "store": seen, "out": token}

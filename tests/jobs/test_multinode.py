"""Many nodes on one machine: Ray's own multi-node test cluster (``ray.cluster_utils.Cluster``:
a head and two worker nodes, all on loopback), driven by ``tests/jobs/cluster_run.py`` in a
subprocess so the test session's Ray stays as it is. Work spreads over the nodes, the driver
stays the single writer, and a node removed mid-job loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import cli_env, store_files

CLUSTER_RUN = Path(__file__).with_name("cluster_run.py")


def run_on_cluster(corpus, tmp_path, *extra: str) -> tuple[Path, dict]:
    store, summary = tmp_path / "store", tmp_path / "summary.json"
    argv = [sys.executable, str(CLUSTER_RUN), str(corpus), str(store), str(summary), *extra]
    done = subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return store, json.loads(summary.read_text())


def busy_nodes(summary: dict, stage: str) -> set[str]:
    return {node for node, counts in summary["nodes"].items() if counts[stage]}


def test_work_spreads_over_nodes(cluster_corpus, in_process_store, tmp_path):
    store, summary = run_on_cluster(cluster_corpus, tmp_path)
    assert (summary["ok"], summary["failed"]) == (12, 0)
    assert len(busy_nodes(summary, "decoded")) == 2  # both worker nodes decoded
    assert len(busy_nodes(summary, "encoded")) == 2  # an encoder actor on each
    # written by the driver alone, the store equals the in-process one bitwise
    skip = ("_jobs",)
    assert store_files(store, skip=skip) == store_files(in_process_store, skip=skip)


def test_node_removed_mid_job_loses_nothing(cluster_corpus, in_process_store, tmp_path):
    store, summary = run_on_cluster(cluster_corpus, tmp_path, "--remove-node-after", "1")
    assert summary["removed_node"]  # a worker node really went away after the first batch
    assert (summary["ok"], summary["failed"]) == (12, 0), summary["failures"]
    skip = ("_jobs",)
    assert store_files(store, skip=skip) == store_files(in_process_store, skip=skip)

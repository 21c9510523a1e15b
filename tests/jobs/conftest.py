"""Fixtures of the cluster tests: one small corpus of real and generated clips, and the store
that the in-process job makes of it, which every cluster run must equal bitwise."""

from __future__ import annotations

import shutil

import pytest

# Small real clips of every container the corpus has (mp4, avi, mkv), beside generated ones.
CLUSTER_REAL_CLIPS = (
    "mmaction2_part_0.mp4",
    "mmaction2_test.avi",
    "decord_flipping_a_pancake.mkv",
    "videollava_sample_demo_3.mp4",
)
# Small shards and batches: several of each, so work spreads and a lost node loses some.
CLUSTER_JOB = {"shard_size": 2, "batch_size": 2}


@pytest.fixture(scope="session")
def cluster_corpus(tmp_path_factory, real_corpus):
    from pipeline.synthetic import make_corpus

    folder = tmp_path_factory.mktemp("cluster_corpus")
    for name in CLUSTER_REAL_CLIPS:
        shutil.copy(real_corpus / name, folder / name)
    make_corpus(str(folder), per_class=2, size=64, seed=1)
    return folder


@pytest.fixture(scope="session")
def in_process_store(tmp_path_factory, cluster_corpus, ray_session):
    """The corpus extracted in-process with the tiny encoders (the reference)."""
    from tests.helpers import run_extract_quietly

    store = tmp_path_factory.mktemp("reference") / "store"
    t = run_extract_quietly(cluster_corpus, store, "tiny", **CLUSTER_JOB)
    assert (t.ok, t.failed) == (12, 0)
    return store

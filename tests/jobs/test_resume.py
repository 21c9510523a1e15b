"""Kill the extraction driver (SIGKILL) at many points; each rerun must end bitwise identical.

The driver runs in a subprocess connected to the test session's Ray cluster (as `--address`
would on a real cluster); ``MERV_FAULT`` makes it SIGKILL itself at a named point.
"""

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.store import FeatureStore
from tests.helpers import cli_env, cli_extract_argv, direct_encode, store_files

REPO = Path(__file__).resolve().parents[2]
ENCODERS = "dinov2-tiny,siglip-tiny"


def _extract(corpus, store, address, fault=None, extra=()):
    env = cli_env(MERV_FAULT=fault) if fault else cli_env()
    cmd = cli_extract_argv(corpus, store, address, ENCODERS, *extra)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory, synthetic_corpus, ray_session):
    store = tmp_path_factory.mktemp("clean") / "store.zarr"
    result = _extract(synthetic_corpus[0], store, ray_session)
    assert result.returncode == 0, result.stderr[-2000:]
    return store_files(store, skip=("_jobs",))


@pytest.mark.parametrize(
    "fault",
    [
        "after_create:1",  # store made, nothing computed
        "after_row:3",  # mid-stream: shard 0 written, shard 1 half received
        "after_features:3",  # shard 1: first encoder's block written, second not
        "after_manifest:2",  # shard 1: data and manifest written, no commit markers
        "after_marker:5",  # shard 2: one encoder's marker written, the other's not
        "before_consolidate:1",  # every shard committed, consolidated manifest not written
    ],
)
def test_driver_killed_then_rerun_equals_a_clean_run(
    fault, tmp_path, synthetic_corpus, ray_session, clean_store
):
    store = tmp_path / "store.zarr"
    killed = _extract(synthetic_corpus[0], store, ray_session, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert store_files(store, skip=("_jobs",)) != clean_store  # the kill really left work undone
    rerun = _extract(synthetic_corpus[0], store, ray_session)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resumed = store_files(store, skip=("_jobs",))
    assert sorted(resumed) == sorted(clean_store)
    assert resumed == clean_store
    st = FeatureStore.open(str(store))
    assert st.ok_rows().tolist() == list(range(len(st.video_ids)))  # no missing rows
    assert len(set(st.video_ids)) == len(st.video_ids)  # no duplicates


def _encoder_actor_pids() -> list[int]:
    """Live encoder actors of this test session's own Ray job, as Ray's GCS lists them.

    Found through the session (job id), never by process name across the host: another Ray on
    the same machine (a second test run, a user's cluster) is never touched.
    """
    import ray
    from ray._private import state  # the GCS actor table; the public state API needs a dashboard

    job = ray.get_runtime_context().get_job_id()
    return [
        int(info["Pid"])
        for info in state.actors().values()
        if info["JobID"] == job
        and info["State"] == "ALIVE"
        and "EncoderActor" in info["ActorClassName"]
        and info.get("Pid")
    ]


def test_encoder_actor_killed_mid_batch_still_completes(tmp_path, synthetic_corpus, ray_session):
    """SIGKILL the encoder actor's process after the first batch; Ray restarts and retries it."""
    from jobs.config import ExtractConfig
    from jobs.extract import run_extract

    killed = []

    def kill_actor_once(telemetry):
        if killed:
            return
        for pid in _encoder_actor_pids():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    store = tmp_path / "store.zarr"
    cfg = ExtractConfig(
        input=str(synthetic_corpus[0]),
        store=str(store),
        encoders=ENCODERS,
        shard_size=2,
        batch_size=2,
        progress=False,
    )
    telemetry = run_extract(cfg, on_batch=kill_actor_once)
    assert killed, "no encoder actor was found to kill"
    assert telemetry.failed == 0 and telemetry.ok == len(synthetic_corpus[1])
    st = FeatureStore.open(str(store))
    assert st.ok_rows().tolist() == list(range(len(synthetic_corpus[1])))
    # Same features as an undisturbed in-process encode of one clip (batch size 2, as the job).
    from pipeline.decode import decode_video

    row = len(st.video_ids) - 1
    video = decode_video(str(synthetic_corpus[0] / f"{st.video_ids[row]}.mp4"))
    np.testing.assert_array_equal(
        st.read_rows("siglip-tiny", [row])[0], direct_encode("siglip-tiny", video.frames, pad_to=2)
    )

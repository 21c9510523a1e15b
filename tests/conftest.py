"""Shared fixtures: real clips, generated clips, one Ray session for the whole test run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REAL_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
# Ray's local cluster on loopback only (read when ray is first imported, so set it here).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def real_corpus() -> Path:
    if not REAL_CORPUS.is_dir() or not any(REAL_CORPUS.iterdir()):
        why = (
            f"real clips not found at {REAL_CORPUS}: the tests expect the project's shared/ "
            "folder beside the checkout (../shared/corpus/real)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{why}; CI must provide it", pytrace=False)  # never a silent green
        pytest.skip(why)
    return REAL_CORPUS


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """Eight small labelled clips (2 per class), written once per session."""
    from pipeline.synthetic import make_corpus

    folder = tmp_path_factory.mktemp("synthetic")
    labels = make_corpus(str(folder), per_class=2, size=64, seed=1)
    return folder, labels


@pytest.fixture(scope="session")
def ray_session():
    """Start local Ray once for every test that needs it (about 4 s), shut it down at the end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-protocol server (moto) on loopback; s3fs talks to it over HTTP."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}
    server.stop()

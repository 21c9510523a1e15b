"""Before a cluster job starts: can every worker node read the inputs, and see the store?

Decode tasks run on the worker nodes and read the videos themselves, so an input that only the
driver's machine holds (a local folder, a private mount, credentials only in the driver's
environment) would fail every video, one by one, after the job started. Instead one small task
per node reads a sample of the inputs (the first video of every folder, up to
``SAMPLE_FOLDERS``), checking that each has the driver's size, and the store's lock file,
checking that it holds this job's token (the same store, not a folder of the same name).

An unreadable input stops the job before anything is planned (one line, exit code 2). A store
the nodes cannot see is only a warning: the driver is its single writer, so extraction works,
but training or verifying from another machine would not find it.
"""

from __future__ import annotations

import json
import posixpath

import fsspec

from pipeline.config import ConfigError
from pipeline.failures import one_line
from pipeline.sources.item import TAR_MEMBER, VideoItem
from pipeline.store.lock import LOCK_FILE

SAMPLE_FOLDERS = 8
ANSWER_TIMEOUT_S = 120.0  # a node's first task starts a worker process: seconds, not minutes
Target = tuple[str, dict, int]  # (path or URL, fsspec options, size on the driver)


def check_nodes_can_read(items: list[VideoItem], store_url: str) -> list[str]:
    """Raise ConfigError naming the first input a node cannot read; warnings (store) to print."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    targets, (lock_url, token) = _sample_targets(items), _store_lock(store_url)
    probe = ray.remote(num_cpus=0, max_retries=0)(read_probe)
    refs = [
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(targets, lock_url, token)
        for n in nodes
    ]
    ready, late = ray.wait(refs, num_returns=len(refs), timeout=ANSWER_TIMEOUT_S)
    answers = ray.get(ready)
    bad = [(a["node"], url, why) for a in answers for url, why in a["unreadable"]]
    if bad:
        node, url, why = bad[0]
        more = f" (and {len(bad) - 1} more unreadable on the nodes)" if len(bad) > 1 else ""
        raise ConfigError(
            f"input {url} cannot be read from Ray node {node}: {why}{more}; decode tasks run on "
            "every node and read the videos themselves: put the input where every node sees "
            "it at the same path (a shared filesystem, s3://, gs://, http(s)://) and rerun"
        )
    warnings = [
        f"the store {store_url} is not visible from Ray node {a['node']} ({a['store']}): "
        "extraction works (the driver writes every shard), but run `merv train` and `merv "
        "verify` where the store is, or put it on shared storage (NFS, s3://)"
        for a in answers
        if a["store"]
    ]
    if late:
        warnings.append(f"{len(late)} Ray node(s) did not answer the input check in time")
    return warnings[:1] + warnings[-1:] if len(warnings) > 2 else warnings


def _sample_targets(items: list[VideoItem]) -> list[Target]:
    """The first readable-on-the-driver video of each folder, up to ``SAMPLE_FOLDERS``."""
    seen: set[str] = set()
    targets: list[Target] = []
    for item in items:
        if item.error:
            continue  # failed at listing time: nobody reads it
        url = item.member.shard if item.source_kind == TAR_MEMBER else item.source
        folder = posixpath.dirname(url)
        if folder in seen:
            continue
        seen.add(folder)
        options = item.storage_options or {}
        try:
            fs, path = fsspec.core.url_to_fs(url, **options)
            targets.append((url, options, int(fs.size(path))))
        except Exception:  # noqa: BLE001 - unreadable here too: the video's own failure later
            continue
        if len(targets) >= SAMPLE_FOLDERS:
            break
    return targets


def _store_lock(store_url: str) -> tuple[str, str]:
    """The store's lock file and the token this job holds in it."""
    fs, root = fsspec.core.url_to_fs(store_url)
    path = posixpath.join(root.rstrip("/"), LOCK_FILE)
    with fs.open(path, "rb") as f:
        token = json.loads(f.read())["token"]
    return fs.unstrip_protocol(path), token


def read_probe(targets: list[Target], lock_url: str, token: str) -> dict:
    """On a node: which targets it cannot read (or sees with another size), and why not the
    store's lock holding ``token`` (None when it does)."""
    from jobs.workers import this_node

    unreadable = []
    for url, options, size in targets:
        try:
            fs, path = fsspec.core.url_to_fs(url, **options)
            here = int(fs.size(path))
            if here != size:
                unreadable.append((url, f"{here} bytes there, {size} on the driver"))
        except Exception as err:  # noqa: BLE001 - any failure to read is the answer
            unreadable.append((url, f"{type(err).__name__}: {one_line(err, 160)}"))
    try:
        fs, path = fsspec.core.url_to_fs(lock_url)
        with fs.open(path, "rb") as f:
            held = json.loads(f.read()).get("token")
        store = None if held == token else "another store's lock at that path"
    except Exception as err:  # noqa: BLE001
        store = f"{type(err).__name__}: {one_line(err, 160)}"
    return {"node": this_node(), "unreadable": unreadable, "store": store}

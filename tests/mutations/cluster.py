"""Mutations of cluster mode (jobs/cluster.py, jobs/reachability.py, jobs/ray_output.py,
jobs/progress.py, jobs/telemetry.py's per-node counts)."""

_CLUSTER = "tests/jobs/test_cluster.py"
_MULTI = "tests/jobs/test_multinode.py"
_CONSOLE = "tests/jobs/test_console.py"

MUTATIONS = [
    dict(
        id="cluster-token-not-sent",
        file="jobs/cluster.py",
        old="        )\n    _enable_token_mode()",
        new="        )",
        tests=[f"{_CLUSTER}::test_extract_with_address_equals_in_process"],
        why="the token is found and accepted, but Ray never sends it: every attach fails",
    ),
    dict(
        id="cluster-wrong-token-not-probed",
        file="jobs/cluster.py",
        old="    if _ask_head(address, tuple(header.items())) == grpc.StatusCode.UNAUTHENTICATED:",
        new="    if False:",
        tests=[f"{_CLUSTER}::test_wrong_token_is_one_line_in_seconds"],
        why="a wrong token falls through to Ray's retry loop: 20 s of warnings, then a traceback",
    ),
    dict(
        id="cluster-unreachable-not-detected",
        file="jobs/cluster.py",
        old="        if err.code() == grpc.StatusCode.UNAUTHENTICATED:\n            return err.code()",
        new="        if err.code() != grpc.StatusCode.OK:\n            return err.code()",
        tests=[f"{_CLUSTER}::test_unreachable_head_is_one_line"],
        why="a dead head is taken for a live one: Ray's own 20 s retry loop, then a traceback",
    ),
    dict(
        id="cluster-unreachable-as-io-error",
        file="jobs/cluster.py",
        old="class ClusterUnreachable(RuntimeError):",
        new="class ClusterUnreachable(ConnectionError):",
        tests=[f"{_CLUSTER}::test_unreachable_head_is_one_line"],
        why="an unreachable head reads as an I/O error of the store",
    ),
    dict(
        id="reachability-inputs-ignored",
        file="jobs/reachability.py",
        old="    if bad:\n",
        new="    if False:\n",
        tests=[f"{_CLUSTER}::test_input_only_the_driver_sees_is_refused"],
        why="inputs only the driver sees are found out video by video, after the job started",
    ),
    dict(
        id="reachability-store-check-is-fatal",
        file="jobs/reachability.py",
        old='    bad = [(a["node"], url, why) for a in answers for url, why in a["unreadable"]]',
        new='    bad = [(a["node"], "store", a["store"]) for a in answers if a["store"]]\n'
        '    bad += [(a["node"], url, why) for a in answers for url, why in a["unreadable"]]',
        tests=[f"{_CLUSTER}::test_store_only_the_driver_sees_works_with_a_warning"],
        why="a store only the driver sees (it is the only writer) is refused",
    ),
    dict(
        id="ray-output-not-redirected",
        file="jobs/ray_output.py",
        old="    os.dup2(log.fileno(), 2)\n",
        new="",
        tests=[f"{_CONSOLE}::test_local_job_prints_only_merv_lines"],
        why="Ray's C++ lines land in the middle of the progress bar again",
    ),
    dict(
        id="progress-no-last-line",
        file="jobs/progress.py",
        old="    def close(self) -> None:\n        self._line()",
        new="    def close(self) -> None:\n        pass",
        tests=[f"{_CONSOLE}::test_local_job_prints_only_merv_lines"],
        why="`ray job logs` never shows where the job ended",
    ),
    dict(
        id="telemetry-nodes-merged",
        file="jobs/workers.py",
        old='    return f"{ray.util.get_node_ip_address()}/{node_id[:8]}"',
        new='    return f"{ray.util.get_node_ip_address()}"',
        tests=[f"{_MULTI}::test_work_spreads_over_nodes"],
        why="nodes sharing an IP (containers, one host) count as one: the spread is invisible",
    ),
]

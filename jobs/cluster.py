"""Connecting the job to Ray: a local in-process cluster by default, or a running cluster.

Joining a cluster (``--address host:port`` or ``auto``) first asks the head one question (its
cluster id) with one short gRPC call, so a wrong address or auth token ends within seconds in one
line that says which and how to fix it, instead of Ray's own retry loop (twenty warnings over
20 s, then a traceback).

The auth token is found where Ray's own CLI looks: ``RAY_AUTH_TOKEN`` (the token itself), else
``RAY_AUTH_TOKEN_PATH`` (a file holding it), else ``~/.ray/auth_token`` (where ``ray start
--head`` writes it). Ray sends it on an explicit address only when ``RAY_AUTH_MODE=token``; this
module turns that on when the head asks for a token and accepts the one found.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.config import ConfigError

PROBE_TIMEOUT_S = 5.0  # one gRPC call to the head: a live head answers in milliseconds
_TOKEN_HELP = (
    "set RAY_AUTH_TOKEN_PATH to a file holding the head's token, or RAY_AUTH_TOKEN to the token "
    "itself (on the head, `ray get-auth-token` prints it)"
)


class ClusterUnreachable(RuntimeError):
    """No Ray head answers at the address (exit code 4: start it, rerun)."""


class ClusterAuthError(ConfigError):
    """The head wants a token this job does not have or has wrong (exit code 2)."""


def connect_ray(address: str | None) -> bool:
    """Connect to the cluster at ``address`` (checked first), or start local Ray for ``None``;
    True when this call connected or started Ray, so the caller shuts it down."""
    if address is None:
        # A local in-process cluster listens on loopback only (Ray's macOS default): nothing
        # on the network can reach it. Read when ray is first imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return False
    if address is not None:
        address = resolve_address(address)
        check_head(address)
    # Quiet: no dashboard of our own, worker output stays in the workers' log files.
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )
    return True


def resolve_address(address: str) -> str:
    """``host:port`` of the head's GCS; ``auto`` is looked up the way ``ray.init`` does
    (``RAY_ADDRESS``, set inside ``ray job submit``; else the cluster started on this machine)."""
    if address.startswith("ray://"):
        raise ConfigError(
            f"--address {address}: Ray Client (ray://) is not supported, the job streams every "
            "feature through its driver: pass the head's GCS address (host:6379), or run the job "
            "on the cluster with `ray job submit -- merv extract ... --address auto`"
        )
    if address != "auto":
        return address if ":" in address else f"{address}:6379"
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except (ConnectionError, ValueError) as err:
        raise ClusterUnreachable(f"--address auto: {_first_line(err)}") from err
    if not found:
        raise ClusterUnreachable(
            "--address auto: no running Ray cluster found (RAY_ADDRESS is unset and no "
            "`ray start --head` ran on this machine): start a head, or pass its address"
        )
    return found


def check_head(address: str) -> None:
    """Ask the head at ``address`` for its cluster id, with the token if it wants one; turn
    token mode on when it does. Raises ClusterUnreachable or ClusterAuthError in one line."""
    import grpc

    if _ask_head(address, ()) != grpc.StatusCode.UNAUTHENTICATED:
        return  # answered: a cluster without token auth
    header = _token_header()
    if not header:
        raise ClusterAuthError(
            f"the Ray cluster at {address} requires an auth token and none was found (not in "
            f"RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): {_TOKEN_HELP}"
        )
    if _ask_head(address, tuple(header.items())) == grpc.StatusCode.UNAUTHENTICATED:
        raise ClusterAuthError(
            f"the Ray cluster at {address} refused the auth token from {_token_source()} (wrong "
            f"token, or a token of another cluster): {_TOKEN_HELP}"
        )
    _enable_token_mode()


def _ask_head(address: str, metadata: tuple):
    """The head's answer to GetClusterId: None when it answered, else the gRPC status code."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = grpc.insecure_channel(address)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        stub.GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(), timeout=PROBE_TIMEOUT_S, metadata=metadata
        )
        return None
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return err.code()
        raise ClusterUnreachable(
            f"no Ray head answers at {address} ({err.code().name.lower()}: "
            f"{_first_line(err.details() or '')}): start one with `ray start --head`, or pass "
            "the address it printed (`ray status --address ADDRESS` checks it)"
        ) from None
    finally:
        channel.close()


def _token_header() -> dict[str, str]:
    """``{"authorization": "Bearer <token>"}`` from Ray's own token loader, or ``{}``."""
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:  # a Ray without token auth
        return {}
    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()  # the environment may have changed since Ray was imported
    return dict(loader.get_token_for_http_header(ignore_auth_mode=True))


def _token_source() -> str:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if path := os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH ({path})"
    return str(Path.home() / ".ray" / "auth_token")


def _enable_token_mode() -> None:
    """Make this process send the token (Ray reads ``RAY_AUTH_MODE`` into its config)."""
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")


def _first_line(err) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__

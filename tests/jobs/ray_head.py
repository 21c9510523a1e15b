"""A real Ray head for tests: ``ray start --head --block`` on loopback, token auth on, its own
ports, temp dir and token file, in its own process session so it can be stopped without
touching the test session's own Ray (``ray stop`` would stop every cluster on the machine)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


@dataclass
class RayHead:
    address: str  # the GCS address, host:port
    dashboard: str  # the job submission address, http://host:port
    token_file: Path
    process: subprocess.Popen
    log: Path

    def env(self, **set_vars: str) -> dict[str, str]:
        """A client's environment: this head's token file, nothing else of Ray's auth."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADD"))}
        env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(self.token_file),
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
            HF_HUB_OFFLINE="1",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env.update(set_vars)
        return {k: v for k, v in env.items() if v is not None}

    def pids(self) -> set[int]:
        """Every process of the head (its process group: GCS, raylet, dashboard, workers)."""
        import psutil

        pgid = os.getpgid(self.process.pid)
        return {p.pid for p in psutil.process_iter() if _pgid(p.pid) == pgid}

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def start_head(folder: Path, num_cpus: int = 2) -> RayHead:
    """Start the head; return once its GCS answers and its job server accepts connections."""
    token_file = folder / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    port, dash = free_port(), free_port()
    log = folder / "head.log"
    head = RayHead(f"{LOOPBACK}:{port}", f"http://{LOOPBACK}:{dash}", token_file, None, log)  # type: ignore[arg-type]
    argv = [
        ray_cli(), "start", "--head", "--block", "--disable-usage-stats",
        f"--node-ip-address={LOOPBACK}", f"--port={port}", f"--num-cpus={num_cpus}",
        "--include-dashboard=true", f"--dashboard-host={LOOPBACK}", f"--dashboard-port={dash}",
        f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}",
        f"--temp-dir={folder / 'ray'}", "--object-store-memory=200000000",
    ]  # fmt: skip
    with open(log, "wb") as out:
        head.process = subprocess.Popen(
            argv, env=head.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if head.process.poll() is not None:
            raise RuntimeError(f"ray start --head exited: {log.read_text()[-2000:]}")
        if _answers(port) and _answers(dash):
            return head
        time.sleep(0.5)  # polling a server that is starting, not synchronising a test
    head.stop()
    raise RuntimeError(f"the Ray head did not come up in {START_TIMEOUT_S} s: {log}")


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((LOOPBACK, port)) == 0

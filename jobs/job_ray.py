"""Ray for the length of one extract job.

On a cluster (``--address``) the job joins at the start, before the store is planned: a wrong
address or token, or an input the worker nodes cannot read, ends the job before anything is
written. Local Ray starts only when there is work (a finished store costs no Ray start). Either
way, Ray's own output goes to a log file whose path is printed once (``jobs.ray_output``), and
Ray is left as it was found: a connection or local cluster this job made is closed at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

import fsspec

from jobs.cluster import connect_ray
from jobs.ray_output import ray_log_path, ray_output_to
from pipeline.store.layout import JOBS_DIR


class JobRay:
    def __init__(self, address: str | None, store_url: str, echo=print):
        self.address, self.store_url, self.echo = address, store_url, echo
        self.log_path = ""
        self.console: TextIO = sys.stderr  # the real stderr, once Ray's output is redirected
        self._owned = False  # this job connected or started Ray: it disconnects at the end
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> JobRay:
        if self.address is not None:
            try:
                self.start()
            except BaseException:
                self.__exit__()  # not called by `with` when __enter__ raises
                raise
        return self

    def start(self) -> None:
        """Send Ray's output to the log and connect (or start local Ray); once per job."""
        if self.log_path:
            return
        self.log_path = ray_log_path(self.store_url)
        self.echo(f"Ray's own messages go to {self.log_path}")
        self.console = self._stack.enter_context(ray_output_to(self.log_path))
        self._owned = connect_ray(self.address)

    def check_nodes(self, items) -> None:
        """On a cluster: every node can read the inputs (else ConfigError); store warnings."""
        from jobs.reachability import check_nodes_can_read

        for warning in check_nodes_can_read(items, self.store_url):
            print(f"merv: warning: {warning}", file=self.console)

    def __exit__(self, *exc) -> None:
        try:
            if self._owned:
                import ray

                ray.shutdown()
        finally:
            self._stack.close()  # the console is stderr again
            self._keep_log_in_store()

    def _keep_log_in_store(self) -> None:
        """A remote store's log was written locally: copy it into the store's ``_jobs/``."""
        if not self.log_path or not os.path.exists(self.log_path):
            return
        fs, root = fsspec.core.url_to_fs(self.store_url)
        if "file" in fs.protocol or not fs.exists(root):
            return
        target = f"{root.rstrip('/')}/{JOBS_DIR}/{os.path.basename(self.log_path)}"
        with contextlib.suppress(OSError):
            with open(self.log_path, "rb") as f:
                fs.pipe_file(target, f.read())
            os.remove(self.log_path)  # kept in the store now

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Real server processes for tests and benchmarks: temp root, init, start on port 0, kill.

Example::

    with TempServer(schema=DDL) as srv:
        fs = FastSerializer("127.0.0.1", srv.client_port)

Every server started here is registered for an atexit kill, and :meth:`TempServer.stop`
or :meth:`TempServer.kill` (or leaving the ``with`` block) always reaps the process.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

READY_PREFIX = "VOLTDB_PY_READY "

_live: set[TempServer] = set()
_live_lock = threading.Lock()


def _kill_all() -> None:
    with _live_lock:
        servers = list(_live)
    for s in servers:
        s.kill()


atexit.register(_kill_all)


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0,
               interval_s: float = 0.01, message: str = "condition") -> Any:
    """Poll predicate until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not reached within {timeout_s} s")
        time.sleep(interval_s)


def deployment_xml(sites_per_host: int = 2, users: dict[str, tuple[str, str]] | None = None,
                   security: bool = False) -> str:
    """A deployment.xml: sites per host, and users ``{name: (password, roles)}``."""
    parts = ['<?xml version="1.0"?>', "<deployment>",
             f'<cluster sitesperhost="{sites_per_host}" kfactor="0"/>']
    if security:
        parts.append('<security enabled="true"/>')
    if users:
        parts.append("<users>")
        for name, (password, roles) in users.items():
            parts.append(f'<user name="{name}" password="{password}" roles="{roles}"/>')
        parts.append("</users>")
    parts.append("</deployment>")
    return "\n".join(parts)


class TempServer:
    """One server process on a temporary (or given) root directory, on ports chosen by the OS.

    :param schema: DDL text loaded at init.
    :param classes: paths of procedure modules loaded before the schema.
    :param deployment: deployment.xml text (default: :func:`deployment_xml` with
        sites_per_host).
    :param directory: work here (the root is ``directory/root``) instead of in a new
        temporary directory; it is kept afterwards.
    :param env: extra environment variables for the server process.
    """

    def __init__(self, schema: str | None = None, classes: list[str | os.PathLike[str]] = (),
                 deployment: str | None = None, sites_per_host: int = 2,
                 directory: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, ready_timeout_s: float = 60.0) -> None:
        self._own_dir = directory is None
        self.base = Path(tempfile.mkdtemp(prefix="voltdb-py-srv-")) if directory is None \
            else Path(directory)
        self.root = self.base / "root"
        self.schema = schema
        self.classes = [str(c) for c in classes]
        self.deployment = deployment or deployment_xml(sites_per_host)
        self.env = dict(env or {})
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout_lines: list[str] = []
        self._initialized = False

    # -- lifecycle

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("TZ", "UTC")
        env.update(self.env)
        return env

    def init(self) -> None:
        """Run ``voltdb-py init`` on the root (a real subprocess, like a user would)."""
        self.base.mkdir(parents=True, exist_ok=True)
        cfg = self.base / "deployment.xml"
        cfg.write_text(self.deployment)
        cmd = [sys.executable, "-m", "voltdb_py", "init", "--dir", str(self.root),
               "--config", str(cfg), "--force"]
        if self.schema is not None:
            ddl = self.base / "schema.sql"
            ddl.write_text(self.schema)
            cmd += ["--schema", str(ddl)]
        for c in self.classes:
            cmd += ["--classes", c]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self._environ(),
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"voltdb-py init failed ({r.returncode}): {r.stderr.strip()}")
        self._initialized = True

    def start(self) -> TempServer:
        """Initialize (first time only) and start the server; return once it is ready."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the server is already running")
        if not self._initialized:
            self.init()
        self.lines = queue.Queue()
        self.stdout_lines = []
        self.stderr_path = self.base / "server.stderr"
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voltdb_py", "start", "--dir", str(self.root),
                 "--client", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                 "--http", "127.0.0.1:0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                env=self._environ(), start_new_session=True)
        with _live_lock:
            _live.add(self)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TimeoutError(f"server not ready within {self.ready_timeout_s} s: "
                                   f"{self.stderr()[-2000:]}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                       f"{self.stderr()[-2000:]}") from None
                continue
            if line is None:
                continue
            if line.startswith(READY_PREFIX):
                self.info = json.loads(line[len(READY_PREFIX):])
                return self

    def _pump(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.stdout_lines.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # type: ignore[arg-type]

    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def client_port(self) -> int:
        return int(self.info["client"])

    @property
    def admin_port(self) -> int:
        return int(self.info["admin"])

    @property
    def http_port(self) -> int | None:
        """The JSON API's port, or None when the deployment disables <httpd>."""
        port = self.info.get("http")
        return None if port is None else int(port)

    @property
    def host_id(self) -> int:
        return int(self.info["host_id"])

    def alive(self) -> bool:
        """Whether the server process is running."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (clean shutdown), then SIGKILL after timeout_s; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        return self._reap()

    def kill(self) -> int | None:
        """SIGKILL the server's process group at once; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return self._reap()

    def _reap(self) -> int | None:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            code = None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        with _live_lock:
            _live.discard(self)
        return code

    def destroy(self) -> None:
        """Kill the server and delete its temporary directory."""
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> TempServer:
        if not self.alive():
            try:
                self.start()
            except BaseException:
                self.destroy()
                raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()


class TempCluster:
    """A cluster of :class:`TempServer` hosts; one host (k=0) until multi-host clustering lands.

    :raises NotImplementedError: hosts > 1 or kfactor > 0.
    """

    def __init__(self, hosts: int = 1, kfactor: int = 0, **server_kwargs: Any) -> None:
        if hosts != 1 or kfactor != 0:
            raise NotImplementedError("multi-host clusters: not yet")
        self.servers = [TempServer(**server_kwargs)]

    def start(self) -> TempCluster:
        for s in self.servers:
            s.start()
        return self

    @property
    def client_ports(self) -> list[int]:
        return [s.client_port for s in self.servers]

    @property
    def admin_ports(self) -> list[int]:
        return [s.admin_port for s in self.servers]

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def kill(self) -> None:
        for s in self.servers:
            s.kill()

    def destroy(self) -> None:
        for s in self.servers:
            s.destroy()

    def __enter__(self) -> TempCluster:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

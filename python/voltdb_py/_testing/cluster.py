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
                   security: bool = False, kfactor: int = 0,
                   heartbeat_timeout_s: int | None = None) -> str:
    """A deployment.xml: sites per host, k-factor, heartbeat timeout, and users
    ``{name: (password, roles)}``."""
    parts = ['<?xml version="1.0"?>', "<deployment>",
             f'<cluster sitesperhost="{sites_per_host}" kfactor="{kfactor}"/>']
    if heartbeat_timeout_s is not None:
        parts.append(f'<heartbeat timeout="{heartbeat_timeout_s}"/>')
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
    :param start_args: extra ``voltdb-py start`` arguments (a cluster's --host, --count...).
    """

    def __init__(self, schema: str | None = None, classes: list[str | os.PathLike[str]] = (),
                 deployment: str | None = None, sites_per_host: int = 2,
                 directory: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, ready_timeout_s: float = 60.0,
                 start_args: list[str] = ()) -> None:
        self._own_dir = directory is None
        self.base = Path(tempfile.mkdtemp(prefix="voltdb-py-srv-")) if directory is None \
            else Path(directory)
        self.root = self.base / "root"
        self.schema = schema
        self.classes = [str(c) for c in classes]
        self.deployment = deployment or deployment_xml(sites_per_host)
        self.env = dict(env or {})
        self.ready_timeout_s = ready_timeout_s
        self.start_args = list(start_args)
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

    def start(self, wait: bool = True) -> TempServer:
        """Initialize (first time only) and start the server; return once it is ready
        (or at once without wait: then call :meth:`wait_ready`)."""
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
                 "--http", "127.0.0.1:0", *self.start_args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                env=self._environ(), start_new_session=True)
        with _live_lock:
            _live.add(self)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> TempServer:
        """Wait for the server's readiness line (TimeoutError, RuntimeError if it exited)."""
        assert self.proc is not None
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
                    self._reap()
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
    """A cluster of ``hosts`` server processes on this machine (k-safe when kfactor > 0).

    Every host gets its own root under one temporary directory, is initialized with the
    same deployment, schema and classes, and is started with ``--host`` naming host 0's
    internal port and ``--count hosts``; all other ports are chosen by the OS. Leaving
    the ``with`` block kills every process and deletes the directory.

    :param heartbeat_timeout_s: the deployment's ``<heartbeat timeout>`` (failure
        detection; small in tests).
    """

    def __init__(self, hosts: int = 1, kfactor: int = 0, sites_per_host: int = 2, *,
                 heartbeat_timeout_s: int = 2, schema: str | None = None,
                 classes: list[str | os.PathLike[str]] = (), deployment: str | None = None,
                 env: dict[str, str] | None = None, ready_timeout_s: float = 90.0,
                 directory: str | os.PathLike[str] | None = None) -> None:
        if hosts < 1 or kfactor < 0:
            raise ValueError("hosts must be >= 1 and kfactor >= 0")
        self._own_dir = directory is None
        self.base = Path(tempfile.mkdtemp(prefix="voltdb-py-cluster-")) if directory is None \
            else Path(directory)
        self.host_count = hosts
        dep = deployment or deployment_xml(sites_per_host, kfactor=kfactor,
                                           heartbeat_timeout_s=heartbeat_timeout_s)
        self.servers = [TempServer(schema=schema, classes=classes, deployment=dep,
                                   directory=self.base / f"host{i}", env=env,
                                   ready_timeout_s=ready_timeout_s)
                        for i in range(hosts)]
        self._seed_ports()

    def _seed_ports(self) -> None:
        """Give host 0 a free internal port, named by every host's ``--host``."""
        if self.host_count == 1:
            return
        from voltdb_py.node.cluster import free_port
        seed = free_port()
        for i, s in enumerate(self.servers):
            s.start_args = ["--host", f"127.0.0.1:{seed}", "--count", str(self.host_count),
                            "--internal", f"127.0.0.1:{seed if i == 0 else 0}",
                            "--zookeeper", "127.0.0.1:0"]

    def start(self) -> TempCluster:
        """Start every host at once and return when all are ready (the cluster formed).

        Host 0's internal port is chosen before it is bound, so another process (one of
        the other hosts binding port 0, say) may take it first: then every host is
        killed, initialized again and started on a new port, up to three times."""
        for attempt in range(3):
            for s in self.servers:
                if not s._initialized:
                    s.init()
            for s in self.servers:
                s.start(wait=False)
            try:
                for s in self.servers:
                    s.wait_ready()
                return self
            except RuntimeError as exc:
                if attempt == 2 or self.host_count == 1 or \
                        "address already in use" not in str(exc):
                    raise
            self.kill()
            for s in self.servers:
                s._initialized = False
            self._seed_ports()
        raise AssertionError("unreachable")

    @property
    def client_ports(self) -> list[int]:
        return [s.client_port for s in self.servers]

    @property
    def admin_ports(self) -> list[int]:
        return [s.admin_port for s in self.servers]

    @property
    def addresses(self) -> list[str]:
        """``127.0.0.1:port`` of every running host's client port."""
        return [f"127.0.0.1:{s.client_port}" for s in self.servers if s.alive()]

    def host(self, host_id: int) -> TempServer:
        """The server whose cluster host id is host_id."""
        for s in self.servers:
            if s.info and s.host_id == host_id:
                return s
        raise KeyError(host_id)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def kill(self) -> None:
        for s in self.servers:
            s.kill()

    def partition_checksums(self) -> dict[int, dict[int, int]]:
        """{host id: {partition: CRC32 of its rows}} read from each stopped host's root.

        Call after :meth:`stop` or :meth:`kill`: every partition a host holds is read
        with the engine's consistent partition snapshot, so replicas that hold the same
        rows give the same checksum.
        """
        import zlib

        from voltdb_py import Database
        out: dict[int, dict[int, int]] = {}
        for s in self.servers:
            if s.alive():
                raise RuntimeError("stop the cluster before reading its files")
            if not s.info:
                continue
            with Database.open(s.root / "database") as db:
                sums = {}
                for pid in range(db.partition_count):
                    crc = 0
                    for chunk in db.snapshot_partition(pid):
                        crc = zlib.crc32(chunk, crc)
                    sums[pid] = crc
                out[s.host_id] = sums
        return out

    def destroy(self) -> None:
        for s in self.servers:
            s.destroy()
        if self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> TempCluster:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

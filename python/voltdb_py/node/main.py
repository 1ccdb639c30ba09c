# SPDX-License-Identifier: AGPL-3.0-or-later
"""Process entry of a server (``voltdb-py start``): open the root, serve, report readiness."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from voltdb_py._loop import EVENT_LOOP_ENV, use_event_loop
from voltdb_py.node.root import LOCK_FILE, LOG_DIR, READY_FILE, RootError, load_root
from voltdb_py.node.server import NodeServer, ServerConfig

READY_PREFIX = "VOLTDB_PY_READY "
#: Written by a cluster host once it listens and waits for the others (before ready.json).
FORMING_FILE = "forming.json"
#: The youngest generation's collection threshold while serving (CPython's default: 700).
GC_GEN0_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Once serving: move what start-up built (catalog, plans, parsed SQL) out of the
    collector's sight, and collect the youngest generation less often. Calls allocate
    many short-lived tuples and lists; with the default threshold (700) the collector
    ran every few dozen calls and walked the long-lived objects too."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


def _write_ready(root: Path, info: dict[str, Any], name: str = READY_FILE) -> None:
    tmp = root / (name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, root / name)


def serve(directory: str | os.PathLike[str], config: ServerConfig,
          out: IO[str] | None = None, cluster: Any = None) -> int:
    """Run a server on an initialized root until SIGTERM/SIGINT or @Shutdown; return exit code.

    Prints one line ``VOLTDB_PY_READY {json}`` to out (stdout) once both listeners are
    bound (and, with ``cluster``, a
    :class:`~voltdb_py.node.cluster.ClusterOptions`, once the cluster has formed), and
    writes the same JSON to ``D/ready.json``.

    The event loop is uvloop when it is installed, unless ``VOLTDB_PY_EVENT_LOOP``
    says otherwise (see :mod:`voltdb_py._loop`).

    :raises RootError: the directory is not an initialized root or is in use.
    :raises VoltError: ``VOLTDB_PY_EVENT_LOOP`` is invalid.
    """
    from voltdb_py.database import Database

    out = out or sys.stdout
    use_event_loop(os.environ.get(EVENT_LOOP_ENV, "auto"))
    logging.basicConfig(
        level=os.environ.get("VOLTDB_PY_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s")
    contents = load_root(directory)
    root = contents.path
    lock = open(root / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise RootError(f"another server is already running in {root}") from None
    try:
        (root / READY_FILE).unlink(missing_ok=True)
        (root / FORMING_FILE).unlink(missing_ok=True)
        db = Database.open(contents.database_path)
        return asyncio.run(_run(root, db, contents, config, out, cluster))
    finally:
        (root / READY_FILE).unlink(missing_ok=True)
        (root / FORMING_FILE).unlink(missing_ok=True)
        lock.close()


async def _run(root: Path, db: Any, contents: Any, config: ServerConfig, out: IO[str],
               cluster: Any) -> int:
    node = NodeServer(db, contents.deployment, contents.cluster, config)
    try:
        await node.start()
    except BaseException:
        db.close()
        raise
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.request_stop)
    extra: dict[str, Any] = {}
    if cluster is not None:
        from voltdb_py.node.cluster import ClusterHost
        host = ClusterHost(node, root, cluster)
        node.cluster_host = host
        try:
            await host.start_listener()
            _write_ready(root, {**node.readiness(), "internal": host.internal_address[1],
                                "raft": host.raft_port, "forming": True},
                         name=FORMING_FILE)
            forming = loop.create_task(host.form())
            stopped = loop.create_task(node.wait_stopped())
            await asyncio.wait({forming, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not forming.done():
                forming.cancel()
                await node.wait_stopped()
                return node.exit_code or 1
            stopped.cancel()
            forming.result()
        except BaseException:
            if not node.stopping:
                node.stopping = True
                await node.stop()
            raise
        await host.run()
        extra = {"host_id": host.host_id, "internal": host.internal_address[1],
                 "raft": host.raft_port, "hosts": len(host.topology.hosts),
                 "partitions": len(host.topology.partitions)}
    _tune_gc()
    info = node.readiness()
    info.update(extra)
    _write_ready(root, info)
    (root / FORMING_FILE).unlink(missing_ok=True)
    print(READY_PREFIX + json.dumps(info), file=out, flush=True)
    await node.wait_stopped()
    print("voltdb-py: server stopped", file=sys.stderr, flush=True)
    return node.exit_code


def start_background(argv: list[str], directory: str | os.PathLike[str],
                     timeout_s: float = 60.0, cluster: bool = False) -> tuple[int, str]:
    """Start ``voltdb-py start`` argv detached; wait until it is ready or has failed.

    A host of a multi-host cluster (``cluster``) returns once it listens and waits for
    the other hosts: the cluster forms when all of them have started.

    :returns: (exit code, the readiness line or an error message).
    """
    root = Path(directory).absolute()
    logs = root / LOG_DIR
    logs.mkdir(exist_ok=True)
    log_path = logs / "server.log"
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "voltdb_py", *argv],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout_s
    ready = root / READY_FILE
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            return 1, f"the server exited with code {code}: " + " / ".join(tail)
        for path in (ready, root / FORMING_FILE) if cluster else (ready,):
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if info.get("pid") == proc.pid:
                if info.get("forming"):
                    return 0, (f"Server started (pid {proc.pid}, internal port "
                               f"{info['internal']}); it serves once all hosts of the "
                               "cluster have started")
                return 0, READY_PREFIX + json.dumps(info)
        time.sleep(0.02)  # polling a file another process writes; bounded by the deadline
    proc.kill()
    proc.wait()
    return 1, f"the server was not ready within {timeout_s:.0f} s (log: {log_path})"

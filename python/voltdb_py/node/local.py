# SPDX-License-Identifier: AGPL-3.0-or-later
"""``voltdb-py cluster up`` / ``cluster down``: a local multi-process cluster in one command.

``cluster_up`` initializes one root per host under a directory (``D/host0``, ``D/host1``,
...), starts every host as a detached process exactly as ``voltdb-py start --host ...
--count N`` would, waits until the cluster has formed, and records the processes in
``D/cluster.json``. ``cluster_down`` asks the cluster to shut down (``@Shutdown`` on an
admin port), waits for every process to exit and kills what is left.

Ports: with a port base P (default 21212), host *i* listens for clients on P + 10*i, for
admin connections on P - 1 + 10*i, for HTTP on 8080 + i when the deployment enables it,
on 3021 + i internally and on 7181 + i for the Raft metadata. With ``--port-base 0`` the
OS picks every port; ``D/cluster.json`` and ``cluster up``'s table say which.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from voltdb_py.node.cluster import free_port
from voltdb_py.node.root import READY_FILE, RootError, init_root

STATE_FILE = "cluster.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def read_state(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record of the cluster started in directory, or None."""
    path = Path(directory) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cluster_up(directory: str | os.PathLike[str], hosts: int, kfactor: int = 0,
               sites_per_host: int = 8, *, config: str | os.PathLike[str] | None = None,
               schema: list[str] | None = None, classes: list[str] | None = None,
               port_base: int = 21212, heartbeat_timeout_s: int | None = None,
               force: bool = False, timeout_s: float = 120.0) -> dict[str, Any]:
    """Initialize and start a local cluster; return its record once it has formed.

    :raises RootError: bad arguments, a cluster already running there, or a host that
        failed to start (its log's last lines are in the message; every host started is
        killed again).
    """
    base = Path(directory).absolute()
    if hosts < 1 or kfactor < 0 or sites_per_host < 1:
        raise RootError("--hosts and --sitesperhost must be >= 1 and --kfactor >= 0")
    if kfactor + 1 > hosts:
        raise RootError(f"System requesting {kfactor + 1} replicas but there are only "
                        f"{hosts} eligible hosts")
    if not 0 <= port_base <= 65535 - 10 * hosts:
        raise RootError(f"--port-base {port_base} leaves no room for {hosts} hosts")
    old = read_state(base)
    if old is not None and any(_alive(h["pid"]) for h in old["hosts"]):
        raise RootError(f"a cluster is already running in {base}: "
                        f"'voltdb-py cluster down --dir {directory}' first")
    base.mkdir(parents=True, exist_ok=True)
    if config is None:
        cfg = base / "deployment.xml"
        hb = f'<heartbeat timeout="{heartbeat_timeout_s}"/>' if heartbeat_timeout_s else ""
        cfg.write_text(f'<?xml version="1.0"?>\n<deployment><cluster sitesperhost='
                       f'"{sites_per_host}" kfactor="{kfactor}"/>{hb}</deployment>\n')
    else:
        cfg = Path(config)
    roots = [base / f"host{i}" for i in range(hosts)]
    for root in roots:
        init_root(root, cfg, schema, classes, force=force or old is not None)
    internal0 = 3021 if port_base else free_port()
    seed = f"127.0.0.1:{internal0}"
    procs: list[subprocess.Popen] = []
    try:
        for i, root in enumerate(roots):
            if port_base:
                ports = {"--client": port_base + 10 * i, "--admin": port_base - 1 + 10 * i,
                         "--http": 8080 + i, "--internal": 3021 + i,
                         "--zookeeper": 7181 + i}
            else:
                ports = {"--client": 0, "--admin": 0, "--http": 0,
                         "--internal": internal0 if i == 0 else 0, "--zookeeper": 0}
            argv = [sys.executable, "-m", "voltdb_py", "start", "--dir", str(root),
                    "--host", seed, "--count", str(hosts)]
            for opt, port in ports.items():
                argv += [opt, f"127.0.0.1:{port}"]
            (root / READY_FILE).unlink(missing_ok=True)
            (root / "log").mkdir(exist_ok=True)
            with open(root / "log" / "server.log", "ab") as logf:
                procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                              stderr=logf, start_new_session=True,
                                              close_fds=True))
        infos: list[dict[str, Any] | None] = [None] * hosts
        deadline = time.monotonic() + timeout_s
        while not all(infos):
            for i, (root, p) in enumerate(zip(roots, procs)):
                if infos[i] is not None:
                    continue
                code = p.poll()
                if code is not None:
                    tail = (root / "log" / "server.log").read_text(errors="replace")
                    lines = " / ".join(tail.strip().splitlines()[-4:])
                    raise RootError(f"host{i} exited with code {code}: {lines}")
                try:
                    info = json.loads((root / READY_FILE).read_text())
                except (OSError, ValueError):
                    continue
                if info.get("pid") == p.pid:
                    infos[i] = {**info, "dir": str(root)}
            if time.monotonic() > deadline:
                raise RootError(f"the cluster did not form within {timeout_s:.0f} s "
                                f"(logs: {base}/host*/log/server.log)")
            time.sleep(0.05)  # polling files other processes write; bounded above
    except BaseException:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        raise
    state = {"hosts": infos, "kfactor": kfactor, "count": hosts,
             "config": str(cfg), "started": time.time()}
    tmp = base / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, base / STATE_FILE)
    return state


def cluster_down(directory: str | os.PathLike[str], timeout_s: float = 60.0) -> list[int]:
    """Shut the local cluster in directory down; return the pids that had to be killed.

    :raises RootError: no cluster was started there.
    """
    from voltdb_py.client import Client

    base = Path(directory).absolute()
    state = read_state(base)
    if state is None:
        raise RootError(f"no cluster was started in {base} (no {STATE_FILE})")
    live = [h for h in state["hosts"] if _alive(h["pid"])]
    for h in live:
        try:
            with Client([f"127.0.0.1:{h['admin']}"], topology_aware=False,
                        connect_timeout_s=5, timeout_s=30) as c:
                if c.call("@Shutdown").ok:
                    break
        except (OSError, ConnectionError):
            continue
    deadline = time.monotonic() + timeout_s
    for h in live:
        while _alive(h["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for another process to exit; bounded above
    killed = []
    for h in live:
        if _alive(h["pid"]):
            try:
                os.killpg(h["pid"], signal.SIGKILL)
                killed.append(h["pid"])
            except OSError:
                pass
    (base / STATE_FILE).unlink(missing_ok=True)
    return killed

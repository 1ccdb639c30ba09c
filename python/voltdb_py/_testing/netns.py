# SPDX-License-Identifier: AGPL-3.0-or-later
"""Network-partition lab for multi-process cluster tests: one network namespace per host.

Layout: a private "switch" namespace holds Linux bridges (``br0`` is the main segment);
host *i* lives in its own namespace with interface ``eth0`` = ``10.<a>.<b>.(i+1)/24``, the
other end of its veth pair (``h<i>``) sits in the switch namespace. Both veth ends are
created directly inside the lab's namespaces, so the root namespace's links, addresses and
routes are never touched. Faults are made by re-wiring the switch:

* :meth:`NetLab.isolate` detaches ``h<i>`` from its bridge (the host keeps carrier, it just
  hears nothing: packets are silently dropped, like a pulled cable further upstream);
* :meth:`NetLab.partition` puts each group on its own bridge (each group still talks
  internally); :meth:`NetLab.heal` / :meth:`NetLab.heal_all` re-attach to ``br0``.

Established TCP connections are not reset by a fault: they stall (retransmit) and resume
after healing, as in a real partition. Needs root and ``ip`` (iproute2); check with
:func:`netns_available` and ``pytest.skip`` otherwise. Example cluster test::

    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    with NetLab(3) as lab:
        procs = [lab.popen(i, [sys.executable, "-m", "voltdb_py.node.main",
                               "--host", lab.address(i), ...], stdout=PIPE)
                 for i in range(3)]      # each server binds lab.address(i)
        ...                              # wait for cluster, run load
        lab.partition({0}, {1, 2})       # 0 is in the minority and must shut down
        ...
        lab.heal_all()

Test clients must also run inside a host namespace (``lab.popen``): the root namespace
cannot reach the lab addresses. Leaving the ``with`` block (or interpreter exit, via
atexit) kills the processes started by :meth:`NetLab.popen` that are still running and
deletes every namespace the lab made; namespaces left by a crashed earlier run (its pid is
dead) are swept when the next lab starts.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["NetLab", "NetLabError", "netns_available"]

_IP_TIMEOUT_S = 10.0
_counter = itertools.count()
_live: set[NetLab] = set()
_live_lock = threading.Lock()
_STALE = re.compile(r"^vdb(\d+)_\d+_(?:sw|h\d+)$")


class NetLabError(RuntimeError):
    """An ``ip`` command failed (or timed out); carries the command and its stderr."""

    def __init__(self, cmd: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.cmd, self.returncode, self.stderr = list(cmd), returncode, stderr.strip()
        super().__init__(f"{' '.join(self.cmd)!r} failed (rc={returncode}): {self.stderr}")


def _ip(*args: str, check: bool = True) -> str:
    cmd = ["ip", *args]
    try:
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=_IP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise NetLabError(cmd, None, f"timed out after {_IP_TIMEOUT_S} s") from e
    except OSError as e:
        raise NetLabError(cmd, None, str(e)) from e
    if check and r.returncode != 0:
        raise NetLabError(cmd, r.returncode, r.stderr)
    return r.stdout


def _netns_names() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete lab namespaces whose creating process is dead; return their names."""
    gone = []
    for name in _netns_names():
        m = _STALE.match(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            _ip("netns", "del", name, check=False)
            gone.append(name)
    return gone


_available: tuple[bool, str] | None = None


def netns_available() -> tuple[bool, str]:
    """(True, "") if namespaces, veths and bridges can be made here, else (False, reason)."""
    global _available
    if _available is not None:
        return _available
    if os.name != "posix" or os.geteuid() != 0:
        _available = (False, "network namespaces need root")
    elif shutil.which("ip") is None:
        _available = (False, "iproute2 'ip' command not found")
    else:
        a, b = f"vdb{os.getpid()}_{next(_counter)}_h0", f"vdb{os.getpid()}_{next(_counter)}_sw"
        try:
            _ip("netns", "add", a)
            _ip("netns", "add", b)
            _ip("-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "h0", "netns", b)
            _ip("-n", b, "link", "add", "br0", "type", "bridge")
            _available = (True, "")
        except NetLabError as e:
            _available = (False, f"cannot create namespace/veth/bridge: {e}")
        finally:
            _ip("netns", "del", a, check=False)
            _ip("netns", "del", b, check=False)
    return _available


class NetLab:
    """``n_hosts`` network namespaces on a private switch; see the module docstring."""

    def __init__(self, n_hosts: int, prefix: str | None = None) -> None:
        if not 1 <= n_hosts <= 250:
            raise ValueError("n_hosts must be in 1..250")
        pid = os.getpid()
        self.n_hosts = n_hosts
        self.prefix = prefix or f"vdb{pid}_{next(_counter)}"
        self.switch_ns = f"{self.prefix}_sw"
        self.host_ns = [f"{self.prefix}_h{i}" for i in range(n_hosts)]
        self.subnet = f"10.{1 + (pid >> 8) % 254}.{pid % 256}"
        self._made: list[str] = []          # namespaces created, in order
        self._bridges: set[str] = set()
        self._procs: list[subprocess.Popen[Any]] = []
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> NetLab:  # noqa: PYI034
        cleanup_stale()
        with _live_lock:
            _live.add(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        sw = self.switch_ns
        self._add_ns(sw)
        self._bridge(0)
        for i, ns in enumerate(self.host_ns):
            self._add_ns(ns)
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"h{i}",
                "netns", sw)
            _ip("-n", sw, "link", "set", f"h{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        deadline = time.monotonic() + 5.0
        while True:
            down = [ns for ns in self.host_ns if self._operstate(ns, "eth0") != "UP"]
            if not down:
                return
            if time.monotonic() > deadline:
                raise NetLabError(["ip", "link", "show"], None, f"eth0 not UP in {down}")
            time.sleep(0.02)

    def _bridge(self, k: int) -> str:
        br = f"br{k}"
        if br not in self._bridges:
            _ip("-n", self.switch_ns, "link", "add", br, "type", "bridge", "forward_delay", "0")
            _ip("-n", self.switch_ns, "link", "set", br, "up")
            self._bridges.add(br)
        return br

    @staticmethod
    def _operstate(ns: str, dev: str) -> str:
        return str(json.loads(_ip("-n", ns, "-j", "link", "show", "dev", dev))[0]["operstate"])

    def close(self) -> None:
        """Kill this lab's still-running processes, delete its namespaces. Idempotent."""
        with self._lock:
            procs, self._procs = self._procs, []
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            errors = []
            for ns in reversed(self._made):
                try:
                    _ip("netns", "del", ns)
                except NetLabError as e:
                    errors.append(e)
            self._made.clear()
            self._bridges.clear()
        with _live_lock:
            _live.discard(self)
        if errors:
            raise errors[0]

    # -- hosts -----------------------------------------------------------------------------
    def _check(self, i: int) -> int:
        if not isinstance(i, int) or not 0 <= i < self.n_hosts:
            raise ValueError(f"host index {i!r} not in 0..{self.n_hosts - 1}")
        return i

    def address(self, i: int) -> str:
        """IPv4 address of host ``i`` (bind servers and clients of host i to it)."""
        return f"{self.subnet}.{self._check(i) + 1}"

    def namespace(self, i: int) -> str:
        return self.host_ns[self._check(i)]

    def popen(self, i: int, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside host ``i``'s namespace; ``kw`` goes to ``subprocess.Popen``.

        ``ip netns exec`` execs argv in place, so the Popen's pid is the program's pid.
        The process is killed when the lab closes if it is still running."""
        if not self._made:
            raise NetLabError(["popen"], None, "lab is not open")
        p = subprocess.Popen(["ip", "netns", "exec", self.namespace(i), *argv], **kw)
        with self._lock:
            self._procs.append(p)
        return p

    # -- faults ----------------------------------------------------------------------------
    def isolate(self, i: int) -> None:
        """Cut host ``i`` off from every other host (its packets are silently dropped)."""
        with self._lock:
            _ip("-n", self.switch_ns, "link", "set", f"h{self._check(i)}", "nomaster")

    def heal(self, i: int) -> None:
        """Re-attach host ``i`` to the main segment ``br0`` (where group 0 of a partition is)."""
        with self._lock:
            _ip("-n", self.switch_ns, "link", "set", f"h{self._check(i)}", "master", "br0")

    def partition(self, *groups: Iterable[int]) -> None:
        """Split hosts into groups that only talk internally: ``partition({0}, {1, 2})``.

        Group k is wired to bridge ``br<k>``; hosts named in no group are isolated."""
        sets = [{self._check(i) for i in g} for g in groups]
        seen: set[int] = set()
        for s in sets:
            if s & seen:
                raise ValueError(f"host(s) {sorted(s & seen)} in more than one group")
            seen |= s
        with self._lock:
            for k, s in enumerate(sets):
                br = self._bridge(k)
                for i in sorted(s):
                    _ip("-n", self.switch_ns, "link", "set", f"h{i}", "master", br)
            for i in sorted(set(range(self.n_hosts)) - seen):
                self.isolate(i)

    def heal_all(self) -> None:
        """Put every host back on ``br0``: full connectivity."""
        for i in range(self.n_hosts):
            self.heal(i)


def _close_all() -> None:
    with _live_lock:
        labs = list(_live)
    for lab in labs:
        try:
            lab.close()
        except NetLabError:
            pass


atexit.register(_close_all)

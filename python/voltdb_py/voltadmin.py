# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltadmin-py: VoltDB's voltadmin for voltdb_py servers.

Usage::

    voltadmin-py [-H host[:port]] [-u user] [-p password] <verb> [options]

Verbs: ``status [--json] [-c [--interval S] [--count N]]``, ``pause [--wait]``,
``resume``, ``shutdown [--timeout S]``, ``stop [--force] HOST``. The port defaults to the
admin port, 21211. Exit codes: 0 done, 1 failed (unreachable host, bad credentials, a
refused call), 2 bad usage. See docs/tools.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from typing import Any, TextIO

from voltdb_py.types import ClientResponse, Status

__all__ = ["AdminError", "ClusterStatus", "cluster_status", "main", "parse_host"]

DEFAULT_ADMIN_PORT = 21211
MP_PARTITION = 16383


class AdminError(Exception):
    """A voltadmin verb failed; the message says why (exit code 1)."""


def parse_host(text: str, default_port: int = DEFAULT_ADMIN_PORT) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` for IPv6) into (host, port); empty means localhost.

    :raises ValueError: a port that is not a number in 1..65535, or several hosts.
    """
    from voltdb_py.client import parse_hosts

    text = text.strip()
    if not text:
        return "localhost", default_port
    hosts = parse_hosts(text, default_port)
    if len(hosts) != 1:
        raise ValueError(f"{text!r} names {len(hosts)} hosts; give one host[:port]")
    return hosts[0]


def _check(resp: ClientResponse, what: str) -> ClientResponse:
    if resp.status != Status.SUCCESS:
        raise AdminError(f"{what} failed: {resp.status_string or f'status {resp.status}'}")
    return resp


class ClusterStatus:
    """What ``status`` reports, gathered from @SystemInformation OVERVIEW, @Statistics TOPO
    and @Statistics PARTITIONCOUNT."""

    def __init__(self, overview: dict[int, dict[str, str]], partitions: list[dict[str, Any]],
                 partition_count: int) -> None:
        self.overview = overview
        self.partitions = partitions
        self.partition_count = partition_count
        any_host = overview[min(overview)] if overview else {}
        self.cluster_id = int(any_host.get("CLUSTERID", "0") or 0)
        self.version = any_host.get("VERSION", "?")
        self.hostcount = int(any_host.get("FULLCLUSTERSIZE", len(overview)) or len(overview))
        self.kfactor = int(any_host.get("KFACTOR", "0") or 0)
        self.uptime = any_host.get("UPTIME", "?")
        states = {h.get("CLUSTERSTATE", "?") for h in overview.values()}
        self.state = states.pop() if len(states) == 1 else ",".join(sorted(states))

    @property
    def live_hosts(self) -> int:
        return len(self.overview)

    @property
    def missing_hosts(self) -> int:
        return max(0, self.hostcount - self.live_hosts)

    def leaders_of(self, host_id: int) -> list[int]:
        return [p["partition"] for p in self.partitions if p["leader"] == host_id]

    @property
    def ksafe(self) -> bool:
        """Whether every partition has kfactor + 1 live replicas."""
        return all(len(p["replicas"]) >= self.kfactor + 1 for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        members = []
        for hid in sorted(self.overview):
            h = self.overview[hid]
            members.append({
                "hostId": hid, "hostname": h.get("HOSTNAME", ""),
                "ipaddress": h.get("IPADDRESS", ""),
                "clientPort": int(h.get("CLIENTPORT", "-1") or -1),
                "adminPort": int(h.get("ADMINPORT", "-1") or -1),
                "leaders": self.leaders_of(hid)})
        return {"clusterId": self.cluster_id, "version": self.version,
                "hostcount": self.hostcount, "kfactor": self.kfactor,
                "livehost": self.live_hosts, "missing": self.missing_hosts,
                "state": self.state, "uptime": self.uptime,
                "partitionCount": self.partition_count, "ksafe": self.ksafe,
                "members": members, "partitions": self.partitions}

    def to_text(self) -> str:
        def plural(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        head1 = (f"Cluster {self.cluster_id}, version {self.version}, hostcount "
                 f"{self.hostcount}, kfactor {self.kfactor}, state {self.state}")
        head2 = (f" {plural(self.live_hosts, 'live host')}, "
                 f"{plural(self.missing_hosts, 'missing host')}, "
                 f"{plural(self.partition_count, 'partition')}, uptime {self.uptime}")
        lines = [head1, head2, "-" * len(head1),
                 (f"{'HostId':>8}{'Host Name':>20}{'Address':>18}{'Client':>8}"
                  f"{'Admin':>8}{'Leaders':>9}")]
        for hid in sorted(self.overview):
            h = self.overview[hid]
            lines.append(f"{hid:>8}{h.get('HOSTNAME', ''):>20}{h.get('IPADDRESS', ''):>18}"
                         f"{h.get('CLIENTPORT', ''):>8}{h.get('ADMINPORT', ''):>8}"
                         f"{len(self.leaders_of(hid)):>9}")
        lines.append("")
        lines.append(f"{'Partition':>10}{'Leader':>8}  Replicas")
        for p in self.partitions:
            lines.append(f"{p['partition']:>10}{p['leader']:>8}  "
                         + ",".join(str(r) for r in p["replicas"]))
        lines.append("")
        if self.ksafe:
            lines.append(f"K-safety: kfactor {self.kfactor}, every partition has "
                         f"{self.kfactor + 1} or more live replicas (K-safe)")
        else:
            short = [str(p["partition"]) for p in self.partitions
                     if len(p["replicas"]) < self.kfactor + 1]
            lines.append(f"K-safety: kfactor {self.kfactor}, partitions {','.join(short)} "
                         f"have fewer than {self.kfactor + 1} live replicas (NOT K-safe)")
        return "\n".join(lines) + "\n"


def cluster_status(client: Any) -> ClusterStatus:
    """Gather the status of the cluster client is connected to."""
    ov = _check(client.call("@SystemInformation", "OVERVIEW"), "@SystemInformation OVERVIEW")
    overview: dict[int, dict[str, str]] = {}
    for hid, key, value in ov.tables[0].rows:
        overview.setdefault(int(hid), {})[key] = value
    topo = _check(client.call("@Statistics", "TOPO", 0), "@Statistics TOPO")
    partitions = []
    t = topo.tables[0]
    pi, si, li = (t.column_index("Partition"), t.column_index("Sites"),
                  t.column_index("Leader"))
    for row in sorted(t.rows, key=lambda r: r[pi]):
        if row[pi] == MP_PARTITION:
            continue
        replicas = sorted({int(s.split(":")[0]) for s in str(row[si]).split(",") if s})
        leader = int(str(row[li]).split(":")[0]) if row[li] else -1
        partitions.append({"partition": int(row[pi]), "leader": leader, "replicas": replicas})
    pc = _check(client.call("@Statistics", "PARTITIONCOUNT", 0), "@Statistics PARTITIONCOUNT")
    t = pc.tables[0]
    count = int(t.rows[0][t.column_index("PARTITION_COUNT")]) if t.rows else len(partitions)
    return ClusterStatus(overview, partitions, count)


# --------------------------------------------------------------------------- verbs

def _status(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    rounds = 1
    if args.continuous:
        rounds = args.count if args.count > 0 else sys.maxsize
    clear = args.continuous and not args.json and out.isatty()
    for i in range(rounds):
        if i:
            time.sleep(args.interval)
        st = cluster_status(client)
        if clear:
            out.write("\x1b[2J\x1b[H")
        if args.json:
            out.write(json.dumps(st.to_json()) + "\n")
        else:
            out.write(st.to_text())
            if args.continuous:
                out.write("\n")
        out.flush()
    return 0


def _pause(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    resp = _check(client.call("@Pause"), "@Pause")
    status = resp.tables[0].rows[0][0] if resp.tables and resp.tables[0].rows else 0
    if status != 0:
        raise AdminError(f"The cluster has failed to pause with status: {status}")
    out.write("The cluster is paused.\n")
    if args.wait:
        out.write("The cluster is quiesced.\n")  # nothing to drain: no export or DR yet
    return 0


def _resume(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    _check(client.call("@Resume"), "@Resume")
    out.write("The cluster has resumed.\n")
    return 0


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _shutdown(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    host, port = args.target
    out.write("Cluster shutdown in progress.\n")
    out.flush()
    resp = client.call("@Shutdown")
    if resp.status not in (Status.SUCCESS, Status.CONNECTION_LOST):
        raise AdminError(f"@Shutdown failed: {resp.status_string or f'status {resp.status}'}")
    client.close()
    deadline = time.monotonic() + args.timeout
    while _port_open(host, port):
        if time.monotonic() >= deadline:
            raise AdminError(f"the server at {host}:{port} still accepts connections "
                             f"{args.timeout:g} s after @Shutdown")
        time.sleep(0.1)
    out.write("The cluster has shut down.\n")
    return 0


def _host_matches(target: str, info: dict[str, str]) -> bool:
    names = {info.get("HOSTNAME", ""), info.get("IPADDRESS", ""),
             info.get("CLIENTINTERFACE", ""), info.get("ADMININTERFACE", "")}
    names.discard("")
    if target in names:
        return True
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(target, None)}
    except OSError:
        return False
    return bool(addrs & names)


def _stop(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    try:
        target, port = parse_host(args.host_to_stop, -1)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    st = cluster_status(client)
    matches = [hid for hid, info in st.overview.items() if _host_matches(target, info)
               and (port == -1 or info.get("INTERNALPORT") == str(port))]
    if not matches:
        raise AdminError(f"Host not found in cluster: {args.host_to_stop}")
    if len(matches) > 1:
        ports = ", ".join(f"{target}:{st.overview[h].get('INTERNALPORT')}" for h in matches)
        raise AdminError(f"{args.host_to_stop} names {len(matches)} hosts; add the "
                         f"internal port: one of {ports}")
    if len(st.overview) - len(matches) < 1:
        raise AdminError('The entire cluster is being stopped, use "shutdown" instead.')
    hid = matches[0]
    out.write(f"Stopping host {hid}: {args.host_to_stop}\n")
    out.flush()
    resp = client.call("@StopNode", hid)
    if resp.status != Status.SUCCESS:
        raise AdminError(resp.status_string or f"@StopNode failed with status {resp.status}")
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            if hid not in cluster_status(client).overview:
                break
        except (ConnectionError, AdminError):
            break  # this tool was connected to the host that left
        if time.monotonic() >= deadline:
            raise AdminError(f"host {hid} is still a member {args.timeout:g} s after @StopNode")
        time.sleep(0.1)
    out.write(f"Host {hid} with hostname {args.host_to_stop} is stopped; its leaders moved "
              "to the other hosts.\n")
    return 0


VERBS = {"status": _status, "pause": _pause, "resume": _resume, "shutdown": _shutdown,
         "stop": _stop}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-H", "--host", default=argparse.SUPPRESS,
                        help=f"host[:port] to connect to (default localhost:{DEFAULT_ADMIN_PORT}"
                             ", the admin port)")
    common.add_argument("-u", "--user", default=argparse.SUPPRESS, help="user name")
    common.add_argument("-p", "--password", default=argparse.SUPPRESS, help="password")
    p = argparse.ArgumentParser(prog="voltadmin-py", parents=[common],
                                description="Administer a voltdb_py (VoltDB) cluster.")
    sub = p.add_subparsers(dest="verb", required=True, metavar="verb")
    s = sub.add_parser("status", parents=[common], help="show the cluster's status")
    s.add_argument("-j", "--json", action="store_true", help="print JSON instead of text")
    s.add_argument("-c", "--continuous", action="store_true",
                   help="repeat every --interval seconds, --count times")
    s.add_argument("--interval", type=float, default=2.0, help="seconds between reports (2)")
    s.add_argument("--count", type=int, default=0,
                   help="reports to print with -c (default 0: until interrupted)")
    s = sub.add_parser("pause", parents=[common],
                       help="pause the cluster (admin mode: client connections read only)")
    s.add_argument("-w", "--wait", action="store_true",
                   help="also wait for export and DR to drain (nothing to drain yet)")
    sub.add_parser("resume", parents=[common], help="resume normal operation")
    s = sub.add_parser("shutdown", parents=[common], help="shut the whole cluster down")
    s.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the servers to stop listening (30)")
    s = sub.add_parser("stop", parents=[common], help="stop one host of the cluster")
    s.add_argument("-f", "--force", action="store_true", help="skip the leader migration")
    s.add_argument("host_to_stop", metavar="HOST",
                   help="the host to stop: name or address, with :internal-port when "
                        "several hosts share an address")
    s.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the host to leave (60)")
    return p


def main(argv: list[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Entry point of voltadmin-py; returns the exit code (0 done, 1 failed, 2 usage)."""
    from voltdb_py.client import AuthenticationError, Client, ClientConnectionError

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb == "status" and (args.interval < 0 or args.count < 0):
        parser.error("--interval and --count must not be negative")
    try:
        host, port = parse_host(getattr(args, "host", "localhost"))
    except ValueError as exc:
        parser.error(f"-H: {exc}")
    args.target = (host, port)
    user = getattr(args, "user", "")
    try:
        client = Client(f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                        username=user, password=getattr(args, "password", ""),
                        topology_aware=False, connect_timeout_s=10.0, timeout_s=60.0)
    except AuthenticationError as exc:
        err.write(f"voltadmin-py: error: Authentication rejected by {host}:{port}: "
                  f"bad user name or password{f' for {user!r}' if user else ''} "
                  f"({exc.reason})\n")
        return 1
    except ClientConnectionError as exc:
        err.write(f"voltadmin-py: error: Unable to connect to VoltDB cluster at "
                  f"{host}:{port}: {exc.reason}\n")
        return 1
    try:
        return VERBS[args.verb](client, args, out)
    except AdminError as exc:
        err.write(f"voltadmin-py: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

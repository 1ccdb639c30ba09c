# SPDX-License-Identifier: AGPL-3.0-or-later
"""One host of a multi-process cluster: forming, routing, replication, failover.

Forming (``voltdb-py start --host H1,H2 --count N``): every host connects to the first
``--host`` entry (its internal port) and sends ``join``. The host listening there collects
N joiners, checks that they agree (count, k-factor, sites per host, schema digest), and
sends each the list of Raft addresses. Every host then starts its metadata node
(:class:`~voltdb_py.cluster.metadata.ClusterMetadata`, pysyncobj) with all N addresses;
the collecting host registers the N hosts in join order (it is host 0), and the N-th
registration forms the topology with VoltDB's placement. Each host then opens links to all
others (:mod:`voltdb_py.node.mesh`) and starts serving.

Single-partition calls go to the partition's leader. The leader runs a batch of calls
(one group commit), sends the writing calls, with the transaction ids they were given, to
every other live replica of the partition in one ``rep`` message per partition, and
answers each call only once every live replica has acknowledged the batch. A replica runs
the same calls in the same order and returns a hash of each response; a mismatch evicts
the replica (it is marked failed), never passing silently. Reads run on the leader and are
answered once every write before them is acknowledged (VoltDB's safe reads).

Multi-partition work (procedures, ad hoc SQL, DDL and the system procedures that change
every host) goes to one coordinator, the live host with the lowest id. It quiesces every
host (``begin``: each host stops starting single-partition work and waits until all its
replication is acknowledged), then runs the procedure in a worker thread whose SQL
statements execute as fragments on the hosts that hold the partitions: reads on the
leader, writes on every replica (replicated tables: on every host), each inside one open
write transaction per host; at the end every host commits or rolls back (``end``).

Failures: every link carries a heartbeat; a host not heard from within the deployment's
``<heartbeat timeout>`` (or whose port refuses connections) is proposed as failed to the
metadata. The metadata moves leaders (epoch + 1); a new leader first repairs its
partition (every surviving replica is brought to the longest surviving prefix of the old
leader's stream) and only then serves. A host that can no longer see enough hosts by
VoltDB's partition-detection rule stops serving at once (half the timeout) and shuts down
(full timeout), dropping its client connections before any answer can leave.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import itertools
import logging
import re
import socket
import struct
import sys
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from voltdb_py import errors as _errors
from voltdb_py import wire
from voltdb_py.catalog.serialize import catalog_to_bytes
from voltdb_py.cluster.topology import TopologyError, fail_host, partition_detection
from voltdb_py.engine import _engine
from voltdb_py.errors import VoltError
from voltdb_py.node import codec
from voltdb_py.node.mesh import Inbound, Link
from voltdb_py.node.root import ClusterState
from voltdb_py.node.server import Caller, _partition_key_value
from voltdb_py.types import ClientResponse, Column, Status, VoltTable, VoltType

log = logging.getLogger("voltdb_py.node.cluster")

#: VoltDB's default internal (host-to-host) port, and the port of its ZooKeeper, which
#: here is the Raft port of the metadata.
DEFAULT_INTERNAL_PORT = 3021
DEFAULT_RAFT_PORT = 7181
#: Answer to a call whose leader failed while it was in flight (VoltDB's wording).
MASTERSHIP_CHANGED = ("Transaction dropped due to change in mastership. It is possible "
                      "the transaction was committed")
_DDL = re.compile(r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*"
                  r"(CREATE|DROP|ALTER|PARTITION|DR|EXPORT|SET)\b", re.I | re.S)
#: System procedures every host runs (through the coordinator, with every host quiesced).
_BROADCAST = frozenset({"@UPDATECLASSES", "@LOADMULTIPARTITIONTABLE", "@PAUSE", "@RESUME",
                        "@SHUTDOWN"})
_ERRORS = {name: getattr(_errors, name) for name in (
    "SQLError", "ConstraintError", "TypeMismatchError", "ValueOutOfRangeError",
    "MispartitionedError", "CatalogError", "PlanningError", "StorageError")}


#: @Statistics components every host answers for its own sites (the router merges them).
_PER_HOST_STATS = frozenset({"TABLE", "INDEX", "PROCEDURE"})


class ClusterError(VoltError):
    """The cluster cannot form or a host cannot take part; the message is for the user."""


@dataclass
class ClusterOptions:
    """How a host finds and joins its cluster (``voltdb-py start`` options)."""

    seeds: list[tuple[str, int]]
    count: int
    internal: tuple[str, int] = ("", DEFAULT_INTERNAL_PORT)
    raft: tuple[str, int] = ("", DEFAULT_RAFT_PORT)
    placement_group: str = "0"
    add: bool = False
    form_timeout_s: float = 300.0
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)


#: New calls one group commit takes at most (replication batches are all taken); the rest
#: wait for the next event-loop turn. Smaller groups (8 to 32) cost more CPU per call and
#: did not raise the rate of replicated writes (2 hosts, k=1, 64 calls in flight).
WORK_CHUNK = 256


def _response_bytes(resp: ClientResponse) -> bytes:
    """A response as wire bytes with client handle 0 (the router patches the handle)."""
    try:
        return wire.encode_response(0, resp.status, resp.status_string, resp.app_status,
                                    resp.app_status_string, resp.tables, 0)
    except (VoltError, TypeError, ValueError, OverflowError) as exc:
        return wire.encode_response(
            0, Status.UNEXPECTED_FAILURE,
            f"the result cannot be serialized: {type(exc).__name__}: {exc}")


def _error_bytes(status: int, message: str) -> bytes:
    return wire.encode_response(0, status, message)


def _with_handle(data: bytes, handle: int) -> bytes:
    return data[:5] + struct.pack(">q", handle) + data[13:]


def free_port(ip: str = "127.0.0.1") -> int:
    """A TCP port free on ip now ("" = every address); another process may take it before
    it is bound again, so use it at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip or "0.0.0.0", 0))
        return s.getsockname()[1]


#: A single-partition call waiting for, or running on, its leader (compiled: see
#: engine/cluster.pxi).
_Call = _engine.ClusterCall
_intake = _engine.cluster_intake


def _writes_by_partition(calls: list[_Call]) -> dict[int, list[int]]:
    """Partition -> the indexes of the calls that write there, in order."""
    out: dict[int, list[int]] = {}
    for i, c in enumerate(calls):
        if not c.read_only:
            idx = out.get(c.pid)
            if idx is None:
                out[c.pid] = [i]
            else:
                idx.append(i)
    return out


class _Lead:
    """This host leads a partition: its replication stream to the other replicas."""

    def __init__(self, pid: int, epoch: int, seq: int) -> None:
        self.pid = pid
        self.epoch = epoch
        self.seq = seq                       # last sequence number sent
        self.acked: dict[int, int] = {}      # replica host -> last acknowledged seq
        self.sent: dict[int, tuple] = {}     # seq -> (entries, ids, hashes) until acked
        self.waiters: deque[tuple[int, _Call, bytes]] = deque()  # (seq, call, answer)
        self.ready = False                   # repaired and serving
        self.held: list[_Call] = []          # calls that came before it was ready

    def committed(self) -> int:
        return min(self.acked.values()) if self.acked else self.seq


class _Replica:
    """This host replicates a partition: what it applied of the leader's stream."""

    def __init__(self) -> None:
        self.epoch = 0
        self.applied = 0
        self.queued = 0  # last seq accepted for applying (>= applied)
        self.log: dict[int, tuple] = {}  # seq -> (entries, ids), kept until committed


class ClusterHost:
    """The cluster side of one server process (see the module docstring)."""

    def __init__(self, node: Any, root: Path, options: ClusterOptions) -> None:
        self.node = node
        self.db = node.db
        self.root = root
        self.opts = options
        self.deployment = node.deployment
        self.timeout_s = float(self.deployment.heartbeat_timeout_s)
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.host_id = -1
        self.md: Any = None
        self.witness: Any = None  # host 0's tie-breaking Raft vote (even host counts)
        self.snap: Any = None
        self.topology: Any = None
        self.live: frozenset[int] = frozenset()
        self.links: dict[int, Link] = {}
        self.last_heard: dict[int, float] = {}
        self.leads: dict[int, _Lead] = {}
        self.replicas: dict[int, _Replica] = {}
        self.stopping = False
        self.exit_message: str | None = None
        self._server: Any = None
        self._formed = asyncio.Event()
        self._joiners: list[tuple[Inbound, dict]] = []
        self._peers_msg: Any = None
        self._rids = itertools.count(1)
        self._requests: dict[int, tuple[int, Callable[[bool, Any], None]]] = {}
        self._batch: list[_Call] = []
        self._reps: list[tuple] = []  # replication batches waiting for this turn's commit
        self._work_scheduled = False
        self._outbox: dict[Any, list[bytes]] = {}
        self._mp_queue: asyncio.Queue | None = None
        self._mp_thread = concurrent.futures.ThreadPoolExecutor(1, "voltdb-py-mp")
        self._mp_ids = itertools.count(1)
        self.mp: tuple[int, int] | None = None   # (mp id, coordinator) while quiesced
        self._mp_outcomes: dict[tuple[int, int], bool] = {}  # (coordinator, mp id) -> commit
        self._resolving = False
        self._mp_ready: tuple[int, int] | None = None  # (requester, rid) to answer
        self._deferred: list[_Call] = []
        self._suspected: set[int] = set()
        self._cut_since: float | None = None
        self._no_quorum_since: float | None = None
        self._shutdown_requested = False
        self.lease_ok = True
        self._tasks: list[asyncio.Task] = []
        self.internal_address: tuple[str, int] = ("", 0)

    # ================================================================== forming

    async def start_listener(self) -> None:
        """Bind the internal port (0 picks one) and choose the Raft port."""
        self.loop = asyncio.get_running_loop()
        ip, port = self.opts.internal
        self._server = await self.loop.create_server(
            lambda: Inbound(self._on_inbound), ip or None, port,
            reuse_address=True, backlog=256)
        self.internal_address = (ip, self._server.sockets[0].getsockname()[1])
        rip, rport = self.opts.raft
        if rport == 0:
            rport = free_port(rip or ip)
        self.raft_port = rport
        self.raft_ip = rip or ip

    def _catalog_digest(self) -> str:
        return hashlib.sha256(catalog_to_bytes(self.db.catalog)).hexdigest()

    async def form(self) -> None:
        """Join (or collect) the cluster and wait until it is formed; then connect links."""
        cl = self.deployment.cluster
        info = {"instance": self.opts.instance, "count": self.opts.count,
                "kfactor": cl.kfactor, "sph": cl.sites_per_host,
                "digest": self._catalog_digest(), "add": self.opts.add,
                "pg": self.opts.placement_group, "internal_ip": self.internal_address[0],
                "raft_ip": self.raft_ip,
                "ports": {"internal": self.internal_address[1], "raft": self.raft_port,
                          "client": self.node.client_address[1],
                          "admin": self.node.admin_address[1]}}
        if self.node.http_address:
            info["ports"]["http"] = self.node.http_address[1]
        deadline = time.monotonic() + self.opts.form_timeout_s
        seed = self.opts.seeds[0]
        peers = None
        while peers is None:
            if time.monotonic() > deadline:
                raise ClusterError(f"the cluster did not form within "
                                   f"{self.opts.form_timeout_s:.0f} s: could not reach "
                                   f"{seed[0]}:{seed[1]} or too few hosts joined")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*seed), 5.0)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.1)
                continue
            try:
                writer.write(codec.frame(["join", info]))
                await writer.drain()
                fr = codec.FrameReader()
                while peers is None:
                    remaining = deadline - time.monotonic()
                    data = await asyncio.wait_for(reader.read(65536), max(remaining, 0.1))
                    if not data:
                        break
                    for m in fr.feed(data):
                        if m[0] == "refused":
                            raise ClusterError(m[1])
                        if m[0] == "peers":
                            peers = m
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.1)
            finally:
                writer.close()
        _, raft_addrs, instances, my_ip = peers
        self._advertised_ip = self.internal_address[0] or my_ip
        await self._start_metadata(raft_addrs, instances)

    def _on_join(self, conn: Inbound, info: Any) -> None:
        """Collect joiners (this host listens at the first --host address)."""
        if not isinstance(info, dict) or "instance" not in info:
            conn.reply(["refused", "malformed join request"])
            return
        if self._peers_msg is not None:
            if info["instance"] in self._peers_msg[2]:
                conn.reply(self._peers_msg[:3] + [conn.peername[0]])
                return
            if info.get("add"):
                why = ("Elastic join (start --add) is not available yet: the cluster "
                       "is complete")
            else:
                why = ("Cluster is already complete: a new host must be started with "
                       "--add to join a running cluster")
            conn.reply(["refused", why])
            return
        for i, (c, other) in enumerate(self._joiners):
            if other["instance"] == info["instance"]:
                self._joiners[i] = (conn, info)
                break
        else:
            first = self._joiners[0][1] if self._joiners else None
            if first is not None:
                for key, what in (("count", "--count"), ("kfactor", "kfactor"),
                                  ("sph", "sitesperhost"), ("digest", "schema")):
                    if info[key] != first[key]:
                        conn.reply(["refused", f"this host's {what} ({info[key]}) differs "
                                    f"from the cluster's ({first[key]}); every host must be "
                                    "initialized and started alike"])
                        return
            self._joiners.append((conn, info))
        count = self._joiners[0][1]["count"]
        if len(self._joiners) < count:
            return
        # Host 0 is this host (it listens at the first --host address), then join order.
        ordered = sorted(self._joiners, key=lambda j: j[1]["instance"] != self.opts.instance)
        self._joiners = ordered
        addrs = []
        for c, i in ordered:
            ip = i["raft_ip"] or i["internal_ip"] or c.peername[0]
            addrs.append(f"{ip}:{i['ports']['raft']}")
        instances = [i["instance"] for _c, i in ordered]
        if len(ordered) % 2 == 0:
            # An even number of voters could split in half with no majority. VoltDB lets
            # the half holding the lowest host id go on; here host 0 casts a second,
            # tie-breaking Raft vote (a witness node in its process) to the same effect.
            ip = addrs[0].rpartition(":")[0]
            addrs.append(f"{ip}:{free_port(ip)}")
        self._peers_msg = ["peers", addrs, instances]
        for c, _i in ordered:
            c.reply(self._peers_msg + [c.peername[0]])

    async def _start_metadata(self, raft_addrs: list[str], instances: list[str]) -> None:
        from voltdb_py.cluster.metadata import ClusterMetadata

        me = instances.index(self.opts.instance)
        t = self.timeout_s
        conf = {"raftMinTimeout": min(0.4, t / 4), "raftMaxTimeout": min(1.4, t / 2),
                "connectionTimeout": min(3.5, t), "leaderFallbackTimeout": min(5.0, t)}
        md_dir = self.root / "metadata"
        self.md = ClusterMetadata(raft_addrs[me], raft_addrs, md_dir, **conf)
        if me == 0 and len(raft_addrs) > len(instances):
            self.witness = ClusterMetadata(raft_addrs[-1], raft_addrs,
                                           self.root / "metadata-witness", **conf)
        self.md.on_change(lambda snap: self.loop.call_soon_threadsafe(self._on_snapshot, snap))
        if self._peers_msg is not None:  # the collecting host registers everyone
            cl = self.deployment.cluster
            for c, i in self._joiners:
                ip = i["internal_ip"] or c.peername[0]
                result = await self._md_apply(
                    "register_host", i["instance"], ip, i["ports"], i["pg"],
                    host_count=len(instances), kfactor=cl.kfactor,
                    sites_per_host=cl.sites_per_host, timeout_s=self.opts.form_timeout_s)
                if not result.get("ok"):
                    raise ClusterError(f"registering host {i['instance']} failed: "
                                       f"{result.get('error')}")
                log.info("registered host %s as host %d", ip, result["host_id"])
            await self._record_catalog()
        deadline = time.monotonic() + self.opts.form_timeout_s
        while not self._formed.is_set():
            self._on_snapshot(self.md.snapshot())
            if self._formed.is_set():
                break
            if time.monotonic() > deadline:
                raise ClusterError("the cluster metadata did not form in time")
            try:
                await asyncio.wait_for(self._formed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    async def _record_catalog(self) -> None:
        """Put the current catalog (version and bytes) into the cluster metadata."""
        version = self.db.catalog.version
        if version < 1 or self.md is None:
            return
        result = await self._md_apply("set_catalog", version,
                                      catalog_to_bytes(self.db.catalog))
        if not result.get("ok") and result.get("code") != "stale_version":
            log.warning("recording catalog version %d: %s", version, result.get("error"))

    async def _md_apply(self, op: str, *args: Any, timeout_s: float | None = None,
                        **kwargs: Any) -> dict:
        fn = partial(self.md.apply, op, *args, check=False,
                     timeout_s=timeout_s or max(self.timeout_s, 5.0), **kwargs)
        deadline = time.monotonic() + (timeout_s or max(self.timeout_s, 5.0))
        while True:
            try:
                return await self.loop.run_in_executor(None, fn)
            except Exception as exc:  # noqa: BLE001 - MetadataUnavailable: retry in time
                if time.monotonic() > deadline or self.stopping:
                    raise ClusterError(f"metadata change {op} failed: {exc}") from None
                await asyncio.sleep(0.2)

    # ================================================================== metadata

    def _on_snapshot(self, snap: Any) -> None:
        if self.stopping or snap.topology is None:
            return
        if self.snap is not None and snap.seq <= self.snap.seq:
            return
        me = snap.host_by_instance(self.opts.instance)
        if me is None:
            return
        first = self.snap is None
        self.snap = snap
        self.host_id = me.host_id
        topo = snap.topology
        self.topology = topo
        if first:
            self._first_topology(snap)
        if snap.cluster_state == "stopped":
            if not self.node.stopping:
                self._fatal(f"the cluster stopped: {snap.stop_reason}", abort=False)
            return
        if me.state == "failed" and snap.cluster_state != "shutting_down" and \
                not self.node.stopping:
            self._fatal("this host was removed from the cluster (the others marked it "
                        "failed)", abort=True)
            return
        live = frozenset(h for h in topo.live_hosts if snap.hosts[h].state == "active")
        dead = self.live - live
        self.live = live
        for h in dead:
            self._host_gone(h)
        for h in live:
            if h != self.host_id and h not in self.links:
                self._connect(h)
        self.node.cluster = ClusterState(
            len(topo.hosts), topo.sites_per_host, topo.kfactor, topo, snap.hashinator_version)
        # Leadership
        for pid, p in topo.partitions.items():
            epoch = snap.epochs.get(pid, 0)
            if self.host_id in p.replicas and pid not in self.replicas:
                self.replicas[pid] = _Replica()
            lead = self.leads.get(pid)
            if p.leader == self.host_id:
                if lead is None or lead.epoch != epoch:
                    self._take_lead(pid, epoch, p.replicas)
            elif lead is not None:
                del self.leads[pid]
                for call in lead.held:
                    self._moved(call, "leader changed")
        for lead in self.leads.values():
            for h in list(lead.acked):
                if h not in live:
                    del lead.acked[h]
            self._release(lead)
        if self.mp is not None and self.mp[1] not in live and not self._resolving:
            self._resolving = True
            self.loop.create_task(self._resolve_mp(*self.mp))
        self._formed.set()

    def _first_topology(self, snap: Any) -> None:
        count = len(snap.topology.partitions)
        if self.db.partition_count != count:
            self.db.reset_partition_count(count)
        self.node.host_id = self.host_id
        self.node.config.host_id = self.host_id
        now = time.monotonic()
        for h in snap.topology.hosts:
            self.last_heard[h] = now

    def _connect(self, h: int) -> None:
        rec = self.snap.hosts[h]
        self.last_heard.setdefault(h, time.monotonic())
        self.links[h] = Link(self.loop, self.host_id, h, (rec.address, rec.ports["internal"]),
                             self._link_down, self._link_up)

    def _link_up(self, h: int) -> None:
        # Resend what the peer may have lost with the old connection (it ignores repeats).
        for lead in self.leads.values():
            if h in lead.acked:
                for seq in sorted(s for s in lead.sent if s > lead.acked[h]):
                    entries, ids, _hashes = lead.sent[seq]
                    self._send(h, ["rep", lead.pid, lead.epoch, seq, entries, ids,
                                   lead.committed()])

    def _link_down(self, h: int, refused: bool) -> None:
        # Requests in flight to h may be lost: their callers learn it now.
        self._fail_requests(h, f"lost the connection to host {h}")
        if refused and h in self.live and not self.stopping:
            # Nothing listens there: the process is gone.
            self._suspect(h, "its internal port refuses connections")

    def _host_gone(self, h: int) -> None:
        link = self.links.pop(h, None)
        if link is not None:
            link.close()
        self._fail_requests(h, f"host {h} failed")
        self._suspected.discard(h)

    def _suspect(self, h: int, why: str) -> None:
        if h in self._suspected or self.stopping:
            return
        if self.snap is not None and self.snap.cluster_state == "shutting_down":
            return
        self._suspected.add(h)
        log.warning("host %d looks failed (%s): proposing it to the cluster", h, why)

        async def propose() -> None:
            try:
                await self._md_apply("mark_failed", h, why)
            except ClusterError as exc:
                log.warning("could not mark host %d failed: %s", h, exc)
                self._suspected.discard(h)
        self._tasks.append(self.loop.create_task(propose()))

    # ================================================================== serving

    async def run(self) -> None:
        """Background duties once formed: heartbeats and failure detection, MP worker."""
        self._mp_queue = asyncio.Queue()
        self._tasks.append(self.loop.create_task(self._heartbeat_loop()))
        self._tasks.append(self.loop.create_task(self._mp_worker()))

    async def _heartbeat_loop(self) -> None:
        period = max(self.timeout_s / 10, 0.02)
        while not self.stopping:
            await asyncio.sleep(period)
            now = time.monotonic()
            for h, link in list(self.links.items()):
                if now - link.last_sent >= period:
                    link.send(["hb"])
            self._check_failures(now)

    def _check_failures(self, now: float) -> None:
        if self.snap is None or not self.live or self.snap.cluster_state == "shutting_down":
            return
        t = self.timeout_s
        me = self.host_id
        heard = {h for h in self.live if h == me or now - self.last_heard.get(h, 0) < t}
        fresh = {h for h in self.live if h == me or now - self.last_heard.get(h, 0) < t / 2}
        self.lease_ok = partition_detection(self.live, fresh)
        if not self.lease_ok:
            if self._cut_since is None:
                self._cut_since = now
                log.warning("this host sees only hosts %s of %s: it stops serving",
                            sorted(fresh), sorted(self.live))
            if not partition_detection(self.live, heard):
                self._fatal(
                    f"partition detection: this host (host {me}) can reach only hosts "
                    f"{sorted(heard)} of the cluster's {sorted(self.live)}; it is on the "
                    "minority side and shuts down", abort=True)
                return
        elif self._cut_since is not None:
            self._cut_since = None
            self._flush_held()
        for h in self.live - heard:
            self._suspect(h, f"no heartbeat for {t:g} s")
        # Failures are agreed through the metadata: a host that cannot reach a majority of
        # its Raft nodes for long can neither fail over nor be failed over cleanly.
        if self.md is not None and not self.md.has_quorum():
            if self._no_quorum_since is None:
                self._no_quorum_since = now
            elif now - self._no_quorum_since > max(2 * t, 5.0):
                self._fatal(
                    f"this host (host {me}) has not reached a majority of the cluster "
                    f"metadata (Raft) nodes for {now - self._no_quorum_since:.0f} s, so "
                    "failures can no longer be agreed on: it shuts down", abort=True)
        else:
            self._no_quorum_since = None

    def _fatal(self, message: str, abort: bool) -> None:
        if self.stopping:
            return
        self.exit_message = message
        print(f"voltdb-py: FATAL: {message}", file=sys.stderr, flush=True)
        log.error("%s", message)
        if abort:
            # No answer may leave a host that decided to die (VoltDB ENG-10453).
            for c in list(self.node.connections):
                c.closed = True
                if c.transport is not None:
                    c.transport.abort()
        self.node.exit_code = 3 if abort else 2
        self.node.request_stop()

    async def stop(self, leave: bool) -> None:
        """Stop taking part; with leave, first hand this host's leaders over."""
        if leave and self.exit_message is None and not self._shutdown_requested and \
                self.md is not None and \
                self.snap is not None and \
                self.snap.cluster_state not in ("shutting_down", "stopped") and \
                len(self.live) > 1 and self.host_id in self.live:
            try:
                await self._md_apply("mark_failed", self.host_id, "stopped by request",
                                     timeout_s=max(self.timeout_s, 5.0))
            except ClusterError as exc:
                log.warning("could not hand over leadership before stopping: %s", exc)
        self.stopping = True
        for t in self._tasks:
            t.cancel()
        for link in self.links.values():
            link.close()
        if self._server is not None:
            self._server.close()
        if self.mp is not None:
            self._end_mp(False)
        self._mp_thread.shutdown(wait=False, cancel_futures=True)
        if self.md is not None:
            md, self.md = self.md, None
            await self.loop.run_in_executor(None, md.close)
        if self.witness is not None:
            w, self.witness = self.witness, None
            await self.loop.run_in_executor(None, w.close)

    # ------------------------------------------------------------------ messages

    def _on_inbound(self, conn: Inbound, m: list) -> None:
        kind = m[0]
        if kind == "hello":
            conn.peer_host = m[1]
            self.last_heard[m[1]] = time.monotonic()
            return
        if kind == "join":
            self._on_join(conn, m[1] if len(m) > 1 else None)
            return
        h = conn.peer_host
        if h is None:
            log.warning("internal message %r before hello from %s", kind, conn.peername)
            if conn.transport is not None:
                conn.transport.abort()
            return
        self.last_heard[h] = time.monotonic()
        try:
            self._on_message(h, m)
        except Exception:  # noqa: BLE001 - one bad message must not stop the host
            log.exception("internal message %r from host %d failed", kind, h)

    def _send(self, h: int, msg: list) -> None:
        if h == self.host_id:
            self.loop.call_soon(self._on_message_safe, h, msg)
            return
        link = self.links.get(h)
        if link is not None:
            link.send(msg)

    def _on_message_safe(self, h: int, m: list) -> None:
        try:
            self._on_message(h, m)
        except Exception:  # noqa: BLE001
            log.exception("local message %r failed", m[0])

    def _on_message(self, h: int, m: list) -> None:
        kind = m[0]
        if kind == "hb":
            return
        if kind == "resp":
            entry = self._requests.pop(m[1], None)
            if entry is not None:
                entry[1](bool(m[2]), m[3])
            return
        handler = getattr(self, "_msg_" + kind, None)
        if handler is None:
            log.warning("unknown internal message %r from host %d", kind, h)
            return
        handler(h, *m[1:])

    def _request(self, h: int, kind: str, args: list, cb: Callable[[bool, Any], None]) -> None:
        """Send a request; cb(ok, payload) runs on its answer or when h is lost."""
        if h not in self.live and h != self.host_id:
            cb(False, ["ClusterError", f"host {h} is not live"])
            return
        rid = next(self._rids)
        self._requests[rid] = (h, cb)
        self._send(h, [kind, rid, *args])

    def _answer(self, h: int, rid: int, ok: bool, payload: Any) -> None:
        self._send(h, ["resp", rid, ok, payload])

    def _fail_requests(self, h: int, why: str) -> None:
        for rid in [r for r, (host, _cb) in self._requests.items() if host == h]:
            _host, cb = self._requests.pop(rid)
            cb(False, ["ClusterError", why])

    async def _ask(self, h: int, kind: str, *args: Any, timeout_s: float | None = None) -> Any:
        fut = self.loop.create_future()

        def done(ok: bool, payload: Any) -> None:
            if not fut.done():
                if ok:
                    fut.set_result(payload)
                else:
                    fut.set_exception(_remote_error(payload))
        self._request(h, kind, list(args), done)
        return await asyncio.wait_for(fut, timeout_s or max(4 * self.timeout_s, 30.0))

    # ================================================================== client calls

    def execute_frames(self, conn: Any, bodies: list[bytes]) -> list[bytes]:
        """Route a batch of invocations; answers that are ready now are returned, the
        others are written to conn when they arrive."""
        out: list[bytes] = []
        node = self.node
        # User procedures routed by their key to a partition led here are queued by one
        # compiled loop (_intake), unless something needs route()'s checks (stopping,
        # forming, paused); every other call takes the general path below, in order.
        plain = not (node.stopping or self.stopping or self.snap is None or node.paused)
        db = self.db
        n = len(bodies)
        i = 0
        while i < n:
            decoded = None
            if plain:
                batch = self._batch
                queued = len(batch)
                i, decoded = _intake(conn, bodies, i, batch, db._procs, db._hashinator,
                                     self.topology.partitions, self.host_id)
                if len(batch) > queued:
                    self._schedule_work()
                if i == n:
                    break
            self._frame(conn, bodies[i], decoded, plain, out)
            if conn.closed:
                return out
            i += 1
        node.after_batch()
        return out

    def _frame(self, conn: Any, body: bytes, decoded: tuple | None, plain: bool,
               out: list[bytes]) -> None:
        """The general path of one invocation (decoded, or None to decode it here)."""
        if decoded is None:
            try:
                decoded = wire.decode_invocation(body)
            except wire.InvocationError as exc:
                out.append(wire.encode_response(exc.client_handle, Status.UNEXPECTED_FAILURE,
                                                f"Malformed invocation: {exc}"))
                return
            except _errors.CodecError as exc:
                conn.abort(f"unreadable invocation: {exc}")
                return
        proc, handle, params, ext = decoded
        if plain and not ext and proc[:1] != "@":
            pid, ro = self.db.route(proc, params)
            if pid is not None and pid >= 0:  # led by another host
                self._route_sp(_Call(pid, proc, params, None, ro, None, None, conn, handle))
                return

        def reply(data: bytes, conn: Any = conn, handle: int = handle) -> None:
            self._deliver(conn, _with_handle(data, handle))
        try:
            data = self.route(conn, proc, params, ext, reply)
        except Exception as exc:  # noqa: BLE001 - answer, never drop the connection
            log.exception("routing %s failed", proc)
            data = _error_bytes(Status.UNEXPECTED_FAILURE,
                                f"unexpected error in {proc}: {type(exc).__name__}: {exc}")
        if data is not None:
            out.append(_with_handle(data, handle))

    def _deliver(self, conn: Any, data: bytes) -> None:
        """Queue an answer for a client connection: one write per connection per turn."""
        out = self._outbox.get(conn)
        if out is None:
            self._outbox[conn] = [data]
            if len(self._outbox) == 1:
                self.loop.call_soon(self._flush_outbox)
        else:
            out.append(data)

    def _flush_outbox(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for conn, datas in outbox.items():
            conn.send(b"".join(datas) if len(datas) > 1 else datas[0])

    async def call(self, conn: Any, proc: str, params: tuple) -> ClientResponse:
        """Route one call and wait for its answer (the JSON HTTP API)."""
        fut = self.loop.create_future()

        def reply(data: bytes) -> None:
            if not fut.done():
                fut.set_result(data)
        data = self.route(conn, proc, params, {}, reply)
        if data is None:
            data = await fut
        return wire.decode_response(data[4:])

    def route(self, conn: Any, proc: str, params: tuple, ext: dict,
              reply: Callable[[bytes], None]) -> bytes | None:
        """Send one call where it runs; its answer (handle 0) now, or later via reply."""
        node = self.node
        if node.stopping or self.stopping:
            return _error_bytes(Status.SERVER_UNAVAILABLE, "Server is shutting down.")
        if self.snap is None:
            return _error_bytes(Status.SERVER_UNAVAILABLE, "The cluster is still forming.")
        denied = node.refusal(conn, proc, params)
        if denied is not None:
            return _response_bytes(denied)
        dest = ext.get("partition_destination")
        if dest is not None:
            if proc.startswith("@"):
                return _response_bytes(node.dispatch(conn, proc, params, ext))
            if isinstance(dest, bool) or not isinstance(dest, int) or \
                    dest not in self.topology.partitions:
                return _error_bytes(Status.GRACEFUL_FAILURE, f"Partition {dest} does not exist")
            ro = self.db.is_read_only(proc)
            self._route_sp(_Call(dest, proc, params, dest, bool(ro), reply))
            return None
        if proc.startswith("@"):
            upper = proc.upper()
            if upper == "@ADHOC":
                sql = params[0] if params and isinstance(params[0], str) else None
                if sql is not None and _DDL.match(sql):
                    if not node.users.is_admin(conn.user or ""):
                        return _error_bytes(Status.UNEXPECTED_FAILURE,
                                            f"User {conn.user} does not have admin permission "
                                            "to run DDL")
                    return self._route_mp("bcast", "@AdHoc", params, reply)
                if sql is None:
                    return _response_bytes(node.dispatch(conn, proc, params, ext))
                return self._route_mp("txn", "@AdHoc", params, reply)
            if upper == "@LOADSINGLEPARTITIONTABLE":
                pid = self._load_partition(params)
                if pid is None:
                    return _response_bytes(node.dispatch(conn, proc, params, ext))
                self._route_sp(_Call(pid, "@LoadSinglepartitionTable", params, None, False,
                                     reply))
                return None
            if upper == "@STOPNODE":
                return self._stop_node(conn, params)
            if upper == "@STATISTICS" and params and isinstance(params[0], str) and \
                    params[0].upper() in _PER_HOST_STATS:
                self.loop.create_task(self._gather_stats(params, reply))
                return None
            if upper in _BROADCAST:
                if upper == "@UPDATECLASSES" and len(params) == 2 and params[0] is None \
                        and params[1] is None:
                    return _response_bytes(node.dispatch(conn, proc, params, ext))
                denied = self._check_admin(conn, proc)
                if denied is not None:
                    return _response_bytes(denied)
                if upper == "@SHUTDOWN":
                    self.loop.create_task(self._shutdown_cluster(reply))
                    return None
                return self._route_mp("bcast", proc, params, reply)
            return _response_bytes(node.dispatch(conn, proc, params, ext))
        pid, ro = self.db.route(proc, params)
        if pid is None:  # unknown procedure or bad parameters: the local answer says why
            return _response_bytes(node.dispatch(conn, proc, params, ext))
        if pid < 0:
            return self._route_mp("txn", proc, params, reply)
        self._route_sp(_Call(pid, proc, params, None, ro, reply))
        return None

    def _stop_node(self, conn: Any, params: tuple) -> bytes:
        """@StopNode(host id): that host hands its leaders over and leaves (graceful)."""
        denied = self._check_admin(conn, "@StopNode")
        if denied is not None:
            return _response_bytes(denied)
        if len(params) != 1 or isinstance(params[0], bool) or not isinstance(params[0], int):
            return _error_bytes(Status.GRACEFUL_FAILURE, "@StopNode expects one host id")
        target = params[0]
        if target not in self.live:
            return _error_bytes(Status.GRACEFUL_FAILURE,
                                f"Invalid Host Id or Host Id not member of cluster: {target}")
        try:
            fail_host(self.topology, target)
        except TopologyError as exc:
            return _error_bytes(Status.GRACEFUL_FAILURE,
                                f"Cannot stop the requested node: {exc}")
        self._send(target, ["stopnode"])
        return _response_bytes(ClientResponse(
            Status.SUCCESS, tables=[_status_table()]))

    def _msg_stopnode(self, h: int) -> None:
        log.warning("stopping on request of host %d (@StopNode)", h)
        self.node.request_stop()

    def _check_admin(self, conn: Any, proc: str) -> ClientResponse | None:
        node = self.node
        upper = proc.upper()
        if upper in ("@PAUSE", "@RESUME", "@SHUTDOWN", "@STOPNODE") and not conn.admin:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"{proc} is available only on the admin port")
        if not node.users.is_admin(conn.user or ""):
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"User {conn.user} does not have admin permission "
                                  f"to run {proc}")
        return None

    def _load_partition(self, params: tuple) -> int | None:
        if len(params) != 4 or not isinstance(params[1], str):
            return None
        table = self.db.catalog.tables.get(params[1].upper())
        if table is None or not table.partitioned or table.partition_column is None:
            return None
        vtype = table.column(table.partition_column).vtype
        try:
            value = _partition_key_value(vtype, params[0])
            return self.db.partition_for(table, value)
        except (VoltError, ValueError, TypeError):
            return None

    # ------------------------------------------------------------------ single-partition

    def _route_sp(self, call: _Call) -> None:
        part = self.topology.partitions.get(call.pid)
        if part is None:
            self._reply(call, _error_bytes(Status.GRACEFUL_FAILURE,
                                           f"Partition {call.pid} does not exist"))
            return
        leader = part.leader
        if leader == self.host_id:
            self._submit(call)
            return

        def done(ok: bool, payload: Any) -> None:
            if ok and payload[0] == "ok":
                self._reply(call, payload[1])
            elif ok:  # "moved": not executed; send it where it belongs now
                self._reroute(call, payload[1])
            else:
                self._reply(call, _error_bytes(Status.RESPONSE_UNKNOWN, MASTERSHIP_CHANGED))
        self._request(leader, "sp", [call.pid, self.snap.hashinator_version, call.proc,
                                     call.params, call.dest, call.read_only], done)

    def _reply(self, call: _Call, data: bytes) -> None:
        """Answer a call with a response frame of handle 0 (its handle is set here)."""
        self._give(call, data if call.reply is not None else _with_handle(data, call.handle))

    def _give(self, call: _Call, data: bytes) -> None:
        """Answer a call with its response frame: a client's own handle for a call without
        reply (made on this host), handle 0 for the reply callback (the router sets it)."""
        if call.reply is None:
            self._deliver(call.conn, data)
        else:
            call.reply(data)

    def _moved(self, call: _Call, why: str) -> None:
        """The call was not run here: this host does not lead its partition (any more)."""
        if call.moved is not None:
            call.moved(why)
        else:
            self._reroute(call, why)

    def _reroute(self, call: _Call, why: str) -> None:
        attempt = call.attempt
        if attempt >= 50 or self.stopping:
            self._reply(call, _error_bytes(
                Status.SERVER_UNAVAILABLE,
                f"no leader for partition {call.pid} took the call: {why}"))
            return
        call.attempt = attempt + 1
        delay = 0 if attempt == 0 else min(0.02 * attempt, 0.5)
        self.loop.call_later(delay, self._route_sp, call)

    def _msg_sp(self, h: int, rid: int, pid: int, hashver: int, proc: str, params: list,
                dest: int | None, read_only: bool) -> None:
        lead = self.leads.get(pid)
        if lead is None:
            self._answer(h, rid, True, ["moved", f"host {self.host_id} does not lead "
                                                 f"partition {pid}"])
            return
        if hashver != self.snap.hashinator_version:
            self._answer(h, rid, True, ["moved", "hashinator version changed"])
            return
        if dest is None and not proc.startswith("@"):
            actual, _ro = self.db.route(proc, params)
            if actual is not None and actual != pid:
                # Stale routing: never run a call where its key does not live.
                self._answer(h, rid, True, ["moved", f"mispartitioned: key belongs to "
                                                     f"partition {actual}"])
                return

        def reply(data: bytes) -> None:
            self._answer(h, rid, True, ["ok", data])

        def moved(why: str) -> None:
            self._answer(h, rid, True, ["moved", why])
        self._submit(_Call(pid, proc, params, dest, read_only, reply, moved))

    def _submit(self, call: _Call) -> None:
        self._batch.append(call)
        self._schedule_work()

    def _schedule_work(self) -> None:
        if not self._work_scheduled:
            self._work_scheduled = True
            self.loop.call_soon(self._work)

    def _flush_held(self) -> None:
        for lead in self.leads.values():
            if lead.ready and lead.held:
                held, lead.held = lead.held, []
                for c in held:
                    self._submit(c)

    def _work(self) -> None:
        """One group commit: the replication batches that arrived (replayed with their
        leaders' transaction ids), then up to WORK_CHUNK new calls this host leads
        (replicated to the other replicas, answered once they acknowledged); more calls
        wait for the next event-loop turn, so answers go out while the rest run."""
        self._work_scheduled = False
        if self.db._mp_session is not None:
            return  # a multi-partition transaction holds the write lock: after its end
        reps, self._reps = self._reps, []
        batch = self._batch
        if len(batch) > WORK_CHUNK:
            self._batch = batch[WORK_CHUNK:]
            batch = batch[:WORK_CHUNK]
            self._schedule_work()
        else:
            self._batch = []
        calls = []
        if self.mp is not None:
            self._deferred += batch
        else:
            leads = self.leads
            lease_ok = self.lease_ok
            for call in batch:
                lead = leads.get(call.pid)
                if lead is None:
                    self._moved(call, f"host {self.host_id} no longer leads partition "
                                      f"{call.pid}")
                elif not lead.ready or not lease_ok:
                    lead.held.append(call)
                else:
                    calls.append(call)
        if not calls and not reps:
            return
        writes = _writes_by_partition(calls)
        # Lists, not tuples: msgpack packs them natively (tuples take the slow ext path).
        call_entries = [[c.proc, list(c.params), c.dest] for c in calls]
        ahead = self._send_ahead(calls, call_entries, writes) if writes else None
        entries: list = []
        ids_in: list = []
        for r in reps:
            entries += r[4]
            ids_in += r[5]
        n_rep = len(entries)
        entries += call_entries
        ids_in += [None] * len(calls)
        # A group whose writes the replicas have or will have must not be half-run here.
        replicated = "sent to the replicas" if ahead else \
            "replicated from their leader" if reps else \
            "to send to the replicas" if any(self.leads[p].acked for p in writes) else None
        try:
            done = self._run_group(entries, ids_in, replicated)
        except Exception as exc:  # noqa: BLE001 - the group failed as a whole
            log.exception("a group of %d calls failed", len(entries))
            err = _error_bytes(Status.UNEXPECTED_FAILURE,
                               f"unexpected error: {type(exc).__name__}: {exc}")
            for c in calls:
                self._reply(c, err)
            return
        if done is None:
            return
        resps, ids = done
        if reps:
            _frames, hashes = wire.encode_response_list([0] * n_rep, resps[:n_rep], True)
            at = 0
            for h, pid, epoch, seq, rents, rids, committed in reps:
                rep = self.replicas[pid]
                k = len(rents)
                rep.applied = seq
                rep.log[seq] = (rents, rids)
                for s in [s for s in rep.log if s <= committed]:
                    del rep.log[s]
                self._send(h, ["repa", pid, epoch, seq, hashes[at:at + k]])
                at += k
        if calls:
            self._lead_calls(calls, call_entries, resps[n_rep:], ids[n_rep:], writes, ahead)
        for link in self.links.values():
            link.flush()
        if self._outbox:
            self._flush_outbox()

    def _run_group(self, entries: list, ids_in: list, replicated: str | None
                   ) -> tuple[list, list] | None:
        """_execute a group. When a group holding replicated writes (`replicated` says
        which: "sent to the replicas", "replicated from their leader", "to send to the
        replicas") fails, the calls whose effects did not stand run once more; if they
        fail again this host stops, since it must never skip a replicated write (the
        replicas would differ), and None is returned. Another group's failure is raised."""
        resps: list = []
        ids: list = []
        try:
            self._execute(entries, ids_in, resps, ids)
            return resps, ids
        except Exception:
            if replicated is None:
                raise
            log.exception("a group of %d calls failed after %d of them; running the rest "
                          "again", len(entries), len(resps))
        try:
            self._execute(entries, ids_in, resps, ids)
            return resps, ids
        except Exception as exc:  # noqa: BLE001 - the group failed twice
            log.exception("a group of %d calls failed", len(entries))
            self._fatal(f"a group of writes {replicated} failed here twice "
                        f"({type(exc).__name__}: {exc}); this host stops", abort=True)
            return None

    def _send_ahead(self, calls: list[_Call], entries: list, writes: dict[int, list[int]]
                    ) -> dict[int, int] | None:
        """Send the replicas each partition's writes before running them here, so that
        leader and replicas run them at the same time, when every one of them is a
        compiled point procedure (these take no transaction ids or timestamps: the
        replicas replay them from the calls alone). Returns {partition: sequence number}
        of the batches sent, or None."""
        procs = self.db._procs
        ahead: dict[int, int] = {}
        for pid, idx in writes.items():
            lead = self.leads[pid]
            if not lead.acked:
                continue
            fast = True
            for i in idx:
                rt = procs.get(calls[i].proc)
                if calls[i].dest is not None or rt is None or rt.fast is None:
                    fast = False
                    break
            if fast:  # the hashes once run here
                ahead[pid] = self._replicate(lead, [entries[i] for i in idx],
                                             [[] for _i in idx], None)
        if not ahead:
            return None
        for link in self.links.values():
            link.flush()
        return ahead

    def _replicate(self, lead: _Lead, ents: list, eids: list, hashes: list | None) -> int:
        """Give a batch of a partition's writes its sequence number and send it to the
        other live replicas (kept until they acknowledge it); return the number."""
        lead.seq += 1
        rep = self.replicas[lead.pid]  # this host's own copy is there too
        rep.applied = rep.queued = lead.seq
        if lead.acked:
            lead.sent[lead.seq] = [ents, eids, hashes]
            msg = ["rep", lead.pid, lead.epoch, lead.seq, ents, eids, lead.committed()]
            for r in lead.acked:
                self._send(r, msg)
        return lead.seq

    def _lead_calls(self, calls: list[_Call], entries: list, resps: list, ids: list,
                    writes: dict[int, list[int]], ahead: dict[int, int] | None) -> None:
        # A client's call made here is encoded with its handle; others with 0 (the
        # router sets the handle). The hashes do not depend on the handle.
        datas, hashes = wire.encode_response_list(
            [c.handle if c.reply is None else 0 for c in calls], resps, True)
        for pid, idx in writes.items():
            lead = self.leads[pid]
            if ahead is not None and pid in ahead:  # sent before it ran: now the hashes
                sent = lead.sent.get(ahead[pid])
                if sent is not None:
                    sent[2] = [hashes[i] for i in idx]
                continue
            self._replicate(lead, [entries[i] for i in idx], [list(ids[i]) for i in idx],
                            [hashes[i] for i in idx])
        # An answer waits until every write before it (its own included) is acknowledged.
        wait: dict[int, int] = {}
        for pid, lead in self.leads.items():
            if lead.acked and lead.committed() < lead.seq:
                wait[pid] = lead.seq
        give = self._give
        for i, c in enumerate(calls):
            seq = wait.get(c.pid)
            if seq is not None:
                self.leads[c.pid].waiters.append((seq, c, datas[i]))
            else:
                give(c, datas[i])

    def _execute(self, entries: list, ids_in: list | None, resps: list, ids: list) -> None:
        """Run calls ([procedure, parameters, destination] entries) here in order, from
        entry len(resps) on, appending to resps each one's result (a ClientResponse or a
        compiled point call's (columns, rows), see Database.run_many) and to ids the
        transaction ids it was given. Directed calls and system procedures run one by
        one; the runs of other calls between them each go to run_many whole. When this
        raises, resps and ids hold exactly the calls whose effects stand."""
        db = self.db
        at = len(resps)
        n = len(entries)
        special = [i for i in range(at, n)
                   if entries[i][2] is not None or entries[i][0][:1] == "@"]
        for i in special + [n]:
            if i > at:
                stood: list = []
                try:
                    resps += db.run_many(entries[at:i], txn_ids_out=ids, stood_out=stood,
                                         txn_ids_in=None if ids_in is None else ids_in[at:i])
                except BaseException:
                    resps += stood
                    raise
            if i == n:
                break
            proc, params, dest = entries[i]
            replay = None if ids_in is None else ids_in[i]
            db._replay_ids = None if replay is None else list(replay)
            db._record_ids = [] if replay is None else None
            try:
                if dest is not None:
                    resp = db.call_partition(dest, proc, *params)
                else:
                    resp = self.node.dispatch(Caller(None, True), proc, tuple(params), {})
                given = [list(x) for x in db._record_ids or ()]
            finally:
                db._replay_ids = db._record_ids = None
            resps.append(resp)
            ids.append(given)
            at = i + 1

    def _release(self, lead: _Lead) -> None:
        done = lead.committed()
        sent = lead.sent
        if sent:
            for s in [s for s in sent if s <= done]:
                del sent[s]
        w = lead.waiters
        give = self._give
        while w and w[0][0] <= done:
            _seq, call, data = w.popleft()
            give(call, data)
        if self._mp_ready is not None:
            self._check_ready()

    def _msg_rep(self, h: int, pid: int, epoch: int, seq: int, entries: list, ids: list,
                 committed: int) -> None:
        rep = self.replicas.get(pid)
        if rep is None:
            log.warning("host %d replicated partition %d here, which is not a replica", h, pid)
            return
        current = self.snap.epochs.get(pid, 0)
        if epoch < current or epoch < rep.epoch:
            log.warning("ignoring replication of partition %d from an old leader (epoch "
                        "%d < %d)", pid, epoch, max(current, rep.epoch))
            return
        rep.epoch = epoch
        if seq <= rep.queued:
            if seq <= rep.applied:  # a repeat after a reconnect: acknowledge again
                self._send(h, ["repa", pid, epoch, seq, None])
            return
        if seq != rep.queued + 1:
            # A message was lost with a broken connection: ask for what follows ours.
            log.warning("partition %d: replication gap (have %d, got %d)", pid, rep.queued,
                        seq)
            self._send(h, ["repgap", pid, epoch, rep.queued])
            return
        rep.queued = seq
        self._reps.append((h, pid, epoch, seq, entries, ids, committed))
        self._schedule_work()

    def _msg_repgap(self, h: int, pid: int, epoch: int, applied: int) -> None:
        lead = self.leads.get(pid)
        if lead is None or lead.epoch != epoch or h not in lead.acked:
            return
        missing = range(applied + 1, lead.seq + 1)
        if not all(s in lead.sent for s in missing):
            self._suspect(h, f"replica of partition {pid} missed writes that are gone")
            return
        for s in missing:
            entries, ids, _hashes = lead.sent[s]
            self._send(h, ["rep", pid, epoch, s, entries, ids, lead.committed()])

    def _msg_repa(self, h: int, pid: int, epoch: int, seq: int, hashes: list | None) -> None:
        lead = self.leads.get(pid)
        if lead is None or lead.epoch != epoch or h not in lead.acked:
            return
        sent = lead.sent.get(seq)
        if hashes is not None and sent is not None and sent[2] is not None \
                and hashes != sent[2]:
            bad = [i for i, (a, b) in enumerate(zip(hashes, sent[2])) if a != b]
            proc = sent[0][bad[0]][0] if bad else "?"
            msg = (f"replica host {h} of partition {pid} computed a different result for "
                   f"{proc} (batch {seq}): the replica is evicted")
            print(f"voltdb-py: ERROR: {msg}", file=sys.stderr, flush=True)
            log.error("%s", msg)
            del lead.acked[h]
            self._suspect(h, "result mismatch: " + msg)
        elif seq > lead.acked[h]:
            lead.acked[h] = seq
        self._release(lead)

    # ------------------------------------------------------------------ leadership

    def _take_lead(self, pid: int, epoch: int, replicas: tuple[int, ...]) -> None:
        if any(r[1] == pid for r in self._reps):
            self._work()  # apply what the old leader sent first: the new stream follows it
        rep = self.replicas.setdefault(pid, _Replica())
        old = self.leads.get(pid)
        lead = _Lead(pid, epoch, rep.applied)
        if old is not None:
            lead.held = old.held
        self.leads[pid] = lead
        others = [h for h in replicas if h != self.host_id and h in self.live]
        if self.snap.seq <= 1 or epoch <= 1 or not others:
            lead.acked = {h: rep.applied for h in others}
            lead.ready = True
            self._flush_held()
            return
        self.loop.create_task(self._repair(lead, others))

    async def _repair(self, lead: _Lead, others: list[int]) -> None:
        """Bring every surviving replica to the longest surviving prefix, then serve."""
        pid = lead.pid
        rep = self.replicas[pid]
        answers: dict[int, tuple[int, dict]] = {}
        for h in others:
            try:
                applied, entries = await self._ask(h, "rq", pid, lead.epoch,
                                                   timeout_s=max(self.timeout_s, 5.0))
                answers[h] = (applied, {int(s): e for s, e in entries})
            except (VoltError, asyncio.TimeoutError) as exc:
                log.warning("repair of partition %d: host %d did not answer: %s", pid, h, exc)
        if self.leads.get(pid) is not lead:
            return
        best = max([rep.applied] + [a for a, _l in answers.values()])
        if best > rep.applied:
            src = next(lg for a, lg in answers.values() if a == best)
            for seq in range(rep.applied + 1, best + 1):
                entries, ids = src[seq]
                if self._run_group(entries, ids, "replicated from the old leader") is None:
                    return  # this host stops
                rep.log[seq] = (entries, ids)
            rep.applied = rep.queued = best
            log.info("partition %d: repaired this leader up to %d", pid, best)
        lead.seq = best
        for h, (applied, _lg) in answers.items():
            lead.acked[h] = applied
            for seq in range(applied + 1, best + 1):
                entries, ids = rep.log[seq]
                lead.sent[seq] = (entries, ids, None)
                self._send(h, ["rep", pid, lead.epoch, seq, entries, ids, applied])
        lead.ready = True
        self._release(lead)
        self._flush_held()

    def _msg_rq(self, h: int, rid: int, pid: int, epoch: int) -> None:
        rep = self.replicas.get(pid)
        if rep is None:
            self._answer(h, rid, False, ["ClusterError", f"not a replica of {pid}"])
            return
        rep.epoch = max(rep.epoch, epoch)
        self._answer(h, rid, True, [rep.applied, [[s, e] for s, e in rep.log.items()]])

    # ------------------------------------------------------------------ multi-partition

    def coordinator(self) -> int:
        return min(self.live) if self.live else self.host_id

    def _route_mp(self, kind: str, proc: str, params: tuple, reply: Callable[[bytes], None]
                  ) -> None:
        def done(ok: bool, payload: Any) -> None:
            if ok:
                reply(payload)
            else:
                reply(_error_bytes(Status.RESPONSE_UNKNOWN,
                                   "the multi-partition coordinator failed while the "
                                   "transaction was in flight; it is possible the "
                                   "transaction was committed"))
        self._request(self.coordinator(), "mp", [kind, proc, list(params)], done)
        return None

    def _msg_mp(self, h: int, rid: int, kind: str, proc: str, params: list) -> None:
        assert self._mp_queue is not None
        self._mp_queue.put_nowait((h, rid, kind, proc, tuple(params)))

    async def _mp_worker(self) -> None:
        assert self._mp_queue is not None
        while not self.stopping:
            h, rid, kind, proc, params = await self._mp_queue.get()
            try:
                data = await self._run_mp(kind, proc, params)
            except Exception as exc:  # noqa: BLE001 - answer every call
                log.exception("multi-partition %s failed", proc)
                data = _error_bytes(Status.UNEXPECTED_FAILURE,
                                    f"unexpected error in {proc}: {type(exc).__name__}: {exc}")
            self._answer(h, rid, True, data)

    async def _run_mp(self, kind: str, proc: str, params: tuple) -> bytes:
        mp_id = next(self._mp_ids)
        hosts = sorted(self.live)
        try:
            await asyncio.gather(*(self._ask(h, "begin", mp_id, self.host_id)
                                   for h in hosts))
        except (VoltError, asyncio.TimeoutError) as exc:
            await self._finish_mp(mp_id, hosts, False)
            return _error_bytes(Status.SERVER_UNAVAILABLE,
                                f"{proc} did not start: {exc}; it made no change, retry")
        commit = False
        try:
            if kind == "bcast":
                results = await asyncio.gather(*(self._ask(h, "bcast", mp_id, proc,
                                                           list(params)) for h in hosts))
                resp = results[hosts.index(self.host_id)] if self.host_id in hosts \
                    else results[0]
                if proc.upper() in ("@ADHOC", "@UPDATECLASSES") and \
                        resp.status == Status.SUCCESS:
                    await self._record_catalog()
                statuses = {r.status for r in results}
                if len(statuses) > 1:
                    log.error("%s had different outcomes on the hosts: %s", proc,
                              [(h, r.status, r.status_string) for h, r in zip(hosts, results)])
                commit = True
            else:
                runner = _Runner(self, mp_id)
                resp = await self.loop.run_in_executor(
                    self._mp_thread, self.db.run_distributed, proc, params, runner)
                commit = resp.status == Status.SUCCESS and runner.wrote
        except (VoltError, asyncio.TimeoutError) as exc:
            resp = ClientResponse(Status.SERVER_UNAVAILABLE,
                                  f"{proc} was rolled back: {exc}; it made no change, retry")
        await self._finish_mp(mp_id, hosts, commit)
        return _response_bytes(resp)

    async def _finish_mp(self, mp_id: int, hosts: list[int], commit: bool) -> None:
        results = await asyncio.gather(*(self._ask(h, "end", mp_id, commit)
                                         for h in hosts if h in self.live),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                log.warning("ending multi-partition transaction %d: %s", mp_id, r)

    def _msg_begin(self, h: int, rid: int, mp_id: int, coord: int) -> None:
        self.mp = (mp_id, coord)
        self._mp_ready = (h, rid)
        self._check_ready()

    def _check_ready(self) -> None:
        """Answer the coordinator's begin once all this host's replication is acknowledged."""
        if self._mp_ready is None:
            return
        for lead in self.leads.values():
            if lead.acked and lead.committed() < lead.seq:
                return
        h, rid = self._mp_ready
        self._mp_ready = None
        self._answer(h, rid, True, None)

    def _msg_frag(self, h: int, rid: int, mp_id: int, sql: str, params: list, pids: list,
                  txn_id: int, ts: int) -> None:
        if self.mp is None or self.mp[0] != mp_id:
            self._answer(h, rid, False, ["ClusterError", "no such multi-partition "
                                                         "transaction here"])
            return
        try:
            if self.db._mp_session is None:
                self.db.mp_begin(txn_id, ts)
            out = self.db.mp_fragments(sql, params, pids)
        except VoltError as exc:
            self._answer(h, rid, False, [type(exc).__name__, str(exc)])
            return
        self._answer(h, rid, True, out)

    def _msg_bcast(self, h: int, rid: int, mp_id: int, proc: str, params: list) -> None:
        resp = self.node.dispatch(Caller(None, True), proc, tuple(params), {})
        self._answer(h, rid, True, resp)

    def _msg_end(self, h: int, rid: int, mp_id: int, commit: bool) -> None:
        if self.mp is not None and self.mp[0] == mp_id:
            self._end_mp(commit)
        self._answer(h, rid, True, None)

    async def _resolve_mp(self, mp_id: int, coord: int) -> None:
        """The coordinator died with this host's multi-partition transaction open: commit
        it if any surviving host already committed it (the coordinator had decided and
        told that host), otherwise roll it back. Every survivor reaches the same end."""
        others = [h for h in sorted(self.live) if h != self.host_id]
        answers = await asyncio.gather(*(self._ask(h, "mpq", coord, mp_id,
                                                   timeout_s=max(self.timeout_s, 5.0))
                                         for h in others), return_exceptions=True)
        commit = any(a is True for a in answers)
        log.warning("coordinator host %d failed during multi-partition transaction %d: "
                    "%s", coord, mp_id,
                    "another host had committed it, so it commits here too" if commit
                    else "no host had committed it, so it is rolled back")
        self._resolving = False
        if self.mp == (mp_id, coord):
            self._end_mp(commit)

    def _msg_mpq(self, h: int, rid: int, coord: int, mp_id: int) -> None:
        """How this host ended a multi-partition transaction: True (committed), False
        (rolled back) or None (still open here, or unknown)."""
        self._answer(h, rid, True, self._mp_outcomes.get((coord, mp_id)))

    def _end_mp(self, commit: bool) -> None:
        if self.mp is not None:
            self._mp_outcomes[(self.mp[1], self.mp[0])] = commit
            while len(self._mp_outcomes) > 1000:
                del self._mp_outcomes[next(iter(self._mp_outcomes))]
        try:
            self.db.mp_end(commit)
        finally:
            self.mp = None
            self._mp_ready = None
            deferred, self._deferred = self._deferred, []
            for c in deferred:
                self._submit(c)
            if self._reps or self._batch:
                self._schedule_work()

    async def _shutdown_cluster(self, reply: Callable[[bytes], None]) -> None:
        self._shutdown_requested = True
        try:
            await self._md_apply("set_cluster_state", "shutting_down", "@Shutdown")
        except ClusterError as exc:
            log.warning("shutdown: %s", exc)
        for h in sorted(self.live):
            if h != self.host_id:
                self._send(h, ["shutdown"])
        reply(_response_bytes(ClientResponse(Status.SUCCESS, "Shutdown requested")))
        self.loop.call_soon(self.node.request_stop)

    def _msg_shutdown(self, h: int) -> None:
        self._shutdown_requested = True  # the whole cluster stops: no leadership hand-over
        self.node.request_stop()

    async def _gather_stats(self, params: tuple, reply: Callable[[bytes], None]) -> None:
        """@Statistics TABLE/INDEX/PROCEDURE: every live host's rows, in host order."""
        hosts = sorted(self.live)
        try:
            parts = await asyncio.gather(*(self._ask(h, "stats", list(params))
                                           for h in hosts))
        except (VoltError, asyncio.TimeoutError) as exc:
            reply(_error_bytes(Status.SERVER_UNAVAILABLE, f"@Statistics failed: {exc}"))
            return
        first = next((r for r in parts if r.status == Status.SUCCESS), parts[0])
        if first.status != Status.SUCCESS:
            reply(_response_bytes(first))
            return
        table = first.tables[0]
        rows = [row for r in parts if r.status == Status.SUCCESS for row in r.tables[0].rows]
        reply(_response_bytes(ClientResponse(Status.SUCCESS,
                                             tables=[VoltTable(table.columns, rows)])))

    def _msg_stats(self, h: int, rid: int, params: list) -> None:
        """This host's @Statistics rows: its replicas only, with its host id and name."""
        resp = self.node.dispatch(Caller(None, True), "@Statistics", tuple(params), {})
        if resp.status != Status.SUCCESS or not resp.tables:
            self._answer(h, rid, True, resp)
            return
        t = resp.tables[0]
        names = [c.name for c in t.columns]
        pi = names.index("PARTITION_ID") if "PARTITION_ID" in names else None
        ti = names.index("TABLE_NAME") if "TABLE_NAME" in names else None
        mine = set(self.topology.partitions_of(self.host_id))
        tables = self.db.catalog.tables
        rows = []
        for row in t.rows:
            row = list(row)
            row[1], row[2] = self.host_id, self.node.hostname
            if pi is not None and ti is not None and row[ti] in tables \
                    and tables[row[ti]].partitioned and row[pi] not in mine:
                continue  # a partition this host holds no replica of
            rows.append(tuple(row))
        self._answer(h, rid, True, ClientResponse(Status.SUCCESS,
                                                  tables=[VoltTable(t.columns, rows)]))

    # ------------------------------------------------------------------ status

    def host_rows(self) -> list[tuple[int, dict[str, str]]]:
        """Per-host facts for @SystemInformation OVERVIEW (other hosts than this one)."""
        out = []
        if self.snap is None:
            return out
        for h, rec in self.snap.hosts.items():
            if h == self.host_id or h not in self.live:
                continue
            p = rec.ports
            out.append((h, {"IPADDRESS": rec.address, "CLIENTPORT": str(p.get("client", -1)),
                            "ADMINPORT": str(p.get("admin", -1)),
                            "HTTPPORT": str(p.get("http", -1)),
                            "INTERNALPORT": str(p.get("internal", -1)),
                            "PLACEMENTGROUP": rec.placement_group}))
        return out


def _status_table() -> Any:
    return VoltTable([Column("STATUS", VoltType.BIGINT)], [(0,)])


def _remote_error(payload: Any) -> VoltError:
    name, message = (payload + ["", ""])[:2] if isinstance(payload, list) else ("", payload)
    cls = _ERRORS.get(name)
    if cls is not None:
        return cls(message)
    return ClusterError(message)


class _Runner:
    """Runs a multi-partition statement's fragments on the hosts (from the MP thread)."""

    def __init__(self, host: ClusterHost, mp_id: int) -> None:
        self.host = host
        self.mp_id = mp_id
        self.wrote = False
        self.txn: tuple[int, int] | None = None

    def __call__(self, plan: Any, params: tuple, kind: str, pids: list[int]) -> list:
        if self.txn is None:
            self.txn = self.host.db._next_txn_id(None)
        if not plan.read_only:
            self.wrote = True
        fut = asyncio.run_coroutine_threadsafe(
            _fragments(self.host, self.mp_id, plan.sql, list(params), plan.read_only, kind,
                                 pids, self.txn), self.host.loop)
        return fut.result()


async def _gather_dict(aws: dict[int, Any]) -> dict[int, Any]:
    keys = list(aws)
    vals = await asyncio.gather(*(aws[k] for k in keys))
    return dict(zip(keys, vals))


async def _fragments(host: ClusterHost, mp_id: int, sql: str, params: list,
                     read_only: bool, kind: str, pids: list[int], txn: tuple[int, int]) -> list:
    """One statement's fragments: reads on each partition's leader, writes on every live
    replica (replicated tables: every host); replicas' results must agree."""
    me = host.host_id
    if kind == "replicated":
        targets = {me: [0]} if read_only else {h: [0] for h in host.live}
        results = await _gather_dict({h: host._ask(h, "frag", mp_id, sql, params, p, *txn)
                                      for h, p in targets.items()})
        return results[me] if me in results else next(iter(results.values()))
    per_host: dict[int, list[int]] = {}
    for pid in pids:
        part = host.topology.partitions[pid]
        hosts = [part.leader] if read_only else [h for h in part.replicas if h in host.live]
        for h in hosts:
            per_host.setdefault(h, []).append(pid)
    results = await _gather_dict({h: host._ask(h, "frag", mp_id, sql, params, p, *txn)
                                  for h, p in per_host.items()})
    by_pid: dict[int, list[tuple[int, Any]]] = {}
    for h, p in per_host.items():
        for pid, piece in zip(p, results[h]):
            by_pid.setdefault(pid, []).append((h, piece))
    out = []
    for pid in pids:
        got = by_pid[pid]
        leader = host.topology.partitions[pid].leader
        chosen = next((r for h, r in got if h == leader), got[0][1])
        if len(got) > 1:
            ref = zlib.crc32(codec.pack(chosen))
            for h, r in got:
                if zlib.crc32(codec.pack(r)) != ref:
                    msg = (f"replica host {h} of partition {pid} computed a different result "
                           f"for a multi-partition statement: the replica is evicted")
                    print(f"voltdb-py: ERROR: {msg}", file=sys.stderr, flush=True)
                    host._suspect(h, "result mismatch")
        out.append(chosen)
    return out


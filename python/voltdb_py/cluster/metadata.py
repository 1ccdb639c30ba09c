# SPDX-License-Identifier: AGPL-3.0-or-later
"""Cluster metadata as a replicated state machine on pysyncobj (Raft).

What lives here (plain data, the same on every metadata node):

* the cluster state: ``forming`` -> ``running`` <-> ``paused`` -> ``shutting_down``, or
  ``stopped`` (with a reason) when a failure would leave a partition with no replica;
* membership: host id -> instance, address, ports, placement group and state
  (``joining`` / ``active`` / ``failed`` / ``leaving``);
* the :class:`~voltdb_py.cluster.topology.Topology` (stored as ``Topology.to_dict()``);
* the hashinator (version + VoltDB raw config) and the catalog (version, sha256 digest,
  size, bytes optional);
* the elastic join: the pool of pending joiners and, once k+1 are pending, the plan:
  new partitions, target ring and the token ranges to move, each with its state;
* per-partition leader epochs (+1 on every leader change; replicas reject older epochs)
  and leader leases (a leader serves only while its lease is valid; a new leader waits
  for ``fence_until``, the end of its predecessor's lease).

Every mutation is a ``@replicated`` method. It runs on every node, in log order, on
pysyncobj's tick thread, and validates its preconditions *inside* the state machine: the
outcome depends only on the state and the arguments (no clock, no randomness, no I/O),
so all nodes agree. A mutation never raises: it returns a result dict, ``{"ok": True,
...}`` or ``{"ok": False, "code": ..., "error": ...}``, and leaves the state untouched
when it refuses (with one deliberate exception: :meth:`ClusterMetadata.mark_failed` that
would lose a partition stops the cluster and reports it as an error). Mutations that
create something (``register_host``, ``request_join``, ``replace_host``) are idempotent
by the caller's ``instance`` name, and repeating a state change is a no-op, so a caller
may retry after a timeout (a timed-out command may still commit).

Call a mutation with :meth:`ClusterMetadata.apply` (blocks, raises on timeout or
refusal), or the pysyncobj way: ``md.register_host(..., sync=True, timeout=5)`` or
``md.register_host(..., callback=fn)``.

Reads return an immutable :class:`MetadataSnapshot` (``md.snapshot()``), rebuilt lazily
after changes. :meth:`ClusterMetadata.on_change` callbacks receive snapshots on a
notifier thread of their own (never on the Raft thread); consecutive changes may be
coalesced into one call with the latest snapshot (``snapshot.seq`` counts changes).

Partition detection: :meth:`ClusterMetadata.has_quorum` says whether this node still
sees a majority of the metadata nodes. A node without quorum cannot commit anything:
not a failure verdict, not a lease renewal, so a cut-off partition leader loses its lease
within one lease period and must stop serving.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.syncobj import SyncObjException

from voltdb_py.cluster.topology import (
    HostInfo,
    PartitionInfo,
    Topology,
    TopologyError,
    add_hosts,
    fail_host,
    place_partitions,
    replace_host,
)
from voltdb_py.errors import VoltError
from voltdb_py.hashinator import INT32_MIN, add_partitions, default_ring, raw_config, ring_from_raw

__all__ = [
    "CLUSTER_STATES",
    "HOST_STATES",
    "MOVE_STATES",
    "ClusterMetadata",
    "HostRecord",
    "JoinPlan",
    "Lease",
    "MetadataError",
    "MetadataRejected",
    "MetadataSnapshot",
    "MetadataStateMachine",
    "MetadataUnavailable",
    "MoveRange",
]

log = logging.getLogger(__name__)

CLUSTER_STATES = ("forming", "running", "paused", "shutting_down", "stopped")
HOST_STATES = ("joining", "active", "failed", "leaving")
MOVE_STATES = ("pending", "moving", "done")
_MOVE_TRANSITIONS = {
    ("pending", "moving"), ("pending", "done"), ("moving", "done"), ("moving", "pending"),
}
_CLUSTER_TRANSITIONS = {
    ("running", "paused"), ("paused", "running"),
    ("running", "shutting_down"), ("paused", "shutting_down"),
}
#: Version of the plain-data layout kept in the Raft log and dumps.
STATE_FORMAT = 1


class MetadataError(VoltError):
    """Base class of cluster-metadata errors."""


class MetadataUnavailable(MetadataError):
    """The change did not commit in time: no leader, no quorum, or the node is closed.

    The outcome is unknown: the change may still commit later. Retrying is safe because
    every mutation is idempotent.
    """


class MetadataRejected(MetadataError):
    """The state machine refused the change; ``code`` names the rule, ``result`` is the dict."""

    def __init__(self, result: Mapping[str, Any]) -> None:
        super().__init__(f"{result.get('code')}: {result.get('error')}")
        self.code = result.get("code")
        self.result = result


# ---------------------------------------------------------------------------------------
# Immutable snapshots
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HostRecord:
    """One member host: how to reach it and where it is in its life."""

    host_id: int
    instance: str
    address: str
    ports: Mapping[str, int]
    placement_group: str
    state: str


@dataclass(frozen=True, slots=True)
class Lease:
    """A partition leader's lease. Times are the granter's wall clock (``time.time()``).

    ``until`` is None until the leader of this epoch got its first lease. ``fence_until``
    is when the previous leader's last lease ends: the new leader must not serve before.
    """

    partition: int
    host: int
    epoch: int
    until: float | None
    fence_until: float | None

    def valid_at(self, now: float) -> bool:
        """May the lease holder serve at ``now`` (its own clock)?"""
        if self.until is None or now >= self.until:
            return False
        return self.fence_until is None or now >= self.fence_until


@dataclass(frozen=True, slots=True)
class MoveRange:
    """Token range ``[start, end)`` moving from ``source`` to ``destination`` partition.

    Like VoltDB's ``@BalancePartitions`` ranges: end exclusive, and ``end <= start``
    wraps around the ring (the last range ends at INT32_MIN).
    """

    start: int
    end: int
    source: int
    destination: int
    state: str


@dataclass(frozen=True, slots=True)
class JoinPlan:
    """An elastic join: new hosts and partitions, target ring, ranges to move."""

    join_id: int
    hosts: tuple[int, ...]
    partitions: tuple[int, ...]
    target_config: bytes
    ranges: tuple[MoveRange, ...]
    status: str  # "rebalancing" or "done"

    @property
    def moved(self) -> int:
        return sum(1 for r in self.ranges if r.state == "done")

    @property
    def fraction_moved(self) -> float:
        return self.moved / len(self.ranges) if self.ranges else 1.0


@dataclass(frozen=True)
class MetadataSnapshot:
    """Everything the metadata holds, at one point of the Raft log. Immutable."""

    seq: int
    cluster_state: str
    stop_reason: str | None
    host_count: int | None
    kfactor: int | None
    sites_per_host: int | None
    hosts: Mapping[int, HostRecord]
    pending_joiners: tuple[int, ...]
    topology: Topology | None
    hashinator_version: int
    hashinator_config: bytes
    catalog_version: int
    catalog_digest: str | None
    catalog_size: int
    catalog_bytes: bytes | None
    join: JoinPlan | None
    epochs: Mapping[int, int]
    leases: Mapping[int, Lease]

    def host_by_instance(self, instance: str) -> HostRecord | None:
        for h in self.hosts.values():
            if h.instance == instance:
                return h
        return None

    def leader_of(self, partition: int) -> int:
        """Current leader host of ``partition`` (KeyError if unknown)."""
        if self.topology is None:
            raise KeyError(partition)
        return self.topology.partitions[partition].leader

    def epoch_of(self, partition: int) -> int:
        return self.epochs[partition]

    def accepts_epoch(self, partition: int, epoch: int) -> bool:
        """Replica rule: a message from leader epoch ``epoch`` is accepted unless older."""
        current = self.epochs.get(partition)
        return current is not None and epoch >= current

    def lease_valid(self, partition: int, host: int, now: float | None = None) -> bool:
        """Does ``host`` hold a valid lease for ``partition`` in the current epoch?"""
        lease = self.leases.get(partition)
        if lease is None or lease.host != host or lease.epoch != self.epochs.get(partition):
            return False
        return lease.valid_at(time.time() if now is None else now)


def _snapshot_of(state: dict[str, Any]) -> MetadataSnapshot:
    cfg = state["config"] or {}
    hosts = MappingProxyType({
        hid: HostRecord(hid, h["instance"], h["address"], MappingProxyType(dict(h["ports"])),
                        h["placement_group"], h["state"])
        for hid, h in sorted(state["hosts"].items())
    })
    topo = Topology.from_dict(state["topology"]) if state["topology"] is not None else None
    join = None
    j = state["join"]
    if j is not None:
        join = JoinPlan(j["join_id"], tuple(j["hosts"]), tuple(j["partitions"]),
                        j["target_config"], tuple(MoveRange(*r) for r in j["ranges"]),
                        j["status"])
    leases = MappingProxyType({
        pid: Lease(pid, le["host"], le["epoch"], le["until"], le["fence_until"])
        for pid, le in sorted(state["leases"].items())
    })
    cat = state["catalog"]
    return MetadataSnapshot(
        seq=state["seq"], cluster_state=state["cluster_state"],
        stop_reason=state["stop_reason"], host_count=cfg.get("host_count"),
        kfactor=cfg.get("kfactor"), sites_per_host=cfg.get("sites_per_host"),
        hosts=hosts, pending_joiners=tuple(state["join_pool"]), topology=topo,
        hashinator_version=state["hashinator"]["version"],
        hashinator_config=state["hashinator"]["config"],
        catalog_version=cat["version"], catalog_digest=cat["digest"], catalog_size=cat["size"],
        catalog_bytes=cat["bytes"], join=join,
        epochs=MappingProxyType(dict(sorted(state["epochs"].items()))), leases=leases)


# ---------------------------------------------------------------------------------------
# The deterministic state machine (no Raft in here)
# ---------------------------------------------------------------------------------------

class _Refused(Exception):
    def __init__(self, code: str, error: str) -> None:
        super().__init__(error)
        self.code = code
        self.error = error


def _require(cond: bool, code: str, error: str) -> None:
    if not cond:
        raise _Refused(code, error)


def _int(name: str, v: Any, minimum: int = 0) -> int:
    _require(type(v) is int and v >= minimum, "bad_argument",
             f"{name} must be an int >= {minimum}, got {v!r}")
    return v


def _host_args(instance: Any, address: Any, ports: Any, placement_group: Any) -> dict[str, Any]:
    _require(isinstance(instance, str) and bool(instance), "bad_argument",
             f"instance must be a non-empty string, got {instance!r}")
    _require(isinstance(address, str) and bool(address), "bad_argument",
             f"address must be a non-empty string, got {address!r}")
    ports = {} if ports is None else ports
    _require(isinstance(ports, dict) and all(
        isinstance(k, str) and type(v) is int and 0 <= v <= 65535 for k, v in ports.items()),
        "bad_argument", f"ports must map names to port numbers, got {ports!r}")
    _require(isinstance(placement_group, str) and bool(placement_group), "bad_argument",
             f"placement_group must be a non-empty string, got {placement_group!r}")
    return {"instance": instance, "address": address, "ports": dict(sorted(ports.items())),
            "placement_group": placement_group}


def _leader_changes(old: Topology, new: Topology) -> dict[int, tuple[int | None, int]]:
    out = {}
    for pid, p in new.partitions.items():
        before = old.partitions.get(pid)
        if before is None or before.leader != p.leader:
            out[pid] = (None if before is None else before.leader, p.leader)
    return out


def _avoid_leaders(topo: Topology, hosts: set[int]) -> Topology:
    """``topo`` with no partition led by one of ``hosts`` (another live replica leads)."""
    if not hosts:
        return topo
    parts = dict(topo.partitions)
    changed = False
    for pid, p in parts.items():
        if p.leader in hosts:
            led = {h: len(topo.leaders_of(h)) for h in p.replicas}
            live = [h for h in p.replicas if h not in topo.missing and h not in hosts]
            if live:
                parts[pid] = PartitionInfo(p.replicas, min(live, key=lambda h: (led[h], h)))
                changed = True
    if not changed:
        return topo
    return Topology(topo.hosts, parts, topo.kfactor, topo.sites_per_host, topo.version,
                    topo.missing, topo.unbalanced_partition_count)


def _ring_moves(old: list[tuple[int, int]], new: list[tuple[int, int]]) -> list[tuple]:
    """Token ranges whose owner differs between two rings over the same tokens, merged."""
    if [t for t, _ in old] != [t for t, _ in new]:
        raise _Refused("internal", "target ring does not keep the current tokens")
    moves: list[list[Any]] = []
    for i, ((token, src), (_, dst)) in enumerate(zip(old, new)):
        if src == dst:
            continue
        end = old[i + 1][0] if i + 1 < len(old) else INT32_MIN
        last = moves[-1] if moves else None
        if last is not None and last[1] == token and last[2] == src and last[3] == dst:
            last[1] = end
        else:
            moves.append([token, end, src, dst])
    return [(s, e, a, b, "pending") for s, e, a, b in moves]


def _empty_state() -> dict[str, Any]:
    return {
        "format": STATE_FORMAT,
        "seq": 0,
        "cluster_state": "forming",
        "stop_reason": None,
        "config": None,  # {"host_count", "kfactor", "sites_per_host"}
        "next_host_id": 0,
        "next_join_id": 1,
        "hosts": {},  # host id -> {"instance","address","ports","placement_group","state"}
        "topology": None,  # Topology.to_dict()
        "hashinator": {"version": 0, "config": b""},
        "catalog": {"version": 0, "digest": None, "size": 0, "bytes": None},
        "join_pool": [],  # host ids admitted, waiting for k+1
        "join": None,
        "rejoining": [],  # host ids replacing a dead host, not yet caught up
        "epochs": {},  # partition -> leader epoch
        "leases": {},  # partition -> {"host","epoch","until","fence_until"}
    }


class MetadataStateMachine(SyncObjConsumer):
    """The metadata and its deterministic transitions.

    Usable alone (tests, tools) or as the pysyncobj consumer of :class:`ClusterMetadata`,
    which makes pysyncobj's log compaction dump ``state`` and restore it. Each ``op_*``
    method validates, then changes the state, and returns a result dict.
    """

    def __init__(self) -> None:
        super().__init__()
        # Attributes created after SyncObjConsumer.__init__ are what pysyncobj dumps.
        self.state: dict[str, Any] = _empty_state()
        self.lock = threading.RLock()
        #: Called (no arguments) after every change, on the applying thread.
        self.listener: Callable[[], None] | None = None

    # Serialization hooks: only ``state`` goes into a dump; the lock and listener stay local.
    def _serialize(self) -> dict[str, Any]:
        with self.lock:
            return {"state": self.state}

    def _deserialize(self, data: dict[str, Any]) -> None:
        state = data.get("state")
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise MetadataError(f"unknown metadata dump format: {type(state).__name__}")
        with self.lock:
            self.state = state
        if self.listener is not None:
            self.listener()

    # -- dispatch ------------------------------------------------------------------------

    def apply(self, op: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run ``op_<op>``; any refusal or bug becomes an error result (never raises)."""
        fn = getattr(self, "op_" + op, None)
        if fn is None:
            return {"ok": False, "code": "bad_argument", "error": f"unknown operation {op!r}",
                    "seq": self.state["seq"]}
        with self.lock:
            seq_before = self.state["seq"]
            try:
                result = fn(*args, **kwargs)
            except _Refused as r:
                return {"ok": False, "code": r.code, "error": r.error, "seq": self.state["seq"]}
            except (TopologyError, VoltError, ValueError, TypeError) as exc:
                return {"ok": False, "code": "invalid", "error": str(exc),
                        "seq": self.state["seq"]}
            except Exception as exc:  # never let one command wedge the Raft thread
                log.exception("metadata operation %s failed", op)
                return {"ok": False, "code": "internal", "error": f"{type(exc).__name__}: {exc}",
                        "seq": self.state["seq"]}
            if result.get("changed", True):
                self.state["seq"] += 1
            result.setdefault("ok", True)
            result.pop("changed", None)
            result["seq"] = self.state["seq"]
        if self.listener is not None and result["seq"] != seq_before:
            self.listener()
        return result

    # -- helpers ---------------------------------------------------------------------------

    def _topology(self) -> Topology:
        t = self.state["topology"]
        _require(t is not None, "not_formed", "the cluster is not formed yet")
        return Topology.from_dict(t)

    def _require_live_cluster(self) -> None:
        cs = self.state["cluster_state"]
        _require(cs in ("running", "paused"), "cluster_" + cs,
                 f"the cluster is {cs}" + (f": {self.state['stop_reason']}"
                                           if self.state["stop_reason"] else ""))

    def _set_topology(self, old: Topology | None, new: Topology) -> dict[int, list]:
        """Store ``new``; bump epochs and fence leases where the leader changed."""
        s = self.state
        changes = _leader_changes(old, new) if old is not None else {
            pid: (None, p.leader) for pid, p in new.partitions.items()}
        out = {}
        for pid, (before, after) in changes.items():
            epoch = s["epochs"].get(pid, 0) + 1
            s["epochs"][pid] = epoch
            prev = s["leases"].get(pid)
            fence = prev["until"] if prev is not None else None
            if prev is not None and prev["fence_until"] is not None and (
                    fence is None or prev["fence_until"] > fence):
                fence = prev["fence_until"]
            s["leases"][pid] = {"host": after, "epoch": epoch, "until": None,
                                "fence_until": fence}
            out[pid] = [before, after, epoch]
        for pid in [p for p in s["epochs"] if p not in new.partitions]:
            del s["epochs"][pid]
            s["leases"].pop(pid, None)
        s["topology"] = new.to_dict()
        return out

    def _find_instance(self, instance: str) -> int | None:
        for hid, h in self.state["hosts"].items():
            if h["instance"] == instance:
                return hid
        return None

    # -- operations ------------------------------------------------------------------------

    def op_register_host(self, instance: str, address: str, ports: dict[str, int] | None = None,
                         placement_group: str = "0", *, host_count: int, kfactor: int,
                         sites_per_host: int) -> dict[str, Any]:
        """A starting host announces itself; the ``host_count``-th one forms the cluster.

        Host ids are given in registration order from 0. Every host must bring the same
        ``host_count``, ``kfactor`` and ``sites_per_host``. Forming computes the topology
        with ``place_partitions`` and hashinator version 1 with ``default_ring``.
        """
        s = self.state
        known = self._find_instance(instance)
        if known is not None:
            return {"changed": False, "host_id": known, "existing": True,
                    "formed": s["topology"] is not None}
        info = _host_args(instance, address, ports, placement_group)
        _require(s["cluster_state"] == "forming", "cluster_complete",
                 f"the cluster is {s['cluster_state']}: a new host must join with "
                 "request_join (--add) or replace a failed host with replace_host")
        cfg = {"host_count": _int("host_count", host_count, 1),
               "kfactor": _int("kfactor", kfactor, 0),
               "sites_per_host": _int("sites_per_host", sites_per_host, 1)}
        if s["config"] is None:
            _require(host_count >= kfactor + 1, "invalid",
                     f"System requesting {kfactor + 1} replicas but there are only "
                     f"{host_count} eligible hosts")
        else:
            _require(cfg == s["config"], "config_mismatch",
                     f"host {instance!r} brings {cfg}, the cluster is configured {s['config']}")
        hid = s["next_host_id"]
        hosts = {**s["hosts"], hid: {**info, "state": "joining"}}
        topo = ring = None
        if len(hosts) == cfg["host_count"]:
            infos = [HostInfo(h, cfg["sites_per_host"], v["placement_group"], v["address"])
                     for h, v in sorted(hosts.items())]
            topo = place_partitions(infos, cfg["kfactor"])
            ring = default_ring(len(topo.partitions))
        # validated: commit
        s["config"] = cfg
        s["next_host_id"] = hid + 1
        s["hosts"] = hosts
        result: dict[str, Any] = {"host_id": hid, "existing": False, "formed": topo is not None}
        if topo is not None:
            self._set_topology(None, topo)
            s["hashinator"] = {"version": 1, "config": raw_config(ring)}
            for h in s["hosts"].values():
                h["state"] = "active"
            s["cluster_state"] = "running"
        return result

    def op_mark_failed(self, host_id: int, reason: str = "") -> dict[str, Any]:
        """A host is gone. Its partitions get new leaders (epoch + 1, fenced leases).

        If a partition would lose every replica the cluster stops (state ``stopped``, with
        the reason) rather than serve partial data: the result is ``ok: False`` with code
        ``cluster_stopped`` although the state changed.
        """
        s = self.state
        _require(host_id in s["hosts"], "unknown_host", f"host {host_id!r} is not a member")
        h = s["hosts"][host_id]
        if h["state"] == "failed":
            return {"changed": False, "already": True, "leader_changes": {}}
        if s["topology"] is None:  # forming: forget the registration; it may come back
            del s["hosts"][host_id]
            return {"removed": True, "leader_changes": {}}
        if host_id in s["join_pool"]:
            s["join_pool"] = [x for x in s["join_pool"] if x != host_id]
            h["state"] = "failed"
            return {"leader_changes": {}}
        topo = self._topology()
        if host_id not in topo.hosts or host_id in topo.missing:
            h["state"] = "failed"
            return {"leader_changes": {}}
        # A rejoining host holds replicas that are not caught up yet: it cannot lead, and a
        # partition left with nothing else has lost its data (VoltDB aborts such a rejoin).
        rejoining = set(s["rejoining"]) - {host_id}
        dead = set(topo.missing) | {host_id}
        stale = [pid for pid, p in topo.partitions.items()
                 if not set(p.replicas) <= dead and set(p.replicas) <= dead | rejoining]
        try:
            if stale:
                raise TopologyError(
                    f"partition {stale[0]} would keep only replicas on rejoining hosts "
                    f"{sorted(rejoining)} that have not caught up: K-safety violated")
            new = fail_host(topo, host_id)
            new = _avoid_leaders(new, rejoining)
        except TopologyError as exc:
            h["state"] = "failed"
            why = f"host {host_id} failed{': ' + reason if reason else ''}; {exc}"
            if s["cluster_state"] != "stopped":
                s["cluster_state"] = "stopped"
                s["stop_reason"] = why
            s["seq"] += 1  # the state did change although we report an error
            return {"ok": False, "changed": False, "code": "cluster_stopped", "error": why}
        h["state"] = "failed"
        s["rejoining"] = [x for x in s["rejoining"] if x != host_id]
        return {"leader_changes": self._set_topology(topo, new),
                "topology_version": new.version}

    def op_request_join(self, instance: str, address: str, ports: dict[str, int] | None = None,
                        placement_group: str = "0") -> dict[str, Any]:
        """Elastic join (``start --add``): admit a host to the pending pool.

        When k+1 hosts are pending they form a new partition group: ``add_hosts`` gives
        them ``sites_per_host`` new partitions, the target ring is ``add_partitions`` of the
        current one, and the plan lists the token ranges to move (all ``pending``).
        """
        s = self.state
        known = self._find_instance(instance)
        if known is not None:
            return {"changed": False, "host_id": known, "existing": True,
                    "pending": list(s["join_pool"]),
                    "planned": s["join"] is not None and known in s["join"]["hosts"]}
        info = _host_args(instance, address, ports, placement_group)
        self._require_live_cluster()
        topo = self._topology()
        _require(not topo.missing, "hosts_missing",
                 f"hosts {sorted(topo.missing)} are missing: replace them (rejoin) first")
        _require(not s["rejoining"], "rejoin_in_progress",
                 f"hosts {s['rejoining']} are still rejoining")
        _require(s["join"] is None or s["join"]["status"] == "done", "join_in_progress",
                 f"join {s['join'] and s['join']['join_id']} is still rebalancing")
        cfg = s["config"]
        hid = s["next_host_id"]
        pool = s["join_pool"] + [hid]
        hosts = {**s["hosts"], hid: {**info, "state": "joining"}}
        plan = None
        if len(pool) == cfg["kfactor"] + 1:
            infos = [HostInfo(x, cfg["sites_per_host"], hosts[x]["placement_group"],
                              hosts[x]["address"]) for x in pool]
            new = add_hosts(topo, infos)
            new_pids = sorted(set(new.partitions) - set(topo.partitions))
            ring = ring_from_raw(s["hashinator"]["config"])
            ring_pids = sorted({p for _, p in ring})
            _require(new_pids == list(range(len(ring_pids), len(ring_pids) + len(new_pids))),
                     "invalid", f"new partitions {new_pids} do not follow the ring's "
                     f"partitions 0..{len(ring_pids) - 1}")
            target = add_partitions(ring, len(new_pids))
            plan = {"join_id": s["next_join_id"], "hosts": pool, "partitions": new_pids,
                    "target_config": raw_config(target),
                    "ranges": tuple(_ring_moves(ring, target)), "status": "rebalancing"}
        # validated: commit
        s["next_host_id"] = hid + 1
        s["hosts"] = hosts
        result: dict[str, Any] = {"host_id": hid, "existing": False, "planned": plan is not None}
        if plan is None:
            s["join_pool"] = pool
            result["pending"] = pool
            result["needed"] = cfg["kfactor"] + 1
        else:
            s["join_pool"] = []
            s["next_join_id"] += 1
            s["join"] = plan
            result["leader_changes"] = self._set_topology(topo, new)
            result["join_id"] = plan["join_id"]
            result["partitions"] = plan["partitions"]
            result["ranges"] = len(plan["ranges"])
        return result

    def op_record_move(self, ranges: Any, state: str) -> dict[str, Any]:
        """Progress of the join plan: ``ranges`` is one ``(start, end)`` or a list of them.

        Transitions: pending -> moving -> done, pending -> done, moving -> pending (retry);
        repeating the current state is a no-op. When every range is done the join ends:
        its hosts become active.
        """
        s = self.state
        j = s["join"]
        _require(j is not None and j["status"] == "rebalancing", "no_join",
                 "no join is rebalancing")
        _require(state in MOVE_STATES, "bad_argument", f"state must be one of {MOVE_STATES}")
        if isinstance(ranges, (tuple, list)) and len(ranges) == 2 and all(
                type(x) is int for x in ranges):
            ranges = [ranges]
        _require(isinstance(ranges, (tuple, list)) and len(ranges) > 0, "bad_argument",
                 "ranges must be (start, end) or a non-empty list of them")
        index = {(r[0], r[1]): i for i, r in enumerate(j["ranges"])}
        updates = {}
        for rg in ranges:
            _require(isinstance(rg, (tuple, list)) and len(rg) == 2, "bad_argument",
                     f"a range is (start, end), got {rg!r}")
            i = index.get((rg[0], rg[1]))
            _require(i is not None, "unknown_range", f"range {tuple(rg)} is not in the plan")
            cur = j["ranges"][i][4]
            if cur != state:
                _require((cur, state) in _MOVE_TRANSITIONS, "bad_transition",
                         f"range {tuple(rg)} cannot go from {cur} to {state}")
                updates[i] = state
        if not updates:
            return {"changed": False, "moved": sum(r[4] == "done" for r in j["ranges"]),
                    "total": len(j["ranges"]), "join_done": False}
        new_ranges = list(j["ranges"])
        for i, st in updates.items():
            new_ranges[i] = new_ranges[i][:4] + (st,)
        j["ranges"] = tuple(new_ranges)
        moved = sum(r[4] == "done" for r in new_ranges)
        done = moved == len(new_ranges)
        if done:
            j["status"] = "done"
            for hid in j["hosts"]:
                if s["hosts"][hid]["state"] == "joining":
                    s["hosts"][hid]["state"] = "active"
        return {"moved": moved, "total": len(new_ranges), "join_done": done}

    def op_replace_host(self, dead_host_id: int, instance: str, address: str,
                        ports: dict[str, int] | None = None,
                        placement_group: str | None = None) -> dict[str, Any]:
        """Rejoin: a new host takes every replica of a failed host (one rejoin at a time).

        The newcomer is ``joining`` until :meth:`op_host_ready`. It inherits leadership only
        where the dead host still led (never, after ``mark_failed``).
        """
        s = self.state
        known = self._find_instance(instance)
        if known is not None:
            return {"changed": False, "host_id": known, "existing": True}
        self._require_live_cluster()
        topo = self._topology()
        _require(dead_host_id in topo.hosts, "unknown_host",
                 f"host {dead_host_id!r} is not in the topology")
        _require(dead_host_id in topo.missing, "host_alive",
                 f"host {dead_host_id} is not failed; only a failed host can be replaced")
        _require(not s["rejoining"], "rejoin_in_progress",
                 f"Only one host can rejoin at a time. Host {s['rejoining'][0] if s['rejoining'] else ''}"
                 " is still rejoining.")
        _require(s["join"] is None or s["join"]["status"] == "done", "join_in_progress",
                 "a join is rebalancing; rejoin and elastic join are mutually exclusive")
        dead = s["hosts"][dead_host_id]
        pg = dead["placement_group"] if placement_group is None else placement_group
        info = _host_args(instance, address, ports, pg)
        hid = s["next_host_id"]
        new = replace_host(topo, dead_host_id, hid, placement_group=pg, address=address)
        # validated: commit
        s["next_host_id"] = hid + 1
        del s["hosts"][dead_host_id]
        s["hosts"][hid] = {**info, "state": "joining"}
        s["rejoining"] = [hid]
        changes = self._set_topology(topo, new)
        return {"host_id": hid, "existing": False, "replaced": dead_host_id,
                "partitions": list(new.partitions_of(hid)), "leader_changes": changes}

    def op_host_ready(self, host_id: int) -> dict[str, Any]:
        """A rejoining host has caught up on every partition: it becomes active."""
        s = self.state
        _require(host_id in s["hosts"], "unknown_host", f"host {host_id!r} is not a member")
        h = s["hosts"][host_id]
        if h["state"] == "active":
            return {"changed": False}
        _require(host_id in s["rejoining"], "not_rejoining",
                 f"host {host_id} is {h['state']}, not rejoining")
        h["state"] = "active"
        s["rejoining"] = [x for x in s["rejoining"] if x != host_id]
        return {}

    def op_set_catalog(self, version: int, catalog: bytes | None = None, *,
                       digest: str | None = None, size: int | None = None,
                       expected_version: int | None = None) -> dict[str, Any]:
        """New catalog version (only increasing). Give the bytes, or a sha256 digest + size."""
        s = self.state
        cur = s["catalog"]
        _int("version", version, 1)
        if version == cur["version"] and catalog is not None and \
                hashlib.sha256(catalog).hexdigest() == cur["digest"]:
            return {"changed": False, "version": version}
        _require(expected_version is None or expected_version == cur["version"],
                 "version_conflict",
                 f"expected catalog version {expected_version}, current is {cur['version']}")
        _require(version > cur["version"], "stale_version",
                 f"catalog version {version} is not newer than {cur['version']}")
        if catalog is not None:
            _require(isinstance(catalog, bytes), "bad_argument", "catalog must be bytes")
            d = hashlib.sha256(catalog).hexdigest()
            _require(digest is None or digest == d, "digest_mismatch",
                     f"digest {digest} does not match the catalog bytes ({d})")
            _require(size is None or size == len(catalog), "bad_argument",
                     f"size {size} does not match {len(catalog)} catalog bytes")
            new = {"version": version, "digest": d, "size": len(catalog), "bytes": catalog}
        else:
            _require(isinstance(digest, str) and len(digest) == 64 and all(
                c in "0123456789abcdef" for c in digest), "bad_argument",
                "without bytes, digest must be a sha256 hex string")
            new = {"version": version, "digest": digest, "size": _int("size", size, 0),
                   "bytes": None}
        s["catalog"] = new
        return {"version": version, "digest": new["digest"]}

    def op_install_hashinator(self, version: int, config: bytes,
                              expected_version: int | None = None) -> dict[str, Any]:
        """Install a hashinator (raw config) with a newer version, like VoltDB's CAS."""
        s = self.state
        cur = s["hashinator"]
        _int("version", version, 1)
        _require(isinstance(config, bytes), "bad_argument", "config must be raw config bytes")
        if version == cur["version"] and config == cur["config"]:
            return {"changed": False, "version": version}
        _require(expected_version is None or expected_version == cur["version"],
                 "version_conflict",
                 f"expected hashinator version {expected_version}, current is {cur['version']}")
        _require(version > cur["version"], "stale_version",
                 f"hashinator version {version} is not newer than {cur['version']}")
        ring = ring_from_raw(config)
        topo = self._topology()
        unknown = sorted({p for _, p in ring} - set(topo.partitions))
        _require(not unknown, "unknown_partition",
                 f"the ring names partitions {unknown} that are not in the topology")
        s["hashinator"] = {"version": version, "config": bytes(config)}
        return {"version": version}

    def op_grant_lease(self, partition: int, host: int, epoch: int,
                       until: float) -> dict[str, Any]:
        """Grant or extend the leader lease of ``partition`` to ``host`` for ``epoch``.

        Only the current leader, for the current epoch, may hold it; an older epoch is
        refused (``stale_epoch``). ``until`` never moves backwards for one epoch.
        """
        s = self.state
        topo = self._topology()
        self._require_live_cluster()
        _require(type(partition) is int and partition in topo.partitions, "unknown_partition",
                 f"partition {partition!r} is not in the topology")
        _require(type(until) in (int, float) and math.isfinite(until), "bad_argument",
                 f"until must be a finite number: {until!r}")
        cur_epoch = s["epochs"][partition]
        _require(type(epoch) is int and epoch <= cur_epoch, "unknown_epoch",
                 f"epoch {epoch!r} of partition {partition} is ahead of {cur_epoch}")
        _require(epoch == cur_epoch, "stale_epoch",
                 f"epoch {epoch} of partition {partition} is older than {cur_epoch}")
        leader = topo.partitions[partition].leader
        _require(host == leader, "not_leader",
                 f"host {host!r} is not the leader of partition {partition} (host {leader} is)")
        _require(s["hosts"][host]["state"] != "failed", "host_failed", f"host {host} failed")
        lease = s["leases"][partition]
        if lease["until"] is not None and until <= lease["until"]:
            return {"changed": False, "lease": dict(lease), "partition": partition}
        s["leases"][partition] = {**lease, "until": float(until)}
        return {"lease": dict(s["leases"][partition]), "partition": partition}

    def op_set_cluster_state(self, state: str, reason: str = "") -> dict[str, Any]:
        """pause / resume / shutdown: running <-> paused, running|paused -> shutting_down."""
        s = self.state
        _require(state in CLUSTER_STATES, "bad_argument", f"state must be in {CLUSTER_STATES}")
        cur = s["cluster_state"]
        if cur == state:
            return {"changed": False, "cluster_state": cur}
        _require((cur, state) in _CLUSTER_TRANSITIONS, "bad_transition",
                 f"the cluster cannot go from {cur} to {state}")
        s["cluster_state"] = state
        if reason:
            s["stop_reason"] = reason
        return {"cluster_state": state}


# ---------------------------------------------------------------------------------------
# The Raft node
# ---------------------------------------------------------------------------------------

_FAIL_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if k.isupper()}


class ClusterMetadata(SyncObj):
    """One metadata node: the state machine above, replicated with pysyncobj.

    :param self_address: this node's Raft address ``"host:port"`` (it binds it).
    :param peer_addresses: the other voting nodes' addresses.
    :param data_dir: where the Raft journal (``metadata.journal``) and the full dump
        (``metadata.dump``) live; None keeps everything in memory.
    :param dynamic_membership: allow ``addNodeToCluster`` / ``removeNodeFromCluster``.
    :param conf: extra :class:`pysyncobj.SyncObjConf` settings (timeouts etc.).

    Mutations (``@replicated``; call through :meth:`apply`, or pysyncobj-style with
    ``sync=True, timeout=...`` or ``callback=...``): register_host, mark_failed,
    request_join, record_move, replace_host, host_ready, set_catalog,
    install_hashinator, grant_lease, set_cluster_state. See
    :class:`MetadataStateMachine` for their rules.
    """

    def __init__(self, self_address: str, peer_addresses: Iterable[str],
                 data_dir: str | os.PathLike[str] | None = None, *,
                 dynamic_membership: bool = True,
                 on_change: Callable[[MetadataSnapshot], None] | None = None,
                 **conf: Any) -> None:
        # Every attribute must exist before SyncObj.__init__: pysyncobj dumps the ones
        # created later, and its tick thread starts applying the log inside __init__.
        self._sm = MetadataStateMachine()
        self._snap_lock = threading.Lock()
        self._snap: MetadataSnapshot | None = None
        self._callbacks: list[Callable[[MetadataSnapshot], None]] = []
        self._cond = threading.Condition()
        self._dirty = False
        self._closing = False
        self._ready_event = threading.Event()
        self._raft_listeners: list[Callable[[int, int], None]] = []
        self._notifier = threading.Thread(target=self._notify_loop, daemon=True,
                                          name=f"metadata-notify-{self_address}")
        if on_change is not None:
            self._callbacks.append(on_change)
        self._dirty_snapshot = True
        self._sm.listener = self._changed
        settings: dict[str, Any] = {
            "autoTick": True,
            "dynamicMembershipChange": dynamic_membership,
            "appendEntriesUseBatch": False,  # lower latency per change; changes are rare
            "useFork": False,  # never fork a threaded node process for a dump
            "leaderFallbackTimeout": 5.0,
            "onReady": self._ready_event.set,
            "onStateChanged": self._raft_state_changed,
        }
        if data_dir is not None:
            os.makedirs(data_dir, exist_ok=True)
            settings["journalFile"] = os.path.join(data_dir, "metadata.journal")
            settings["fullDumpFile"] = os.path.join(data_dir, "metadata.dump")
        settings.update(conf)
        self._self_address = self_address
        self._notifier.start()
        try:
            super().__init__(self_address, [p for p in peer_addresses if p != self_address],
                             SyncObjConf(**settings), consumers=[self._sm])
        except BaseException:
            self._stop_notifier()
            raise

    # -- mutations (replicated) ----------------------------------------------------------

    @replicated
    def register_host(self, instance, address, ports=None, placement_group="0", *,
                      host_count, kfactor, sites_per_host):
        return self._sm.apply("register_host", instance, address, ports, placement_group,
                              host_count=host_count, kfactor=kfactor,
                              sites_per_host=sites_per_host)

    @replicated
    def mark_failed(self, host_id, reason=""):
        return self._sm.apply("mark_failed", host_id, reason)

    @replicated
    def request_join(self, instance, address, ports=None, placement_group="0"):
        return self._sm.apply("request_join", instance, address, ports, placement_group)

    @replicated
    def record_move(self, ranges, state):
        return self._sm.apply("record_move", ranges, state)

    @replicated
    def replace_host(self, dead_host_id, instance, address, ports=None, placement_group=None):
        return self._sm.apply("replace_host", dead_host_id, instance, address, ports,
                              placement_group)

    @replicated
    def host_ready(self, host_id):
        return self._sm.apply("host_ready", host_id)

    @replicated
    def set_catalog(self, version, catalog=None, digest=None, size=None,
                    expected_version=None):
        return self._sm.apply("set_catalog", version, catalog, digest=digest, size=size,
                              expected_version=expected_version)

    @replicated
    def install_hashinator(self, version, config, expected_version=None):
        return self._sm.apply("install_hashinator", version, config, expected_version)

    @replicated
    def grant_lease(self, partition, host, epoch, until):
        return self._sm.apply("grant_lease", partition, host, epoch, until)

    @replicated
    def set_cluster_state(self, state, reason=""):
        return self._sm.apply("set_cluster_state", state, reason)

    def apply(self, op: str, *args: Any, timeout_s: float = 10.0, check: bool = True,
              **kwargs: Any) -> dict[str, Any]:
        """Submit mutation ``op`` and wait for it to commit and apply on this node.

        :returns: the state machine's result dict.
        :raises MetadataUnavailable: not committed within ``timeout_s`` (no leader or no
            quorum), or the leader changed first; the outcome is then unknown.
        :raises MetadataRejected: the state machine refused it (only when ``check``).
        """
        fn = getattr(self, op, None)
        if op.startswith("_") or not getattr(fn, "replicated", False):
            raise ValueError(f"{op!r} is not a metadata mutation")
        if self._closing:
            raise MetadataUnavailable("the metadata node is closed")
        try:
            result = fn(*args, sync=True, timeout=timeout_s, **kwargs)
        except SyncObjException as exc:
            code = exc.errorCode
            name = _FAIL_NAMES.get(code, code) if isinstance(code, int) else code
            raise MetadataUnavailable(f"{op} did not commit: {name}") from None
        if check and not result.get("ok"):
            raise MetadataRejected(result)
        return result

    # -- reads -----------------------------------------------------------------------------

    def snapshot(self) -> MetadataSnapshot:
        """The current metadata as an immutable snapshot (as applied on this node)."""
        with self._snap_lock:
            with self._sm.lock:
                seq = self._sm.state["seq"]
                snap = self._snap
                if snap is None or snap.seq != seq or self._dirty_snapshot:
                    snap = _snapshot_of(self._sm.state)
                    self._snap = snap
                    self._dirty_snapshot = False
            return snap

    def is_leader(self) -> bool:
        """Is this node the Raft leader (it may briefly not know it was deposed)?"""
        return self._isLeader()

    def leader(self) -> str | None:
        """Address of the last known Raft leader."""
        node = self._getLeader()
        return None if node is None else node.address

    def has_quorum(self) -> bool:
        """Does this node see a majority of the metadata nodes (itself included)?

        False means this node is cut off: it can commit nothing, and a host that relies
        on it must stop serving (VoltDB's partition detection).
        """
        return bool(self.hasQuorum)

    def raft_status(self) -> dict[str, Any]:
        """pysyncobj's ``getStatus()`` (state, leader, term, commit index, peers...)."""
        return self.getStatus()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until this node knows a leader and has applied the log up to its commit.

        :returns: False on timeout.
        """
        deadline = time.monotonic() + timeout_s
        if not self._ready_event.wait(timeout_s):
            return False
        while time.monotonic() < deadline:
            if self._getLeader() is not None:
                return True
            time.sleep(0.02)
        return self._getLeader() is not None

    # -- notifications ---------------------------------------------------------------------

    def on_change(self, callback: Callable[[MetadataSnapshot], None]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` after changes (on a notifier thread; coalesced).

        :returns: a function that unsubscribes the callback.
        """
        with self._cond:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)
        return unsubscribe

    def on_raft_state(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(old, new)`` on Raft role changes (0 follower, 1 candidate, 2
        leader). Runs on pysyncobj's thread: keep it short and non-blocking."""
        self._raft_listeners.append(callback)

    def _raft_state_changed(self, old: int, new: int) -> None:
        for cb in list(self._raft_listeners):
            try:
                cb(old, new)
            except Exception:
                log.exception("raft state callback failed")

    def _changed(self) -> None:  # on the Raft thread: just flag and wake the notifier
        with self._cond:
            self._dirty = True
            self._dirty_snapshot = True
            self._cond.notify_all()

    def _notify_loop(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                self._dirty = False
                callbacks = list(self._callbacks)
            if not callbacks:
                continue
            try:
                snap = self.snapshot()
            except Exception:
                log.exception("metadata snapshot failed")
                continue
            for cb in callbacks:
                try:
                    cb(snap)
                except Exception:
                    log.exception("metadata on_change callback failed")

    def _stop_notifier(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._notifier.is_alive() and threading.current_thread() is not self._notifier:
            self._notifier.join(5.0)

    # -- lifecycle -------------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop the node: the Raft thread closes sockets and the journal soon after."""
        self._stop_notifier()
        super().destroy()

    def close(self, timeout_s: float = 10.0) -> None:
        """:meth:`destroy` and wait until the Raft thread has released port and journal."""
        self.destroy()
        deadline = time.monotonic() + timeout_s
        while self.tick_thread_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

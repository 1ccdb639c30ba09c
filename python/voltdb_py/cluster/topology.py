# SPDX-License-Identifier: AGPL-3.0-or-later
"""Partition placement and topology changes: pure data + functions, no I/O.

Placement follows VoltDB's ``AbstractTopology`` builder (voltdb-internals.md section 2):
hosts are cut into *partition groups* (as small as possible, ideally k+1 hosts, the
largest groups getting the lowest partition ids), the partitions of a group are dealt
round-robin over its hosts, placement groups (``--placement-group``, dotted for
hierarchy) choose which hosts form a partition group, and each partition's first leader
is the replica that leads the fewest partitions so far (first in replica order on ties).

Host order inside a placement group is VoltDB's: by IP address string, held in a binary
heap that behaves like ``java.util.PriorityQueue`` (so hosts with *equal* addresses come
out in Java's heap order, not in id order). When no host has an address, hosts are
ordered by host id, which is what distinct addresses sorted like the ids give. Hosts
enter their placement group in ascending host id order.

Changes: :func:`add_hosts` (elastic join: new hosts get new partitions only),
:func:`fail_host` (a host is missing; leaders move to surviving replicas),
:func:`replace_host` (rejoin: a new host takes a dead host's replicas),
:func:`remove_hosts` (shrink: the partition group holding the highest partition id),
and :func:`partition_detection` (VoltDB's split-brain rule).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from voltdb_py.errors import VoltError

__all__ = [
    "TopologyError",
    "HostInfo",
    "PartitionInfo",
    "Topology",
    "partition_count",
    "place_partitions",
    "partition_groups",
    "add_hosts",
    "fail_host",
    "replace_host",
    "removable_hosts",
    "remove_hosts",
    "partition_detection",
]

#: VoltDB's default placement group (AbstractTopology.PLACEMENT_GROUP_DEFAULT).
PLACEMENT_GROUP_DEFAULT = "0"
#: Partition ids are 14 bits in a transaction id and 16383 is the MP initiator's.
MAX_PARTITION_ID = 16382
# Added to a group's own relationship so the complex selector never picks it twice in a row
# (the constant VoltDB uses for the self relationship).
_SELF_SHARED_ANCESTRY = 1024


class TopologyError(VoltError, ValueError):
    """A topology request or a topology is invalid (VoltDB's rules for placement and changes)."""


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TopologyError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise TopologyError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class HostInfo:
    """One host as placement sees it: id, sites per host, placement group, optional IP."""

    host_id: int
    sites_per_host: int
    placement_group: str = PLACEMENT_GROUP_DEFAULT
    address: str | None = None

    def __post_init__(self) -> None:
        _check_int("host_id", self.host_id, 0)
        _check_int("sites_per_host", self.sites_per_host, 1)
        if not isinstance(self.placement_group, str) or not self.placement_group:
            raise TopologyError(
                f"placement_group of host {self.host_id} must be a non-empty string, "
                f"got {self.placement_group!r}")
        if self.address is not None and not isinstance(self.address, str):
            raise TopologyError(
                f"address of host {self.host_id} must be a string or None, got {self.address!r}")


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition: its replica host ids (sorted) and its leader host id."""

    replicas: tuple[int, ...]
    leader: int


@dataclass(frozen=True)
class Topology:
    """Hosts, partitions (replicas + leader), k-factor, sites per host and version.

    Validated on construction: every partition has k+1 replicas on distinct known hosts,
    its leader is one of them and is not missing, no host holds more partitions than its
    sites, and all hosts have the same sites per host.
    """

    hosts: Mapping[int, HostInfo]
    partitions: Mapping[int, PartitionInfo]
    kfactor: int
    sites_per_host: int
    version: int = 1
    missing: frozenset[int] = frozenset()
    unbalanced_partition_count: int = 0

    def __post_init__(self) -> None:
        hosts = {int(h): v for h, v in dict(self.hosts).items()}
        parts = {}
        for pid, p in sorted(dict(self.partitions).items()):
            if not isinstance(p, PartitionInfo):
                raise TopologyError(f"partition {pid}: expected PartitionInfo, got {p!r}")
            parts[pid] = PartitionInfo(tuple(sorted(p.replicas)), p.leader)
        object.__setattr__(self, "hosts", MappingProxyType(dict(sorted(hosts.items()))))
        object.__setattr__(self, "partitions", MappingProxyType(parts))
        object.__setattr__(self, "missing", frozenset(self.missing))
        self._validate()

    def _validate(self) -> None:
        k = _check_int("kfactor", self.kfactor, 0)
        sph = _check_int("sites_per_host", self.sites_per_host, 1)
        _check_int("version", self.version, 0)
        _check_int("unbalanced_partition_count", self.unbalanced_partition_count, 0)
        for hid, host in self.hosts.items():
            if not isinstance(host, HostInfo) or host.host_id != hid:
                raise TopologyError(f"hosts[{hid}] must be the HostInfo of host {hid}, got {host!r}")
            if host.sites_per_host != sph:
                raise TopologyError(
                    f"Not all hosts have the same site count: host {hid} has "
                    f"{host.sites_per_host}, the topology {sph}")
        unknown = self.missing - self.hosts.keys()
        if unknown:
            raise TopologyError(f"missing hosts {sorted(unknown)} are not in the topology")
        load = dict.fromkeys(self.hosts, 0)
        for pid, p in self.partitions.items():
            _check_int("partition id", pid, 0)
            if pid > MAX_PARTITION_ID:
                raise TopologyError(f"partition id {pid} exceeds {MAX_PARTITION_ID}")
            if len(p.replicas) != k + 1 or len(set(p.replicas)) != k + 1:
                raise TopologyError(
                    f"partition {pid} must have {k + 1} replicas on distinct hosts, "
                    f"has {list(p.replicas)}")
            for hid in p.replicas:
                if hid not in self.hosts:
                    raise TopologyError(f"partition {pid} has a replica on unknown host {hid}")
                load[hid] += 1
            if p.leader not in p.replicas:
                raise TopologyError(
                    f"leader {p.leader} of partition {pid} is not one of its replicas "
                    f"{list(p.replicas)}")
            if p.leader in self.missing:
                raise TopologyError(f"leader {p.leader} of partition {pid} is a missing host")
        for hid, n in load.items():
            if n > sph:
                raise TopologyError(f"host {hid} holds {n} partitions but has only {sph} sites")

    # -- queries -------------------------------------------------------------------------

    @property
    def live_hosts(self) -> frozenset[int]:
        """Host ids that are not missing."""
        return frozenset(self.hosts.keys() - self.missing)

    def partitions_of(self, host_id: int) -> tuple[int, ...]:
        """Partition ids with a replica on ``host_id``, ascending."""
        return tuple(pid for pid, p in self.partitions.items() if host_id in p.replicas)

    def leaders_of(self, host_id: int) -> tuple[int, ...]:
        """Partition ids led by ``host_id``, ascending."""
        return tuple(pid for pid, p in self.partitions.items() if p.leader == host_id)

    # -- serial form ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, shaped like VoltDB's topology JSON (plus addresses)."""
        return {
            "version": self.version,
            "partitions": [
                {"partition_id": pid, "master": p.leader, "replicas": list(p.replicas)}
                for pid, p in self.partitions.items()
            ],
            "hosts": [
                {
                    "host_id": hid,
                    "haGroup": h.placement_group,
                    "address": h.address,
                    "missing": hid in self.missing,
                    "partitions": list(self.partitions_of(hid)),
                }
                for hid, h in self.hosts.items()
            ],
            "sitesPerHost": self.sites_per_host,
            "replicationFactor": self.kfactor,
            "unbalancedPartitionCount": self.unbalanced_partition_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Topology:
        """Inverse of :meth:`to_dict`; malformed input raises :class:`TopologyError`."""
        try:
            sph = data["sitesPerHost"]
            hosts = {}
            missing = set()
            host_parts: dict[int, set[int]] = {}
            for h in data["hosts"]:
                info = HostInfo(h["host_id"], sph, h["haGroup"], h.get("address"))
                if info.host_id in hosts:
                    raise TopologyError(f"host {info.host_id} appears twice")
                hosts[info.host_id] = info
                if h["missing"]:
                    missing.add(info.host_id)
                host_parts[info.host_id] = set(h["partitions"])
            partitions = {}
            for p in data["partitions"]:
                pid = p["partition_id"]
                if pid in partitions:
                    raise TopologyError(f"partition {pid} appears twice")
                partitions[pid] = PartitionInfo(tuple(p["replicas"]), p["master"])
            topo = cls(hosts, partitions, data["replicationFactor"], sph, data["version"],
                       frozenset(missing), data["unbalancedPartitionCount"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise TopologyError(f"malformed topology dict: {exc!r}") from exc
        for hid, pids in host_parts.items():
            if pids != set(topo.partitions_of(hid)):
                raise TopologyError(
                    f"host {hid} lists partitions {sorted(pids)} but the partitions place "
                    f"{list(topo.partitions_of(hid))} on it")
        return topo


# ---------------------------------------------------------------------------------------
# Partition count
# ---------------------------------------------------------------------------------------

def _too_few_hosts(replicas: int, hosts: int) -> TopologyError:
    return TopologyError(
        f"System requesting {replicas} replicas but there are only {hosts} eligible hosts "
        f"on which to place them. Topology request invalid.")


def partition_count(host_count: int, sites_per_host: int, kfactor: int) -> int:
    """VoltDB's partition count: ``sites_per_host * host_count // (kfactor + 1)``.

    :raises TopologyError: bad arguments, or fewer hosts than k+1 replicas.
    """
    _check_int("host_count", host_count, 1)
    _check_int("sites_per_host", sites_per_host, 1)
    _check_int("kfactor", kfactor, 0)
    if host_count < kfactor + 1:
        raise _too_few_hosts(kfactor + 1, host_count)
    return sites_per_host * host_count // (kfactor + 1)


# ---------------------------------------------------------------------------------------
# The builder (VoltDB's TopologyBuilder and its partition-group selectors)
# ---------------------------------------------------------------------------------------

class _Host:
    __slots__ = ("id", "key", "group", "missing", "partitions", "led")

    def __init__(self, info: HostInfo, key: Any, missing: bool) -> None:
        self.id = info.host_id
        self.key = key
        self.group = info.placement_group
        self.missing = missing
        self.partitions: list[int] = []
        self.led = 0


class _JavaHeap:
    """A binary heap with java.util.PriorityQueue's exact sift rules (ties matter)."""

    def __init__(self) -> None:
        self.q: list[_Host] = []

    def __len__(self) -> int:
        return len(self.q)

    def offer(self, x: _Host) -> None:
        q = self.q
        q.append(x)
        k = len(q) - 1
        while k > 0:
            parent = (k - 1) >> 1
            e = q[parent]
            if x.key >= e.key:
                break
            q[k] = e
            k = parent
        q[k] = x

    def poll(self) -> _Host | None:
        q = self.q
        if not q:
            return None
        result = q[0]
        x = q.pop()
        n = len(q)
        if n:
            k, half = 0, n >> 1
            while k < half:
                child = 2 * k + 1
                c = q[child]
                right = child + 1
                if right < n and c.key > q[right].key:
                    child = right
                    c = q[child]
                if x.key <= c.key:
                    break
                q[k] = c
                k = child
            q[k] = x
        return result


class _Group:
    """A placement group (VoltDB's HAGroup): live hosts in a heap, missing ones in a queue."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.parts = token.split(".")
        self.hosts = _JavaHeap()
        self.missing: deque[_Host] = deque()

    def add(self, h: _Host) -> None:
        if h.missing:
            self.missing.append(h)
        else:
            self.hosts.offer(h)

    def poll(self, allow_missing: bool) -> _Host | None:
        if allow_missing and self.missing:
            return self.missing.popleft()
        return self.hosts.poll()

    def size(self) -> int:
        return len(self.hosts) + len(self.missing)

    def sort_key(self) -> tuple[int, str]:
        return (self.size(), self.token)

    def relationship(self, other: _Group) -> tuple[int, int]:
        """(distance, shared ancestry): distance is the sum of the two diverging path lengths."""
        shared = 0
        for a, b in zip(self.parts, other.parts):
            if a != b:
                break
            shared += 1
        return (len(self.parts) + len(other.parts) - 2 * shared, shared)


def _rel_key(rel: tuple[int, int]) -> tuple[int, int]:
    # Nearer is smaller; at equal distance, more shared ancestry is smaller.
    return (rel[0], -rel[1])


class _SingleSelector:
    def __init__(self, group: _Group) -> None:
        self.group = group

    def next_group(self, size: int, max_missing: int) -> list[_Host]:
        out = []
        for _ in range(size):
            h = self.group.poll(max_missing > 0)
            if h is None:
                raise TopologyError("placement ran out of hosts")
            if h.missing:
                max_missing -= 1
            out.append(h)
        return out

    def balanced(self, hosts: list[_Host]) -> bool:
        return True


class _MinGroupsChecker:
    def __init__(self, group_count: int, replicas: int) -> None:
        self.minimum = replicas if group_count >= replicas else 2

    def balanced(self, hosts: list[_Host]) -> bool:
        return len({h.group for h in hosts}) >= self.minimum


class _EqualDistanceSelector(_MinGroupsChecker):
    """Groups all equally far apart: take hosts from the smallest groups in turn."""

    def __init__(self, groups: list[_Group], replicas: int) -> None:
        super().__init__(len(groups), replicas)
        self.groups = list(groups)

    def _return(self, used: list[_Group]) -> None:
        self.groups.extend(g for g in used if g.size())
        used.clear()

    def next_group(self, size: int, max_missing: int) -> list[_Host]:
        out = []
        used: list[_Group] = []
        for _ in range(size):
            h = None
            for _attempt in range(1 << 20):
                if not self.groups:
                    self._return(used)
                    if not self.groups:
                        raise TopologyError("placement ran out of hosts")
                g = min(self.groups, key=_Group.sort_key)
                self.groups.remove(g)
                used.append(g)
                h = g.poll(max_missing > 0)
                if h is not None:
                    break
            if h is None:
                raise TopologyError("placement found no eligible host")
            if h.missing:
                max_missing -= 1
            out.append(h)
        self._return(used)
        return out


class _ComplexSelector(_MinGroupsChecker):
    """Groups at varying distances: start in the 'middle' group, then go farthest away."""

    def __init__(self, groups: list[_Group], replicas: int) -> None:
        super().__init__(len(groups), replicas)
        # each group's relationships to every group, itself included (self: 0, 1024)
        self.rels: dict[str, list[tuple[_Group, tuple[int, int]]]] = {
            g.token: [(g, (0, _SELF_SHARED_ANCESTRY))] for g in groups}
        for a, b in itertools.combinations(groups, 2):
            rel = a.relationship(b)
            self.rels[a.token].append((b, rel))
            self.rels[b.token].append((a, rel))
        self.acc: dict[str, list[int]] = {g.token: [0, 0] for g in groups}
        self.eligible: dict[str, _Group] = {g.token: g for g in groups}
        self.ordered: dict[str, _Group] = dict(self.eligible)

    def _order_key(self, g: _Group) -> tuple[tuple[int, int], tuple[int, str]]:
        farthest = max(_rel_key(rel) for _, rel in self.rels[g.token])
        return (farthest, g.sort_key())

    def _take(self, g: _Group, allow_missing: bool) -> _Host | None:
        self.ordered.pop(g.token, None)
        kept = []
        for other, rel in self.rels[g.token]:
            acc = self.acc.get(other.token) if other.token in self.eligible else None
            if acc is None:
                continue
            acc[0] += rel[0]
            acc[1] += rel[1]
            kept.append((other, rel))
        self.rels[g.token] = kept
        h = g.poll(allow_missing)
        if g.size() == 0:
            del self.eligible[g.token]
        else:
            self.ordered[g.token] = g
        return h

    def next_group(self, size: int, max_missing: int) -> list[_Host]:
        out: list[_Host] = []
        for i in range(size):
            h = None
            for _attempt in range(1 << 20):
                if i == 0:
                    if not self.ordered:
                        raise TopologyError("placement ran out of hosts")
                    g = min(self.ordered.values(), key=self._order_key)
                    h = self._take(g, False)
                else:
                    if not self.eligible:
                        raise TopologyError("placement ran out of hosts")
                    g = max(self.eligible.values(),
                            key=lambda x: (_rel_key(tuple(self.acc[x.token])), x.sort_key()))
                    h = self._take(g, max_missing > 0)
                if h is not None:
                    break
            if h is None:
                raise TopologyError("placement found no eligible host")
            if h.missing:
                max_missing -= 1
            out.append(h)
        for acc in self.acc.values():
            acc[0] = acc[1] = 0
        return out


@dataclass
class _Built:
    hosts: list[_Host]
    partitions: dict[int, PartitionInfo] = field(default_factory=dict)
    unbalanced: int = 0
    sites_per_host: int = 0


def _build(hosts: Iterable[HostInfo], kfactor: int, missing: Iterable[int],
           first_partition_id: int) -> _Built:
    infos = list(hosts)
    for h in infos:
        if not isinstance(h, HostInfo):
            raise TopologyError(f"expected HostInfo, got {h!r}")
    _check_int("kfactor", kfactor, 0)
    rc = kfactor + 1
    if not infos:
        raise _too_few_hosts(rc, 0)
    ids = [h.host_id for h in infos]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise TopologyError(f"host ids must be unique and unused: {dup} repeated")
    missing_set = frozenset(missing)
    stray = missing_set - set(ids)
    if stray:
        raise TopologyError(f"missing hosts {sorted(stray)} are not among the hosts")
    sph = infos[0].sites_per_host
    odd = [h.host_id for h in infos if h.sites_per_host != sph]
    if odd:
        raise TopologyError(
            f"Not all hosts have the same site count: hosts {odd} differ from {sph}")
    with_addr = [h.address is not None for h in infos]
    if any(with_addr) and not all(with_addr):
        raise TopologyError("either every host has an address or none does")

    infos.sort(key=lambda h: h.host_id)
    groups: dict[str, _Group] = {}
    built = []
    for info in infos:
        key = info.address if info.address is not None else info.host_id
        h = _Host(info, key, info.host_id in missing_set)
        groups.setdefault(info.placement_group, _Group(info.placement_group)).add(h)
        built.append(h)
    if len(infos) < rc:
        raise _too_few_hosts(rc, len(infos))
    total = sph * len(infos) // rc
    if first_partition_id + total - 1 > MAX_PARTITION_ID:
        raise TopologyError(
            f"{total} partitions from id {first_partition_id} exceed the partition id limit "
            f"{MAX_PARTITION_ID}")

    glist = list(groups.values())
    distances = {a.relationship(b)[0] for a, b in itertools.combinations(glist, 2)}
    selector: Any
    if len(glist) == 1:
        selector = _SingleSelector(glist[0])
    elif len(distances) <= 1:
        selector = _EqualDistanceSelector(glist, rc)
    else:
        selector = _ComplexSelector(glist, rc)

    # Cut the hosts into partition groups.
    missing_count = len(missing_set)
    remaining = len(infos)
    pgroups: list[list[_Host]] = []
    while True:
        group_count = remaining // rc
        size = rc + (remaining % rc) // group_count
        while size < remaining and size * sph % rc:
            size += 1
        remaining -= size
        if 0 < remaining < rc:
            size += remaining
            remaining = 0
        if size >= 2 * rc and size % rc == 0:
            remaining += size - rc
            size = rc
        max_missing = missing_count // group_count
        if max_missing >= size:
            raise TopologyError("Too many missing hosts for configuration")
        pg = selector.next_group(size, max_missing)
        pgroups.append(pg)
        if max_missing > 0:
            missing_count -= sum(1 for h in pg if h.missing)
        if remaining <= 0:
            break
    pgroups.sort(key=len, reverse=True)  # stable, like Collections.sort

    out = _Built(built, sites_per_host=sph)
    pid = first_partition_id
    end = first_partition_id + total
    for pg in pgroups:
        counter = 0
        for _ in range(len(pg) * sph // rc):
            if pid >= end:
                raise TopologyError("placement produced more partitions than sites allow")
            replicas = []
            for _j in range(rc):
                h = pg[counter % len(pg)]
                counter += 1
                h.partitions.append(pid)
                replicas.append(h)
            if not selector.balanced(replicas):
                out.unbalanced += 1
            eligible = [h for h in replicas if not h.missing]
            if not eligible:
                raise TopologyError(f"every replica of partition {pid} is on a missing host")
            leader = min(eligible, key=lambda h: h.led)  # first wins ties
            leader.led += 1
            out.partitions[pid] = PartitionInfo(tuple(h.id for h in replicas), leader.id)
            pid += 1
    if pid != end:
        raise TopologyError(
            f"placement laid out {pid - first_partition_id} of {total} partitions")
    return out


def place_partitions(hosts: Iterable[HostInfo], kfactor: int, *,
                     missing: Iterable[int] = ()) -> Topology:
    """Lay out a new cluster exactly as VoltDB's ``AbstractTopology.getTopology`` does.

    :param hosts: every host, including missing ones (``voltdb start --missing``).
    :param kfactor: K-safety; each partition gets k+1 replicas on distinct hosts.
    :param missing: host ids expected but not yet present; they never lead.
    :returns: a version-1 topology with partitions numbered from 0.
    :raises TopologyError: too few hosts, mixed sites per host, duplicate ids, too many
        missing hosts.
    """
    infos = list(hosts)
    b = _build(infos, kfactor, missing, 0)
    return Topology({h.host_id: h for h in infos}, b.partitions, kfactor, b.sites_per_host,
                    1, frozenset(missing), b.unbalanced)


# ---------------------------------------------------------------------------------------
# Partition groups
# ---------------------------------------------------------------------------------------

def partition_groups(topology: Topology) -> list[tuple[tuple[int, ...], frozenset[int]]]:
    """Closed partition groups as ``(partition ids, host ids)``, by lowest partition id.

    A partition group is a set of hosts holding every replica of its partitions
    (VoltDB's ``getPartitionGroupsFromTopology``); hosts without partitions are left out.
    """
    parent = {h: h for h in topology.hosts}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in topology.partitions.values():
        root = find(p.replicas[0])
        for h in p.replicas[1:]:
            parent[find(h)] = root
    by_root: dict[int, tuple[list[int], set[int]]] = {}
    for pid, p in topology.partitions.items():
        pids, hs = by_root.setdefault(find(p.replicas[0]), ([], set()))
        pids.append(pid)
        hs.update(p.replicas)
    groups = [(tuple(sorted(pids)), frozenset(hs)) for pids, hs in by_root.values()]
    groups.sort(key=lambda g: g[0][0])
    return groups


# ---------------------------------------------------------------------------------------
# Changes
# ---------------------------------------------------------------------------------------

def add_hosts(topology: Topology, new_hosts: Iterable[HostInfo]) -> Topology:
    """Elastic join: lay out the new hosts alone, numbering partitions from max id + 1.

    Existing partitions never move; the new hosts (at least k+1) form new partition
    groups with ``len(new_hosts) * sph // (k+1)`` new partitions (VoltDB's
    ``mutateAddNewHosts``). Moving hash ranges to them is the rebalancer's job.

    :raises TopologyError: reused host ids, different sites per host, fewer than k+1 hosts.
    """
    infos = list(new_hosts)
    reused = sorted(h.host_id for h in infos if h.host_id in topology.hosts)
    if reused:
        raise TopologyError(f"New hosts must contain unique and unused host ids: {reused} "
                            "are already in the topology")
    for h in infos:
        if h.sites_per_host != topology.sites_per_host:
            raise TopologyError(
                f"Sites per host is not the same for all hosts: {topology.sites_per_host} vs "
                f"{h.sites_per_host} (host {h.host_id})")
    if infos and (infos[0].address is None) != all(
            h.address is None for h in topology.hosts.values()):
        raise TopologyError("either every host has an address or none does")
    first = max(topology.partitions, default=-1) + 1
    b = _build(infos, topology.kfactor, (), first)
    hosts = dict(topology.hosts)
    hosts.update((h.host_id, h) for h in infos)
    partitions = dict(topology.partitions)
    partitions.update(b.partitions)
    return Topology(hosts, partitions, topology.kfactor, topology.sites_per_host,
                    topology.version + 1, topology.missing,
                    topology.unbalanced_partition_count + b.unbalanced)


def fail_host(topology: Topology, host_id: int) -> Topology:
    """Mark ``host_id`` missing and move each partition it led to a surviving replica.

    The new leader is the surviving replica leading the fewest partitions (lowest host id
    on ties). VoltDB promotes whichever replica is first in its election directory; ours
    is deterministic and keeps leaders spread.

    :raises TopologyError: unknown or already missing host, or a partition whose every
        replica would be missing ("cluster would lose every replica of partition P").
    """
    if host_id not in topology.hosts:
        raise TopologyError(f"host {host_id} is not in the topology")
    if host_id in topology.missing:
        raise TopologyError(f"host {host_id} is already missing")
    missing = topology.missing | {host_id}
    lost = [pid for pid, p in topology.partitions.items()
            if all(h in missing for h in p.replicas)]
    if lost:
        raise TopologyError(
            f"cluster would lose every replica of partition {lost[0]}"
            + (f" (partitions {lost})" if len(lost) > 1 else "")
            + f" if host {host_id} failed: K-safety violated")
    led: dict[int, int] = {}
    for p in topology.partitions.values():
        led[p.leader] = led.get(p.leader, 0) + 1
    partitions = {}
    for pid, p in topology.partitions.items():
        if p.leader == host_id:
            live = [h for h in p.replicas if h not in missing]
            new = min(live, key=lambda h: (led.get(h, 0), h))
            led[new] = led.get(new, 0) + 1
            led[host_id] -= 1
            p = PartitionInfo(p.replicas, new)
        partitions[pid] = p
    return Topology(topology.hosts, partitions, topology.kfactor, topology.sites_per_host,
                    topology.version + 1, missing, topology.unbalanced_partition_count)


def replace_host(topology: Topology, dead_host_id: int, new_host_id: int, *,
                 placement_group: str | None = None, address: str | None = None) -> Topology:
    """Rejoin: ``new_host_id`` takes every replica of ``dead_host_id``.

    Like VoltDB's ``mutateRecoverTopology``, the new host inherits leadership only where
    the dead host still led. The dead host must be missing (:func:`fail_host`) and, if a
    placement group is given, must be in that group.

    :raises TopologyError: unknown or live dead host, reused new id, other placement group.
    """
    if dead_host_id not in topology.hosts:
        raise TopologyError(f"host {dead_host_id} is not in the topology")
    if dead_host_id not in topology.missing:
        raise TopologyError(f"host {dead_host_id} is alive; only a missing host can be replaced")
    if new_host_id in topology.hosts:
        raise TopologyError(f"host id {new_host_id} is already in the topology")
    dead = topology.hosts[dead_host_id]
    if placement_group is not None and placement_group != dead.placement_group:
        raise TopologyError(
            f"host {dead_host_id} is in placement group {dead.placement_group!r}, "
            f"not {placement_group!r}")
    if (address is None) != (dead.address is None):
        raise TopologyError("either every host has an address or none does")
    hosts = {hid: h for hid, h in topology.hosts.items() if hid != dead_host_id}
    hosts[new_host_id] = HostInfo(new_host_id, dead.sites_per_host, dead.placement_group,
                                  address)
    partitions = {}
    for pid, p in topology.partitions.items():
        if dead_host_id in p.replicas:
            reps = tuple(new_host_id if h == dead_host_id else h for h in p.replicas)
            p = PartitionInfo(reps, new_host_id if p.leader == dead_host_id else p.leader)
        partitions[pid] = p
    return Topology(hosts, partitions, topology.kfactor, topology.sites_per_host,
                    topology.version + 1, topology.missing - {dead_host_id},
                    topology.unbalanced_partition_count)


def removable_hosts(topology: Topology) -> frozenset[int]:
    """Hosts an elastic shrink removes: the partition group holding the highest partition id."""
    if not topology.partitions:
        raise TopologyError("the topology has no partitions")
    top = max(topology.partitions)
    for pids, hosts in partition_groups(topology):
        if top in pids:
            return hosts
    raise AssertionError("unreachable: every partition is in a group")


def remove_hosts(topology: Topology, host_ids: Iterable[int]) -> Topology:
    """Elastic shrink: drop a whole partition group and its partitions.

    Only the partition group holding the highest partition id may go (VoltDB's
    ``getPartitionGroupPeersContainHighestPid``, the most recently added unit), its hosts
    must all be live, and at least one partition group must remain. The caller moves the
    dropped partitions' hash ranges elsewhere before applying this.

    :raises TopologyError: any other set of hosts, missing hosts, or removing everything.
    """
    ids = frozenset(host_ids)
    unknown = ids - topology.hosts.keys()
    if unknown:
        raise TopologyError(f"hosts {sorted(unknown)} are not in the topology")
    want = removable_hosts(topology)
    if ids != want:
        raise TopologyError(
            f"hosts {sorted(ids)} cannot be removed: a shrink removes exactly the partition "
            f"group holding the highest partition id, hosts {sorted(want)}")
    if ids & topology.missing:
        raise TopologyError(f"hosts {sorted(ids & topology.missing)} are missing; "
                            "replace them before removing their partition group")
    remaining = topology.hosts.keys() - ids
    if len(remaining) < topology.kfactor + 1 or not (
            set(topology.partitions) - {pid for pid in topology.partitions
                                        if set(topology.partitions[pid].replicas) <= ids}):
        raise TopologyError("cannot remove the last partition group of the cluster")
    hosts = {hid: h for hid, h in topology.hosts.items() if hid not in ids}
    partitions = {pid: p for pid, p in topology.partitions.items()
                  if not set(p.replicas) & ids}
    return Topology(hosts, partitions, topology.kfactor, topology.sites_per_host,
                    topology.version + 1, topology.missing,
                    topology.unbalanced_partition_count)


def partition_detection(previous_hosts: Iterable[int], surviving_hosts: Iterable[int]) -> bool:
    """VoltDB's network-partition rule: may the surviving side keep running?

    Fewer than half of the previous hosts -> stop. Exactly half -> continue only if the
    survivors include the lowest host id of the previous set (the tie-breaker). More than
    half -> continue.

    :raises TopologyError: empty previous set or survivors not drawn from it.
    """
    prev = frozenset(previous_hosts)
    surv = frozenset(surviving_hosts)
    if not prev:
        raise TopologyError("the previous host set is empty")
    extra = surv - prev
    if extra:
        raise TopologyError(f"surviving hosts {sorted(extra)} were not in the previous set")
    if 2 * len(surv) > len(prev):
        return True
    if 2 * len(surv) < len(prev):
        return False
    return min(prev) in surv

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Cluster metadata: the deterministic state machine, then real pysyncobj (Raft) nodes."""

import copy
import hashlib
import os
import pickle
import socket
import statistics
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voltdb_py.cluster.metadata import (
    ClusterMetadata,
    MetadataRejected,
    MetadataStateMachine,
    MetadataUnavailable,
)
from voltdb_py._testing import wait_until
from voltdb_py.cluster.topology import HostInfo, Topology, add_hosts, fail_host, place_partitions
from voltdb_py.hashinator import (
    INT32_MIN,
    add_partitions,
    default_ring,
    raw_config,
    ring_from_raw,
)

CFG = {"host_count": 3, "kfactor": 1, "sites_per_host": 2}

# pysyncobj 0.3.17 reads the journal's .meta file without closing it (journal.MetaStorer.getMeta)
# whenever a node restarts from its data directory: a leak of one read handle per restart.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:unclosed file <_io.BufferedReader name='.*metadata\.journal\.meta'>:ResourceWarning")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def formed(n=3, k=1, sph=2, address="127.0.0.1"):
    sm = MetadataStateMachine()
    for i in range(n):
        r = sm.apply("register_host", f"h{i}", address, {"internal": 3021 + i}, "0",
                     host_count=n, kfactor=k, sites_per_host=sph)
        assert r["ok"], r
    return sm


def ok(sm, op, *args, **kwargs):
    r = sm.apply(op, *args, **kwargs)
    assert r["ok"], r
    return r


def refused(sm, op, code, *args, **kwargs):
    before = copy.deepcopy(sm.state)
    r = sm.apply(op, *args, **kwargs)
    assert not r["ok"] and r["code"] == code, r
    assert sm.state == before, "a refused change must leave the state untouched"
    return r


def check_invariants(sm):
    s = sm.state
    if s["topology"] is None:
        assert s["cluster_state"] == "forming"
        return
    topo = Topology.from_dict(s["topology"])
    assert set(s["epochs"]) == set(topo.partitions) == set(s["leases"])
    for pid, p in topo.partitions.items():
        lease = s["leases"][pid]
        assert lease["host"] == p.leader and lease["epoch"] == s["epochs"][pid]
        assert s["hosts"][p.leader]["state"] != "failed"
    for hid in topo.missing:
        assert s["hosts"][hid]["state"] == "failed"
    assert set(topo.hosts) <= set(s["hosts"])
    ring = ring_from_raw(s["hashinator"]["config"])
    assert {p for _, p in ring} <= set(topo.partitions)
    assert len({h["instance"] for h in s["hosts"].values()}) == len(s["hosts"])


# ---------------------------------------------------------------------------------------
# The state machine alone: deterministic, no Raft
# ---------------------------------------------------------------------------------------

def test_forming_matches_place_partitions_and_default_ring():
    sm = MetadataStateMachine()
    for i in range(2):
        r = ok(sm, "register_host", f"h{i}", "127.0.0.1", None, host_count=3, kfactor=1,
               sites_per_host=2)
        assert r["host_id"] == i and not r["formed"]
        assert sm.state["cluster_state"] == "forming"
    r = ok(sm, "register_host", "h2", "127.0.0.1", None, host_count=3, kfactor=1,
           sites_per_host=2)
    assert r["formed"]
    snap_topo = Topology.from_dict(sm.state["topology"])
    want = place_partitions([HostInfo(i, 2, "0", "127.0.0.1") for i in range(3)], 1)
    assert snap_topo == want
    assert len(want.partitions) == 3
    assert sm.state["hashinator"] == {"version": 1, "config": raw_config(default_ring(3))}
    assert sm.state["epochs"] == {0: 1, 1: 1, 2: 1}
    assert sm.state["cluster_state"] == "running"
    assert all(h["state"] == "active" for h in sm.state["hosts"].values())
    check_invariants(sm)


def test_register_is_idempotent_and_checks_config():
    sm = MetadataStateMachine()
    ok(sm, "register_host", "a", "10.0.0.1", {"internal": 3021}, host_count=3, kfactor=1,
       sites_per_host=2)
    seq = sm.state["seq"]
    r = ok(sm, "register_host", "a", "10.0.0.1", {"internal": 3021}, host_count=3, kfactor=1,
           sites_per_host=2)
    assert r["existing"] and r["host_id"] == 0 and sm.state["seq"] == seq
    refused(sm, "register_host", "config_mismatch", "b", "10.0.0.2", None, host_count=3,
            kfactor=0, sites_per_host=2)
    refused(sm, "register_host", "bad_argument", "b", "10.0.0.2", {"x": "no"}, host_count=3,
            kfactor=1, sites_per_host=2)
    refused(MetadataStateMachine(), "register_host", "invalid", "a", "x", None, host_count=1,
            kfactor=1, sites_per_host=2)
    sm = formed()
    refused(sm, "register_host", "cluster_complete", "late", "127.0.0.1", None, **CFG)
    assert sm.apply("no_such_op")["code"] == "bad_argument"


def test_distinct_addresses_order_hosts_like_voltdb():
    sm = MetadataStateMachine()
    addrs = ["10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.4"]
    for i, a in enumerate(addrs):
        ok(sm, "register_host", f"h{i}", a, None, host_count=4, kfactor=1, sites_per_host=2)
    want = place_partitions([HostInfo(i, 2, "0", a) for i, a in enumerate(addrs)], 1)
    assert Topology.from_dict(sm.state["topology"]) == want


def test_mark_failed_moves_leaders_bumps_epochs_and_fences_leases():
    sm = formed()
    topo = Topology.from_dict(sm.state["topology"])
    led = topo.leaders_of(0)
    assert led
    for pid in topo.partitions:
        ok(sm, "grant_lease", pid, topo.partitions[pid].leader, 1, 100.0 + pid)
    r = ok(sm, "mark_failed", 0, "heartbeat timeout")
    expect = fail_host(topo, 0)
    assert Topology.from_dict(sm.state["topology"]) == expect
    assert set(r["leader_changes"]) == set(led)
    for pid in led:
        assert sm.state["epochs"][pid] == 2
        lease = sm.state["leases"][pid]
        assert lease["host"] == expect.partitions[pid].leader
        assert lease["until"] is None and lease["fence_until"] == 100.0 + pid
    for pid in set(topo.partitions) - set(led):
        assert sm.state["epochs"][pid] == 1
    assert sm.state["hosts"][0]["state"] == "failed"
    # idempotent
    seq = sm.state["seq"]
    assert ok(sm, "mark_failed", 0)["already"] and sm.state["seq"] == seq
    refused(sm, "mark_failed", "unknown_host", 42)
    check_invariants(sm)


def test_losing_every_replica_stops_the_cluster():
    sm = formed()
    ok(sm, "mark_failed", 0)
    topo_before = sm.state["topology"]
    r = sm.apply("mark_failed", 1)
    assert not r["ok"] and r["code"] == "cluster_stopped"
    assert "lose every replica of partition" in r["error"]
    assert sm.state["cluster_state"] == "stopped"
    assert "host 1 failed" in sm.state["stop_reason"]
    assert sm.state["topology"] == topo_before  # last viable layout kept
    refused(sm, "grant_lease", "cluster_stopped", 0, 2, sm.state["epochs"][0], 1.0)
    refused(sm, "request_join", "cluster_stopped", "j", "127.0.0.1")


def test_leases_follow_epoch_and_leader_rules():
    sm = formed()
    topo = Topology.from_dict(sm.state["topology"])
    p0 = topo.partitions[0]
    other = next(h for h in p0.replicas if h != p0.leader)
    r = ok(sm, "grant_lease", 0, p0.leader, 1, 10.0)
    assert r["lease"]["until"] == 10.0
    refused(sm, "grant_lease", "not_leader", 0, other, 1, 20.0)
    refused(sm, "grant_lease", "unknown_epoch", 0, p0.leader, 2, 20.0)
    refused(sm, "grant_lease", "unknown_partition", 9, p0.leader, 1, 20.0)
    refused(sm, "grant_lease", "bad_argument", 0, p0.leader, 1, float("nan"))
    refused(sm, "grant_lease", "bad_argument", 0, p0.leader, 1, True)
    seq = sm.state["seq"]
    assert ok(sm, "grant_lease", 0, p0.leader, 1, 5.0)["lease"]["until"] == 10.0
    assert sm.state["seq"] == seq  # never shortened
    ok(sm, "mark_failed", p0.leader)
    refused(sm, "grant_lease", "stale_epoch", 0, other, 1, 20.0)
    r = ok(sm, "grant_lease", 0, other, 2, 30.0)
    assert r["lease"] == {"host": other, "epoch": 2, "until": 30.0, "fence_until": 10.0}


def test_snapshot_is_immutable_and_answers_epoch_and_lease_questions():
    from voltdb_py.cluster.metadata import _snapshot_of

    sm = formed()
    leader = Topology.from_dict(sm.state["topology"]).partitions[1].leader
    ok(sm, "grant_lease", 1, leader, 1, 50.0)
    snap = _snapshot_of(sm.state)
    with pytest.raises(TypeError):
        snap.hosts[0] = None
    with pytest.raises(TypeError):
        snap.epochs[0] = 5
    with pytest.raises(AttributeError):
        snap.cluster_state = "paused"
    with pytest.raises(TypeError):
        snap.hosts[0].ports["x"] = 1
    assert snap.leader_of(1) == leader and snap.epoch_of(1) == 1
    assert snap.accepts_epoch(1, 1) and not snap.accepts_epoch(1, 0)
    assert snap.lease_valid(1, leader, now=49.0) and not snap.lease_valid(1, leader, now=50.0)
    assert not snap.lease_valid(1, leader + 1, now=1.0)
    assert snap.host_by_instance("h2").host_id == 2
    ok(sm, "mark_failed", 0)
    assert snap.cluster_state == "running" and snap.topology.missing == frozenset()


def test_elastic_join_pool_plan_and_progress():
    sm = formed()
    topo = Topology.from_dict(sm.state["topology"])
    old_ring = ring_from_raw(sm.state["hashinator"]["config"])
    r = ok(sm, "request_join", "j1", "127.0.0.1", {"internal": 3031})
    assert r["host_id"] == 3 and not r["planned"] and r["pending"] == [3] and r["needed"] == 2
    assert sm.state["hosts"][3]["state"] == "joining"
    assert ok(sm, "request_join", "j1", "127.0.0.1")["existing"]
    r = ok(sm, "request_join", "j2", "127.0.0.1", {"internal": 3032})
    assert r["planned"] and r["partitions"] == [3, 4]
    want = add_hosts(topo, [HostInfo(3, 2, "0", "127.0.0.1"), HostInfo(4, 2, "0", "127.0.0.1")])
    assert Topology.from_dict(sm.state["topology"]) == want
    assert sm.state["join_pool"] == []
    assert sm.state["epochs"][3] == sm.state["epochs"][4] == 1
    plan = sm.state["join"]
    target = add_partitions(old_ring, 2)
    assert plan["target_config"] == raw_config(target)
    # The ranges are exactly the tokens that change owner, merged, sources/destinations right.
    moved = {}
    for start, end, src, dst, state in plan["ranges"]:
        assert state == "pending" and dst in (3, 4) and src in (0, 1, 2)
        for t, p in old_ring:
            inside = start <= t < end if end > start else t >= start  # end wraps at INT32_MIN
            if inside:
                assert p == src
                moved[t] = dst
    assert moved == {t: p for (t, p), (_, q) in zip(target, old_ring) if p != q}
    assert all(r[1] == INT32_MIN or r[1] > r[0] for r in plan["ranges"])
    refused(sm, "request_join", "join_in_progress", "j3", "127.0.0.1")
    refused(sm, "replace_host", "host_alive", 0, "x", "127.0.0.1")
    ranges = [tuple(r[:2]) for r in plan["ranges"]]
    ok(sm, "record_move", ranges[0], "moving")
    refused(sm, "record_move", "bad_argument", ranges[1], "bogus")
    refused(sm, "record_move", "unknown_range", (1, 2), "moving")
    r = ok(sm, "record_move", ranges[0], "done")
    assert r["moved"] == 1 and not r["join_done"]
    refused(sm, "record_move", "bad_transition", ranges[0], "moving")
    seq = sm.state["seq"]
    ok(sm, "record_move", ranges[0], "done")
    assert sm.state["seq"] == seq
    # half the hashinator moves: versions only increase
    ok(sm, "install_hashinator", 2, raw_config(target))
    r = ok(sm, "record_move", ranges[1:], "done")
    assert r["join_done"] and r["moved"] == r["total"] == len(ranges)
    assert sm.state["join"]["status"] == "done"
    assert sm.state["hosts"][3]["state"] == sm.state["hosts"][4]["state"] == "active"
    refused(sm, "record_move", "no_join", ranges[0], "done")
    check_invariants(sm)


def test_join_refused_while_hosts_missing_and_failed_joiner_leaves_pool():
    sm = formed()
    ok(sm, "request_join", "j1", "127.0.0.1")
    ok(sm, "mark_failed", 3)
    assert sm.state["join_pool"] == [] and sm.state["hosts"][3]["state"] == "failed"
    ok(sm, "mark_failed", 1)
    refused(sm, "request_join", "hosts_missing", "j2", "127.0.0.1")


def test_replace_host_rejoin():
    sm = formed()
    topo0 = Topology.from_dict(sm.state["topology"])
    ok(sm, "mark_failed", 1)
    epochs = dict(sm.state["epochs"])
    refused(sm, "replace_host", "unknown_host", 9, "new", "127.0.0.1")
    r = ok(sm, "replace_host", 1, "new", "127.0.0.1", {"internal": 3099})
    assert r["host_id"] == 3 and r["replaced"] == 1
    topo = Topology.from_dict(sm.state["topology"])
    assert topo.partitions_of(3) == topo0.partitions_of(1) and not topo.missing
    assert 1 not in sm.state["hosts"] and sm.state["hosts"][3]["state"] == "joining"
    assert sm.state["epochs"] == epochs  # the dead host led nothing any more
    assert ok(sm, "replace_host", 1, "new", "127.0.0.1")["existing"]
    refused(sm, "host_ready", "unknown_host", 1)
    ok(sm, "host_ready", 3)
    assert sm.state["hosts"][3]["state"] == "active" and sm.state["rejoining"] == []
    ok(sm, "mark_failed", 0)
    ok(sm, "replace_host", 0, "new2", "127.0.0.1")
    check_invariants(sm)


def test_one_rejoin_at_a_time():
    sm = formed(n=4)  # partition groups {0,1} and {2,3}
    ok(sm, "mark_failed", 0)
    ok(sm, "mark_failed", 2)
    ok(sm, "replace_host", 0, "new0", "127.0.0.1")
    refused(sm, "replace_host", "rejoin_in_progress", 2, "new2", "127.0.0.1")
    refused(sm, "request_join", "hosts_missing", "j", "127.0.0.1")
    ok(sm, "host_ready", 4)
    ok(sm, "replace_host", 2, "new2", "127.0.0.1")
    check_invariants(sm)


def test_failure_during_rejoin_never_leaves_only_a_rejoining_replica():
    sm = formed()
    ok(sm, "mark_failed", 1)
    ok(sm, "replace_host", 1, "new", "127.0.0.1")  # host 3 rejoining, not caught up
    r = sm.apply("mark_failed", 0)
    assert r["code"] == "cluster_stopped" and "rejoining" in r["error"]
    assert sm.state["cluster_state"] == "stopped"


def test_rejoining_host_is_never_made_leader():
    sm = formed(n=3, k=2, sph=2)  # every partition on all three hosts
    ok(sm, "mark_failed", 2)
    ok(sm, "replace_host", 2, "new", "127.0.0.1")  # host 3
    ok(sm, "mark_failed", 0)
    topo = Topology.from_dict(sm.state["topology"])
    assert all(p.leader == 1 for p in topo.partitions.values())
    check_invariants(sm)


def test_catalog_and_hashinator_versions_only_increase():
    sm = formed()
    cat = b"catalog-jar-bytes"
    r = ok(sm, "set_catalog", 1, cat)
    assert r["digest"] == hashlib.sha256(cat).hexdigest()
    assert sm.state["catalog"] == {"version": 1, "digest": r["digest"], "size": len(cat),
                                   "bytes": cat}
    seq = sm.state["seq"]
    ok(sm, "set_catalog", 1, cat)  # retry: no-op
    assert sm.state["seq"] == seq
    refused(sm, "set_catalog", "stale_version", 1, b"other")
    refused(sm, "set_catalog", "version_conflict", 3, b"x", expected_version=0)
    refused(sm, "set_catalog", "digest_mismatch", 2, b"x", digest="0" * 64)
    refused(sm, "set_catalog", "bad_argument", 2, None, digest="nothex", size=3)
    ok(sm, "set_catalog", 2, None, digest="ab" * 32, size=123456)
    assert sm.state["catalog"]["bytes"] is None and sm.state["catalog"]["size"] == 123456

    cfg = sm.state["hashinator"]["config"]
    refused(sm, "install_hashinator", "stale_version", 1, raw_config(default_ring(2)))
    refused(sm, "install_hashinator", "version_conflict", 3, cfg, expected_version=2)
    refused(sm, "install_hashinator", "unknown_partition", 2, raw_config(default_ring(5)))
    refused(sm, "install_hashinator", "invalid", 2, b"\x00\x01")
    ok(sm, "install_hashinator", 2, raw_config(default_ring(2)), expected_version=1)
    assert sm.state["hashinator"]["version"] == 2


def test_cluster_state_transitions():
    sm = formed()
    refused(sm, "set_cluster_state", "bad_transition", "forming")
    ok(sm, "set_cluster_state", "paused")
    ok(sm, "set_cluster_state", "running")
    ok(sm, "set_cluster_state", "shutting_down", "voltadmin shutdown")
    refused(sm, "set_cluster_state", "bad_transition", "running")
    refused(MetadataStateMachine(), "set_cluster_state", "bad_transition", "running")


def test_state_pickles_for_dumps():
    sm = formed()
    ok(sm, "request_join", "j1", "127.0.0.1")
    ok(sm, "request_join", "j2", "127.0.0.1")
    data = pickle.loads(pickle.dumps(sm._serialize(), protocol=2))
    other = MetadataStateMachine()
    other._deserialize(data)
    assert other.state == sm.state
    with pytest.raises(Exception, match="format"):
        other._deserialize({"state": {"format": 99}})


_OPS = st.one_of(
    st.tuples(st.just("mark_failed"), st.integers(0, 6)),
    st.tuples(st.just("request_join"), st.sampled_from(["j1", "j2", "j3", "j4"])),
    st.tuples(st.just("replace_host"), st.integers(0, 6), st.sampled_from(["r1", "r2"])),
    st.tuples(st.just("host_ready"), st.integers(0, 8)),
    st.tuples(st.just("record_all"), st.sampled_from(["moving", "done"])),
    st.tuples(st.just("lease"), st.integers(0, 5), st.integers(0, 3), st.floats(0, 100)),
)


def _run(sm, op):
    name = op[0]
    if name == "mark_failed":
        return sm.apply("mark_failed", op[1])
    if name == "request_join":
        return sm.apply("request_join", op[1], "127.0.0.1")
    if name == "replace_host":
        return sm.apply("replace_host", op[1], op[2], "127.0.0.1")
    if name == "host_ready":
        return sm.apply("host_ready", op[1])
    if name == "record_all":
        j = sm.state["join"]
        ranges = [tuple(r[:2]) for r in j["ranges"]] if j else [(0, 1)]
        return sm.apply("record_move", ranges, op[1])
    pid, epoch, until = op[1], op[2], op[3]
    topo = sm.state["topology"]
    leader = next((p["master"] for p in topo["partitions"] if p["partition_id"] == pid), 0)
    return sm.apply("grant_lease", pid, leader, epoch, until)


@settings(max_examples=40, deadline=None)
@given(st.lists(_OPS, max_size=25))
def test_random_histories_are_deterministic_and_keep_invariants(ops):
    a, b = formed(), formed()
    for op in ops:
        before = copy.deepcopy(a.state)
        ra, rb = _run(a, op), _run(b, op)
        assert ra == rb and a.state == b.state  # same log -> same state, same answers
        assert set(ra) >= {"ok", "seq"}
        if not ra["ok"] and ra["code"] != "cluster_stopped":
            assert a.state == before
        if a.state["cluster_state"] != "stopped":
            check_invariants(a)


# ---------------------------------------------------------------------------------------
# Real pysyncobj nodes on 127.0.0.1
# ---------------------------------------------------------------------------------------

FAST = {"raftMinTimeout": 0.4, "raftMaxTimeout": 0.9, "connectionRetryTime": 0.3,
        "connectionTimeout": 1.5, "leaderFallbackTimeout": 2.0}


@pytest.fixture
def nodes():
    """Factory of ClusterMetadata nodes; every node is destroyed in teardown."""
    made = []

    def make(addr, peers, data_dir=None, **kw):
        kw = {**FAST, **kw}
        node = ClusterMetadata(addr, peers, data_dir, **kw)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close(timeout_s=10)
    for node in made:
        assert not node.tick_thread_alive(), "a Raft thread survived close()"


def addresses(n):
    return [f"127.0.0.1:{free_port()}" for _ in range(n)]


def start_cluster(make, addrs, data_dirs=None):
    group = [make(a, [p for p in addrs if p != a], data_dirs[i] if data_dirs else None)
             for i, a in enumerate(addrs)]
    wait_until(lambda: all(g.wait_ready(0.05) for g in group), 20, message="all nodes ready")
    wait_until(lambda: sum(g.is_leader() for g in group) == 1, 20, message="one Raft leader")
    return group


def leader_of(group):
    return wait_until(lambda: next((g for g in group if g.is_leader()), None), 20,
                      message="a Raft leader")


def register_three(node):
    for i in range(3):
        node.apply("register_host", f"h{i}", "127.0.0.1", {"internal": 3021 + i}, "0",
                   host_count=3, kfactor=1, sites_per_host=2, timeout_s=10)


def test_single_node_applies_notifies_and_rejects(nodes, tmp_path):
    node = nodes(f"127.0.0.1:{free_port()}", [], str(tmp_path))
    assert node.wait_ready(10) and node.is_leader() and node.has_quorum()
    seen = []
    got = threading.Event()

    def on_change(snap):
        assert threading.current_thread() is not threading.main_thread()
        seen.append(snap)
        if snap.cluster_state == "running":
            got.set()

    unsubscribe = node.on_change(on_change)
    register_three(node)
    assert got.wait(10)
    snap = node.snapshot()
    assert snap.cluster_state == "running" and seen[-1].seq == snap.seq
    assert snap is node.snapshot()  # cached until the next change
    with pytest.raises(MetadataRejected) as exc:
        node.apply("install_hashinator", 1, raw_config(default_ring(2)))
    assert exc.value.code == "stale_version"
    r = node.apply("install_hashinator", 1, snap.hashinator_config, check=False)
    assert r["ok"] and r["seq"] == snap.seq  # same version and bytes: a retry, no change
    with pytest.raises(ValueError):
        node.apply("snapshot")
    unsubscribe()
    node.apply("set_cluster_state", "paused")
    assert node.snapshot().cluster_state == "paused"


def test_single_node_restarts_from_journal_and_from_dump(nodes, tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    node = nodes(addr, [], str(tmp_path))
    assert node.wait_ready(10)
    register_three(node)
    node.apply("set_catalog", 1, b"jar" * 1000)
    want = node.snapshot()
    node.close()
    assert os.path.getsize(tmp_path / "metadata.journal") > 0

    node = nodes(addr, [], str(tmp_path))  # replays the journal
    assert node.wait_ready(10)
    wait_until(lambda: node.snapshot().seq == want.seq, 10, message="journal replay")
    assert node.snapshot() == want
    # log compaction writes a full dump of the state machine; restart from it
    node.forceLogCompaction()
    wait_until(lambda: (tmp_path / "metadata.dump").exists(), 10, message="full dump written")
    node.apply("grant_lease", 0, want.leader_of(0), 1, 99.0)
    want = node.snapshot()
    node.close()
    node = nodes(addr, [], str(tmp_path))
    assert node.wait_ready(10)
    wait_until(lambda: node.snapshot().seq == want.seq, 10, message="dump + journal replay")
    assert node.snapshot() == want
    assert node.snapshot().leases[0].until == 99.0


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_three_nodes_form_the_same_cluster(nodes):
    group = start_cluster(nodes, addresses(3))
    follower = next(g for g in group if not g.is_leader())
    register_three(follower)  # a follower forwards commands to the leader
    want_topo = place_partitions([HostInfo(i, 2, "0", "127.0.0.1") for i in range(3)], 1)
    want_ring = raw_config(default_ring(3))
    assert len(want_topo.partitions) == 3
    wait_until(lambda: all(g.snapshot().cluster_state == "running" for g in group), 10,
               message="every node applied the forming")
    for g in group:
        snap = g.snapshot()
        assert snap.topology == want_topo
        assert snap.hashinator_version == 1 and snap.hashinator_config == want_ring
        assert dict(snap.epochs) == {0: 1, 1: 1, 2: 1}
    assert all(g.snapshot() == group[0].snapshot() for g in group)

    # commit latency of one metadata change (leader, 3 nodes, localhost)
    leader = leader_of(group)
    lat = []
    for i in range(30):
        t0 = time.perf_counter()
        leader.apply("grant_lease", 0, want_topo.partitions[0].leader, 1, 1000.0 + i)
        lat.append(time.perf_counter() - t0)
    print(f"\n3-node commit latency: median {statistics.median(lat) * 1e3:.1f} ms, "
          f"max {max(lat) * 1e3:.1f} ms")
    assert statistics.median(lat) < 0.5


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_leader_loss_reelects_and_isolated_node_cannot_commit(nodes):
    group = start_cluster(nodes, addresses(3))
    register_three(group[0])
    old = leader_of(group)
    term = old.raft_status()["raft_term"]
    t0 = time.perf_counter()
    old.close()
    rest = [g for g in group if g is not old]
    new = wait_until(lambda: next((g for g in rest if g.is_leader()), None), 30,
                     message="a new Raft leader among the survivors")
    print(f"\nnew Raft leader {(time.perf_counter() - t0) * 1e3:.0f} ms after the old one died")
    assert new.raft_status()["raft_term"] > term
    assert all(g.has_quorum() for g in rest)
    t0 = time.perf_counter()
    r = rest[0].apply("mark_failed", 0, "host process died", timeout_s=15)
    print(f"\ncommit on 2 of 3 after re-election: {(time.perf_counter() - t0) * 1e3:.1f} ms")
    assert r["ok"]
    wait_until(lambda: rest[1].snapshot().seq == rest[0].snapshot().seq, 10, message="replication")
    assert rest[1].snapshot().topology.missing == frozenset({0})

    # cut the last node off: it sees no majority and can commit nothing
    survivor, gone = rest
    gone.close()
    wait_until(lambda: not survivor.has_quorum(), 10, message="the isolated node loses quorum")
    seq = survivor.snapshot().seq
    with pytest.raises(MetadataUnavailable):
        survivor.apply("set_cluster_state", "paused", timeout_s=2.0)
    assert survivor.snapshot().seq == seq and survivor.snapshot().cluster_state == "running"
    assert not survivor.has_quorum()


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_restarted_node_catches_up_from_its_journal(nodes, tmp_path):
    addrs = addresses(3)
    dirs = [str(tmp_path / f"n{i}") for i in range(3)]
    group = start_cluster(nodes, addrs, dirs)
    register_three(group[0])
    victim_i = next(i for i, g in enumerate(group) if not g.is_leader())
    group[victim_i].close()
    live = [g for i, g in enumerate(group) if i != victim_i]
    leader = leader_of(live)
    leader.apply("set_catalog", 1, b"v1", timeout_s=15)
    leader.apply("mark_failed", 2, timeout_s=15)
    want = leader.snapshot()
    back = nodes(addrs[victim_i], [a for a in addrs if a != addrs[victim_i]], dirs[victim_i])
    wait_until(lambda: back.snapshot().seq == want.seq, 30, message="restarted node caught up")
    assert back.snapshot() == want
    # and it is a full voter again: the cluster survives losing one of the others
    leader.close()
    others = [back] + [g for g in live if g is not leader]
    wait_until(lambda: any(g.is_leader() for g in others), 30,
               message="re-election with the rejoiner")
    others[0].apply("set_catalog", 2, b"v2", timeout_s=15)
    wait_until(lambda: all(g.snapshot().catalog_version == 2 for g in others), 10,
               message="both live nodes applied v2")


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_whole_cluster_restart_recovers_state(nodes, tmp_path):
    addrs = addresses(3)
    dirs = [str(tmp_path / f"n{i}") for i in range(3)]
    group = start_cluster(nodes, addrs, dirs)
    register_three(group[1])
    group[1].apply("set_catalog", 7, b"jar")
    want = leader_of(group).snapshot()
    wait_until(lambda: all(g.snapshot().seq == want.seq for g in group), 10, message="all applied")
    for g in group:
        g.close()
    group = start_cluster(nodes, addrs, dirs)
    wait_until(lambda: all(g.snapshot().seq == want.seq for g in group), 30, message="recovered")
    assert all(g.snapshot() == want for g in group)


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_fourth_node_added_dynamically_receives_the_state(nodes, monkeypatch):
    loaded = []
    real = MetadataStateMachine._deserialize

    def spy(self, data):
        loaded.append(data["state"]["seq"])
        return real(self, data)

    monkeypatch.setattr(MetadataStateMachine, "_deserialize", spy)
    addrs = addresses(3)
    group = start_cluster(nodes, addrs)
    register_three(group[0])
    leader = leader_of(group)
    leader.apply("request_join", "j1", "127.0.0.1", {"internal": 3031})
    # compact every log so the newcomer must receive a full dump of the state machine
    log_len = leader.raft_status()["log_len"]
    for g in group:
        g.forceLogCompaction()
    wait_until(lambda: all(g.raft_status()["log_len"] < log_len for g in group), 15,
               message="log compaction on every node")
    new_addr = f"127.0.0.1:{free_port()}"
    done = threading.Event()
    outcome = []

    def added(result, err):
        outcome.append(err)
        done.set()

    leader.addNodeToCluster(new_addr, callback=added)
    assert done.wait(15) and outcome == [0]  # FAIL_REASON.SUCCESS
    fourth = nodes(new_addr, addrs)
    want = leader.snapshot()
    wait_until(lambda: fourth.snapshot().seq >= want.seq, 30, message="the new node got the state")
    assert loaded, "the newcomer should have been sent a full dump, not the whole log"
    assert fourth.snapshot().pending_joiners == (3,)
    assert fourth.snapshot().topology == want.topology
    # it votes now: 4 voters, two of the old ones gone -> 2 of 4 is not a majority,
    # one gone -> 3 of 4 still commits
    victim = next(g for g in group if not g.is_leader())
    victim.close()
    leader.apply("request_join", "j2", "127.0.0.1", {"internal": 3032}, timeout_s=15)
    wait_until(lambda: fourth.snapshot().join is not None, 15,
               message="the join plan reached node 4")
    assert fourth.snapshot().join.partitions == (3, 4)
    assert len(fourth.raft_status()) and fourth.raft_status()["partner_nodes_count"] == 3

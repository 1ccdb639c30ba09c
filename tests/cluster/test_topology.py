# SPDX-License-Identifier: AGPL-3.0-or-later
"""Partition placement (VoltDB's AbstractTopology) and topology changes."""

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from voltdb_py.cluster.topology import (
    HostInfo,
    PartitionInfo,
    Topology,
    TopologyError,
    add_hosts,
    fail_host,
    partition_count,
    partition_detection,
    partition_groups,
    place_partitions,
    removable_hosts,
    remove_hosts,
    replace_host,
)


def hosts(n, sph, groups=None, start=0):
    return [HostInfo(start + i, sph, groups[i] if groups else "0") for i in range(n)]


def layout(t):
    return {pid: (p.replicas, p.leader) for pid, p in t.partitions.items()}


def check_invariants(t):
    """What TestAbstractTopology.validate checks, plus our own."""
    k = t.kfactor
    for pid, p in t.partitions.items():
        assert len(p.replicas) == k + 1 == len(set(p.replicas))
        assert p.leader in p.replicas
        assert p.leader not in t.missing
    for hid in t.hosts:
        assert len(t.partitions_of(hid)) <= t.sites_per_host
    # partition groups are closed and get smaller (or stay) as partition ids grow
    seen = set()
    for pids, hs in partition_groups(t):
        for pid in pids:
            assert set(t.partitions[pid].replicas) <= hs
        assert not (hs & seen)
        seen |= hs
    back = Topology.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t


# -- partition count ---------------------------------------------------------------------

def test_partition_count_rule():
    assert partition_count(3, 8, 1) == 12
    assert partition_count(5, 2, 1) == 5
    assert partition_count(3, 1, 1) == 1
    assert partition_count(1, 8, 0) == 8


def test_partition_count_too_few_hosts_message():
    with pytest.raises(TopologyError, match="System requesting 4 replicas but there are only 3 "
                                            "eligible hosts") as info:
        partition_count(3, 2, 3)
    assert "Topology request invalid" in str(info.value)


@pytest.mark.parametrize("args", [(0, 8, 0), (1, 0, 0), (1, 8, -1), (True, 8, 0), (1.5, 8, 0)])
def test_partition_count_bad_arguments(args):
    with pytest.raises(TopologyError):
        partition_count(*args)


# -- concrete layouts (voltdb-internals.md section 2 and TestAbstractTopology) -------------

def test_three_hosts_sph2_k1():
    t = place_partitions(hosts(3, 2), 1)
    assert layout(t) == {0: ((0, 1), 0), 1: ((0, 2), 2), 2: ((1, 2), 1)}
    assert t.version == 1


def test_four_hosts_sph2_k1_two_groups():
    t = place_partitions(hosts(4, 2), 1)
    assert layout(t) == {0: ((0, 1), 0), 1: ((0, 1), 1), 2: ((2, 3), 2), 3: ((2, 3), 3)}
    assert [g for g in partition_groups(t)] == [((0, 1), frozenset({0, 1})),
                                                ((2, 3), frozenset({2, 3}))]


def test_five_hosts_sph2_k1_bigger_group_first():
    t = place_partitions(hosts(5, 2), 1)
    assert partition_groups(t) == [((0, 1, 2), frozenset({2, 3, 4})),
                                   ((3, 4), frozenset({0, 1}))]
    assert layout(t)[3] == ((0, 1), 0)
    assert layout(t)[4] == ((0, 1), 1)


def test_test_k_too_large():
    # TestAbstractTopology.testKTooLarge: 3 hosts, k=3
    with pytest.raises(TopologyError, match="Topology request invalid"):
        place_partitions(hosts(3, 2), 3)


def test_one_node():
    t = place_partitions(hosts(1, 5), 0)
    assert layout(t) == {i: ((0,), 0) for i in range(5)}


def test_mixed_sites_per_host_refused():
    with pytest.raises(TopologyError, match="Not all hosts have the same site count"):
        place_partitions([HostInfo(0, 2), HostInfo(1, 3)], 0)


def test_duplicate_host_ids_refused():
    with pytest.raises(TopologyError, match="unique"):
        place_partitions([HostInfo(0, 2), HostInfo(0, 2)], 0)


def test_hosts_ordered_by_address_string():
    # "10.0.0.10" sorts before "10.0.0.9" as a string, so host 1 comes first
    t = place_partitions([HostInfo(0, 1, address="10.0.0.9"),
                          HostInfo(1, 1, address="10.0.0.10")], 1)
    assert layout(t) == {0: ((0, 1), 1)}


def test_equal_addresses_follow_java_priority_queue_order():
    # java.util.PriorityQueue with four equal keys polls 0, 3, 2, 1
    t = place_partitions([HostInfo(i, 1, address="127.0.0.1") for i in range(4)], 0)
    assert [p.leader for p in t.partitions.values()] == [0, 3, 2, 1]


def test_two_racks_replicas_span_racks():
    t = place_partitions(hosts(4, 2, ["a", "a", "b", "b"]), 1)
    assert t.unbalanced_partition_count == 0
    for p in t.partitions.values():
        assert {t.hosts[h].placement_group for h in p.replicas} == {"a", "b"}


def test_unbalanced_count_when_racks_cannot_be_spanned():
    # three equal racks of two hosts, k=1: the last partition group lands in one rack
    t = place_partitions(hosts(6, 2, ["a", "a", "b", "b", "c", "c"]), 1)
    assert t.unbalanced_partition_count == 2
    assert layout(t)[4] == ((4, 5), 4)


def test_hierarchical_groups_use_complex_selector():
    groups = ["r1.a", "r1.b", "r2.a", "r2.b", "r1.a", "r2.b"]
    t = place_partitions(hosts(6, 2, groups), 1)
    assert t.unbalanced_partition_count == 0
    check_invariants(t)


def test_missing_hosts_never_lead():
    t = place_partitions(hosts(4, 2), 1, missing={1})
    assert 1 in t.missing
    assert all(p.leader != 1 for p in t.partitions.values())
    check_invariants(t)


def test_too_many_missing_hosts():
    with pytest.raises(TopologyError, match="Too many missing hosts"):
        place_partitions(hosts(2, 2), 1, missing={0, 1})


# -- properties of placement --------------------------------------------------------------

cluster_shapes = st.tuples(st.integers(1, 24), st.integers(1, 12), st.integers(0, 3)).filter(
    lambda t: t[0] >= t[2] + 1)


@given(cluster_shapes)
def test_placement_invariants(shape):
    n, sph, k = shape
    t = place_partitions(hosts(n, sph), k)
    assert len(t.partitions) == partition_count(n, sph, k)
    assert sorted(t.partitions) == list(range(len(t.partitions)))
    check_invariants(t)
    led = [len(t.leaders_of(h)) for h in t.hosts]
    assert max(led) - min(led) <= 1
    # group sizes never grow with the partition ids
    sizes = [len(hs) for _, hs in partition_groups(t)]
    assert sizes == sorted(sizes, reverse=True)


@given(cluster_shapes, st.randoms(use_true_random=False))
def test_placement_is_deterministic_in_input_order(shape, rnd):
    n, sph, k = shape
    hs = hosts(n, sph)
    shuffled = list(hs)
    rnd.shuffle(shuffled)
    assert place_partitions(shuffled, k) == place_partitions(hs, k)


@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2), st.integers(0, 2))
def test_equal_racks_are_spanned(per_rack, sph, k, extra_racks):
    racks = k + 1 + extra_racks
    groups = [f"rack{r}" for _ in range(per_rack) for r in range(racks)]
    t = place_partitions(hosts(len(groups), sph, groups), k)
    check_invariants(t)
    spanned = sum(1 for p in t.partitions.values()
                  if len({t.hosts[h].placement_group for h in p.replicas}) >= min(racks, k + 1))
    assert t.unbalanced_partition_count == len(t.partitions) - spanned
    if extra_racks == 0 and k > 0:
        assert t.unbalanced_partition_count == 0


@given(st.lists(st.sampled_from(["a", "b", "c", "r1.x", "r1.y", "r2.x"]), min_size=1,
                max_size=16), st.integers(1, 6), st.integers(0, 2))
def test_any_placement_groups_give_valid_layouts(groups, sph, k):
    assume(len(groups) >= k + 1)
    t = place_partitions(hosts(len(groups), sph, groups), k)
    check_invariants(t)
    assert len(t.partitions) == partition_count(len(groups), sph, k)


# -- topology validation and serial form --------------------------------------------------

def test_topology_validation_errors():
    h = {0: HostInfo(0, 2), 1: HostInfo(1, 2)}
    with pytest.raises(TopologyError, match="2 replicas on distinct hosts"):
        Topology(h, {0: PartitionInfo((0, 0), 0)}, 1, 2)
    with pytest.raises(TopologyError, match="not one of its replicas"):
        Topology(h, {0: PartitionInfo((0,), 1)}, 0, 2)
    with pytest.raises(TopologyError, match="unknown host 5"):
        Topology(h, {0: PartitionInfo((5,), 5)}, 0, 2)
    with pytest.raises(TopologyError, match="only 2 sites"):
        Topology(h, {i: PartitionInfo((0,), 0) for i in range(3)}, 0, 2)
    with pytest.raises(TopologyError, match="missing host"):
        Topology(h, {0: PartitionInfo((0,), 0)}, 0, 2, missing=frozenset({0}))


def test_from_dict_rejects_malformed():
    d = place_partitions(hosts(3, 2), 1).to_dict()
    with pytest.raises(TopologyError, match="malformed"):
        Topology.from_dict({k: v for k, v in d.items() if k != "hosts"})
    d["hosts"][0]["partitions"] = [2]
    with pytest.raises(TopologyError, match="lists partitions"):
        Topology.from_dict(d)


# -- elastic join --------------------------------------------------------------------------

@given(cluster_shapes, st.integers(1, 3))
def test_add_hosts_keeps_existing_partitions(shape, units):
    n, sph, k = shape
    t = place_partitions(hosts(n, sph), k)
    new = hosts(units * (k + 1), sph, start=100)
    t2 = add_hosts(t, new)
    check_invariants(t2)
    for pid, p in t.partitions.items():
        assert t2.partitions[pid] == p
    added = sorted(set(t2.partitions) - set(t.partitions))
    assert added == list(range(len(t.partitions), len(t.partitions) + units * sph))
    for pid in added:
        assert set(t2.partitions[pid].replicas) <= {h.host_id for h in new}
    assert t2.version == t.version + 1


def test_add_hosts_layout_matches_fresh_builder():
    t = add_hosts(place_partitions(hosts(2, 2), 1), hosts(2, 2, start=2))
    assert layout(t) == layout(place_partitions(hosts(4, 2), 1))


def test_add_hosts_rejects_reused_ids():
    # TestAbstractTopology.testNonUniqueHostIds
    t = place_partitions(hosts(5, 6), 1)
    with pytest.raises(TopologyError, match="unique and unused"):
        add_hosts(t, [HostInfo(4, 6), HostInfo(5, 6)])


def test_add_hosts_rejects_other_sph_and_too_few():
    t = place_partitions(hosts(2, 2), 1)
    with pytest.raises(TopologyError, match="Sites per host"):
        add_hosts(t, hosts(2, 3, start=2))
    with pytest.raises(TopologyError, match="System requesting 2 replicas"):
        add_hosts(t, hosts(1, 2, start=2))


# -- failure, replacement, removal ---------------------------------------------------------

def test_fail_host_moves_leaders():
    t = place_partitions(hosts(3, 2), 1)
    t2 = fail_host(t, 2)
    assert t2.missing == {2}
    assert all(p.leader != 2 for p in t2.partitions.values())
    assert t2.partitions[1].leader == 0
    check_invariants(t2)


def test_fail_host_breaking_k_safety():
    t = fail_host(place_partitions(hosts(3, 2), 1), 0)
    with pytest.raises(TopologyError, match="cluster would lose every replica of partition 0"):
        fail_host(t, 1)
    with pytest.raises(TopologyError, match="lose every replica of partition 0"):
        fail_host(place_partitions(hosts(2, 1), 0), 0)
    with pytest.raises(TopologyError, match="already missing"):
        fail_host(t, 0)


def test_replace_host_takes_dead_replicas():
    t = fail_host(place_partitions(hosts(4, 2), 1), 1)
    t2 = replace_host(t, 1, 9)
    assert 1 not in t2.hosts and 9 in t2.hosts
    assert t2.missing == frozenset()
    assert t2.partitions_of(9) == t.partitions_of(1)
    check_invariants(t2)


def test_replace_host_errors():
    t = place_partitions(hosts(4, 2, ["a", "a", "b", "b"]), 1)
    with pytest.raises(TopologyError, match="alive"):
        replace_host(t, 1, 9)
    t = fail_host(t, 1)
    with pytest.raises(TopologyError, match="already in the topology"):
        replace_host(t, 1, 2)
    with pytest.raises(TopologyError, match="placement group"):
        replace_host(t, 1, 9, placement_group="b")
    assert replace_host(t, 1, 9, placement_group="a").hosts[9].placement_group == "a"


def test_remove_hosts_undoes_add_hosts():
    t = place_partitions(hosts(4, 3), 1)
    t2 = add_hosts(t, hosts(2, 3, start=4))
    assert removable_hosts(t2) == {4, 5}
    t3 = remove_hosts(t2, {4, 5})
    assert t3.partitions == t.partitions
    assert t3.hosts == t.hosts
    with pytest.raises(TopologyError, match="highest partition id"):
        remove_hosts(t2, {0, 1})


def test_remove_last_group_refused():
    t = place_partitions(hosts(2, 2), 1)
    with pytest.raises(TopologyError, match="last partition group"):
        remove_hosts(t, {0, 1})


# -- partition detection -------------------------------------------------------------------

@pytest.mark.parametrize(("prev", "surv", "ok"), [
    ({0, 1, 2}, {0, 1}, True),        # majority
    ({0, 1, 2}, {2}, False),          # minority (testPartitionDetectionMinoritySet)
    ({0, 1, 2, 3}, {0, 3}, True),     # 50/50 keeping the blessed lowest host
    ({0, 1, 2, 3}, {1, 2}, False),    # 50/50 without it
    ({3, 5}, {3}, True),
    ({3, 5}, {5}, False),
    ({7}, {7}, True),
    ({0, 1}, set(), False),
])
def test_partition_detection_cases(prev, surv, ok):
    assert partition_detection(prev, surv) is ok


def test_partition_detection_errors():
    with pytest.raises(TopologyError):
        partition_detection(set(), set())
    with pytest.raises(TopologyError, match="not in the previous set"):
        partition_detection({0, 1}, {2})


@given(st.sets(st.integers(0, 50), min_size=1, max_size=12), st.data())
def test_partition_detection_both_sides_never_continue(prev, data):
    side = data.draw(st.sets(st.sampled_from(sorted(prev))))
    other = prev - side
    a = partition_detection(prev, side)
    b = partition_detection(prev, other)
    assert not (a and b)
    if len(side) * 2 == len(prev):
        assert a == (min(prev) in side)
        assert a != b


# -- stateful model -------------------------------------------------------------------------

class TopologyMachine(RuleBasedStateMachine):
    """Joins, failures, replacements and shrinks keep every invariant."""

    def __init__(self):
        super().__init__()
        self.t = None
        self.next_id = 0

    @precondition(lambda self: self.t is None)
    @rule(n=st.integers(1, 6), sph=st.integers(1, 4), k=st.integers(0, 2))
    def start(self, n, sph, k):
        n = max(n, k + 1)
        self.t = place_partitions(hosts(n, sph), k)
        self.next_id = n

    @precondition(lambda self: self.t is not None and not self.t.missing)
    @rule(units=st.integers(1, 2))
    def join(self, units):
        before = dict(self.t.partitions)
        n = units * (self.t.kfactor + 1)
        self.t = add_hosts(self.t, hosts(n, self.t.sites_per_host, start=self.next_id))
        self.next_id += n
        for pid, p in before.items():
            assert self.t.partitions[pid] == p

    @precondition(lambda self: self.t is not None)
    @rule(data=st.data())
    def fail(self, data):
        hid = data.draw(st.sampled_from(sorted(self.t.hosts)))
        try:
            self.t = fail_host(self.t, hid)
        except TopologyError as exc:
            msg = str(exc)
            assert "already missing" in msg or "lose every replica" in msg

    @precondition(lambda self: self.t is not None and self.t.missing)
    @rule(data=st.data())
    def replace(self, data):
        dead = data.draw(st.sampled_from(sorted(self.t.missing)))
        before = self.t.partitions_of(dead)
        self.t = replace_host(self.t, dead, self.next_id)
        assert self.t.partitions_of(self.next_id) == before
        self.next_id += 1

    @precondition(lambda self: self.t is not None and not self.t.missing
                  and len(partition_groups(self.t)) > 1)
    @rule()
    def shrink(self):
        gone = removable_hosts(self.t)
        top = max(self.t.partitions)
        self.t = remove_hosts(self.t, gone)
        assert top not in self.t.partitions
        assert not (gone & self.t.hosts.keys())

    @invariant()
    def valid(self):
        if self.t is not None:
            check_invariants(self.t)


TestTopologyMachine = TopologyMachine.TestCase
TestTopologyMachine.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)

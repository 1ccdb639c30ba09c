# SPDX-License-Identifier: AGPL-3.0-or-later
"""Multi-process clusters: forming, routing, replication, failover (real processes)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from voltdb_py import VoltType as VType
from support.cluster import replica_checksums_agree, topology
from voltdb_py._testing import TempCluster, TempServer, deployment_xml, wait_until
from voltdb_py.client import AsyncClient, Client
from voltdb_py.hashinator import make_hashinator
from voltdb_py.node.cluster import free_port
from voltdb_py.types import Status

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

SCHEMA = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(200));
PARTITION TABLE kv ON COLUMN k;
CREATE TABLE rep (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(40));
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
CREATE PROCEDURE CountLocal PARTITION ON TABLE kv COLUMN k AS
    SELECT COUNT(*) FROM kv WHERE k > ? - 1000000000;
CREATE PROCEDURE CountKv AS SELECT COUNT(*), SUM(k) FROM kv;
CREATE PROCEDURE AddRep AS INSERT INTO rep VALUES (?, ?);
"""


def test_three_hosts_k1_route_replicate_and_agree():
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=SCHEMA) as cl:
        assert sorted(s.host_id for s in cl.servers) == [0, 1, 2]
        assert {s.info["partitions"] for s in cl.servers} == {3}
        with Client(cl.addresses) as c:
            topo = topology(c)
            assert sorted(topo) == [0, 1, 2]
            for replicas, leader in topo.values():
                assert len(set(replicas)) == 2 and leader in replicas
            # single-partition writes and reads from any host, all replicated
            for k in range(400):
                assert c.call("Put", k, f"v{k}").ok
            for k in range(0, 400, 7):
                assert c.call("Get", k).tables[0].rows == [(f"v{k}",)]
            # multi-partition procedure, ad hoc SQL, replicated tables, DDL on every host
            assert c.call("CountKv").tables[0].rows == [(400, sum(range(400)))]
            assert c.call("AddRep", 1, "one").ok
            assert c.call("@AdHoc", "INSERT INTO rep VALUES (2, 'two')").ok
            dup = c.call("AddRep", 1, "again")
            assert dup.status == Status.GRACEFUL_FAILURE and "constraint violation" in dup.status_string.lower()
            assert c.call("@AdHoc", "SELECT id, name FROM rep ORDER BY id").tables[0].rows == \
                [(1, "one"), (2, "two")]
            assert c.call("@AdHoc", "DELETE FROM kv WHERE k >= 390").tables[0].rows == [(10,)]
            ddl = c.call("@AdHoc", "CREATE TABLE t2 (a INTEGER NOT NULL, b INTEGER);"
                                   " PARTITION TABLE t2 ON COLUMN a;")
            assert ddl.ok, ddl
            for a in range(20):
                assert c.call("@AdHoc", "INSERT INTO t2 VALUES (?, ?)", a, a * a).ok
            assert c.call("@AdHoc", "SELECT COUNT(*), SUM(b) FROM t2").tables[0].rows == \
                [(20, sum(a * a for a in range(20)))]
            # every host answers the same for the catalog
            versions = set()
            for s in cl.servers:
                with Client([f"127.0.0.1:{s.client_port}"], topology_aware=False) as one:
                    assert one.call("Get", 5).tables[0].rows == [("v5",)]
                    versions |= {int(v) for h, k, v in
                                 one.call("@SystemInformation", "OVERVIEW").tables[0].rows
                                 if k == "CATALOG_VERSION" and h == s.host_id}
                    assert one.call("@AdHoc", "SELECT COUNT(*) FROM t2").tables[0].rows == \
                        [(20,)]
            assert len(versions) == 1  # every host applied the DDL: one catalog version
        cl.stop()
        sums = replica_checksums_agree(cl, topo)
        assert all(sums[h][pid] != 0 for pid, (reps, _l) in topo.items() for h in reps)


def test_kill_9_under_write_load_keeps_every_acknowledged_write():
    """k=2 on 3 hosts: every host holds every partition, so after a kill -9 each
    partition still has two replicas, which must agree (the new leader repaired them)."""
    with TempCluster(3, kfactor=2, sites_per_host=2, schema=SCHEMA) as cl:
        acked: set[int] = set()
        outcomes: dict[str, int] = {}
        with Client(cl.addresses) as c:
            topo = topology(c)
            victim = cl.host(topo[0][1])  # the leader of partition 0

        async def load(stop_at: float) -> None:
            client = await AsyncClient.connect(cl.addresses, max_in_flight=64)
            try:
                async def one(k: int) -> None:
                    try:
                        r = await client.call("Put", k, f"v{k}", timeout_s=20)
                    except Exception as exc:  # noqa: BLE001 - tallied below
                        outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                        return
                    if r.ok:
                        acked.add(k)
                    else:
                        key = f"{r.status}"
                        outcomes[key] = outcomes.get(key, 0) + 1
                k = 0
                pending: set[asyncio.Task] = set()
                while time.monotonic() < stop_at and k < 200_000:
                    t = asyncio.ensure_future(one(k))
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                    k += 1
                    if len(pending) >= 64:
                        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if pending:
                    await asyncio.wait(pending)
            finally:
                await client.close()

        killer = threading.Timer(1.5, victim.kill)
        killer.start()
        try:
            asyncio.run(load(time.monotonic() + 5.0))
        finally:
            killer.cancel()
        assert not victim.alive()
        assert len(acked) > 500, (len(acked), outcomes)
        # only "outcome unknown" answers, for calls in flight at the host that died
        unknown = {Status.RESPONSE_UNKNOWN, Status.CONNECTION_LOST, Status.CONNECTION_TIMEOUT}
        assert set(outcomes) <= {str(int(s)) for s in unknown}, outcomes
        survivors = [s for s in cl.servers if s.alive()]
        with Client([f"127.0.0.1:{s.client_port}" for s in survivors]) as c:
            wait_until(lambda: topology(c)[0][1] != victim.host_id, 30, 0.05,
                       message="new leader of partition 0")
            got = c.call("@AdHoc", "SELECT k FROM kv")
            present = {row[0] for row in got.tables[0].rows}
            assert acked <= present, sorted(acked - present)[:20]
            st = c.call("@SystemInformation", "OVERVIEW")
            assert {row[0] for row in st.tables[0].rows} == {s.host_id for s in survivors}
        cl.stop()
        replica_checksums_agree(cl, topo, dead={victim.host_id})


def test_official_client_affinity_on_three_hosts(caplog):
    voltclient = pytest.importorskip("voltclient")
    from voltdbclient import FastSerializer, VoltProcedure
    caplog.set_level(logging.WARNING)
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=SCHEMA) as cl:
        fs = FastSerializer("127.0.0.1", cl.servers[1].client_port)
        put = VoltProcedure(fs, "Put", [VType.BIGINT, VType.STRING])
        assert put.call([7, "seven"]).status == 1
        get = VoltProcedure(fs, "Get", [VType.BIGINT])
        assert get.call([7]).tables[0].tuples == [["seven"]]
        fs.close()
        with voltclient.VoltClient(hosts=["127.0.0.1"], port=cl.servers[0].client_port,
                                   connect_timeout=5, procedure_timeout=30) as c:
            wait_until(lambda: len(c.affinity_stats()) == 3, 20, message="all three hosts")
            assert set(c.topology.hosts) == {0, 1, 2}
            with Client(cl.addresses) as ours:
                topo = topology(ours)
            hz = make_hashinator(3)
            for k in range(100):
                pid = hz.partition_for_value(int(VType.BIGINT), k)
                assert c.get_partition_for_parameter(VType.BIGINT, k) == pid
                assert c.topology.partitions[pid].leader_host_id == topo[pid][1]
            before = sum(s.affinity_sends for s in c.affinity_stats().values())
            futures = [c.call_async("Put", [VType.BIGINT, VType.STRING], [k, f"o{k}"])
                       for k in range(300)]
            assert all(f.result(timeout=60).status == 1 for f in futures)
            after = sum(s.affinity_sends for s in c.affinity_stats().values())
            assert after - before == 300
            results = c.call_all_partitions("CountLocal", [], [])
            assert len(results) == 3 and all(x.ok for x in results)
            total = sum(x.response.tables[0].tuples[0][0] for x in results)
            assert total == c.call("CountKv").tables[0].tuples[0][0] == 300
            with voltclient.VoltBulkLoader(c, "rep", batch_size=10) as ld:
                for i in range(30):
                    ld.insert_row(i, f"r{i}")
            with voltclient.VoltBulkLoader(c, "kv", batch_size=25, upsert=True) as ld:
                for k in range(1000, 1100):
                    ld.insert_row(k, f"b{k}")
            assert c.call("CountKv").tables[0].tuples[0][0] == 400
        with Client(cl.addresses) as ours:
            assert ours.call("@AdHoc", "SELECT COUNT(*) FROM rep").tables[0].rows == [(30,)]
        cl.stop()
        replica_checksums_agree(cl, topo)
    bad = [r for r in caplog.records if r.name.startswith("voltclient")]
    assert not bad, [r.getMessage() for r in bad]


def test_losing_every_replica_stops_the_cluster_cleanly():
    with TempCluster(3, kfactor=0, sites_per_host=1, schema=SCHEMA) as cl:
        with Client(cl.addresses) as c:
            for k in range(30):
                assert c.call("Put", k, "x").ok
        victim = cl.host(2)
        victim.kill()
        for s in cl.servers:
            if s is not victim:
                wait_until(lambda s=s: not s.alive(), 30, 0.05, message="host stops")
                assert s.proc.returncode == 2
                err = s.stderr()
                assert "the cluster stopped" in err and "host 2 failed" in err, err[-1500:]


def test_complete_cluster_refuses_more_hosts_and_mismatched_hosts(tmp_path):
    with TempCluster(2, kfactor=1, sites_per_host=2, schema=SCHEMA) as cl:
        seed = cl.servers[0].start_args[1]
        extra = TempServer(schema=SCHEMA, directory=tmp_path / "extra",
                           deployment=deployment_xml(2, kfactor=1, heartbeat_timeout_s=2),
                           start_args=["--host", seed, "--count", "2",
                                       "--internal", "127.0.0.1:0", "--zookeeper",
                                       "127.0.0.1:0"])
        with pytest.raises(RuntimeError, match="Cluster is already complete"):
            extra.start()
        extra.start_args.append("--add")
        with pytest.raises(RuntimeError, match="start --add"):
            extra.start()
        extra.destroy()


def test_hosts_must_agree_on_the_schema(tmp_path):
    port = free_port()
    dep = deployment_xml(2, kfactor=1, heartbeat_timeout_s=2)
    args = ["--host", f"127.0.0.1:{port}", "--count", "2", "--zookeeper", "127.0.0.1:0"]
    a = TempServer(schema=SCHEMA, deployment=dep, directory=tmp_path / "a",
                   start_args=args + ["--internal", f"127.0.0.1:{port}"])
    b = TempServer(schema=SCHEMA + "CREATE TABLE other (x INTEGER);", deployment=dep,
                   directory=tmp_path / "b", start_args=args + ["--internal", "127.0.0.1:0"])
    try:
        a.start(wait=False)
        with pytest.raises(RuntimeError, match="schema"):
            b.start()
    finally:
        a.destroy()
        b.destroy()


@pytest.mark.parametrize("victim_id,survives", [(1, True), (0, False)])
def test_two_hosts_k1_tie_breaker(victim_id, survives):
    """VoltDB's rule for an exact half: the side with the lowest host id goes on."""
    with TempCluster(2, kfactor=1, sites_per_host=2, schema=SCHEMA) as cl:
        with Client(cl.addresses) as c:
            for k in range(100):
                assert c.call("Put", k, "a").ok
        cl.host(victim_id).kill()
        other = cl.host(1 - victim_id)
        if survives:
            with Client([f"127.0.0.1:{other.client_port}"]) as c:
                wait_until(lambda: all(h == other.host_id for _r, h in topology(c).values()),
                           30, 0.05, message="host 0 leads every partition")
                for k in range(100, 200):
                    assert c.call("Put", k, "b").ok
                assert c.call("@AdHoc", "SELECT COUNT(*) FROM kv").tables[0].rows == [(200,)]
        else:
            wait_until(lambda: not other.alive(), 30, 0.05, message="host 1 shuts down")
            assert other.proc.returncode == 3
            assert "partition detection" in other.stderr()


def test_losing_the_metadata_majority_stops_the_last_host():
    """3 hosts k=2: after two hosts die the last one holds every partition but cannot
    reach a Raft majority; it stops with a message instead of hanging."""
    with TempCluster(3, kfactor=2, sites_per_host=1, schema=SCHEMA) as cl:
        with Client(cl.addresses) as c:
            assert c.call("Put", 1, "a").ok
            cl.host(2).kill()
            wait_until(lambda: all(2 not in reps for reps, _l in topology(c).values()), 30,
                       0.05, message="host 2 marked failed")
        cl.host(1).kill()  # now host 0 is half of {0, 1} with the tie-breaker: no majority
        last = cl.host(0)
        wait_until(lambda: not last.alive(), 60, 0.05, message="the last host stops")
        assert last.proc.returncode == 3
        assert "majority of the cluster metadata" in last.stderr()


def test_statistics_table_covers_every_host_and_replica():
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=SCHEMA) as cl:
        with Client(cl.addresses) as c:
            for k in range(90):
                assert c.call("Put", k, "v").ok
            assert c.call("AddRep", 1, "one").ok
            topo = topology(c)
            t = c.call("@Statistics", "TABLE", 0).tables[0]
            cols = [col.name for col in t.columns]
            hi, pi, ni, ci = (cols.index("HOST_ID"), cols.index("PARTITION_ID"),
                              cols.index("TABLE_NAME"), cols.index("TUPLE_COUNT"))
            kv = {(r[hi], r[pi]): r[ci] for r in t.rows if r[ni] == "KV"}
            assert set(kv) == {(h, p) for p, (reps, _l) in topo.items() for h in reps}
            for p, (reps, _l) in topo.items():  # every replica holds the same rows
                assert len({kv[(h, p)] for h in reps}) == 1
            assert sum(kv[(reps[0], p)] for p, (reps, _l) in topo.items()) == 90
            rep = [r for r in t.rows if r[ni] == "REP"]
            assert sorted(r[hi] for r in rep) == [0, 1, 2] and {r[ci] for r in rep} == {1}
            procs = c.call("@Statistics", "PROCEDURE", 0).tables[0]
            assert {r[1] for r in procs.rows} == {0, 1, 2}


def test_a_call_routed_to_the_wrong_partition_is_never_executed_there():
    """A leader re-checks every forwarded call: a key that does not hash to the partition
    it was sent for (stale routing), or an old hashinator version, is refused, not run."""
    import socket

    from voltdb_py.node import codec
    with TempCluster(2, kfactor=1, sites_per_host=2, schema=SCHEMA) as cl:
        leader = cl.host(0)
        with Client(cl.addresses) as c:
            topo = topology(c)
        mine = [p for p, (_r, lead) in topo.items() if lead == 0]
        other = [p for p in topo if p not in mine]
        hz = make_hashinator(len(topo))
        key_in = {p: next(k for k in range(1000, 9000)
                          if hz.partition_for_value(int(VType.BIGINT), k) == p) for p in topo}
        wrong_key = key_in[other[0]]   # hashes to a partition host 0 does not lead
        right_key = key_in[mine[0]]
        stale_key = key_in[mine[1]] if len(mine) > 1 else right_key + 1_000_000
        with socket.create_connection(("127.0.0.1", leader.info["internal"]), 5) as s:
            s.sendall(codec.frame(["hello", 1]))
            s.sendall(codec.frame(["sp", 1, mine[0], 1, "Put", [wrong_key, "w"], None, False]))
            s.sendall(codec.frame(["sp", 2, mine[0], 99, "Put", [stale_key, "s"], None,
                                   False]))
            s.sendall(codec.frame(["sp", 3, mine[0], 1, "Put", [right_key, "r"], None, False]))
            with Client(cl.addresses) as c:
                wait_until(lambda: c.call("Get", right_key).tables[0].rows == [("r",)], 10,
                           0.02, message="the correctly routed call ran")
                assert c.call("Get", wrong_key).tables[0].rows == []
                assert c.call("Get", stale_key).tables[0].rows == []
        assert all(s.alive() for s in cl.servers)


NONDET = '''
import os
from voltdb_py import VoltProcedure, SQLStmt


class PutPid(VoltProcedure):
    """Not deterministic on purpose: writes (and returns) the executing process's id."""
    ins = SQLStmt("UPSERT INTO kv VALUES (?, ?);")

    def run(self, k):
        self.queue_sql(self.ins, k, str(os.getpid()))
        self.execute_sql(final=True)
        return os.getpid()
'''


def test_a_replica_that_computes_another_result_is_evicted(tmp_path):
    """Result hashes are compared: a diverging replica is reported and removed from the
    cluster, never kept silently."""
    (tmp_path / "nondet.py").write_text(NONDET)
    schema = SCHEMA + "CREATE PROCEDURE PARTITION ON TABLE kv COLUMN k FROM CLASS nondet.PutPid;\n"
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=schema,
                     classes=[tmp_path / "nondet.py"]) as cl:
        with Client(cl.addresses) as c:
            topo = topology(c)
            pid0_leader = topo[0][1]
            follower = next(h for h in topo[0][0] if h != pid0_leader)
            key = next(k for k in range(1000)
                       if make_hashinator(3).partition_for_value(int(VType.BIGINT), k) == 0)
            r = c.call("PutPid", key)
            assert r.ok and r.tables[0].scalar() == cl.host(pid0_leader).pid
        evicted = cl.host(follower)
        wait_until(lambda: not evicted.alive(), 30, 0.05, message="the replica is removed")
        assert evicted.proc.returncode == 3
        assert "removed from the cluster" in evicted.stderr()
        assert "computed a different result for PutPid" in cl.host(pid0_leader).stderr()
        with Client([f"127.0.0.1:{s.client_port}" for s in cl.servers if s.alive()]) as c:
            # the host that answers may apply the metadata change a moment after the
            # evicted host saw it
            wait_until(lambda: follower not in topology(c)[0][0], 10, 0.05,
                       message="the topology drops the evicted replica")
            assert c.call("Put", key + 3, "still serving").ok


def test_a_replica_whose_point_write_differs_is_evicted():
    """A batch of compiled point procedures is sent to the replicas before the leader runs
    it; their results are still compared. A replica whose copy was changed behind the
    cluster's back (here: a row deleted in its LMDB files by another process) answers a
    DELETE with another row count, and is evicted."""
    from voltdb_py import Database
    schema = SCHEMA + ("CREATE PROCEDURE Del PARTITION ON TABLE kv COLUMN k AS "
                       "DELETE FROM kv WHERE k = ?;\n")
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=schema) as cl:
        with Client(cl.addresses) as c:
            topo = topology(c)
            leader = topo[0][1]
            follower = next(h for h in topo[0][0] if h != leader)
            ring = make_hashinator(3)
            keys = [k for k in range(1000)
                    if ring.partition_for_value(int(VType.BIGINT), k) == 0]
            for k in keys[:3]:
                assert c.call("Put", k, "same").ok
            # LMDB lets another process write the follower's files while it runs
            with Database.open(cl.host(follower).root / "database") as side:
                assert side.call("Del", keys[0]).tables[0].scalar() == 1
            r = c.call("Del", keys[0])
            assert r.ok and r.tables[0].scalar() == 1   # the leader's answer
        evicted = cl.host(follower)
        wait_until(lambda: not evicted.alive(), 30, 0.05, message="the replica is removed")
        assert evicted.proc.returncode == 3
        assert "computed a different result for Del" in cl.host(leader).stderr()
        with Client([f"127.0.0.1:{s.client_port}" for s in cl.servers if s.alive()]) as c:
            # the process may be gone before the metadata change reaches every host
            wait_until(lambda: follower not in topology(c)[0][0], 30, 0.05,
                       message="the evicted replica leaves the topology")
            assert c.call("Get", keys[1]).tables[0].rows == [("same",)]


SLOW_MP = '''
import time
from voltdb_py import VoltProcedure, SQLStmt


class SlowRepInsert(VoltProcedure):
    """A multi-partition write that stays open for a while (its writes are not final)."""
    ins = SQLStmt("INSERT INTO rep VALUES (?, ?);")

    def run(self, n, seconds):
        for i in range(n):
            self.queue_sql(self.ins, i, "slow")
        self.execute_sql()
        time.sleep(seconds)
        return n
'''


def test_coordinator_killed_mid_transaction_leaves_no_trace(tmp_path):
    """The coordinator (host 0) dies while a multi-partition write is open on every
    host: the survivors agree to roll it back and go on serving."""
    import threading as _threading
    (tmp_path / "slowmp.py").write_text(SLOW_MP)
    schema = SCHEMA + "CREATE PROCEDURE FROM CLASS slowmp.SlowRepInsert;\n"
    with TempCluster(3, kfactor=1, sites_per_host=2, schema=schema,
                     classes=[tmp_path / "slowmp.py"]) as cl:
        coordinator = cl.host(0)
        others = [cl.host(1), cl.host(2)]
        with Client([f"127.0.0.1:{s.client_port}" for s in others],
                    topology_aware=False) as c:
            killer = _threading.Timer(1.5, coordinator.kill)
            killer.start()
            try:
                r = c.call("SlowRepInsert", 5, 4, timeout_s=60)
            finally:
                killer.cancel()
            assert r.status == Status.RESPONSE_UNKNOWN, r
            wait_until(lambda: c.call("@AdHoc", "SELECT COUNT(*) FROM rep").ok, 30, 0.1,
                       message="a new coordinator answers")
            assert c.call("@AdHoc", "SELECT COUNT(*) FROM rep").tables[0].rows == [(0,)]
            t = c.call("@Statistics", "TABLE", 0).tables[0]
            cols = [col.name for col in t.columns]
            counts = {r[cols.index("HOST_ID")]: r[cols.index("TUPLE_COUNT")]
                      for r in t.rows if r[cols.index("TABLE_NAME")] == "REP"}
            assert counts == {1: 0, 2: 0}
            for k in range(50):  # single-partition work goes on
                assert c.call("Put", k, "after").ok
        assert all(s.alive() for s in others)
        assert "no host had committed it, so it is rolled back" in others[0].stderr() + \
            others[1].stderr()


def test_a_cluster_whose_seed_port_was_taken_starts_on_another(monkeypatch):
    """TempCluster chooses host 0's internal port before host 0 binds it; when another
    process took it meanwhile, every host starts again on a new port."""
    import socket

    import voltdb_py.node.cluster as node_cluster
    real = node_cluster.free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        given = iter([port])
        monkeypatch.setattr(node_cluster, "free_port", lambda ip="127.0.0.1": next(given, None)
                            or real(ip))
        with TempCluster(2, kfactor=1, sites_per_host=1, schema=SCHEMA) as cl:
            seed = cl.servers[0].start_args[1]
            assert seed != f"127.0.0.1:{port}"
            assert "address already in use" in cl.servers[0].stderr()
            with Client(cl.addresses) as c:
                assert c.call("Put", 1, "x").ok

# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltdb_py.client's topology awareness and failure handling against real server processes:
discovery, routing to partition leaders (cross-checked with the server's own partitioning),
call_all_partitions, pushed catalog changes, a server killed mid-calls, reconnecting with
a new client, and login with security on."""

from __future__ import annotations

import asyncio

import pytest
from voltdb_py._testing import TempServer, deployment_xml
from voltdb_py.client import (
    MP_PARTITION,
    AsyncClient,
    AuthenticationError,
    Client,
    NoConnectionsError,
    Status,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

PARTITIONS = 4

SCHEMA = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(100));
PARTITION TABLE kv ON COLUMN k;
CREATE TABLE names (name VARCHAR(32) NOT NULL PRIMARY KEY, n BIGINT);
PARTITION TABLE names ON COLUMN name;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
CREATE PROCEDURE LocalKeys PARTITION ON TABLE kv COLUMN k AS
    SELECT k FROM kv WHERE k >= ? ORDER BY k;
CREATE PROCEDURE PutName PARTITION ON TABLE names COLUMN name PARAMETER 1 AS
    UPSERT INTO names (n, name) VALUES (?, ?);
CREATE PROCEDURE LocalNames PARTITION ON TABLE names COLUMN name AS
    SELECT name FROM names WHERE name >= ? OR name < ? ORDER BY name;
CREATE PROCEDURE CountKv AS SELECT COUNT(*) FROM kv;
CREATE PROCEDURE FROM CLASS clusterprocs.Sleep;
"""

PROCS = '''
import time
from voltdb_py import Column, VoltProcedure, VoltTable, VoltType


class Sleep(VoltProcedure):
    def run(self, ms):
        time.sleep(ms / 1000.0)
        return VoltTable([Column("MS", VoltType.BIGINT)], [(ms,)])
'''


@pytest.fixture(scope="module")
def procs_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("procs") / "clusterprocs.py"
    p.write_text(PROCS)
    return p


@pytest.fixture(scope="module")
def server(procs_file):
    with TempServer(schema=SCHEMA, classes=[procs_file], sites_per_host=PARTITIONS) as srv:
        yield srv


def seed(srv) -> str:
    return f"127.0.0.1:{srv.client_port}"


def test_discovery(server):
    async def main():
        async with await AsyncClient.connect(seed(server)) as c:
            assert c.hosts == {server.host_id: ("127.0.0.1", server.client_port)}
            leaders = c.partition_leaders
            assert sorted(leaders) == [*range(PARTITIONS), MP_PARTITION]
            assert set(leaders.values()) == {server.host_id}
            procs = c.procedures
            assert procs["Get"] == (True, 0, 6)
            assert procs["PutName"] == (True, 1, 9)
            assert procs["CountKv"][0] is False
            assert c._conns[0].subscribed

    asyncio.run(main())


def test_routing_matches_the_servers_partitioning(server):
    """Each single-partition call goes to its leader's connection, and the partition the
    client computes is the one the server stores the row in."""
    keys = list(range(10_000, 10_300))
    names = [f"name-{i}" for i in range(120)]

    async def main():
        async with await AsyncClient.connect(seed(server)) as c:
            # @GetPartitionKeys: a key per partition, as the server computes it.
            for kind, proc, at in (("INTEGER", "Get", 0), ("STRING", "PutName", 1)):
                r = await c.call("@GetPartitionKeys", kind)
                assert r.ok and len(r.tables[0].rows) == PARTITIONS
                for pid, key in r.tables[0].rows:
                    params = [key] if at == 0 else [0, key]
                    assert c.partition_for_call(proc, *params) == pid
                    assert c.host_for_call(proc, *params) == server.host_id
            # Where the server really stored rows: one LocalKeys leg per partition.
            assert all(r.ok for r in await asyncio.gather(
                *(c.call("Put", k, "v") for k in keys),
                *(c.call("PutName", i, n) for i, n in enumerate(names))))
            legs = await c.call_all_partitions("LocalKeys")
            stored = {k: pid for pid, r in legs.items() for (k,) in r.tables[0].rows
                      if k >= keys[0]}
            assert sorted(stored) == keys
            assert len(set(stored.values())) == PARTITIONS
            for k in keys:
                assert c.partition_for_call("Get", k) == stored[k]
            legs = await c.call_all_partitions("LocalNames", "")
            stored_names = {n: pid for pid, r in legs.items() for (n,) in r.tables[0].rows}
            assert sorted(stored_names) == sorted(names)
            for i, n in enumerate(names):
                assert c.partition_for_call("PutName", i, n) == stored_names[n]
            # Routing: partitioned calls by affinity, multi-partition to the 16383 leader,
            # system procedures round-robin.
            before = c.affinity_stats()[server.host_id]
            await c.call("Get", keys[0])
            await c.call("CountKv")
            await c.call("@Ping")
            after = c.affinity_stats()[server.host_id]
            assert after[0] - before[0] == 2 and after[1] - before[1] == 1
            assert c.partition_for_call("CountKv") == MP_PARTITION
            assert c.partition_for_call("@AdHoc", "SELECT 1") is None
            assert c.partition_for_call("Get") is None          # missing parameter
            assert c.partition_for_call("Get", None) == 0       # NULL hashes to partition 0

    asyncio.run(main())


def test_call_all_partitions(server):
    async def main():
        async with await AsyncClient.connect(seed(server)) as c:
            legs = await c.call_all_partitions("LocalKeys")
            assert sorted(legs) == list(range(PARTITIONS))
            assert all(r.status == Status.SUCCESS for r in legs.values())
            # A multi-partition procedure cannot run as all-partition legs.
            legs = await c.call_all_partitions("CountKv")
            assert all(r.status == Status.GRACEFUL_FAILURE for r in legs.values())

    asyncio.run(main())


def test_topology_and_catalog_pushes_are_followed(tmp_path):
    """A leader change and a new procedure, pushed by the server (handles 2^63-2 / 2^63-3).

    A one-host server process cannot change its topology or catalog yet, so this runs the
    real NodeServer in this process (real sockets on port 0) and changes its state directly.
    """
    import dataclasses

    from voltdb_py import Database
    from voltdb_py.cluster.topology import HostInfo, place_partitions
    from voltdb_py.deployment import Deployment
    from voltdb_py.node.root import ClusterState
    from voltdb_py.node.server import NodeServer, ServerConfig

    async def wait_for(pred, what):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not pred():
            assert loop.time() < deadline, f"{what} not seen"
            await asyncio.sleep(0.02)

    async def main():
        db = Database.open(tmp_path / "db", sites_per_host=PARTITIONS)
        db.execute_ddl(SCHEMA.split("CREATE PROCEDURE FROM CLASS")[0])
        state = ClusterState(1, PARTITIONS, 0, place_partitions([HostInfo(0, PARTITIONS)], 0))
        node = NodeServer(db, Deployment(), state, ServerConfig(
            client=("127.0.0.1", 0), admin=("127.0.0.1", 0), http=("127.0.0.1", 0)))
        await node.start()
        try:
            async with await AsyncClient.connect(f"127.0.0.1:{node.client_address[1]}") as c:
                assert c.host_for_call("Get", 5) == 0
                # A new topology in which host 7 (not reachable) leads some partitions.
                topo = dataclasses.replace(place_partitions(
                    [HostInfo(0, PARTITIONS), HostInfo(7, PARTITIONS)], 0), version=2)
                want = {p: info.leader for p, info in topo.partitions.items()}
                assert 7 in want.values()
                node.cluster = dataclasses.replace(state, topology=topo)
                node._check_pushes()
                await wait_for(lambda: {p: h for p, h in c.partition_leaders.items()
                                        if p != MP_PARTITION} == want, "the TOPO push")
                for k in range(50):
                    p = c.partition_for_call("Get", k)
                    # Led by host 7, which is not connected: round-robin (and it still works).
                    assert c.host_for_call("Get", k) == (None if want[p] == 7 else 0)
                assert all(r.ok for r in await asyncio.gather(
                    *(c.call("Get", k) for k in range(50))))
                db.execute_ddl("CREATE PROCEDURE GetLater PARTITION ON TABLE kv COLUMN k AS "
                               "SELECT v FROM kv WHERE k = ?;")
                node.after_batch()
                await wait_for(lambda: any(p.upper() == "GETLATER" for p in c.procedures),
                               "the PROCEDURES push")
                name = next(p for p in c.procedures if p.upper() == "GETLATER")
                assert c.procedures[name] == (True, 0, 6)
                assert c.partition_for_call(name, 6) == c.partition_for_call("Get", 6)
        finally:
            await node.stop()

    asyncio.run(main())


def test_server_killed_mid_calls_then_new_client(procs_file, tmp_path):
    srv = TempServer(schema=SCHEMA, classes=[procs_file], sites_per_host=2,
                     directory=tmp_path / "srv")
    try:
        srv.start()

        async def before_kill():
            c = await AsyncClient.connect(seed(srv))
            try:
                assert (await c.call("Put", 1, "kept")).ok
                slow = asyncio.ensure_future(c.call("Sleep", 20_000))
                rest = [asyncio.ensure_future(c.call("Put", k, "x")) for k in range(100, 150)]
                await asyncio.sleep(0.3)           # all sent, the server is in Sleep
                assert c.in_flight >= 51
                await asyncio.get_running_loop().run_in_executor(None, srv.kill)
                results = await asyncio.wait_for(asyncio.gather(slow, *rest), 30)
                assert {r.status for r in results} == {Status.CONNECTION_LOST}
                assert all(f"127.0.0.1:{srv.client_port}" in r.status_string for r in results)
                assert c.in_flight == 0
                with pytest.raises(NoConnectionsError):
                    await c.call("Get", 1)
            finally:
                await c.close()

        asyncio.run(before_kill())
        srv.start()                                 # same root, a new port

        with Client(seed(srv)) as c:
            assert c.call("Get", 1).tables[0].rows == [("kept",)]
    finally:
        srv.destroy()


def test_auth_with_security_on(tmp_path):
    dep = deployment_xml(sites_per_host=2, security=True,
                         users={"alice": ("s3cret", "administrator"), "bob": ("pw", "user")})
    with TempServer(schema=SCHEMA.split("CREATE PROCEDURE FROM CLASS")[0], deployment=dep,
                    directory=tmp_path / "sec") as srv:
        async def main():
            with pytest.raises(AuthenticationError) as ei:
                await AsyncClient.connect(seed(srv), username="alice", password="wrong")
            assert ei.value.code == -1 and ei.value.port == srv.client_port
            assert "authentication failed" in str(ei.value)
            with pytest.raises(AuthenticationError):
                await AsyncClient.connect(seed(srv), username="mallory", password="s3cret")
            async with await AsyncClient.connect(seed(srv), username="alice",
                                                 password="s3cret") as c:
                assert (await c.call("Put", 1, "a")).ok

        asyncio.run(main())
        with pytest.raises(AuthenticationError):
            Client(seed(srv), username="bob", password="nope")
        with Client(seed(srv), username="bob", password="pw") as c:
            assert c.call("Get", 1).tables[0].rows == [("a",)]


def test_two_seeds_one_dead(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]

    async def main():
        async with await AsyncClient.connect(f"127.0.0.1:{dead},{seed(server)}") as c:
            assert list(c.hosts) == [server.host_id]
            assert (await c.call("Get", 1)).ok

    asyncio.run(main())

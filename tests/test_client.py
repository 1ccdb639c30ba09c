# SPDX-License-Identifier: AGPL-3.0-or-later
"""voltdb_py.client against a real server process: types, NULLs, errors, pipelining with
bounded in-flight calls, timeouts, keep-alive, the blocking Client; plus the error paths
that need no server (unreachable hosts, host parsing)."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import socket
import time

import pytest
from voltdb_py import VoltType
from voltdb_py._testing import TempServer
from voltdb_py.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ClientClosedError,
    ClientConnectionError,
    HostUnreachableError,
    Status,
    parse_hosts,
)
from voltdb_py.errors import TypeMismatchError

PARTITIONS = 3

SCHEMA = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(100));
PARTITION TABLE kv ON COLUMN k;
CREATE TABLE typed (id INTEGER NOT NULL PRIMARY KEY, ti TINYINT, si SMALLINT, bi BIGINT,
                    f FLOAT, s VARCHAR(64), ts TIMESTAMP, d DECIMAL, vb VARBINARY(64));
PARTITION TABLE typed ON COLUMN id;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Ins PARTITION ON TABLE kv COLUMN k AS INSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
CREATE PROCEDURE PutTyped PARTITION ON TABLE typed COLUMN id AS
    INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);
CREATE PROCEDURE GetTyped PARTITION ON TABLE typed COLUMN id AS
    SELECT * FROM typed WHERE id = ?;
CREATE PROCEDURE FROM CLASS clientprocs.Sleep;
CREATE PROCEDURE FROM CLASS clientprocs.Refuse;
"""

PROCS = '''
import time
from voltdb_py import Column, VoltAbortException, VoltProcedure, VoltTable, VoltType


class Sleep(VoltProcedure):
    def run(self, ms):
        time.sleep(ms / 1000.0)
        return VoltTable([Column("MS", VoltType.BIGINT)], [(ms,)])


class Refuse(VoltProcedure):
    def run(self, why: str):
        self.set_app_status_code(7)
        self.set_app_status_string("refused")
        raise VoltAbortException(why)
'''


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- no server needed


def test_parse_hosts():
    assert parse_hosts("a:1,b:2") == [("a", 1), ("b", 2)]
    assert parse_hosts("a, b:5") == [("a", 21212), ("b", 5)]
    assert parse_hosts(["[::1]:7", ("h", 9)]) == [("::1", 7), ("h", 9)]
    with pytest.raises(ValueError):
        parse_hosts("")
    with pytest.raises(ValueError):
        parse_hosts("h:notaport")


def test_error_types_are_connection_errors():
    e = AuthenticationError("h", 1, "bad", -1)
    assert isinstance(e, ClientConnectionError) and isinstance(e, ConnectionError)
    assert (e.host, e.port, e.reason, e.code) == ("h", 1, "bad", -1)
    assert "h:1" in str(e) and "bad" in str(e)
    assert issubclass(HostUnreachableError, ConnectionError)
    assert issubclass(ClientClosedError, ConnectionError)


def test_unreachable_host_async():
    port = closed_port()

    async def main():
        with pytest.raises(HostUnreachableError) as ei:
            await AsyncClient.connect(f"127.0.0.1:{port}", connect_timeout_s=5)
        return ei.value

    err = asyncio.run(main())
    assert err.host == "127.0.0.1" and err.port == port
    assert "refused" in err.reason.lower()
    assert f"127.0.0.1:{port}" in str(err)


def test_unreachable_host_sync():
    port = closed_port()
    with pytest.raises(HostUnreachableError) as ei:
        Client(f"127.0.0.1:{port}", connect_timeout_s=5)
    assert ei.value.port == port


# ---------------------------------------------------------------- against a server

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    procs = tmp_path_factory.mktemp("procs") / "clientprocs.py"
    procs.write_text(PROCS)
    srv = TempServer(schema=SCHEMA, classes=[procs], sites_per_host=PARTITIONS)
    with srv:
        yield srv


def run(coro):
    return asyncio.run(coro)


async def connect(server, **kw) -> AsyncClient:
    return await AsyncClient.connect(f"127.0.0.1:{server.client_port}", **kw)


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_every_type_and_nulls(server):
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)
    dec = decimal.Decimal("-12345.678901234567")
    row = (1, 7, -300, 1 << 40, 2.5, "héllo", ts, dec, b"\x00\xffab")
    types = [VoltType.INTEGER, VoltType.TINYINT, VoltType.SMALLINT, VoltType.BIGINT,
             VoltType.FLOAT, VoltType.STRING, VoltType.TIMESTAMP, VoltType.DECIMAL,
             VoltType.VARBINARY]

    async def main():
        async with await connect(server) as c:
            r = await c.call("PutTyped", *row)          # types inferred
            assert r.status == Status.SUCCESS, r.status_string
            r = await c.call_typed("PutTyped", types, 2, *row[1:])
            assert r.ok, r.status_string
            r = await c.call_typed("PutTyped", types, 3, *([None] * 8))   # typed NULLs
            assert r.ok, r.status_string
            r = await c.call("PutTyped", 4, *([None] * 8))               # NULL type code
            assert r.ok, r.status_string
            got = {}
            for i in (1, 2, 3, 4):
                r = await c.call("GetTyped", i)
                assert r.ok and len(r.tables) == 1
                got[i] = r.tables[0].rows[0]
            cols = [col.type for col in r.tables[0].columns]
            return got, cols

    got, cols = run(main())
    assert cols == types
    for i in (1, 2):
        assert got[i] == (i, *row[1:])
    for i in (3, 4):
        assert got[i] == (i,) + (None,) * 8


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_errors(server):
    async def main():
        async with await connect(server) as c:
            r = await c.call("NoSuchProc", 1)
            assert r.status == Status.UNEXPECTED_FAILURE and "NoSuchProc" in r.status_string
            assert (await c.call("Put", 10, "a")).ok
            r = await c.call("Ins", 10, "dup")
            assert r.status == Status.GRACEFUL_FAILURE and r.status_string
            r = await c.call("Get", 1, 2, 3)
            assert r.status == Status.GRACEFUL_FAILURE
            r = await c.call("Refuse", "no way")
            assert r.status == Status.USER_ABORT and "no way" in r.status_string
            assert r.app_status == 7 and r.app_status_string == "refused"
            with pytest.raises(TypeMismatchError):
                await c.call("Get", object())
            assert c.in_flight == 0
            assert (await c.call("Get", 10)).tables[0].rows == [("a",)]
        with pytest.raises(ClientClosedError):
            await c.call("Get", 10)

    run(main())


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_pipelining_10k_calls_bounded_in_flight(server):
    n, limit = 10_000, 64

    async def main():
        async with await connect(server, max_in_flight=limit) as c:
            peak = 0

            async def put(k):
                nonlocal peak
                r = await c.call("Put", k, f"v{k}")
                peak = max(peak, c.in_flight)
                return r

            t0 = time.perf_counter()
            puts = await asyncio.gather(*(put(k) for k in range(1000, 1000 + n)))
            gets = await asyncio.gather(*(c.call("Get", k) for k in range(1000, 1000 + n)))
            dt = time.perf_counter() - t0
            assert c.in_flight == 0
            return puts, gets, peak, dt

    puts, gets, peak, dt = run(main())
    assert all(r.ok for r in puts)
    assert [r.tables[0].rows for r in gets] == [[(f"v{k}",)] for k in range(1000, 1000 + n)]
    assert 1 < peak <= limit
    print(f"\n{2 * n} pipelined calls in {dt:.2f} s ({2 * n / dt:,.0f} calls/s)")


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_call_timeout_gives_connection_timeout(server):
    async def main():
        async with await connect(server) as c:
            t0 = time.monotonic()
            slow = asyncio.ensure_future(c.call("Sleep", 1500, timeout_s=0.3))
            behind = asyncio.ensure_future(c.call("Get", 10, timeout_s=0.3))
            r, r2 = await slow, await behind
            took = time.monotonic() - t0
            assert r.status == Status.CONNECTION_TIMEOUT == -6, r
            assert r2.status == Status.CONNECTION_TIMEOUT
            assert "allotted time" in r.status_string
            assert took < 1.2
            assert c.in_flight == 0
            # The late responses are dropped; the connection keeps working.
            r3 = await c.call("Sleep", 1, timeout_s=10)
            assert r3.ok and r3.tables[0].rows == [(1,)]

    run(main())


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_keepalive_pings_idle_connections(server):
    async def main():
        async with await connect(server, keepalive_s=0.2) as c:
            conn = c._conns[0]
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            deadline = t0 + 10
            # Nothing is called, yet frames arrive: the answers to the @Pings.
            while conn.last_recv <= t0 + 0.3 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert conn.last_recv > t0 + 0.3
            assert conn.alive
            assert (await c.call("Get", 10)).ok

    run(main())


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_blocking_client(server):
    with Client(f"127.0.0.1:{server.client_port}", max_in_flight=16) as c:
        assert c.call("Put", 77, "x").ok
        assert c.call("Get", 77).tables[0].rows == [("x",)]
        assert c.call_typed("Get", [VoltType.BIGINT], "77").tables[0].rows == [("x",)]
        futs = [c.call_async("Put", k, str(k)) for k in range(2000, 2500)]
        assert all(f.result(timeout=60).ok for f in futs)
        assert c.call("Sleep", 1000, timeout_s=0.2).status == Status.CONNECTION_TIMEOUT
        legs = c.call_all_partitions("Get")
        assert sorted(legs) == list(range(PARTITIONS)) and all(r.ok for r in legs.values())
    assert c.closed
    with pytest.raises(ClientClosedError):
        c.call("Get", 77)
    c.close()  # idempotent


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_blocking_client_from_threads(server):
    import concurrent.futures

    with Client(f"127.0.0.1:{server.client_port}") as c:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            rs = list(pool.map(lambda k: c.call("Put", k, "t"), range(3000, 3200)))
        assert all(r.ok for r in rs)


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_unknown_user_without_security_is_accepted(server):
    # Security is off on this server: any user logs in (VoltDB's behaviour).
    async def main():
        async with await connect(server, username="nobody", password="x") as c:
            assert (await c.call("Get", 10)).ok

    run(main())


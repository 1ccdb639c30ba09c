# SPDX-License-Identifier: AGPL-3.0-or-later
"""Every client-facing interface against a real multi-process cluster: the binary wire
protocol under fuzzing (hypothesis), the JSON HTTP API on a non-leader host, sqlcmd-py
loading and running the voter example, and the official Python client on each host."""

from __future__ import annotations

import datetime
import decimal
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import voltdb_py
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from voltdb_py import VoltType as VType
from voltdb_py import wire
from support.cluster import replica_checksums_agree, topology
from voltdb_py._testing import TempCluster
from voltdb_py.client import Client
from voltdb_py.errors import VoltError
from voltdb_py.hashinator import make_hashinator
from voltdb_py.types import Status

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

VOTER = Path(voltdb_py.__file__).resolve().parent / "examples" / "voter"
CONTESTANTS = ("Edwina Burnam,Tabatha Gehling,Kelly Clauss,Jessie Alloway,Alana Bregman,"
               "Jessie Eichman")

SCHEMA = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(200));
PARTITION TABLE kv ON COLUMN k;
CREATE TABLE hkv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(200));
PARTITION TABLE hkv ON COLUMN k;
CREATE TABLE typed (id INTEGER NOT NULL PRIMARY KEY, ti TINYINT, si SMALLINT, bi BIGINT,
                    f FLOAT, s VARCHAR(64), ts TIMESTAMP, d DECIMAL, vb VARBINARY(64));
PARTITION TABLE typed ON COLUMN id;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
CREATE PROCEDURE CountKv AS SELECT COUNT(*) FROM kv;
CREATE PROCEDURE HPut PARTITION ON TABLE hkv COLUMN k AS UPSERT INTO hkv VALUES (?, ?);
CREATE PROCEDURE HGet PARTITION ON TABLE hkv COLUMN k AS SELECT v FROM hkv WHERE k = ?;
CREATE PROCEDURE PutTyped PARTITION ON TABLE typed COLUMN id AS
    INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);
CREATE PROCEDURE GetTyped PARTITION ON TABLE typed COLUMN id AS
    SELECT * FROM typed WHERE id = ?;
CREATE PROCEDURE FROM CLASS ifprocs.EchoScalars;
CREATE PROCEDURE FROM CLASS ifprocs.EchoArrays;
"""

PROCS = '''
from voltdb_py import Column, VoltProcedure, VoltTable, VoltType

SCALARS = [("I", VoltType.INTEGER), ("TI", VoltType.TINYINT), ("SI", VoltType.SMALLINT),
           ("BI", VoltType.BIGINT), ("F", VoltType.FLOAT), ("S", VoltType.STRING),
           ("TS", VoltType.TIMESTAMP), ("D", VoltType.DECIMAL), ("VB", VoltType.VARBINARY)]
ARRAYS = [VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER, VoltType.BIGINT,
          VoltType.FLOAT, VoltType.STRING, VoltType.TIMESTAMP, VoltType.DECIMAL]


class EchoScalars(VoltProcedure):
    def run(self, i, ti, si, bi, f, s, ts, d, vb):
        return VoltTable([Column(n, t) for n, t in SCALARS], [(i, ti, si, bi, f, s, ts, d, vb)])


class EchoArrays(VoltProcedure):
    """One table per array parameter: a row per element, in a column of its type."""
    def run(self, ti, si, i, bi, f, s, ts, d):
        ti = [x - 256 if x > 127 else x for x in ti]  # a TINYINT array arrives as bytes
        return [VoltTable([Column("V", t)], [(x,) for x in arr])
                for t, arr in zip(ARRAYS, (ti, si, i, bi, f, s, ts, d))]
'''

KNOWN_STATUSES = {int(s) for s in Status}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    procs = tmp_path_factory.mktemp("procs") / "ifprocs.py"
    procs.write_text(PROCS)
    with TempCluster(2, kfactor=1, sites_per_host=2, schema=SCHEMA, classes=[procs]) as cl:
        yield cl


# =========================================================================== wire fuzzing

_health_keys = itertools.count(10 ** 15)


def _assert_cluster_healthy(cl: TempCluster) -> None:
    """No host died, and a fresh client on each host can still write and read."""
    assert all(s.alive() for s in cl.servers), [s.stderr()[-2000:] for s in cl.servers]
    for s in cl.servers:
        with Client([f"127.0.0.1:{s.client_port}"], topology_aware=False,
                    timeout_s=30) as c:
            k = next(_health_keys)
            r = c.call("Put", k, f"h{k}")
            assert r.status == Status.SUCCESS, r
            assert c.call("Get", k).tables[0].rows == [(f"h{k}",)]


def _login(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(wire.encode_login())
        body = _read_frame(s)
        assert body is not None and wire.decode_login_response(body)[0] == 0
    except BaseException:
        s.close()
        raise
    return s


def _recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except (TimeoutError, ConnectionResetError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def _read_frame(s: socket.socket) -> bytes | None:
    head = _recv_exact(s, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">i", head)
    return _recv_exact(s, n)


def _send(s: socket.socket, data: bytes) -> bool:
    """Send data; False when the server already closed the connection."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def _drain(s: socket.socket, timeout_s: float = 15.0) -> tuple[list[bytes], bool, bytes]:
    """Read until the server closes (or timeout_s passes without data):
    (complete response frames, whether it closed, leftover bytes of a partial frame)."""
    s.settimeout(timeout_s)
    buf = b""
    closed = False
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    frames = []
    while len(buf) >= 4:
        (n,) = struct.unpack(">i", buf[:4])
        if n <= 0 or len(buf) - 4 < n:
            break
        frames.append(buf[4:4 + n])
        buf = buf[4 + n:]
    return frames, closed, buf


def _half_close_and_drain(s: socket.socket) -> tuple[list[bytes], bool, bytes]:
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    return _drain(s)


def _assert_answers_are_responses(frames: list[bytes]) -> list:
    out = []
    for body in frames:
        handle, resp = wire.decode_response(body, with_handle=True)
        assert int(resp.status) in KNOWN_STATUSES, resp
        out.append((handle, resp))
    return out


FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

_MAX_FRAME = wire.DEFAULT_MAX_FRAME_BYTES


@st.composite
def _garbage(draw):
    """(bytes to send after login, whether the server must close without our EOF)."""
    kind = draw(st.sampled_from(["random", "lying-length", "huge-length", "bad-length"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=3000)), False
    body = wire.encode_invocation("Put", 5, [draw(st.integers(0, 1000)), "x"])[4:]
    if kind == "lying-length":
        n = draw(st.integers(1, len(body) + 5000) | st.integers(1, _MAX_FRAME))
        return struct.pack(">i", n) + body, False
    if kind == "huge-length":
        n = draw(st.integers(_MAX_FRAME + 1, 2 ** 31 - 1))
        return struct.pack(">i", n) + body, True
    n = draw(st.integers(-2 ** 31, 0))
    return struct.pack(">i", n) + body, True


@FUZZ
@given(data=_garbage(), host=st.integers(0, 1))
def test_fuzz_garbage_after_login_answers_or_closes(cluster, data, host):
    payload, must_close_at_once = data
    s = _login(cluster.servers[host].client_port)
    try:
        sent = _send(s, payload)
        if must_close_at_once:
            frames, closed, rest = _drain(s)
            assert closed, "a frame length outside 1..max did not close the connection"
        else:
            frames, closed, rest = _half_close_and_drain(s)
            assert closed or not sent, "the server kept a half-closed connection open"
        assert rest == b"", "the server sent a partial frame"
        _assert_answers_are_responses(frames)
    finally:
        s.close()
    _assert_cluster_healthy(cluster)


def _invocation_strategy():
    names = st.sampled_from(["Put", "Get", "PutTyped", "GetTyped", "CountKv",
                             "EchoScalars", "EchoArrays", "NoSuchProc", "@Ping", "@AdHoc",
                             "@Statistics", "@SystemInformation", "@Explain",
                             "@ExplainProc", "@Subscribe"])
    # random names never start with '@' (no chance of hitting a system procedure that
    # changes the cluster, like @Pause)
    names = names | st.text(max_size=40).filter(lambda n: not n.startswith("@"))
    null = st.none()
    scalar = st.one_of(
        st.tuples(st.just(VType.NULL), null),
        st.tuples(st.just(VType.TINYINT), st.integers(-127, 127) | null),
        st.tuples(st.just(VType.SMALLINT), st.integers(-32767, 32767) | null),
        st.tuples(st.just(VType.INTEGER), st.integers(-2 ** 31 + 1, 2 ** 31 - 1) | null),
        st.tuples(st.just(VType.BIGINT), st.integers(-2 ** 63 + 1, 2 ** 63 - 1) | null),
        st.tuples(st.just(VType.FLOAT), st.floats() | null),
        st.tuples(st.just(VType.STRING), st.text(max_size=80) | null),
        st.tuples(st.just(VType.TIMESTAMP),
                  st.integers(-62135596800 * 10 ** 6, 253402300799 * 10 ** 6) | null),
        st.tuples(st.just(VType.DECIMAL),
                  st.decimals(min_value=-(10 ** 25), max_value=10 ** 25, places=12,
                              allow_nan=False, allow_infinity=False) | null),
        st.tuples(st.just(VType.VARBINARY), st.binary(max_size=80) | null),
    )
    array = st.one_of(
        st.tuples(st.just(VType.TINYINT), st.binary(max_size=40)),
        st.tuples(st.just(VType.SMALLINT), st.lists(st.integers(-32767, 32767), max_size=10)),
        st.tuples(st.just(VType.INTEGER), st.lists(st.integers(-2 ** 31 + 1, 2 ** 31 - 1),
                                                   max_size=10)),
        st.tuples(st.just(VType.BIGINT), st.lists(st.integers(-2 ** 63 + 1, 2 ** 63 - 1),
                                                  max_size=10)),
        st.tuples(st.just(VType.FLOAT), st.lists(st.floats(), max_size=10)),
        st.tuples(st.just(VType.STRING), st.lists(st.text(max_size=10) | null, max_size=10)),
    )
    params = st.lists(scalar | array, max_size=10)
    # version-2 invocation extensions (§4.1), including partition destinations that do
    # not exist and timeouts that are negative or tiny
    i32 = st.integers(-2 ** 31, 2 ** 31 - 1) | st.integers(-3, 5)
    extensions = st.none() | st.fixed_dictionaries({}, optional={
        "batch_timeout": i32, "partition_destination": i32, "request_timeout": i32,
        "priority": st.integers(-128, 127), "all_partition": st.just(True),
        "batch_call": st.just(True)})
    return st.tuples(names, params, st.integers(1000, 2 ** 62), extensions)


def _encode(name, params, handle, extensions=None):
    types = [int(t) for t, _v in params]
    values = [v for _t, v in params]
    try:
        return wire.encode_invocation(name, handle, values, types, extensions or None)
    except (VoltError, ValueError, TypeError, OverflowError):
        assume(False)


@FUZZ
@given(inv=_invocation_strategy(), cut=st.floats(0, 1, exclude_max=True),
       noise=st.binary(max_size=200), corrupt=st.booleans(), host=st.integers(0, 1))
def test_fuzz_truncated_and_corrupt_invocations_answer_or_close(cluster, inv, cut, noise,
                                                                 corrupt, host):
    """A truncated invocation, or one whose bytes after the header are random."""
    name, params, handle, extensions = inv
    body = _encode(name, params, handle, extensions)[4:]
    header_len = 1 + 4 + len(name.encode()) + 8
    if corrupt:
        body = body[:header_len] + noise
        assume(body[0] in (0, 2))  # version 1 puts a flag before the name
    else:
        body = body[:max(1, int(len(body) * cut))]
    k = len(body)
    s = _login(cluster.servers[host].client_port)
    try:
        _send(s, struct.pack(">i", k) + body)
        if corrupt:
            # the header is readable: an answer on our handle (an error, unless the noise
            # happens to be valid parameters), and the connection still serves
            got = _read_frame(s)
            assert got is not None, "an invocation with a readable header closed"
            h, resp = wire.decode_response(got, with_handle=True)
            assert h == handle and int(resp.status) in KNOWN_STATUSES, resp
            assert _send(s, wire.encode_invocation("@Ping", 77))
            h, resp = wire.decode_response(_read_frame(s), with_handle=True)
            assert (h, resp.status) == (77, Status.SUCCESS)
        elif k >= header_len:
            # the header is readable: an error answer on our handle, and the connection
            # still serves
            got = _read_frame(s)
            assert got is not None, "a truncated invocation with a readable header closed"
            h, resp = wire.decode_response(got, with_handle=True)
            assert h == handle and resp.status != Status.SUCCESS, resp
            assert _send(s, wire.encode_invocation("@Ping", 77))
            h, resp = wire.decode_response(_read_frame(s), with_handle=True)
            assert (h, resp.status) == (77, Status.SUCCESS)
        else:
            frames, closed, rest = _drain(s)
            assert closed and rest == b""
            _assert_answers_are_responses(frames)
    finally:
        s.close()
    _assert_cluster_healthy(cluster)


@FUZZ
@given(inv=_invocation_strategy(), host=st.integers(0, 1))
def test_fuzz_random_invocations_are_answered(cluster, inv, host):
    name, params, handle, extensions = inv
    frame = _encode(name, params, handle, extensions)
    s = _login(cluster.servers[host].client_port)
    try:
        # the call, then a ping pipelined behind it: both answered (in any order: a
        # multi-partition call may finish after the ping)
        assert _send(s, frame + wire.encode_invocation("@Ping", 78))
        answers = {}
        for _ in range(2):
            got = _read_frame(s)
            assert got is not None, f"no answer to {name!r} ({sorted(answers)})"
            h, resp = wire.decode_response(got, with_handle=True)
            assert h not in answers
            answers[h] = resp
        assert sorted(answers) == [78, handle]
        assert int(answers[handle].status) in KNOWN_STATUSES, answers[handle]
        assert answers[78].status == Status.SUCCESS
    finally:
        s.close()
    _assert_cluster_healthy(cluster)


# =========================================================================== JSON HTTP API


def _http(port: int, method: str = "GET", *, jsonp: str | None = None, raw: bool = False,
          **fields):
    """Call /api/1.0/ on port; return (HTTP status, parsed JSON or raw text)."""
    if "Parameters" in fields and not isinstance(fields["Parameters"], str):
        fields["Parameters"] = json.dumps(fields["Parameters"])
    if jsonp is not None:
        fields["jsonp"] = jsonp
    base = f"http://127.0.0.1:{port}/api/1.0/"
    query = urllib.parse.urlencode(fields)
    if method == "GET":
        req = urllib.request.Request(base + "?" + query, method="GET")
    else:
        req = urllib.request.Request(base, data=query.encode(), method="POST",
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            status, text = e.code, e.read().decode()
    return status, (text if raw else json.loads(text))


def test_json_http_api_on_a_non_leader_host(cluster):
    with Client(cluster.addresses) as c:
        topo = topology(c)
    front = cluster.host(1)  # host 0, the lowest id, coordinates multi-partition work
    other = next(s for s in cluster.servers if s is not front)
    assert front.http_port and other.http_port
    hz = make_hashinator(len(topo))
    # keys whose partition's leader is not the host we talk to
    remote = [k for k in range(1000, 3000)
              if topo[hz.partition_for_value(int(VType.BIGINT), k)][1] != front.host_id][:20]
    local = [k for k in range(1000, 3000)
             if topo[hz.partition_for_value(int(VType.BIGINT), k)][1] == front.host_id][:20]
    assert remote, f"every partition is led by host {front.host_id}: {topo}"

    # single-partition writes and reads through the non-leader host, GET and POST
    for i, k in enumerate(remote + local):
        method = "GET" if i % 2 else "POST"
        code, doc = _http(front.http_port, method, Procedure="HPut", Parameters=[k, f"v{k}"])
        assert code == 200 and doc["status"] == 1, doc
        assert doc["results"][0]["data"] == [[1]]
    for k in remote[:5] + local[:5]:
        code, doc = _http(front.http_port, Procedure="HGet", Parameters=[k])
        assert code == 200 and doc["status"] == 1, doc
        assert doc["results"][0]["data"] == [[f"v{k}"]]
    keys = remote + local
    # a multi-partition query (coordinated by another host) through @AdHoc, GET and POST
    for method in ("GET", "POST"):
        code, doc = _http(front.http_port, method, Procedure="@AdHoc",
                          Parameters=["SELECT COUNT(*), SUM(k) FROM hkv"])
        assert code == 200 and doc["status"] == 1, doc
        assert doc["results"][0]["data"] == [[len(keys), sum(keys)]]
    code, doc = _http(front.http_port, "POST", Procedure="@AdHoc",
                      Parameters=["SELECT k, v FROM hkv WHERE k IN (?, ?) ORDER BY k",
                                  remote[0], local[0]])
    assert doc["status"] == 1, doc
    assert doc["results"][0]["data"] == sorted([[remote[0], f"v{remote[0]}"],
                                                [local[0], f"v{local[0]}"]])
    # a write through one host's HTTP port, read through the other's
    code, doc = _http(other.http_port, "POST", Procedure="HPut", Parameters=[5, "é ✓ five"])
    assert doc["status"] == 1, doc
    code, doc = _http(front.http_port, Procedure="HGet", Parameters=[5])
    assert doc["results"][0]["data"] == [["é ✓ five"]]
    code, doc = _http(front.http_port, "POST", Procedure="@AdHoc",
                      Parameters=["UPDATE hkv SET v = 'mp' WHERE k < 1000"])
    assert doc["status"] == 1 and doc["results"][0]["data"] == [[1]], doc
    code, doc = _http(other.http_port, Procedure="HGet", Parameters=[5])
    assert doc["results"][0]["data"] == [["mp"]]
    # every column type, and NULLs, through the non-leader host's JSON API (rows whose
    # leader is the other host), read back through the other host's
    tid = next(k for k in range(8_000_000, 8_100_000)
               if topo[hz.partition_for_value(int(VType.INTEGER), k)][1] != front.host_id)
    micros = 1_709_209_845_123_456
    row = [tid, -5, 300, 2 ** 40, 2.5, "héllo ✓", micros, "-12.345678901234", "00FF10"]
    code, doc = _http(front.http_port, "POST", Procedure="PutTyped", Parameters=row)
    assert doc["status"] == 1, doc
    code, doc = _http(front.http_port, Procedure="PutTyped",
                      Parameters=[tid + 1] + [None] * 4 + ["\\N"] + [None] * 3)
    assert doc["status"] == 1, doc
    code, doc = _http(other.http_port, Procedure="GetTyped", Parameters=[tid])
    assert doc["status"] == 1, doc
    assert doc["results"][0]["data"] == [row[:7] + ["-12.345678901234", "00FF10"]]
    assert [c["name"] for c in doc["results"][0]["schema"]] == \
        ["ID", "TI", "SI", "BI", "F", "S", "TS", "D", "VB"]
    code, doc = _http(front.http_port, "POST", Procedure="GetTyped", Parameters=[tid + 1])
    assert doc["results"][0]["data"] == [[tid + 1] + [None] * 8], doc
    # jsonp, GET and POST
    for method in ("GET", "POST"):
        code, text = _http(front.http_port, method, jsonp="cb_1", raw=True,
                           Procedure="HGet", Parameters=[remote[1]])
        assert code == 200 and text.startswith("cb_1( ") and text.endswith(" )"), text
        doc = json.loads(text[len("cb_1( "):-2])
        assert doc["status"] == 1 and doc["results"][0]["data"] == [[f"v{remote[1]}"]]
    # bad parameters: JSON errors, from the HTTP layer and from the procedure
    code, doc = _http(front.http_port, Procedure="HGet", Parameters="[1")
    assert code == 400 and doc["status"] == -3 and doc["results"] == []
    assert doc["statusstring"].startswith("failed to parse invocation parameters"), doc
    code, doc = _http(front.http_port, "POST", Procedure="HGet", Parameters="{}")
    assert code == 400 and doc["status"] == -3
    code, doc = _http(front.http_port, Procedure="HGet", Parameters=["not a number"])
    assert code == 200 and doc["status"] == -2, doc
    code, doc = _http(front.http_port, "POST", Procedure="HGet", Parameters=[1, 2])
    assert code == 200 and doc["status"] == -2, doc
    code, doc = _http(front.http_port, Procedure="HPut", Parameters=[remote[0], "x" * 300])
    assert code == 200 and doc["status"] in (-2, -1), doc
    code, doc = _http(front.http_port, Procedure="NoSuchProc")
    assert code == 200 and doc["status"] == -3, doc
    code, doc = _http(front.http_port, Parameters="[]")
    assert code == 400 and doc["status"] == -3  # no Procedure
    code, doc = _http(front.http_port, Procedure="@AdHoc", Parameters=["SELEKT 1"])
    assert code == 200 and doc["status"] == -2, doc
    # nothing changed by the failures
    with Client(cluster.addresses) as c:
        assert c.call("@AdHoc", "SELECT COUNT(*) FROM hkv").tables[0].rows == \
            [(len(keys) + 1,)]
        assert c.call("HGet", remote[0]).tables[0].rows == [(f"v{remote[0]}",)]


# =========================================================================== official client


def test_official_client_every_type_on_each_host(cluster):
    voltdbclient = pytest.importorskip("voltdbclient")
    T = voltdbclient.FastSerializer
    VoltProcedure = voltdbclient.VoltProcedure
    scalar_types = [T.VOLTTYPE_INTEGER, T.VOLTTYPE_TINYINT, T.VOLTTYPE_SMALLINT,
                    T.VOLTTYPE_BIGINT, T.VOLTTYPE_FLOAT, T.VOLTTYPE_STRING,
                    T.VOLTTYPE_TIMESTAMP, T.VOLTTYPE_DECIMAL, T.VOLTTYPE_VARBINARY]
    array_types = [T.VOLTTYPE_TINYINT, T.VOLTTYPE_SMALLINT, T.VOLTTYPE_INTEGER,
                   T.VOLTTYPE_BIGINT, T.VOLTTYPE_FLOAT, T.VOLTTYPE_STRING,
                   T.VOLTTYPE_TIMESTAMP, T.VOLTTYPE_DECIMAL]
    ts = datetime.datetime(2024, 2, 29, 12, 30, 45, 123456)

    def row_for(key, i=0):
        return [key, -5 - i, 300 + i, 2 ** 40 + i, 2.5 + i, f"héllo ✓ {i}",
                ts + datetime.timedelta(seconds=i), decimal.Decimal("-12.345678901234") + i,
                bytes([0, 255, 16, i])]

    def check_row(got, want):
        assert got[:6] == want[:6]
        assert got[6].replace(tzinfo=None) == want[6]
        assert got[7] == want[7]
        assert bytes(got[8]) == want[8]

    arrays = [b"\x01\x02\xff", [1, -2, 32767], [7, -2 ** 31 + 1, 2 ** 31 - 1],
              [2 ** 62, -1, 0], [0.5, -1.25, 1e300], ["a", None, "ü✓", ""],
              [ts, ts + datetime.timedelta(days=400)],
              [decimal.Decimal("1.5"), decimal.Decimal("-99999999999999.999999999999")]]

    ids = {}
    for n, srv in enumerate(cluster.servers):
        fs = T("127.0.0.1", srv.client_port, connect_timeout=5, procedure_timeout=30)
        try:
            assert fs.hostId == srv.host_id
            put = VoltProcedure(fs, "PutTyped", scalar_types)
            base = 7_000_000 + 10 * n  # far from the small ids the fuzzers favour
            r = put.call(row_for(base, n + 1))
            assert r.status == 1, r.statusString
            assert r.tables[0].tuples == [[1]]
            r = put.call([base + 1] + [None] * 8)
            assert r.status == 1, r.statusString
            ids[base] = row_for(base, n + 1)
            ids[base + 1] = [base + 1] + [None] * 8
            # echo of every scalar type, with values and with NULLs
            echo = VoltProcedure(fs, "EchoScalars", scalar_types)
            r = echo.call(row_for(n, n))
            assert r.status == 1, r.statusString
            check_row(r.tables[0].tuples[0], row_for(n, n))
            assert [c.name for c in r.tables[0].columns] == \
                ["I", "TI", "SI", "BI", "F", "S", "TS", "D", "VB"]
            r = echo.call([None] * 9)
            assert r.status == 1, r.statusString
            assert r.tables[0].tuples == [[None] * 9]
            # arrays of every type the client can send
            r = VoltProcedure(fs, "EchoArrays", array_types).call(arrays)
            assert r.status == 1, r.statusString
            assert len(r.tables) == len(arrays)
            got = [[row[0] for row in t.tuples] for t in r.tables]
            assert got[0] == [1, 2, -1]
            assert got[1:6] == arrays[1:6]
            assert [x.replace(tzinfo=None) for x in got[6]] == arrays[6]
            assert got[7] == arrays[7]
        finally:
            fs.close()
    # every row, written through either host, read back through each host
    for srv in cluster.servers:
        fs = T("127.0.0.1", srv.client_port, connect_timeout=5, procedure_timeout=30)
        try:
            get = VoltProcedure(fs, "GetTyped", [T.VOLTTYPE_INTEGER])
            for i, want in ids.items():
                r = get.call([i])
                assert r.status == 1, r.statusString
                if want[1] is None:
                    assert r.tables[0].tuples == [want]
                else:
                    check_row(r.tables[0].tuples[0], want)
        finally:
            fs.close()


# =========================================================================== sqlcmd-py


def _sqlcmd(port, *args, stdin=None, cwd=None):
    """Run ``python -m voltdb_py.sqlcmd`` as a user would (a real process)."""
    env = dict(os.environ)
    env["TZ"] = "UTC"
    return subprocess.run(
        [sys.executable, "-m", "voltdb_py.sqlcmd", "--servers", f"127.0.0.1:{port}", *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
        check=False)


def test_sqlcmd_loads_and_runs_the_voter_example_on_a_cluster(tmp_path):
    with TempCluster(3, kfactor=1, sites_per_host=2) as cl:
        h0, h1, h2 = (cl.host(i) for i in range(3))
        # 1. the classes through host 0, 2. the schema through host 2 (not the coordinator)
        r = _sqlcmd(h0.client_port, "--query", "LOAD CLASSES voter.py;", cwd=VOTER)
        assert (r.returncode, r.stdout, r.stderr) == (0, "Command succeeded.\n", "")
        r = _sqlcmd(h2.client_port, stdin=(VOTER / "ddl.sql").read_text())
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Command succeeded.\n" * 2
        # 3. votes through every host; the per-phone limit (2) holds across hosts
        r = _sqlcmd(h1.client_port, "--query", f"exec Initialize 6 '{CONTESTANTS}';")
        assert r.returncode == 0, r.stderr
        assert "numContestants" in r.stdout and "6" in r.stdout
        counts: dict[int, int] = {}
        per_contestant: dict[int, int] = {}

        def expect(phone, contestant):  # what Vote answers, given the votes so far
            if not 1 <= contestant <= 6:
                return "1"
            if counts.get(phone, 0) >= 2:
                return "2"
            counts[phone] = counts.get(phone, 0) + 1
            per_contestant[contestant] = per_contestant.get(contestant, 0) + 1
            return "0"

        votes = [  # (host, phone, contestant): one sqlcmd run each, in this order
            (h0, 5085551234, 3), (h1, 5085551234, 3), (h2, 5085551234, 3),
            (h2, 6175550000, 5), (h0, 2125550001, 1), (h1, 2125550001, 9),
            (h1, 2125550001, 2), (h2, 2125550001, 2), (h0, 3035550002, 3),
            (h1, 7025550003, 6), (h2, 9995550004, 3), (h0, 9995550004, 4),
        ]
        answers, wanted = [], []
        for host, phone, contestant in votes:
            r = _sqlcmd(host.client_port, "--output-skip-metadata", "--query",
                        f"exec Vote {phone}, {contestant}, 2")
            assert r.returncode == 0, r.stderr
            answers.append(r.stdout.strip())
            wanted.append(expect(phone, contestant))
        assert answers == wanted
        assert wanted[:3] == ["0", "0", "2"] and wanted[5] == "1"
        # then a script file of votes through each host
        for n, host in enumerate((h0, h1, h2)):
            mine = [(6175550000 + n, 1 + n), (6175550000 + n, 2 + n), (6175550000 + n, 3),
                    (5085551234, 4), (3035550002, 5 + n), (8005550000 + n, 7)]
            script = tmp_path / f"votes{n}.sql"
            script.write_text("".join(f"exec Vote {p} {c} 2;\n" for p, c in mine))
            r = _sqlcmd(host.client_port, "--output-skip-metadata", str(script))
            assert r.returncode == 0, r.stderr
            assert r.stdout.split() == [expect(p, c) for p, c in mine], r.stdout
        total = sum(per_contestant.values())
        assert total == sum(counts.values()) > 10

        # 4. the same answers through every host
        results = set()
        for s in cl.servers:
            with Client([f"127.0.0.1:{s.client_port}"], topology_aware=False) as c:
                assert c.call("@AdHoc", "SELECT COUNT(*) FROM votes").tables[0].rows == \
                    [(total,)]
                view = c.call("@AdHoc", "SELECT contestant_number, SUM(num_votes) FROM "
                                        "v_votes_by_contestant_number_state "
                                        "GROUP BY contestant_number ORDER BY 1")
                assert dict(view.tables[0].rows) == per_contestant
                phones = c.call("@AdHoc", "SELECT SUM(num_votes), COUNT(*) FROM "
                                          "v_votes_by_phone_number")
                assert phones.tables[0].rows == [(total, len(counts))]
                res = c.call("Results")
                assert res.status == Status.SUCCESS, res
                results.add(tuple(res.tables[0].rows))
        assert len(results) == 1
        (rows,) = results
        assert rows[0][1] == max(per_contestant, key=lambda k: (per_contestant[k], -k))
        # sqlcmd's own select through another host agrees
        r = _sqlcmd(h2.client_port, "--output-format", "csv", "--output-skip-metadata",
                    "--query", "select count(*) from votes;")
        assert r.returncode == 0 and r.stdout.split() == [str(total)], (r.stdout, r.stderr)
        with Client(cl.addresses) as c:
            topo = topology(c)
        cl.stop()
        sums = replica_checksums_agree(cl, topo)
        assert any(sums[h][pid] != 0 for pid, (reps, _l) in topo.items() for h in reps)

# SPDX-License-Identifier: AGPL-3.0-or-later
"""The compiled intakes of a cluster host (cluster_intake, against Database.route) and of a
one-host server (server_intake), and the encoding of a group's answers.

The cluster intake queues the calls a host can run at once (user procedure, integer key, partition
led here) and leaves every other frame, in order, to the general path. The oracle is the
general path's own rule: decode_invocation, then Database.route, then the leader map.
"""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voltdb_py import Database, wire
from voltdb_py.types import ClientResponse, Status
from voltdb_py.engine import _engine

DDL = """
CREATE TABLE kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(20));
PARTITION TABLE kv ON COLUMN k;
CREATE TABLE t (s SMALLINT NOT NULL PRIMARY KEY, v VARCHAR(20));
PARTITION TABLE t ON COLUMN s;
CREATE TABLE n (name VARCHAR(20) NOT NULL PRIMARY KEY, v INTEGER);
PARTITION TABLE n ON COLUMN name;
CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
CREATE PROCEDURE PutS PARTITION ON TABLE t COLUMN s AS UPSERT INTO t VALUES (?, ?);
CREATE PROCEDURE PutN PARTITION ON TABLE n COLUMN name AS UPSERT INTO n VALUES (?, ?);
CREATE PROCEDURE CountKv AS SELECT COUNT(*) FROM kv;
"""
HOST = 1


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = Database.open(tmp_path_factory.mktemp("intake"), sites_per_host=6)
    d.execute_ddl(DDL)
    yield d
    d.close()


def leader_map(leaders: list[int]):
    return MappingProxyType({pid: SimpleNamespace(leader=h) for pid, h in enumerate(leaders)})


def expected(db, body: bytes, parts) -> tuple | None:
    """The call the intake must queue for body, or None when it must stop there."""
    try:
        proc, handle, params, ext = wire.decode_invocation(body)
    except Exception:  # noqa: BLE001 - a frame that does not decode goes the general way
        return None
    if ext or proc.startswith("@"):
        return None
    rt = db._procs.get(proc)
    if rt is None or rt.part_int < 0 or not 0 <= rt.part_index < len(params):
        return None
    if type(params[rt.part_index]) is not int:
        return None
    pid, ro = db.route(proc, params)
    if pid is None or pid < 0 or getattr(parts.get(pid), "leader", None) != HOST:
        return None
    return pid, proc, params, ro, handle


keys = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-2**70, 2**70),
                 st.sampled_from([-2**63, -32768, 0, 1, 32767, 32768]),
                 st.none(), st.text(max_size=3), st.floats(allow_nan=False))


@st.composite
def frames(draw):
    kind = draw(st.sampled_from(["Put", "Get", "PutS", "PutN", "CountKv", "@Ping",
                                 "Nope", "ext", "bad"]))
    handle = draw(st.integers(-2**63, 2**63 - 1))
    if kind == "bad":
        return draw(st.binary(max_size=12))
    if kind == "ext":
        return wire.encode_invocation("Put", handle, (1, "x"),
                                      extensions={"partition_destination": 0})[4:]
    params: tuple = ()
    if kind in ("Put", "PutS", "PutN"):
        params = (draw(keys), "v")
    elif kind == "Get":
        params = (draw(keys),)
    try:
        return wire.encode_invocation(kind, handle, params)[4:]
    except Exception:  # noqa: BLE001 - a value the wire cannot carry: send a plain one
        return wire.encode_invocation(kind, handle, (7, "v")[:len(params)])[4:]


@settings(max_examples=300, deadline=None)
@given(bodies=st.lists(frames(), max_size=12),
       leaders=st.lists(st.sampled_from([0, HOST, 2]), min_size=6, max_size=6),
       start=st.integers(0, 3))
def test_intake_takes_exactly_the_calls_the_general_path_would_run_here(db, bodies, leaders,
                                                                       start):
    parts = leader_map(leaders)
    start = min(start, len(bodies))
    batch: list = ["queued before"]
    stop, decoded = _engine.cluster_intake("conn", bodies, start, batch, db._procs,
                                           db._hashinator, parts, HOST)
    want = []
    for i in range(start, len(bodies)):
        e = expected(db, bodies[i], parts)
        if e is None:
            break
        want.append(e)
    assert stop == start + len(want)
    assert batch[0] == "queued before"
    got = [(c.pid, c.proc, c.params, c.read_only, c.handle) for c in batch[1:]]
    assert got == want
    for c in batch[1:]:
        assert c.conn == "conn" and c.reply is None and c.moved is None
        assert c.dest is None and c.attempt == 0
    if stop < len(bodies):
        try:
            assert decoded == wire.decode_invocation(bodies[stop])
        except Exception:  # noqa: BLE001
            assert decoded is None  # the general path decodes it again and says why
    else:
        assert decoded is None


def test_intake_needs_the_engine_ring(db):
    body = wire.encode_invocation("Put", 5, (1, "v"))[4:]
    parts = leader_map([HOST] * 6)
    batch: list = []
    assert _engine.cluster_intake(None, [body], 0, batch, db._procs, None, parts, HOST) \
        == (0, ("Put", 5, (1, "v"), {}))
    assert batch == []


def test_cluster_call_keeps_what_it_was_given():
    c = _engine.ClusterCall(3, "Put", [1, "v"], None, True, print)
    assert (c.pid, c.proc, c.params, c.dest, c.read_only, c.reply, c.moved, c.conn,
            c.handle, c.attempt) == (3, "Put", [1, "v"], None, True, print, None, None, 0, 0)
    c.attempt += 1
    c.dest = 4
    assert (c.attempt, c.dest) == (1, 4)
    assert "Put" in repr(c)
    with pytest.raises(TypeError):
        _engine.ClusterCall("three", "Put", (), None, False, None)


# --- a one-host server's intake (engine server_intake) and answers (encode_call_answers) --

@settings(max_examples=300, deadline=None)
@given(bodies=st.lists(frames(), max_size=12), start=st.integers(0, 3))
def test_server_intake_takes_the_plain_user_calls_in_order(bodies, start):
    """The oracle is the old Python loop of NodeServer.execute_frames: decode, then group
    every call without extensions whose procedure does not start with "@"."""
    start = min(start, len(bodies))
    calls: list = [("before", (), 0)]
    stop, decoded = _engine.server_intake(bodies, start, calls)
    want = []
    for i in range(start, len(bodies)):
        try:
            proc, handle, params, ext = wire.decode_invocation(bodies[i])
        except Exception:  # noqa: BLE001 - a frame that does not decode stops the intake
            break
        if ext or proc.startswith("@"):
            break
        want.append((proc, params, handle))
    assert stop == start + len(want)
    assert calls == [("before", (), 0)] + want
    if stop < len(bodies):
        try:
            assert decoded == wire.decode_invocation(bodies[stop])
        except Exception:  # noqa: BLE001
            assert decoded is None
    else:
        assert decoded is None


def test_encode_call_answers_is_the_frames_of_each_answer(db):
    calls = [("Get", (1,), 7), ("Put", (1, "v"), -3), ("Bad", (), 2**62)]
    cols = db._procs["Get"].result_columns
    good = ClientResponse(Status.GRACEFUL_FAILURE, "no")
    unencodable = ClientResponse(Status.SUCCESS, None, -128, None, [object()])
    data = _engine.encode_call_answers(calls, [(cols, [("x",)]), good, unencodable], 9)
    assert data.startswith(wire.encode_response_list([7], [(cols, [("x",)])], False, 9)[0])
    pairs, used, err = wire.decode_response_frames(data)
    assert err is None and used == len(data)
    assert [h for h, _r in pairs] == [7, -3, 2**62]
    assert pairs[0][1].tables[0].rows == [("x",)]
    assert (pairs[1][1].status, pairs[1][1].status_string) == (Status.GRACEFUL_FAILURE, "no")
    assert pairs[2][1].status == Status.UNEXPECTED_FAILURE
    assert pairs[2][1].status_string.startswith("the result of Bad cannot be serialized")
    assert _engine.encode_call_answers([], []) == b""
    with pytest.raises(ValueError, match="2 calls for 1 results"):
        _engine.encode_call_answers(calls[:2], [good])

# SPDX-License-Identifier: AGPL-3.0-or-later
"""The client's compiled router (engine CallRouter) against a pure-Python oracle."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voltdb_py import hashinator as H
from voltdb_py import wire
from voltdb_py.engine import _engine
from voltdb_py.errors import VoltError
from voltdb_py.types import VoltType

from support import hash_oracle as oracle

INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
INT_TYPES = {int(VoltType.TINYINT): -128, int(VoltType.SMALLINT): -32768,
             int(VoltType.INTEGER): -2**31, int(VoltType.BIGINT): -2**63}
MP = 16383


@st.composite
def rings(draw):
    rest = draw(st.lists(st.integers(INT32_MIN + 1, INT32_MAX), unique=True, max_size=30))
    tokens = [INT32_MIN] + sorted(rest)
    parts = draw(st.lists(st.integers(0, 12), min_size=len(tokens), max_size=len(tokens)))
    return list(zip(tokens, parts))


def expected_partition(ring, procs, procedure, params):
    """What the router must answer: the routing rules written out in Python."""
    info = procs.get(procedure)
    if info is None:
        return None
    single, pidx, ptype = info
    if not single:
        return MP
    if ring is None or pidx < 0 or pidx >= len(params):
        return None
    v = params[pidx]
    if type(v) is int and ptype in INT_TYPES:
        if not -2**63 <= v < 2**63:
            return None
        if v == INT_TYPES[ptype]:
            return 0  # the type's NULL
        return oracle.floor_lookup(ring, oracle.token_int(v))
    if ptype == int(VoltType.STRING) and isinstance(v, str):
        return oracle.floor_lookup(ring, oracle.token(v.encode()))
    if ptype == int(VoltType.VARBINARY) and isinstance(v, bytes):
        return oracle.floor_lookup(ring, oracle.token(v))
    try:  # other values: the coercing Python rule
        return H.partition_for_parameter(_engine.Hashinator(H.raw_config(ring)), ptype, v)
    except (VoltError, TypeError, ValueError, OverflowError):
        return None


PROCS = {
    "GetI": (True, 0, int(VoltType.INTEGER)),
    "GetB": (True, 1, int(VoltType.BIGINT)),
    "GetT": (True, 0, int(VoltType.TINYINT)),
    "GetS": (True, 0, int(VoltType.STRING)),
    "GetV": (True, 0, int(VoltType.VARBINARY)),
    "Multi": (False, -1, -1),
}
VALUES = (st.integers(-2**64, 2**64) | st.sampled_from([-128, -32768, -2**31, -2**63])
          | st.text(max_size=8) | st.binary(max_size=8) | st.none() | st.floats(allow_nan=False)
          | st.decimals(allow_nan=False, allow_infinity=False, places=2) | st.booleans())


@given(st.none() | rings(), st.sampled_from(sorted(PROCS) + ["Unknown", "@AdHoc"]),
       st.lists(VALUES, max_size=3))
def test_partition_matches_oracle(ring, procedure, params):
    r = _engine.CallRouter(H.partition_for_parameter, MP)
    r.procedures = dict(PROCS)
    r.hashinator = None if ring is None else _engine.Hashinator(H.raw_config(ring))
    params = tuple(params)
    want = expected_partition(ring, PROCS, procedure, params)
    assert r.partition(procedure, params) == want
    targets = {p: f"conn-{p}" for p in range(0, 13, 2)} | {MP: "coordinator"}
    r.set_targets(targets)
    assert r.route(procedure, params) == (None if want is None else targets.get(want))


def test_targets_are_copied_and_replaced():
    r = _engine.CallRouter(H.partition_for_parameter)
    assert r.mp_partition == MP and r.targets == {}
    r.procedures = {"Multi": (False, -1, -1)}
    t = {MP: "a"}
    r.set_targets(t)
    t[MP] = "b"
    assert r.route("Multi", ()) == "a"
    r.set_targets({})
    assert r.route("Multi", ()) is None
    with pytest.raises(TypeError):
        r.set_targets(None)
    with pytest.raises(TypeError):
        r.hashinator = "not a ring"


def test_fallback_errors():
    """A value error of the fallback means "no partition"; anything else is a bug and
    propagates."""
    seen = []

    def fallback(hz, ptype, value):
        seen.append(value)
        if value == "bad":
            raise ValueError("bad value")
        raise RuntimeError("boom")

    r = _engine.CallRouter(fallback)
    r.procedures = {"GetS": (True, 0, int(VoltType.STRING))}
    r.hashinator = _engine.Hashinator(H.raw_config([(INT32_MIN, 0)]))
    assert r.partition("GetS", ("bad",)) is None
    with pytest.raises(RuntimeError, match="boom"):
        r.partition("GetS", ("x",))
    assert seen == ["bad", "x"]


class _Conn:
    """The attributes of client._async._Conn that CallRouter.submit uses."""

    def __init__(self, name: str, alive: bool = True) -> None:
        self.name, self.alive = name, alive
        self.pending: dict = {}
        self.out: list = []
        self.flush_scheduled = False
        self.affinity_calls = 0
        self.flushes = 0

    def _flush(self) -> None:
        self.flushes += 1
        self.flush_scheduled = False


class _Client:
    """The attributes of client._async.AsyncClient that CallRouter.submit uses."""

    def __init__(self, loop, fallback_conn: _Conn) -> None:
        self._loop = loop
        self._in_flight = 0
        self.fallback = fallback_conn
        self.round_robin = 0

    def _round_robin(self) -> _Conn:
        self.round_robin += 1
        return self.fallback


@given(st.none() | rings(), st.lists(st.tuples(
    st.sampled_from(sorted(PROCS) + ["Unknown"]), st.lists(VALUES, max_size=3)), max_size=6),
    st.sets(st.integers(0, 12)))
def test_submit_routes_registers_and_queues_like_the_python_path(ring, calls, dead):
    """submit = route (round-robin without a live leader) + encode + register + queue."""
    loop = asyncio.new_event_loop()
    try:
        r = _engine.CallRouter(H.partition_for_parameter, MP)
        r.procedures = dict(PROCS)
        r.hashinator = None if ring is None else _engine.Hashinator(H.raw_config(ring))
        conns = {p: _Conn(f"c{p}", p not in dead) for p in range(13)} | {MP: _Conn("mp")}
        r.set_targets(conns)
        rr = _Conn("round-robin")
        client = _Client(loop, rr)
        want_in_flight, want_rr, queued = 0, 0, {}
        for handle, (procedure, params) in enumerate(calls):
            params = tuple(params)
            try:
                frame = wire.encode_invocation(procedure, handle, params)
            except VoltError as exc:
                with pytest.raises(type(exc)):
                    r.submit(client, procedure, params, handle, 1.5)
                continue
            target = r.route(procedure, params)
            if target is None or not target.alive:
                target, want_rr = rr, want_rr + 1
            fut = r.submit(client, procedure, params, handle, 100.0 + handle)
            want_in_flight += 1
            assert target.pending[handle] == (fut, 100.0 + handle) and not fut.done()
            assert target.out[-1] == frame and target.flush_scheduled
            queued.setdefault(target.name, []).append(frame)
        assert client._in_flight == want_in_flight and client.round_robin == want_rr
        loop.call_soon(loop.stop)
        loop.run_forever()  # each connection with calls flushes once
        for c in [rr, *conns.values()]:
            assert c.out == queued.get(c.name, [])
            assert c.flushes == (1 if c.name in queued else 0)
            assert c.affinity_calls == (0 if c is rr else len(queued.get(c.name, [])))
    finally:
        loop.close()

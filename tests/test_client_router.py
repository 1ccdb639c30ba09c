# SPDX-License-Identifier: AGPL-3.0-or-later
"""The client's compiled router (engine CallRouter) against a pure-Python oracle."""

from __future__ import annotations

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
    try:
        frame = wire.encode_invocation(procedure, 77, params)
    except VoltError as exc:
        with pytest.raises(type(exc)):
            r.route_encode(procedure, 77, params)
    else:
        assert r.route_encode(procedure, 77, params) == (r.route(procedure, params), frame)


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

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Wire codec speed: decode_invocation and encode_response beside struct on the same fields."""

from __future__ import annotations

import struct

import pytest

from voltdb_py import wire
from voltdb_py.types import Column, VoltTable, VoltType

pytestmark = pytest.mark.bench

GET_BODY = wire.encode_invocation("KV.get", 12345, [b"key-000042"], [VoltType.VARBINARY])[4:]
CALL3_BODY = wire.encode_invocation("Vote", 12346, [5551234567, 7, 2],
                                    [VoltType.BIGINT, VoltType.TINYINT, VoltType.INTEGER])[4:]
KV_TABLE = VoltTable([Column("K", VoltType.VARBINARY), Column("V", VoltType.VARBINARY)],
                     [(b"key-000042", b"v" * 100)])
VOTE_TABLE = VoltTable([Column("RESULT", VoltType.BIGINT)], [(0,)])

# The same fields with struct: version, name, handle, count, then the typed params.
_HEAD = struct.Struct(">bi")
_HANDLE_COUNT = struct.Struct(">qh")
_V3 = struct.Struct(">bqbbbi")


def struct_decode_get(body: bytes):
    """Parse the KV.get body with struct: the raw-primitive baseline."""
    _, n = _HEAD.unpack_from(body)
    name = body[5:5 + n].decode()
    off = 5 + n
    handle, cnt = _HANDLE_COUNT.unpack_from(body, off)
    off += 10
    (ln,) = struct.unpack_from(">i", body, off + 1)
    return name, handle, (body[off + 5:off + 5 + ln],)


def struct_decode_3(body: bytes):
    """Parse the 3-parameter body with struct."""
    _, n = _HEAD.unpack_from(body)
    name = body[5:5 + n].decode()
    off = 5 + n
    handle, cnt = _HANDLE_COUNT.unpack_from(body, off)
    off += 10
    _, a, _, b, _, c = _V3.unpack_from(body, off)
    return name, handle, (a, b, c)


def struct_encode_kv_response(handle: int, k: bytes, v: bytes) -> bytes:
    """Build the KV.get response with struct (the same bytes as encode_response)."""
    row = struct.pack(">i", len(k)) + k + struct.pack(">i", len(v)) + v
    header = b"\x80\x00\x02\x19\x19" + b"\x00\x00\x00\x01K\x00\x00\x00\x01V"
    table = struct.pack(">i", len(header)) + header + struct.pack(">ii", 1, len(row)) + row
    table = struct.pack(">i", len(table)) + table
    body = struct.pack(">bqbbbih", 0, handle, 0, 1, -128, 0, 1) + table
    return struct.pack(">i", len(body)) + body


def test_struct_baselines_match():
    assert wire.decode_invocation(GET_BODY)[:3] == struct_decode_get(GET_BODY)
    assert wire.decode_invocation(CALL3_BODY)[:3] == struct_decode_3(CALL3_BODY)
    assert wire.encode_response(1, 1, None, None, None, [KV_TABLE]) == \
        struct_encode_kv_response(1, b"key-000042", b"v" * 100)


@pytest.mark.parametrize("body", [GET_BODY, CALL3_BODY], ids=["kv_get", "call3"])
def test_decode_invocation(benchmark, body):
    assert benchmark(wire.decode_invocation, body)[1] in (12345, 12346)


@pytest.mark.parametrize("fn,body", [(struct_decode_get, GET_BODY), (struct_decode_3, CALL3_BODY)],
                         ids=["kv_get", "call3"])
def test_struct_decode(benchmark, fn, body):
    assert benchmark(fn, body)[1] in (12345, 12346)


@pytest.mark.parametrize("table", [KV_TABLE, VOTE_TABLE], ids=["kv_get", "call3"])
def test_encode_response(benchmark, table):
    assert benchmark(wire.encode_response, 12345, 1, None, None, None, [table])[:4] != b""


def test_struct_encode_response(benchmark):
    assert len(benchmark(struct_encode_kv_response, 12345, b"key-000042", b"v" * 100)) > 100


def test_encode_invocation(benchmark):
    assert benchmark(wire.encode_invocation, "Vote", 1, [5551234567, 7, 2])[:4] != b""

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Wire protocol codecs: §16 vectors, round trips, interop with voltdbclient 16.1.0, fuzzing."""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import decimal
import hashlib
import socket
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from voltdb_py import wire
from voltdb_py.errors import CodecError, TypeMismatchError, ValueOutOfRangeError
from voltdb_py.types import ClientResponse, Column, VoltTable, VoltType

from support import hash_oracle, wire_oracle

voltdbclient = pytest.importorskip("voltdbclient")
voltclient = pytest.importorskip("voltclient")
FastSerializer = voltdbclient.FastSerializer


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", "").replace("|", "").replace("\n", ""))


# ---------------------------------------------------------------- §16 vectors

V_LOGIN = h("""00 00 00 32 01 01 00 00 00 08 64 61 74 61 62 61 73 65 00 00 00 00
e3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24 27 ae 41 e4 64 9b 93 4c a4 95 99 1b 78 52 b8 55""")
V_LOGIN_OK = h("""00 00 00 23 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 01 8b cf e5 68 00
7f 00 00 01 00 00 00 05 76 31 34 2e 30""")
V_HELLO = h("00 00 00 1d 00 00 00 00 05 48 65 6c 6c 6f 00 00 00 00 00 00 00 01 00 01 09 00 00 00 04 56 6f 6c 74")
V_PERPART = h("""00 00 00 29 02 00 00 00 0c 50 65 72 50 61 72 74 69 74 69 6f 6e 00 00 00 00 00 00 00 02
02 02 00 03 03 00 00 00 01 00 01 05 00 00 00 04""")
V_PING = h("00 00 00 14 00 00 00 00 05 40 50 69 6e 67 7f ff ff ff ff ff ff ff 00 00")
V_RESPONSE = h("""00 00 00 46 | 00 | 00 00 00 00 00 00 00 01 | 00 | 01 | 80 | 00 00 00 00 | 00 01
00 00 00 30 | 00 00 00 16 | 80 | 00 02 | 09 06 |
00 00 00 08 47 52 45 45 54 49 4e 47 | 00 00 00 01 4e |
00 00 00 01 | 00 00 00 0e 00 00 00 02 48 69 00 00 00 00 00 00 00 2a""")
GREETING = VoltTable([Column("GREETING", VoltType.STRING), Column("N", VoltType.BIGINT)], [("Hi", 42)])


def test_vector_login_request():
    assert wire.encode_login("", "") == V_LOGIN
    frames, used = wire.split_frames(V_LOGIN, 1 << 20)
    assert used == len(V_LOGIN)
    assert wire.decode_login(frames[0]) == (1, 1, "database", "", hashlib.sha256(b"").digest())


def test_vector_login_response():
    assert wire.encode_login_response(0, 0, 1, 1700000000000, "127.0.0.1", "v14.0") == V_LOGIN_OK
    assert wire.encode_login_response(0, 0, 1, 1700000000000, 0x7F000001, "v14.0") == V_LOGIN_OK
    assert wire.decode_login_response(V_LOGIN_OK[4:]) == (0, 0, 1, 1700000000000, 0x7F000001, "v14.0")


def test_vector_invocations():
    assert wire.encode_invocation("Hello", 1, ["Volt"]) == V_HELLO
    assert wire.encode_invocation("Hello", 1, ["Volt"], [VoltType.STRING]) == V_HELLO
    assert wire.decode_invocation(V_HELLO[4:]) == ("Hello", 1, ("Volt",), {})
    ext = {"all_partition": True, "partition_destination": 1}
    assert wire.encode_invocation("PerPartition", 2, [4], [VoltType.INTEGER], ext) == V_PERPART
    assert wire.decode_invocation(V_PERPART[4:]) == ("PerPartition", 2, (4,), ext)
    assert wire.encode_invocation("@Ping", wire.PING_HANDLE, []) == V_PING
    assert wire.decode_invocation(V_PING[4:]) == ("@Ping", wire.PING_HANDLE, (), {})


def test_vector_response():
    assert wire.encode_response(1, 1, None, None, None, [GREETING]) == V_RESPONSE
    assert wire.encode_volttable(GREETING) == V_RESPONSE[22:]
    handle, resp = wire.decode_response(V_RESPONSE[4:], with_handle=True)
    assert handle == 1
    assert isinstance(resp, ClientResponse)
    assert (resp.status, resp.status_string, resp.app_status, resp.app_status_string) == (1, None, -128, None)
    assert resp.tables == [GREETING]
    assert wire.decode_volttable(V_RESPONSE[22:]) == GREETING


# ---------------------------------------------------------------- framing

def test_split_frames_partial_and_types():
    data = V_HELLO + V_PING + V_LOGIN[:10]
    for buf in (data, bytearray(data), memoryview(data)):
        frames, used = wire.split_frames(buf, 1000)
        assert frames == [V_HELLO[4:], V_PING[4:]]
        assert used == len(V_HELLO) + len(V_PING)
    assert wire.split_frames(b"\x00\x00", 10) == ([], 0)
    assert wire.split_frames(b"", 10) == ([], 0)


@pytest.mark.parametrize("length", [0, -1, -2**31, 101, 2**31 - 1])
def test_split_frames_rejects_bad_length(length):
    buf = V_HELLO + struct.pack(">i", length) + b"x" * 5
    with pytest.raises(CodecError, match=rf"frame length {length} at offset {len(V_HELLO)}"):
        wire.split_frames(buf, 100)


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8), st.data())
def test_frame_buffer_any_chunking(bodies, data):
    stream = b"".join(struct.pack(">i", len(b)) + b for b in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    fb = wire.FrameBuffer(64)
    got, prev = [], 0
    for c in cuts + [len(stream)]:
        got += fb.feed(stream[prev:c])
        prev = c
    assert got == bodies
    assert fb.pending() == 0


def test_read_frame_asyncio():
    async def run():
        r = asyncio.StreamReader()
        r.feed_data(V_HELLO + V_PING + struct.pack(">i", 0))
        r.feed_eof()
        assert await wire.read_frame(r) == V_HELLO[4:]
        assert await wire.read_frame(r, 100) == V_PING[4:]
        with pytest.raises(CodecError, match="frame length 0"):
            await wire.read_frame(r)
    asyncio.run(run())


# ---------------------------------------------------------------- login

def test_login_versions_and_failures():
    legacy = wire.encode_login("bob", "pw", hash_scheme=0, protocol_version=0)
    assert wire.decode_login(legacy[4:]) == (0, 0, "database", "bob", hashlib.sha1(b"pw").digest())
    v1sha1 = wire.encode_login("bob", "pw", hash_scheme=0)
    assert wire.decode_login(v1sha1[4:])[1:] == (0, "database", "bob", hashlib.sha1(b"pw").digest())
    # Unknown scheme is returned for the server to answer code 3.
    assert wire.decode_login(b"\x01\x07" + b"\x00\x00\x00\x01x" + b"\x00\x00\x00\x00")[1] == 7
    with pytest.raises(CodecError, match="login protocol version 2"):
        wire.decode_login(b"\x02\x05abc")
    with pytest.raises(CodecError, match="login username: NULL"):
        wire.decode_login(b"\x01\x01\x00\x00\x00\x00\xff\xff\xff\xff")
    assert wire.encode_login_failure(-1) == b"\x00\x00\x00\x02\x00\xff"
    assert wire.decode_login_response(b"\x00\x03") == (3, None, None, None, None, None)
    assert wire.encode_login_response(5, 0, 0, 0, 0, "") == b"\x00\x00\x00\x02\x00\x05"
    with pytest.raises(ValueOutOfRangeError):
        wire.encode_login_failure(0)


# ---------------------------------------------------------------- value strategies

def _ints(bits):
    lim = 2 ** (bits - 1) - 1
    return st.integers(-lim, lim)


_DEC = st.integers(-(10**38 - 1), 10**38 - 1).map(lambda u: decimal.Decimal(f"{u}E-12"))
_FLOAT = st.floats(min_value=-1.6e308, allow_nan=False, allow_infinity=False)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
_POINT = st.tuples(st.floats(-180, 180), st.floats(-90, 90))
VALUES = {
    VoltType.TINYINT: _ints(8),
    VoltType.SMALLINT: _ints(16),
    VoltType.INTEGER: _ints(32),
    VoltType.BIGINT: _ints(64),
    VoltType.FLOAT: _FLOAT,
    VoltType.STRING: _TEXT,
    VoltType.TIMESTAMP: _ints(64),
    VoltType.DECIMAL: _DEC,
    VoltType.VARBINARY: st.binary(max_size=30),
    wire.T_BOOLEAN: st.booleans(),
    wire.T_DATE: st.dates(),
    wire.T_GEOGRAPHY_POINT: _POINT,
}
NULLABLE = {t: st.none() | s for t, s in VALUES.items()}
COLUMN_TYPES = list(VALUES) + [VoltType.NULL]


@st.composite
def typed_params(draw):
    """A list of (type, value) parameters: scalars with NULLs, arrays and byte arrays."""
    out = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["scalar", "scalar", "array", "bytes", "null"]))
        if kind == "null":
            out.append((VoltType.NULL, None))
            continue
        t = draw(st.sampled_from(list(VALUES)))
        if kind == "scalar":
            out.append((t, draw(NULLABLE[t])))
        elif kind == "bytes":
            out.append((VoltType.TINYINT, draw(st.binary(max_size=40))))
        elif t is not VoltType.TINYINT:
            out.append((t, draw(st.lists(NULLABLE[t], max_size=5))))
    return out


@st.composite
def tables(draw, types=COLUMN_TYPES):
    ncols = draw(st.integers(1, 6))
    cols = [Column(draw(st.text("ABCDEFGH_", min_size=1, max_size=8)), draw(st.sampled_from(types)))
            for _ in range(ncols)]
    rows = [tuple(None if c.type == VoltType.NULL else draw(NULLABLE[c.type]) for c in cols)
            for _ in range(draw(st.integers(0, 5)))]
    return VoltTable(cols, rows)


# ---------------------------------------------------------------- round trips (ours <-> ours)

@given(typed_params(), st.integers(-2**63, 2**63 - 1), _TEXT.filter(bool))
def test_invocation_round_trip_typed(params, handle, name):
    frame = wire.encode_invocation(name, handle, [v for _, v in params], [t for t, _ in params])
    frames, used = wire.split_frames(frame, len(frame))
    assert used == len(frame)
    got = wire.decode_invocation(frames[0])
    assert got == (name, handle, tuple(v for _, v in params), {})


@given(st.lists(st.one_of(st.none(), st.booleans(), _ints(64), _FLOAT, _TEXT, st.binary(max_size=9),
                          _DEC, st.dates(), st.lists(_ints(64), max_size=4),
                          st.lists(st.none() | _TEXT, min_size=1, max_size=4)), max_size=8),
       st.dictionaries(st.sampled_from(["batch_timeout", "partition_destination", "request_timeout"]),
                       _ints(32)) | st.just({"all_partition": True, "batch_call": True, "priority": 3}))
def test_invocation_round_trip_inferred(params, ext):
    got = wire.decode_invocation(wire.encode_invocation("P", 7, params, extensions=ext)[4:])
    assert got == ("P", 7, tuple(params), ext)


def test_invocation_inferred_datetime_and_table():
    when = dt.datetime(2024, 2, 29, 12, 30, 1, 250)
    aware = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))
    got = wire.decode_invocation(wire.encode_invocation("P", 1, [when, aware, GREETING])[4:])[2]
    micros = (when - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    assert got == (micros, micros - 2 * 3600 * 10**6, GREETING)


def test_invocation_explicit_types_coerce_and_reject():
    got = wire.decode_invocation(wire.encode_invocation(
        "P", 1, ["12", 3.0, "ff00", -128, dt.datetime(1970, 1, 1, 0, 0, 1)],
        [VoltType.INTEGER, VoltType.BIGINT, VoltType.VARBINARY, VoltType.TINYINT, VoltType.TIMESTAMP])[4:])
    assert got[2] == (12, 3, b"\xff\x00", None, 1_000_000)
    with pytest.raises(ValueOutOfRangeError):
        wire.encode_invocation("P", 1, [128], [VoltType.TINYINT])
    with pytest.raises(TypeMismatchError):
        wire.encode_invocation("P", 1, [object()])
    with pytest.raises(ValueOutOfRangeError):
        wire.encode_invocation("P", 1, [1, 2], [VoltType.BIGINT])
    with pytest.raises(ValueOutOfRangeError):
        wire.encode_invocation("P", 1, [], extensions={"nope": 1})


def test_invocation_version1_and_unknown_extension():
    body = b"\x01\x01\x00\x00\x03\xe8" + V_HELLO[5:]
    assert wire.decode_invocation(body) == ("Hello", 1, ("Volt",), {"batch_timeout": 1000})
    assert wire.decode_invocation(b"\x01\xff" + V_HELLO[5:])[3] == {}
    head = V_PERPART[5:4 + 1 + 4 + 12 + 8]
    # extension 99 with an 8-byte payload is skipped by its size code
    body = b"\x02" + head + b"\x01" + b"\x63\x04" + b"\x00" * 8 + b"\x00\x00"
    assert wire.decode_invocation(body) == ("PerPartition", 2, (), {})


def _assert_table_equal(got: VoltTable, want: VoltTable):
    assert [c.name for c in got.columns] == [c.name for c in want.columns]
    assert [int(c.type) for c in got.columns] == [int(c.type) for c in want.columns]
    assert got.rows == [tuple(r) for r in want.rows]


@given(st.lists(tables(), max_size=3), st.sampled_from(list(wire_status := [1, -1, -2, -3, -5, -7, -9])),
       st.none() | _TEXT, st.none() | st.integers(-127, 127), st.none() | _TEXT, _ints(32),
       st.integers(-2**63, 2**63 - 1))
def test_response_round_trip(tbls, status, sstr, aps, astr, rtt, handle):
    frame = wire.encode_response(handle, status, sstr, aps, astr, tbls, rtt)
    assert frame[13] & 0x50 == 0   # bits 4 and 6 never set
    assert struct.unpack_from(">i", frame)[0] == len(frame) - 4
    got_handle, resp = wire.decode_response(frame[4:], with_handle=True, client_values=False)
    assert got_handle == handle
    assert (resp.status, resp.status_string, resp.app_status, resp.app_status_string) == \
        (status, sstr, -128 if aps is None else aps, astr)
    assert len(resp.tables) == len(tbls)
    for g, w in zip(resp.tables, tbls):
        _assert_table_equal(g, w)
        assert wire.encode_volttable(g) == wire.encode_volttable(w)


def test_response_client_values_are_datetimes():
    t = VoltTable([Column("T", VoltType.TIMESTAMP)], [(1_700_000_000_123_456,), (None,),
                                                       (dt.datetime(1969, 12, 31, 23, 59, 59),)])
    resp = wire.decode_response(wire.encode_response(5, 1, "ok", 3, "app", [t])[4:])
    assert resp.tables[0].rows == [(dt.datetime(2023, 11, 14, 22, 13, 20, 123456),), (None,),
                                   (dt.datetime(1969, 12, 31, 23, 59, 59),)]
    assert (resp.status_string, resp.app_status, resp.app_status_string) == ("ok", 3, "app")


def test_encode_volttable_rejects_bad_values():
    with pytest.raises(ValueOutOfRangeError, match="column 'A'"):
        wire.encode_volttable(VoltTable([Column("A", VoltType.SMALLINT)], [(40000,)]))
    with pytest.raises(TypeMismatchError, match="column 'A'"):
        wire.encode_volttable(VoltTable([Column("A", VoltType.STRING)], [(b"x",)]))
    with pytest.raises(ValueOutOfRangeError, match="26 digits"):
        wire.encode_volttable(VoltTable([Column("A", VoltType.DECIMAL)], [(decimal.Decimal(10) ** 26,)]))
    with pytest.raises(ValueOutOfRangeError):
        wire.encode_volttable(VoltTable([], []))
    with pytest.raises(ValueOutOfRangeError, match="2 values for 1"):
        wire.encode_volttable(VoltTable([Column("A", VoltType.BIGINT)], [(1, 2)]))


# ---------------------------------------------------------------- interop with voltdbclient 16.1.0

def _client_params(params):
    """Map our (type, value) params to what the official client accepts for the same wire bytes."""
    types, values = [], []
    for t, v in params:
        if isinstance(v, list) and v == [] or t == VoltType.NULL and v is not None:
            return None
        types.append(int(t))
        values.append(v)
    return types, values


def _client_value_to_internal(t, v):
    """The internal value our decoder must produce for what the official client wrote."""
    if isinstance(v, list):
        return [_client_value_to_internal(t, x) for x in v]
    if v is None:
        return None
    if t == VoltType.TIMESTAMP:
        return int(v.strftime("%s")) * 1_000_000 + v.microsecond  # the client's own formula
    return v


_CLIENT_VALUES = dict(VALUES)
_CLIENT_VALUES[VoltType.TIMESTAMP] = st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2100, 1, 1))
# The official client writes scale <= 12 decimals only; ours all have exponent -12.


@st.composite
def client_params(draw):
    out = []
    for _ in range(draw(st.integers(0, 6))):
        t = draw(st.sampled_from(list(_CLIENT_VALUES)))
        s = _CLIENT_VALUES[t]
        kind = draw(st.sampled_from(["scalar", "null", "array", "bytes"]))
        if kind == "scalar":
            out.append((t, draw(s)))
        elif kind == "null":
            out.append((t, None))
        elif kind == "bytes":
            out.append((VoltType.TINYINT, draw(st.binary(min_size=1, max_size=30))))
        elif t not in (VoltType.TINYINT, VoltType.VARBINARY, wire.T_BOOLEAN, wire.T_GEOGRAPHY_POINT):
            # (the official client cannot write VARBINARY arrays)
            nullable = t != wire.T_DATE
            out.append((t, draw(st.lists(st.none() | s if nullable else s, min_size=1, max_size=4))))
    return out


@given(client_params(), st.integers(0, 2**63 - 65), st.none() | st.integers(0, 16383))
def test_interop_official_invocations_decode(params, handle, dest):
    types = [t for t, _ in params]
    values = [v for _, v in params]
    frame = voltclient._serialize_invocation(FastSerializer.BIG_ENDIAN, "Proc.x", types, values, handle, dest)
    frames, used = wire.split_frames(frame, 1 << 20)
    assert used == len(frame) and len(frames) == 1
    name, got_handle, got, ext = wire.decode_invocation(frames[0])
    assert (name, got_handle) == ("Proc.x", handle)
    assert ext == ({} if dest is None else {"all_partition": True, "partition_destination": dest})
    assert got == tuple(_client_value_to_internal(t, v) for t, v in params)
    # and our encoder writes the same bytes for the same declared types (non-timestamp)
    if dest is None and VoltType.TIMESTAMP not in types and not any(
            t == wire.T_GEOGRAPHY_POINT and v is None for t, v in params):
        assert wire.encode_invocation("Proc.x", handle, values, types) == frame


def test_interop_client_empty_list_bug():
    frame = voltclient._serialize_invocation(FastSerializer.BIG_ENDIAN, "P", [6, 9], [5, []], 3)
    assert frame.endswith(b"\x9d\x09")   # ARRAY marker and element type, then nothing
    assert wire.decode_invocation(frame[4:]) == ("P", 3, (5, []), {})
    frame = voltclient._serialize_invocation(FastSerializer.BIG_ENDIAN, "P", [3], [b""], 3)
    assert wire.decode_invocation(frame[4:])[2] == (b"",)


def test_interop_voltprocedure_call_over_socketpair():
    """VoltProcedure.call writes to a socket and reads our pre-sent response back."""
    a, b = socket.socketpair()
    try:
        fs = FastSerializer()
        fs.socket = a
        b.sendall(wire.encode_response(1, 1, None, None, None, [GREETING]))
        when = dt.datetime(2020, 5, 17, 1, 2, 3, 456789)
        params = [7, "ζ-volt", decimal.Decimal("-1.5"), when, [1, None, 3], b"\x01\x02", None]
        types = [5, 9, 22, 11, 6, 3, 8]
        resp = voltdbclient.VoltProcedure(fs, "Mixed", types).call(params)
        assert resp.status == 1 and resp.tables[0].tuples == [["Hi", 42]]
        b.settimeout(5)
        buf = b""
        while True:
            frames, used = wire.split_frames(buf, 1 << 16)
            if frames:
                break
            buf += b.recv(65536)
        name, handle, got, ext = wire.decode_invocation(frames[0])
        assert (name, handle, ext) == ("Mixed", 1, {})
        assert got == (7, "ζ-volt", decimal.Decimal("-1.5"),
                       int(when.strftime("%s")) * 10**6 + 456789, [1, None, 3], b"\x01\x02", None)
    finally:
        a.close()
        b.close()


def _official_value(t, v):
    """What the official reader returns for our internal value v of column type t."""
    if v is None:
        return None
    if t == VoltType.TIMESTAMP:
        return dt.datetime.fromtimestamp(v / 1000000.0)
    if t == VoltType.VARBINARY:
        return array.array("B", v)
    if t == VoltType.FLOAT and abs(v - -1.7e308) < 1e307:
        return None  # §7: the client reads any FLOAT this close to the sentinel as NULL
    return v


_INTEROP_COLS = [VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER, VoltType.BIGINT, VoltType.FLOAT,
                 VoltType.STRING, VoltType.DECIMAL, VoltType.VARBINARY, VoltType.TIMESTAMP,
                 wire.T_BOOLEAN, wire.T_DATE, wire.T_GEOGRAPHY_POINT]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tables(_INTEROP_COLS), max_size=3), st.sampled_from([1, -1, -2, -3]), st.none() | _TEXT,
       st.none() | st.integers(-127, 127), st.none() | _TEXT, st.integers(0, 2**63 - 1))
def test_interop_official_reader_parses_our_responses(tbls, status, sstr, aps, astr, handle):
    for t in tbls:  # TIMESTAMP columns: keep within what datetime.fromtimestamp handles
        for c_i, c in enumerate(t.columns):
            if c.type == VoltType.TIMESTAMP:
                t.rows = [r[:c_i] + ((None if r[c_i] is None else r[c_i] % (4 * 10**15)),) + r[c_i + 1:]
                          for r in t.rows]
    frame = wire.encode_response(handle, status, sstr, aps, astr, tbls)
    r = voltdbclient.VoltResponse._from_body(FastSerializer(), frame[4:])
    assert (r.clientHandle, r.status, r.statusString, r.appStatus, r.appStatusString) == \
        (handle, status, sstr, aps, astr)
    assert r.exception is None and len(r.tables) == len(tbls)
    for got, want in zip(r.tables, tbls):
        assert [(c.name, c.type) for c in got.columns] == [(c.name, int(c.type)) for c in want.columns]
        assert got.tuples == [[_official_value(c.type, v) for c, v in zip(want.columns, row)]
                              for row in want.rows]


class _CatalogPeer:
    """A minimal stand-in server for VoltBulkLoader's catalog queries; replies go through our codec."""

    def __init__(self, columns):
        self.columns = columns

    def call(self, proc, types, params):
        assert (proc, tuple(params)) == ("@SystemCatalog", ("COLUMNS",))
        names = ["TABLE_NAME", "COLUMN_NAME", "ORDINAL_POSITION", "TYPE_NAME", "REMARKS"]
        types_ = [VoltType.STRING, VoltType.STRING, VoltType.INTEGER, VoltType.STRING, VoltType.STRING]
        rows = [("T", n, i + 1, tn, None) for i, (n, tn) in enumerate(self.columns)]
        frame = wire.encode_response(1, 1, None, None, None,
                                     [VoltTable([Column(n, t) for n, t in zip(names, types_)], rows)])
        return voltdbclient.VoltResponse._from_body(FastSerializer(), frame[4:])


_LOADER_TYPES = {"TINYINT": VoltType.TINYINT, "SMALLINT": VoltType.SMALLINT, "INTEGER": VoltType.INTEGER,
                 "BIGINT": VoltType.BIGINT, "FLOAT": VoltType.FLOAT, "VARCHAR": VoltType.STRING,
                 "TIMESTAMP": VoltType.TIMESTAMP, "DECIMAL": VoltType.DECIMAL,
                 "VARBINARY": VoltType.VARBINARY}


@settings(max_examples=30)
@given(st.lists(st.sampled_from(sorted(_LOADER_TYPES)), min_size=1, max_size=6), st.data())
def test_interop_bulk_loader_volttable_param(type_names, data):
    cols = [(f"C{i}", tn) for i, tn in enumerate(type_names)]
    loader = voltclient.VoltBulkLoader(_CatalogPeer(cols), "t")
    try:
        vtypes = [_LOADER_TYPES[tn] for tn in type_names]
        rows = data.draw(st.lists(st.tuples(*[NULLABLE[t] for t in vtypes]), min_size=1, max_size=5))
        frame = loader._invocation(None, [loader._encode(r) for r in rows], rows)(99)
    finally:
        loader.close()
    name, handle, params, ext = wire.decode_invocation(frame[4:])
    assert (name, handle, ext) == ("@LoadMultipartitionTable", 99, {})
    assert params[:2] == ("T", 0)
    table = params[2]
    assert isinstance(table, VoltTable)
    assert [(c.name, c.type) for c in table.columns] == [(n, t) for (n, _), t in zip(cols, vtypes)]
    assert table.rows == rows


def test_official_volttable_writer_header_length_is_rejected():
    """voltdbclient.VoltTable.writeToSerializer writes a header length 4 short; Java would misread it."""
    fs = FastSerializer()
    t = voltdbclient.VoltTable(fs)
    col = voltdbclient.VoltColumn(type=6, name="N")
    t.columns = [col]
    t.tuples = [[5]]
    t.writeToSerializer()
    raw = fs.wbuf.tobytes()
    (hlen,) = struct.unpack_from(">i", raw, 4)
    assert hlen == 1 + 2 + 1 + 4 + 1 - 4
    with pytest.raises(CodecError, match="header length"):
        wire.decode_volttable(raw)


# ---------------------------------------------------------------- malformed input

_GOOD_INVOCATION = wire.encode_invocation(
    "KV.get", 42, [1, "s", None, b"b", decimal.Decimal(1), [1, 2], 2.5, GREETING, dt.date(2020, 1, 2)])[4:]
_GOOD_RESPONSE = wire.encode_response(
    42, 1, "s", 2, "a", [GREETING, VoltTable([Column("D", VoltType.DECIMAL), Column("P", 26)],
                                             [(decimal.Decimal("1.5"), (1.0, 2.0)), (None, None)])])[4:]
_DECODERS = [wire.decode_invocation, wire.decode_response, wire.decode_volttable, wire.decode_login,
             wire.decode_login_response, lambda b: wire.split_frames(b, 64),
             lambda b: wire.decode_response_frames(b, 64)]


def _only_codec_error(fn, data):
    try:
        fn(data)
    except CodecError:
        pass


@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    for fn in _DECODERS:
        _only_codec_error(fn, data)


@pytest.mark.parametrize("good,fn", [(_GOOD_INVOCATION, wire.decode_invocation),
                                     (_GOOD_RESPONSE, wire.decode_response),
                                     (V_LOGIN[4:], wire.decode_login),
                                     (V_LOGIN_OK[4:], wire.decode_login_response),
                                     (V_RESPONSE[22:], wire.decode_volttable)])
def test_every_truncation_is_a_codec_error(good, fn):
    fn(good)
    for n in range(len(good)):
        if fn is wire.decode_login and n >= 18:
            continue  # the digest is "all the remaining bytes": any prefix of it parses
        with pytest.raises(CodecError):
            fn(good[:n])


@given(st.sampled_from([(_GOOD_INVOCATION, wire.decode_invocation), (_GOOD_RESPONSE, wire.decode_response)]),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=4))
def test_fuzz_bit_flips(case, flips):
    good, fn = case
    data = bytearray(good)
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    _only_codec_error(fn, bytes(data))


def _i32_offsets(buf):
    return [i for i in range(len(buf) - 3)]


@given(st.sampled_from([(_GOOD_INVOCATION, wire.decode_invocation), (_GOOD_RESPONSE, wire.decode_response)]),
       st.integers(0, 10**6), st.sampled_from([2**31 - 1, 2**30, -2, -2**31, 10**6]))
def test_fuzz_length_lies(case, pos, value):
    good, fn = case
    pos %= len(good) - 3
    data = good[:pos] + struct.pack(">i", value) + good[pos + 4:]
    _only_codec_error(fn, data)


def test_huge_lengths_rejected_before_allocating():
    head = b"\x00\x00\x00\x00\x01P" + struct.pack(">q", 5)
    with pytest.raises(CodecError, match=r"parameter 0: needs 2147483647 bytes at offset 21, only 0 left"):
        wire.decode_invocation(head + b"\x00\x01\x09" + struct.pack(">i", 2**31 - 1))
    with pytest.raises(CodecError, match="bad row count 2147483647"):
        body = V_RESPONSE[26:52] + struct.pack(">i", 2**31 - 1) + bytes(100)
        wire.decode_volttable(struct.pack(">i", len(body)) + body)
    with pytest.raises(CodecError, match="array elements"):
        wire.decode_invocation(head + b"\x00\x01\x9d\x06\x7f\xff")
    with pytest.raises(CodecError, match="bad parameter count -1"):
        wire.decode_invocation(head + b"\xff\xff")


def test_broken_params_carry_handle_and_procedure():
    head = b"\x00\x00\x00\x00\x06KV.get" + struct.pack(">q", 77)
    cases = {
        b"\x00\x01\x14" + b"\x00" * 8: "MONEY",
        b"\x00\x01\x06\x00": "parameter 0",
        b"\x00\x01\x09\x00\x00\x00\x02\xff\xfe": "invalid UTF-8",
        b"\x00\x00\x00": "trailing",
        b"\x00\x01\x9d\x01\x00\x00": "array element type 1",
        b"\x00\x01\x0c\x00\x00\x0d\x01": "invalid DATE",
    }
    for tail, msg in cases.items():
        with pytest.raises(wire.InvocationError, match=msg) as ei:
            wire.decode_invocation(head + tail)
        assert (ei.value.client_handle, ei.value.procedure) == (77, "KV.get")
        assert isinstance(ei.value, CodecError)
    with pytest.raises(wire.InvocationError) as ei:
        wire.decode_invocation(b"\x07" + head[1:] + b"\x00\x00")
    assert ei.value.client_handle == 77 and "version 7" in str(ei.value)
    with pytest.raises(CodecError) as ei:
        wire.decode_invocation(b"\x00\x00\x00\x00\x06KV.g")
    assert not isinstance(ei.value, wire.InvocationError)


def test_decimal_out_of_range_on_wire():
    body = b"\x00\x00\x00\x00\x01P" + struct.pack(">q", 1) + b"\x00\x01\x16" + b"\x7f" + b"\xff" * 15
    with pytest.raises(wire.InvocationError, match="more than 38 digits"):
        wire.decode_invocation(body)
    ok = b"\x00\x00\x00\x00\x01P" + struct.pack(">q", 1) + b"\x00\x01\x16" + \
        (-(10**38 - 1)).to_bytes(16, "big", signed=True)
    assert wire.decode_invocation(ok)[2] == (decimal.Decimal(-(10**38 - 1)).scaleb(-12, decimal.Context(prec=50)),)


def test_decoders_accept_bytearray_and_memoryview():
    for buf in (bytearray(_GOOD_INVOCATION), memoryview(_GOOD_INVOCATION)):
        assert wire.decode_invocation(buf) == wire.decode_invocation(_GOOD_INVOCATION)
    assert wire.decode_response(memoryview(V_RESPONSE)[4:]).tables == [GREETING]
    assert wire.decode_volttable(bytearray(V_RESPONSE[22:])) == GREETING


def test_null_encodings_in_params():
    body = (b"\x00\x00\x00\x00\x01P" + struct.pack(">q", 1) + b"\x00\x05"
            + b"\x08" + struct.pack(">d", -1.7e308) + b"\x0b" + struct.pack(">q", -2**63)
            + b"\x16\x80" + bytes(15) + b"\x17\x7f" + b"\x1a" + struct.pack(">dd", 360.0, 360.0))
    assert wire.decode_invocation(body)[2] == (None,) * 5


# ---------------------------------------------------------------- batch response decoding

def _as_oracle(handle: int, resp: ClientResponse) -> tuple:
    return (handle, resp.status, resp.status_string, resp.app_status, resp.app_status_string,
            [([(c.name, int(c.type)) for c in t.columns], t.rows) for t in resp.tables])


_RESPONSES = st.tuples(st.integers(-2**63, 2**63 - 1), st.sampled_from([1, -1, -2, -3, -5]),
                       st.none() | _TEXT, st.none() | st.integers(-127, 127),
                       st.none() | _TEXT, st.lists(tables(), max_size=2))


def _response_stream(resps, garbage, client_values):
    """(frames, their bytes, the oracle's decoding, whether it ends in a bad body)."""
    frames = [wire.encode_response(h, s, ss, aps, astr, tbls) for h, s, ss, aps, astr, tbls in resps]
    if garbage is not None:
        at, body = garbage
        frames.insert(min(at, len(frames)), struct.pack(">i", len(body)) + body)
    stream = b"".join(frames)
    try:
        want, want_bad = wire_oracle.response_frames(stream, client_values)
    except OverflowError:
        assume(False)  # a TIMESTAMP outside datetime's range (client values only)
    return frames, stream, want, want_bad


@given(st.lists(_RESPONSES, max_size=6), st.none() | st.tuples(st.integers(0, 6),
                                                               st.binary(min_size=1, max_size=40)),
       st.booleans(), st.data())
def test_feed_responses_matches_oracle(resps, garbage, client_values, data):
    frames, stream, want, want_bad = _response_stream(resps, garbage, client_values)
    # the compiled decoder reads every frame of one feed in one call, in any chunking
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    fb = wire.FrameBuffer()
    got, err, prev = [], None, 0
    for c in cuts + [len(stream)]:
        if c < prev:
            continue
        if client_values:
            pairs, err = fb.feed_responses(stream[prev:c])
        else:
            pairs, _used, err = wire.decode_response_frames(stream[:c], client_values=False)
            pairs = pairs[len(got):]
        got += [_as_oracle(h, r) for h, r in pairs]
        prev = c
        if err is not None:
            break
    assert got == want
    assert (err is not None) == want_bad
    if err is not None:
        assert isinstance(err, CodecError)
    # one frame at a time agrees too
    for f, w in zip(frames, want):
        assert _as_oracle(*wire.decode_response(f[4:], True, client_values)) == w


@given(st.lists(_RESPONSES, max_size=6), st.none() | st.tuples(st.integers(0, 6),
                                                               st.binary(min_size=1, max_size=40)),
       st.data())
def test_feed_answers_matches_oracle(resps, garbage, data):
    """feed_answers (the client's decode-and-match) against the oracle decoder and a dict
    of pending calls: each answer pops its own call once; the rest come back as pairs."""
    _frames, stream, want, want_bad = _response_stream(resps, garbage, True)
    handles = sorted({r[0] for r in resps})
    calls = data.draw(st.lists(st.sampled_from(handles), unique=True) if handles else st.just([]))
    pending = {hd: ("call", hd) for hd in calls + [12345678901]}  # and one never answered
    want_pending = dict(pending)
    want_done, want_others = [], []
    for w in want:
        entry = want_pending.pop(w[0], None)
        (want_others if entry is None else want_done).append((entry, w))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    fb = wire.FrameBuffer()
    done, others, err, prev = [], [], None, 0
    for c in cuts + [len(stream)]:
        if c < prev:
            continue
        got, err = fb.feed_answers(stream[prev:c], pending, done)
        others += got
        prev = c
        if err is not None:
            break
    assert [(e, _as_oracle(e[1], r)) for e, r in done] == want_done
    assert [(None, _as_oracle(hd, r)) for hd, r in others] == want_others
    assert pending == want_pending
    assert (err is not None) == want_bad


def test_decoded_answers_are_the_dataclasses_built_at_c_level():
    """Answers are built by writing the dataclasses' slots (no __init__ call): they are
    the same type, compare equal to ones built normally, are tracked by the collector and
    free what they hold."""
    import gc
    import sys
    from voltdb_py.engine import _engine
    assert _engine._wire_slots_in_use()
    table = VoltTable([Column("V", VoltType.STRING), Column("N", VoltType.BIGINT)],
                      [("x", 1), (None, None)])
    frame = wire.encode_response(5, -2, "why", 7, "app", [table])
    handle, r = wire.decode_response(frame[4:], True)
    assert type(r) is ClientResponse and type(r.tables[0]) is VoltTable
    assert (handle, r) == (5, ClientResponse(-2, "why", 7, "app", [table]))
    assert gc.is_tracked(r) and gc.is_tracked(r.tables[0])
    r.tables[0].rows.append(("y", 2))  # the caller's own lists
    assert wire.decode_response(frame[4:]).tables == [table]
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(20_000):
        wire.decode_response_frames(frame * 4)
    gc.collect()
    assert sys.getallocatedblocks() - before < 500


def test_slot_offsets_only_for_plain_object_slots():
    from voltdb_py.engine import _engine

    class WithDict:
        status = None

    class Prop:
        __slots__ = ()

        @property
        def status(self):
            return 1

    class OwnNew:
        __slots__ = ("status",)

        def __new__(cls):
            return object.__new__(cls)

    class Plain:
        __slots__ = ("status",)

    class Sub(Plain):
        __slots__ = ()

    names = ["status", "status_string", "app_status", "app_status_string", "tables"]
    offsets = _engine._wire_slots_of(ClientResponse, names)
    assert offsets is not None and len(set(offsets)) == 5 and min(offsets) > 0
    assert _engine._wire_slots_of(Plain, ["status"]) is not None
    for cls in (WithDict, Prop, OwnNew, Sub):
        assert _engine._wire_slots_of(cls, ["status"]) is None
    assert _engine._wire_slots_of(ClientResponse, names[:-1]) is None  # a slot left unset
    assert _engine._wire_slots_of(ClientResponse, names[:-1] + ["ok"]) is None  # a property


def test_answer_frames_bad_length_keeps_what_it_matched():
    f = wire.encode_response(7, 1, tables=[GREETING])
    pending, done = {7: "seven", 8: "eight"}, []
    with pytest.raises(CodecError, match=r"frame length -5 at offset"):
        wire.answer_frames(f + struct.pack(">i", -5) + b"xxxxx", pending, done)
    # the answer decoded before the bad length was matched: the caller completes it
    assert [e for e, _r in done] == ["seven"] and pending == {8: "eight"}


def test_decode_response_frames_consumed_and_bad_length():
    f = wire.encode_response(7, 1, tables=[GREETING])
    pairs, used, err = wire.decode_response_frames(f * 2 + f[:9])
    assert (len(pairs), used, err) == (2, 2 * len(f), None)
    assert pairs[0][0] == 7 and pairs[0][1].tables[0].rows == [("Hi", 42)]
    with pytest.raises(CodecError, match=r"frame length -5 at offset"):
        wire.decode_response_frames(f + struct.pack(">i", -5) + b"xxxxx")
    bad = f + struct.pack(">i", 3) + b"abc" + f
    pairs, used, err = wire.decode_response_frames(bad)
    assert (len(pairs), used) == (1, len(f)) and isinstance(err, CodecError)


def test_many_distinct_table_headers_decode_right():
    # More distinct headers than the decoder caches, each seen twice.
    frames = [wire.encode_response(i, 1, tables=[VoltTable(
        [Column(f"C{i}", VoltType.BIGINT), Column("S", VoltType.STRING)], [(i, str(i))])])
        for i in range(1200)]
    for _ in range(2):
        pairs, _used, err = wire.decode_response_frames(b"".join(frames))
        assert err is None and len(pairs) == 1200
        for i, (h, r) in enumerate(pairs):
            t = r.tables[0]
            assert h == i and t.rows == [(i, str(i))]
            assert t.columns == [Column(f"C{i}", VoltType.BIGINT), Column("S", VoltType.STRING)]
    # columns lists are the caller's own: changing one leaves the next decode alone
    pairs[0][1].tables[0].columns.append(Column("X", VoltType.INTEGER))
    again = wire.decode_response(frames[0][4:])
    assert len(again.tables[0].columns) == 2
    assert again == ClientResponse(1, None, -128, None, [VoltTable(
        [Column("C0", VoltType.BIGINT), Column("S", VoltType.STRING)], [(0, "0")])])


@given(st.lists(_RESPONSES, max_size=6), _ints(32))
def test_encode_responses_matches_oracle(resps, rtt):
    objs = [ClientResponse(s, ss, -128 if aps is None else aps, astr, tbls)
            for _h, s, ss, aps, astr, tbls in resps]
    handles = [r[0] for r in resps]
    blob = wire.encode_responses(handles, objs, rtt)
    assert blob == b"".join(wire.encode_response(h, r.status, r.status_string, r.app_status,
                                                 r.app_status_string, r.tables, rtt)
                            for h, r in zip(handles, objs))
    got, bad = wire_oracle.response_frames(blob, client_values=False)
    assert not bad
    want = [(h, r.status, r.status_string, r.app_status, r.app_status_string,
             [([(c.name, int(c.type)) for c in t.columns],
               [tuple(None if c.type == VoltType.NULL else v for c, v in zip(t.columns, row))
                for row in t.rows]) for t in r.tables])
            for h, r in zip(handles, objs)]
    assert got == want


def test_encode_responses_errors():
    ok = ClientResponse(1, None, -128, None, [GREETING])
    with pytest.raises(ValueError, match="2 handles for 1 responses"):
        wire.encode_responses([1, 2], [ok])
    with pytest.raises(ValueOutOfRangeError):
        wire.encode_responses([1, 2], [ok, ClientResponse(300)])
    with pytest.raises(TypeMismatchError):
        wire.encode_responses([1], [ClientResponse(1, None, -128, None, [object()])])
    assert wire.encode_responses([], []) == b""


@given(st.lists(_RESPONSES, max_size=6))
def test_encode_response_list_matches_encode_response(resps):
    objs = [ClientResponse(s, ss, -128 if aps is None else aps, astr, tbls)
            for _h, s, ss, aps, astr, tbls in resps]
    handles = [r[0] for r in resps]
    frames = wire.encode_response_list(handles, objs)
    assert frames == [wire.encode_response(h, r.status, r.status_string, r.app_status,
                                           r.app_status_string, r.tables, 0)
                      for h, r in zip(handles, objs)]
    again, crcs = wire.encode_response_list([0] * len(objs), objs, True)
    # the hash covers what follows the handle: the same whatever the handle
    assert crcs == [hash_oracle.crc32c(f[13:]) for f in frames]
    assert [f[13:] for f in again] == [f[13:] for f in frames]


def test_encode_response_list_answers_unencodable_results_with_a_failure():
    ok = ClientResponse(1, None, -128, None, [GREETING])
    bad = ClientResponse(1, None, -128, None, [VoltTable([Column("N", VoltType.INTEGER)],
                                                         [("not a number",)])])
    frames = wire.encode_response_list([7, 8, 9], [ok, bad, ok])
    assert wire.decode_response(frames[0][4:]) == ok and frames[2][13:] == frames[0][13:]
    failed = wire.decode_response(frames[1][4:])
    assert struct.unpack(">q", frames[1][5:13]) == (8,)
    assert failed.status == -3 and "the result cannot be serialized" in failed.status_string
    assert "TypeMismatchError" in failed.status_string
    with pytest.raises(ValueError, match="2 handles for 1 responses"):
        wire.encode_response_list([1, 2], [ok])
    assert wire.encode_response_list([], [], True) == ([], [])

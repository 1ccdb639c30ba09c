# SPDX-License-Identifier: AGPL-3.0-or-later
"""Hashing: VoltDB vectors, engine == mmh3 == oracle, ring lookup, Buckets layout and configs."""

from __future__ import annotations

import gzip
import pickle
import struct

import mmh3
import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st
from support import hash_oracle as oracle

from voltdb_py import hashinator as H
from voltdb_py.engine import _engine
from voltdb_py.errors import CodecError, TypeMismatchError, ValueOutOfRangeError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
T = _engine
INT_TYPES = [T.T_TINYINT, T.T_SMALLINT, T.T_INTEGER, T.T_BIGINT]
SENTINELS = {T.T_TINYINT: -128, T.T_SMALLINT: -32768, T.T_INTEGER: INT32_MIN,
             T.T_BIGINT: INT64_MIN}
TYPE_RANGES = {T.T_TINYINT: (-127, 127), T.T_SMALLINT: (-32767, 32767),
               T.T_INTEGER: (-(2**31 - 1), 2**31 - 1), T.T_BIGINT: (INT64_MIN + 1, INT64_MAX)}


def mmh3_token(data: bytes) -> int:
    """Token per voltdb-internals.md 1.1: signed upper 32 bits of mmh3's unsigned h1."""
    high = mmh3.hash64(data, 0, signed=False)[0] >> 32
    return high - 2**32 if high >= 2**31 else high


@pytest.fixture(scope="module")
def hashinators():
    """Engine hashinators of the default rings used by the vector table."""
    return {p: H.make_hashinator(p) for p in (1, 2, 3, 4, 8)}


# --- section 1.8 vectors ---------------------------------------------------------------

# (vtype, value, hashed bytes hex, token, P=2, P=3, P=4, P=8), from voltdb-internals.md 1.8,
# which was checked against a running VoltDB 11.4.
VECTORS = [
    (T.T_BIGINT, 0, "0000000000000000", 685728695, 0, 2, 2, 2),
    (T.T_BIGINT, 1, "0100000000000000", 4457399, 0, 2, 2, 6),
    (T.T_BIGINT, -1, "ffffffffffffffff", -1595624838, 1, 2, 2, 4),
    (T.T_BIGINT, 2, "0200000000000000", -569892704, 1, 1, 1, 7),
    (T.T_BIGINT, 42, "2a00000000000000", -1230191719, 1, 1, 3, 3),
    (T.T_BIGINT, 12345, "3930000000000000", 1020451795, 0, 0, 3, 3),
    (T.T_STRING, "hello", "68656c6c6f", -874993741, 1, 1, 1, 4),
    (T.T_STRING, "VoltDB", "566f6c744442", -560481132, 1, 1, 1, 7),
    (T.T_STRING, "", "", 0, 0, 2, 2, 6),
    (T.T_VARBINARY, b"\x01\x02\x03", "010203", 442777327, 0, 2, 2, 2),
]


@pytest.mark.parametrize(("vtype", "value", "hexbytes", "token", "p2", "p3", "p4", "p8"), VECTORS)
def test_vectors_match_voltdb(hashinators, vtype, value, hexbytes, token, p2, p3, p4, p8):
    raw = bytes.fromhex(hexbytes)
    assert _engine.token_for(vtype, value) == token
    assert _engine.hash_key(raw) == token
    assert oracle.token(raw) == token
    for p, expected in ((2, p2), (3, p3), (4, p4), (8, p8)):
        assert hashinators[p].partition_for_value(vtype, value) == expected
        assert hashinators[p].partition_for_key(raw) == expected
        assert hashinators[p].partition_for_token(token) == expected


@pytest.mark.parametrize("vtype", [T.T_TINYINT, T.T_SMALLINT, T.T_INTEGER])
def test_narrow_integers_hash_like_bigint(hashinators, vtype):
    for _, value, _, token, *_ in (v for v in VECTORS if v[0] == T.T_BIGINT):
        lo, hi = TYPE_RANGES[vtype]
        if lo <= value <= hi:
            assert _engine.token_for(vtype, value) == token


@pytest.mark.parametrize(("p", "sig"), [(1, 1600123435), (2, 3577471628), (3, 3791542750),
                                        (4, 3922714542), (8, 3252522461)])
def test_default_config_signatures(hashinators, p, sig):
    ring = H.default_ring(p)
    assert H.signature(ring) == sig
    assert hashinators[p].signature == sig
    assert oracle.crc32c(H.raw_config(ring)) == sig


def test_crc32c_check_value():
    assert _engine.crc32c(b"123456789") == 0xE3069283
    assert _engine.crc32c(b"") == 0
    assert _engine.crc32c(b"56789", _engine.crc32c(b"1234")) == 0xE3069283


def _runs(ring):
    runs = []
    for token, pid in ring:
        if runs and runs[-1][1] == pid:
            runs[-1][2] += 1
        else:
            runs.append([token, pid, 1])
    return [tuple(r) for r in runs]


def test_default_ring_p4_shape():
    assert _runs(H.default_ring(4)) == [
        (-2147483648, 3, 1365), (-1789658453, 2, 1366), (-1431571115, 3, 1365),
        (-1073745920, 1, 4096), (-8192, 2, 2730), (715642198, 3, 1366), (1073729536, 0, 4096)]


def test_default_ring_p2_and_tokens():
    ring = H.default_ring(2)
    assert len(ring) == 16384
    assert [t for t, _ in ring] == [INT32_MIN + k * 262143 for k in range(16384)]
    assert ring[-1][0] == 2147205121
    assert _engine.Hashinator(H.raw_config(ring)).ranges(1) == [(INT32_MIN, -8193)]
    assert _engine.Hashinator(H.raw_config(ring)).ranges(0) == [(-8192, INT32_MAX)]


def test_raw_config_example_from_spec():
    ring = [(INT32_MIN, 0), (0, 1), (INT32_MAX, 2)]
    expect = bytes.fromhex("00000003800000000000000000000000000000017fffffff00000002")
    assert H.raw_config(ring) == expect
    h = _engine.Hashinator(expect)
    # VoltDB's TestMinMaxToken.
    for token, part in [(INT32_MIN, 0), (INT32_MIN + 1, 0), (0, 1), (1, 1), (INT32_MAX - 1, 1),
                        (INT32_MAX, 2)]:
        assert h.partition_for_token(token) == part


# --- differential: engine == mmh3 == oracle ----------------------------------------------

@given(st.binary(max_size=100))
@example(b"")
@example(bytes(range(15)))
@example(bytes(range(16)))
@example(bytes(range(17)))
@example(b"\xff" * 31)
def test_hash_key_matches_mmh3_and_oracle(data):
    h1, h2 = _engine.murmur3_x64_128(data)
    assert (h1, h2) == mmh3.hash64(data, 0, signed=False)
    assert (h1, h2) == oracle.murmur3_x64_128(data)
    assert _engine.hash_key(data) == mmh3_token(data) == oracle.token(data)


@given(st.binary(max_size=40), st.integers(0, 2**32 - 1))
def test_murmur3_seed_matches_mmh3(data, seed):
    assert _engine.murmur3_x64_128(data, seed) == mmh3.hash64(data, seed, signed=False)


@given(st.integers(INT64_MIN, INT64_MAX))
@example(INT64_MIN)
@example(INT64_MAX)
@example(0)
def test_int_token_matches_mmh3_and_oracle(value):
    le = struct.pack("<q", value)
    assert _engine.token_for(T.T_BIGINT, value) == mmh3_token(le) == oracle.token_int(value)


@given(st.text(max_size=30))
def test_string_token_is_utf8_bytes(text):
    assert _engine.token_for(T.T_STRING, text) == mmh3_token(text.encode("utf-8"))


@given(st.binary(max_size=200))
def test_crc32c_matches_oracle(data):
    assert _engine.crc32c(data) == oracle.crc32c(data)
    cut = len(data) // 3
    assert _engine.crc32c(data[cut:], _engine.crc32c(data[:cut])) == oracle.crc32c(data)


# --- batch == single ---------------------------------------------------------------------

@given(st.lists(st.binary(max_size=40), max_size=50))
def test_hash_keys_equals_hash_key(keys):
    assert _engine.hash_keys(keys) == [_engine.hash_key(k) for k in keys]
    assert _engine.hash_keys([bytearray(k) for k in keys]) == _engine.hash_keys(keys)


@given(st.sampled_from([2, 3, 5, 8]), st.lists(st.one_of(st.none(), st.binary(max_size=20)),
                                               max_size=40))
def test_partitions_for_keys_equals_single(hashinators_p, keys):
    h = H.make_hashinator(hashinators_p)
    assert h.partitions_for_keys(keys) == [h.partition_for_key(k) for k in keys]


@given(st.data())
def test_partitions_for_values_equals_single(data):
    vtype = data.draw(st.sampled_from(INT_TYPES + [T.T_STRING, T.T_VARBINARY]))
    if vtype in TYPE_RANGES:
        lo, hi = TYPE_RANGES[vtype]
        values_st = st.one_of(st.none(), st.just(SENTINELS[vtype]), st.integers(lo, hi))
    elif vtype == T.T_STRING:
        values_st = st.one_of(st.none(), st.text(max_size=10))
    else:
        values_st = st.one_of(st.none(), st.binary(max_size=10))
    values = data.draw(st.lists(values_st, max_size=30))
    h = H.make_hashinator(data.draw(st.sampled_from([1, 3, 4, 7])))
    single = [h.partition_for_value(vtype, v) for v in values]
    assert h.partitions_for_values(vtype, values) == single
    non_null = [v for v in values if v is not None and v != SENTINELS.get(vtype)]
    assert _engine.tokens_for(vtype, non_null) == [_engine.token_for(vtype, v) for v in non_null]


@given(st.lists(st.integers(INT32_MIN, INT32_MAX), max_size=50))
def test_partitions_for_tokens_equals_single(tokens):
    h = H.make_hashinator(5)
    assert h.partitions_for_tokens(tokens) == [h.partition_for_token(t) for t in tokens]


# --- ring lookup vs oracle ----------------------------------------------------------------

@st.composite
def rings(draw, max_tokens=40, max_partition=20):
    """Valid rings: a token at INT32_MIN, strictly increasing tokens, ids >= 0."""
    rest = draw(st.lists(st.integers(INT32_MIN + 1, INT32_MAX), unique=True, max_size=max_tokens))
    tokens = [INT32_MIN] + sorted(rest)
    parts = draw(st.lists(st.integers(0, max_partition), min_size=len(tokens),
                          max_size=len(tokens)))
    return list(zip(tokens, parts))


def _probe_tokens(ring):
    out = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX}
    for t, _ in ring:
        out.update(x for x in (t - 1, t, t + 1) if INT32_MIN <= x <= INT32_MAX)
    return sorted(out)


@given(rings(), st.lists(st.integers(INT32_MIN, INT32_MAX), max_size=20))
def test_ring_lookup_matches_oracle(ring, extra):
    note(f"ring={ring}")
    h = _engine.Hashinator(H.raw_config(ring))
    probes = _probe_tokens(ring) + extra
    assert h.partitions_for_tokens(probes) == [oracle.floor_lookup(ring, t) for t in probes]
    assert h.ring() == ring
    assert h.partitions() == sorted({p for _, p in ring})
    assert h.partition_count == len({p for _, p in ring})
    assert h.token_count == len(ring)


@st.composite
def clustered_rings(draw):
    """Rings whose tokens crowd into a few narrow stretches: the slice index then has
    slices of many tokens (and empty ones), unlike VoltDB's evenly spaced rings."""
    centres = draw(st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=1, max_size=3))
    width = draw(st.integers(1, 5000))
    rest = draw(st.lists(st.tuples(st.sampled_from(centres), st.integers(-width, width)),
                         max_size=300))
    tokens = sorted({INT32_MIN} | {min(max(c + d, INT32_MIN), INT32_MAX) for c, d in rest})
    if draw(st.booleans()):  # runs of tokens per partition: slices with one owner
        run = draw(st.integers(1, 60))
        parts = [(i // run) % 7 for i in range(len(tokens))]
    else:
        parts = draw(st.lists(st.integers(0, 20), min_size=len(tokens), max_size=len(tokens)))
    return list(zip(tokens, parts))


@given(clustered_rings(), st.lists(st.integers(INT32_MIN, INT32_MAX), max_size=20))
def test_clustered_ring_lookup_matches_oracle(ring, extra):
    h = _engine.Hashinator(H.raw_config(ring))
    probes = _probe_tokens(ring) + extra
    assert h.partitions_for_tokens(probes) == [oracle.floor_lookup(ring, t) for t in probes]
    assert [h.partition_for_token(t) for t in probes[:50]] == \
        [oracle.floor_lookup(ring, t) for t in probes[:50]]


@given(rings())
def test_ranges_match_oracle_and_tile_the_ring(ring):
    h = _engine.Hashinator(H.raw_config(ring))
    tiles = []
    for p in h.partitions():
        assert h.ranges(p) == oracle.ring_ranges(ring, p)
        for lo, hi in h.ranges(p):
            assert h.partition_for_token(lo) == p and h.partition_for_token(hi) == p
        tiles.extend(h.ranges(p))
    tiles.sort()
    assert tiles[0][0] == INT32_MIN and tiles[-1][1] == INT32_MAX
    assert all(a[1] + 1 == b[0] for a, b in zip(tiles, tiles[1:]))
    assert h.ranges(max(h.partitions()) + 1) == []


# --- Buckets: default layout and growth ---------------------------------------------------

@given(st.integers(1, 12), st.sampled_from([16, 32, 64, 128, 256]))
def test_default_ring_matches_oracle_buckets(partitions, token_count):
    if token_count <= partitions:
        return
    assert H.default_ring(partitions, token_count) == oracle.buckets_ring(partitions, token_count)


@pytest.mark.slow
def test_default_ring_full_size_matches_oracle():
    assert H.default_ring(5) == oracle.buckets_ring(5)


@pytest.mark.parametrize(("a", "b"), [(3, 6), (2, 4), (8, 16), (21, 28), (1, 5), (3, 4),
                                      (6, 12), (4, 5)])
def test_growth_equals_fresh_ring(a, b):
    old = H.default_ring(a)
    grown = H.add_partitions(old, b - a)
    assert grown == H.default_ring(b)
    # One at a time gives the same ring as one batch (testElasticAddPartitionDeterminism).
    step = old
    for _ in range(b - a):
        step = H.add_partitions(step, 1)
    assert step == grown
    # Old partitions only lose tokens; new ones get floor(16384/b) or one more.
    old_tokens = {p: {t for t, q in old if q == p} for p in range(a)}
    new_tokens = {p: {t for t, q in grown if q == p} for p in range(b)}
    for p in range(a):
        assert new_tokens[p] <= old_tokens[p]
    for p in range(a, b):
        assert len(new_tokens[p]) in (16384 // b, 16384 // b + 1)
    counts = [len(s) for s in new_tokens.values()]
    assert max(counts) - min(counts) <= 1


def test_growth_3_to_4_takes_lowest_tokens_from_each_donor():
    old, new = H.default_ring(3), H.default_ring(4)
    moved = {}
    old_owner = dict(old)
    for t, p in new:
        if p == 3:
            moved.setdefault(old_owner[t], []).append(t)
    assert {d: len(ts) for d, ts in moved.items()} == {2: 1365, 1: 1365, 0: 1366}
    for donor, toks in moved.items():
        donor_old = sorted(t for t, p in old if p == donor)
        assert sorted(toks) == donor_old[: len(toks)]


def test_add_partitions_rejects_non_contiguous_ids():
    ring = [(INT32_MIN, 0), (0, 2)]
    with pytest.raises(ValueOutOfRangeError, match="contiguous"):
        H.add_partitions(ring, 1)
    with pytest.raises(ValueOutOfRangeError, match="even"):
        H.add_partitions([(INT32_MIN, 0), (0, 1), (5, 0)], 1)
    with pytest.raises(ValueOutOfRangeError, match="tokens"):
        H.add_partitions([(INT32_MIN, 0), (0, 1)], 1)


@pytest.mark.parametrize("bad", [0, -1, 2.0, None])
def test_default_ring_rejects_bad_counts(bad):
    with pytest.raises(ValueOutOfRangeError):
        H.default_ring(bad)


def test_default_ring_rejects_bad_token_counts():
    with pytest.raises(ValueOutOfRangeError, match="even"):
        H.default_ring(2, 15)
    with pytest.raises(ValueOutOfRangeError, match="exceed"):
        H.default_ring(16, 16)


def test_default_ring_result_is_a_fresh_list():
    ring = H.default_ring(3)
    ring.clear()
    assert len(H.default_ring(3)) == 16384


# --- serial forms ------------------------------------------------------------------------

@given(rings())
def test_config_roundtrips(ring):
    raw = H.raw_config(ring)
    assert len(raw) == 4 + 8 * len(ring)
    assert H.ring_from_raw(raw) == ring
    cooked = H.cooked_config(ring)
    assert H.ring_from_cooked(cooked) == ring
    assert H.ring_from_json(H.config_json(ring)) == ring
    assert _engine.Hashinator(raw).config == raw
    assert H.signature(ring) == oracle.crc32c(raw)


def test_cooked_layout_is_byte_planes():
    ring = [(INT32_MIN, 0), (0x01020304, 5), (0x7F000001, 7)]
    body = gzip.decompress(H.cooked_config(ring))
    assert body == (bytes.fromhex("00000003") + bytes.fromhex("80017f") + bytes.fromhex("000200")
                    + bytes.fromhex("000300") + bytes.fromhex("000401")
                    + bytes.fromhex("00000000" "00000005" "00000007"))


def test_cooked_default_ring_compresses():
    ring = H.default_ring(8)
    cooked = H.cooked_config(ring)
    assert len(cooked) < len(H.raw_config(ring)) // 10
    assert H.ring_from_cooked(cooked) == ring


def test_config_json_shape():
    ring = [(INT32_MIN, 1), (7, 0)]
    assert H.config_json(ring) == '{"-2147483648": 1, "7": 0}'


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "shorter"),
    (b"\x00\x00\x00", "shorter"),
    (b"\x00\x00\x00\x00", "zero or negative"),
    (b"\xff\xff\xff\xff" + bytes(8), "zero or negative"),
    (bytes.fromhex("00000002 80000000 00000000"), "shorter"),
    (bytes.fromhex("00000001 80000000 00000000 00"), "after its last entry"),
    (bytes.fromhex("00000001 80000001 00000000"), "INT32_MIN"),
    (bytes.fromhex("00000002 80000000 00000000 80000000 00000001"), "strictly increasing"),
    (bytes.fromhex("00000002 80000000 00000000 00000005 ffffffff"), "negative"),
    (bytes.fromhex("7fffffff 80000000 00000000"), "shorter"),
])
def test_malformed_raw_configs_raise_codec_error(raw, message):
    with pytest.raises(CodecError, match=message):
        _engine.Hashinator(raw)
    with pytest.raises(CodecError):
        H.ring_from_raw(raw)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_make_a_valid_ring_or_codec_error(raw):
    try:
        h = _engine.Hashinator(raw)
    except CodecError:
        return
    ring = h.ring()
    assert H.raw_config(ring) == raw
    assert ring[0][0] == INT32_MIN


@given(st.binary(max_size=64))
def test_garbage_cooked_configs_raise_codec_error(data):
    with pytest.raises(CodecError):
        H.ring_from_cooked(data)


@given(rings(max_tokens=8), st.data())
def test_corrupted_cooked_configs_raise_or_decode_a_valid_ring(ring, data):
    body = bytearray(gzip.decompress(H.cooked_config(ring)))
    i = data.draw(st.integers(0, len(body) - 1))
    body[i] ^= data.draw(st.integers(1, 255))
    try:
        got = H.ring_from_cooked(gzip.compress(bytes(body)))
    except CodecError:
        return
    assert got[0][0] == INT32_MIN
    assert all(a[0] < b[0] for a, b in zip(got, got[1:]))


def test_cooked_rejects_trailing_and_truncated():
    cooked = H.cooked_config(H.default_ring(2, 16))
    with pytest.raises(CodecError, match="after the gzip"):
        H.ring_from_cooked(cooked + b"x")
    with pytest.raises(CodecError, match="truncated"):
        H.ring_from_cooked(cooked[:-10])
    with pytest.raises(CodecError, match="does not match"):
        H.ring_from_cooked(gzip.compress(b"\x00\x00\x00\x05" + bytes(8)))


@pytest.mark.parametrize(("ring", "message"), [
    ([], "no tokens"),
    ([(0, 0)], "start at"),
    ([(INT32_MIN, 0), (5, 1), (5, 2)], "must increase"),
    ([(INT32_MIN, -1)], "partition"),
    ([(INT32_MIN, 0), (2**31, 1)], "32-bit"),
    ([(INT32_MIN, 0), ("7", 1)], "two ints"),
    ([(INT32_MIN,)], "pair"),
])
def test_malformed_rings_raise_codec_error(ring, message):
    with pytest.raises(CodecError, match=message):
        H.raw_config(ring)


@pytest.mark.parametrize("text", ["[1]", "{", '{"x": 1}', '{"-2147483648": "a"}'])
def test_bad_json_raises_codec_error(text):
    with pytest.raises(CodecError):
        H.ring_from_json(text)


# --- NULLs, coercions, type errors --------------------------------------------------------

@pytest.mark.parametrize("vtype", INT_TYPES + [T.T_STRING, T.T_VARBINARY])
def test_null_goes_to_partition_zero(vtype):
    h = H.make_hashinator(8)
    assert h.partition_for_value(vtype, None) == 0
    assert h.partitions_for_values(vtype, [None, None]) == [0, 0]
    if vtype in SENTINELS:
        assert h.partition_for_value(vtype, SENTINELS[vtype]) == 0


def test_sentinel_is_judged_by_column_type():
    # -2**31 is NULL for INTEGER but an ordinary BIGINT, hashed like any other value.
    ring = [(INT32_MIN, 1), (0, 2)]
    h = H.hashinator_from_ring(ring)
    tok = oracle.token_int(INT32_MIN)
    assert h.partition_for_value(T.T_INTEGER, INT32_MIN) == 0
    assert h.partition_for_value(T.T_BIGINT, INT32_MIN) == oracle.floor_lookup(ring, tok)
    assert h.partition_for_value(T.T_BIGINT, INT32_MIN) != 0
    assert h.partition_for_key(None) == 0


@given(st.sampled_from(INT_TYPES), st.integers(-(10**6), 10**6))
def test_string_for_integer_column_hashes_as_number(vtype, value):
    lo, hi = TYPE_RANGES[vtype]
    value = max(lo, min(hi, value))
    h = H.make_hashinator(6)
    text = f"{value:+08d}" if value % 2 else str(value)
    assert H.coerce_partition_value(vtype, text) == value
    assert H.partition_for_parameter(h, vtype, text) == h.partition_for_value(vtype, value)


def test_0042_for_integer_hashes_as_42():
    h = H.make_hashinator(4)
    assert H.coerce_partition_value(T.T_INTEGER, "0042") == 42
    assert H.partition_for_parameter(h, T.T_INTEGER, "0042") == 3  # int 42, P=4 in section 1.8
    assert _engine.token_for(T.T_INTEGER, H.coerce_partition_value(T.T_INTEGER, "0042")) == \
        -1230191719


@pytest.mark.parametrize(("vtype", "raw", "expect"), [
    (T.T_INTEGER, b"\x2a\x00\x00\x00", 42),
    (T.T_BIGINT, struct.pack("<q", -5), -5),
    (T.T_SMALLINT, b"\xff\xff", -1),
    (T.T_TINYINT, b"\x80", None),
    (T.T_INTEGER, b"\x00\x00\x00\x80", None),
    (T.T_INTEGER, b"\x07\x00\x00\x00\x99", 7),
])
def test_bytes_for_integer_column_decode_little_endian(vtype, raw, expect):
    assert H.coerce_partition_value(vtype, raw) == expect


@pytest.mark.parametrize(("vtype", "value", "expect"), [
    (T.T_INTEGER, "-2147483648", None),
    (T.T_BIGINT, "-9223372036854775808", None),
    (T.T_BIGINT, "-2147483648", INT32_MIN),
    (T.T_TINYINT, -128, None),
    (T.T_STRING, "abc", "abc"),
    (T.T_VARBINARY, "0aff", b"\x0a\xff"),
    (T.T_VARBINARY, bytearray(b"x"), b"x"),
    (T.T_INTEGER, None, None),
])
def test_coerce_partition_value(vtype, value, expect):
    assert H.coerce_partition_value(vtype, value) == expect


@pytest.mark.parametrize(("vtype", "value", "error"), [
    (T.T_INTEGER, "4 2", TypeMismatchError),
    (T.T_INTEGER, " 42", TypeMismatchError),
    (T.T_INTEGER, "4_2", TypeMismatchError),
    (T.T_INTEGER, "", TypeMismatchError),
    (T.T_BIGINT, "9223372036854775808", ValueOutOfRangeError),
    (T.T_BIGINT, 2**63, ValueOutOfRangeError),
    (T.T_INTEGER, 4.0, TypeMismatchError),
    (T.T_INTEGER, True, TypeMismatchError),
    (T.T_INTEGER, b"\x01", TypeMismatchError),
    (T.T_VARBINARY, "zz", TypeMismatchError),
    (T.T_STRING, 5, TypeMismatchError),
    (T.T_FLOAT, 1.5, TypeMismatchError),
])
def test_coerce_partition_value_rejects(vtype, value, error):
    with pytest.raises(error):
        H.coerce_partition_value(vtype, value)


def test_engine_type_errors():
    h = H.make_hashinator(2)
    with pytest.raises(TypeMismatchError, match="str"):
        _engine.hash_key("text")
    with pytest.raises(TypeMismatchError):
        _engine.hash_keys([b"a", 5])
    with pytest.raises(TypeMismatchError):
        h.partitions_for_keys([b"a", "b"])
    with pytest.raises(ValueOutOfRangeError):
        _engine.token_for(T.T_BIGINT, 2**63)
    with pytest.raises(TypeMismatchError):
        _engine.token_for(T.T_INTEGER, "42")
    with pytest.raises(TypeMismatchError):
        _engine.token_for(T.T_FLOAT, 1.0)
    with pytest.raises(TypeMismatchError):
        _engine.token_for(T.T_VARBINARY, "text")
    with pytest.raises(ValueOutOfRangeError):
        h.partition_for_token(2**31)
    with pytest.raises(ValueOutOfRangeError):
        h.partitions_for_tokens([0, INT32_MIN - 1])
    with pytest.raises(TypeMismatchError):
        _engine.Hashinator("not bytes")


def test_varchar_accepts_raw_bytes_like_voltdb():
    # TheHashinator.valueToBytes hashes a byte[] raw whatever the column type.
    assert _engine.token_for(T.T_STRING, b"hello") == _engine.token_for(T.T_STRING, "hello")


# --- Hashinator object ---------------------------------------------------------------------

def test_hashinator_properties_pickle_and_equality():
    h = H.make_hashinator(3)
    assert h.partition_count == 3
    assert h.token_count == 16384
    assert h.partitions() == [0, 1, 2]
    assert h.config == H.raw_config(H.default_ring(3))
    clone = pickle.loads(pickle.dumps(h))
    assert clone == h and hash(clone) == hash(h)
    assert clone.partition_for_value(T.T_STRING, "x") == h.partition_for_value(T.T_STRING, "x")
    assert h != H.make_hashinator(4)
    assert "16384 tokens" in repr(h)


def test_hashinator_copies_config_once():
    raw = bytearray(H.raw_config([(INT32_MIN, 4), (0, 9)]))
    h = _engine.Hashinator(raw)
    raw[:] = b"\x00" * len(raw)
    assert h.partition_for_token(5) == 9
    assert h.partitions() == [4, 9]


@given(st.integers(1, 10), st.lists(st.binary(max_size=12), max_size=20))
def test_engine_ring_matches_oracle_lookup(p, keys):
    ring = H.default_ring(p, 64)
    h = H.hashinator_from_ring(ring)
    assert h.partitions_for_keys(keys) == [oracle.floor_lookup(ring, oracle.token(k)) for k in keys]

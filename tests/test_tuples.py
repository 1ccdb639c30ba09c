# SPDX-License-Identifier: AGPL-3.0-or-later
"""Row and key codecs of the engine (engine/tuples.pxi) against tests/support/codec_oracle.py."""

from __future__ import annotations

import decimal
import math
import pickle

import pytest
from hypothesis import assume, example, given, note
from hypothesis import strategies as st

from support import codec_oracle as oracle
from support.codec_oracle import (
    ALL_TYPES, BIGINT, DECIMAL, FLOAT, INT_RANGES, INT_TYPES, INTEGER, SMALLINT, STRING,
    TIMESTAMP, TINYINT, VARBINARY,
)
from voltdb_py.engine import _engine
from voltdb_py.errors import (
    CodecError, ConstraintError, TypeMismatchError, ValueOutOfRangeError, VoltError,
)

D = decimal.Decimal
DEC_MAX_UNSCALED = 10**38 - 1
_ERRORS = (TypeMismatchError, ValueOutOfRangeError, ConstraintError)


# ---- strategies -----------------------------------------------------------------------

def _dec(unscaled: int) -> D:
    return D(unscaled).scaleb(-12, decimal.Context(prec=80))


def _fit_utf8(s: str, nbytes: int) -> str:
    while len(s.encode("utf-8")) > nbytes:
        s = s[:-1]
    return s


def values_of(vtype: int, size: int = 0, in_bytes: bool = False) -> st.SearchStrategy:
    """Valid non-NULL internal values of a column, boundaries mixed in."""
    if vtype in INT_TYPES:
        lo, hi = INT_RANGES[vtype]
        return st.one_of(st.sampled_from([lo, hi, 0, -1, 1]), st.integers(lo, hi))
    if vtype == FLOAT:
        return st.one_of(
            st.sampled_from([0.0, -0.0, 1.7e308, -1.6999999999999998e308, 5e-324, -5e-324]),
            st.floats(min_value=-1.7e308, max_value=None, exclude_min=True,
                      allow_nan=False, allow_infinity=False))
    if vtype == DECIMAL:
        return st.one_of(
            st.sampled_from([-DEC_MAX_UNSCALED, DEC_MAX_UNSCALED, 0, 1, -1, 2**64, -(2**64),
                             2**63, -(2**63), 2**63 - 1]),
            st.integers(-DEC_MAX_UNSCALED, DEC_MAX_UNSCALED),
            st.integers(-(10**15), 10**15)).map(_dec)
    if vtype == STRING:
        if size == 0:
            return st.text(max_size=20)
        if in_bytes:
            return st.text(max_size=size).map(lambda s: _fit_utf8(s, size))
        return st.text(max_size=size)
    if vtype == VARBINARY:
        return st.binary(max_size=size or 40)
    raise AssertionError(vtype)


def nullable_values_of(col) -> st.SearchStrategy:
    vtype, size, in_bytes, nullable = col
    s = values_of(vtype, size, in_bytes)
    return st.one_of(st.none(), s) if nullable else s


columns_st = st.tuples(
    st.sampled_from(ALL_TYPES), st.sampled_from([0, 1, 3, 8, 40]), st.booleans(), st.booleans())


@st.composite
def schemas(draw, min_cols=1, max_cols=8):
    """A TupleSchema (with its column specs) with an optional pk and a few indexes."""
    cols = draw(st.lists(columns_st, min_size=min_cols, max_size=max_cols))
    n = len(cols)
    positions = st.lists(st.integers(0, n - 1), min_size=1, max_size=min(n, 4), unique=True)
    pk = draw(st.none() | positions)
    part_candidates = [i for i, c in enumerate(cols)
                       if c[0] in (TINYINT, SMALLINT, INTEGER, BIGINT, STRING, VARBINARY)]
    partitioned = draw(st.booleans())
    pcol = draw(st.sampled_from(part_candidates)) if partitioned and part_candidates else -1
    idx_cols = draw(st.lists(positions, max_size=3))
    indexes = [(10 + k, c, draw(st.booleans())) for k, c in enumerate(idx_cols)]
    names = [f"C{i}" for i in range(n)]
    return _engine.TupleSchema(7, cols, pk, pcol, partitioned, indexes, names=names), cols


@st.composite
def schema_and_rows(draw, max_rows=1):
    schema, cols = draw(schemas())
    rows = draw(st.lists(st.tuples(*[nullable_values_of(c) for c in cols]),
                         min_size=1, max_size=max_rows))
    return schema, cols, rows


key_types_st = st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=4)


def key_values(types, nullable=True):
    return st.tuples(*[(st.none() | values_of(t)) if nullable else values_of(t) for t in types])


def _norm_key_value(v):
    """What decode_key returns for v: -0.0 becomes 0.0 (keys treat them as equal)."""
    if isinstance(v, float) and v == 0.0:
        return 0.0
    return v


def _same(a, b) -> bool:
    """Equality that also tells -0.0 from 0.0 and checks types."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if type(x) is not type(y) or x != y:
            return False
        if isinstance(x, float) and math.copysign(1, x) != math.copysign(1, y):
            return False
    return True


# ---- rows: round trips ----------------------------------------------------------------

@given(schema_and_rows(max_rows=5))
def test_encode_decode_roundtrip(sr):
    schema, _cols, rows = sr
    for row in rows:
        buf = schema.encode_row(row)
        assert isinstance(buf, bytes)
        out = schema.decode_row(buf)
        note(f"{row!r} -> {buf.hex()} -> {out!r}")
        assert _same(out, row)
        # Read-only buffers (what py-lmdb hands out) decode the same way.
        assert _same(schema.decode_row(memoryview(buf)), row)
    bufs = schema.encode_rows(rows)
    assert bufs == [schema.encode_row(r) for r in rows]
    assert all(_same(a, b) for a, b in zip(schema.decode_rows(bufs), rows))


@given(schema_and_rows())
def test_decimals_come_back_with_scale_12(sr):
    schema, cols, rows = sr
    out = schema.decode_row(schema.encode_row(rows[0]))
    for (vtype, *_), v in zip(cols, out):
        if vtype == DECIMAL and v is not None:
            assert v.as_tuple().exponent == -12


def test_decimal_with_fewer_places_is_exact():
    s = _engine.TupleSchema(1, [(DECIMAL, 0, False, False)], None, -1, False, [])
    out = s.decode_row(s.encode_row((D("1.5"),)))
    assert out == (D("1.5"),)
    assert str(out[0]) == "1.500000000000"


def test_list_row_is_accepted_and_decodes_to_tuple():
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, False), (STRING, 5, False, True)],
                            None, -1, False, [])
    assert s.decode_row(s.encode_row([1, "ab"])) == (1, "ab")


def test_schema_attributes():
    s = _engine.TupleSchema(3, [(INTEGER, 0, False, False), (STRING, 5, True, True),
                                (BIGINT, 0, False, True)],
                            [0], 0, True, [(4, [0], True), (5, [1, 2], False)])
    assert s.table_id == 3
    assert s.ncols == 3
    assert s.types == (INTEGER, STRING, BIGINT)
    assert s.primary_key == (0,)
    assert s.partition_column == 0
    assert s.partitioned is True
    assert s.indexes == ((4, (0,), True), (5, (1, 2), False))
    assert _engine.TableSchema is _engine.TupleSchema
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.encode_row((1, "x", None)) == s.encode_row((1, "x", None))


# ---- rows: validation -----------------------------------------------------------------

any_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**64), 2**64),
    st.floats(), st.text(max_size=12), st.binary(max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True), st.decimals(places=13),
    st.builds(bytearray, st.binary(max_size=3)), st.just([1]),
    st.sampled_from([-128, 127, -32768, 32767, -(2**31), 2**31 - 1, -(2**63), 2**63 - 1, 2**63,
                     -1.7e308, 1.7e308, -1.8e308, float("inf"), float("nan"), "\ud800",
                     D(10)**26, D(10)**26 - D("1e-12"), D("1e-13"), D("-0"), "abcdefghi",
                     "é" * 4, b"x" * 9]),
)


@given(columns_st, any_value)
@example((STRING, 0, False, True), "\ud800")
@example((FLOAT, 0, False, True), -1.7e308)
@example((TINYINT, 0, False, True), -128)
@example((DECIMAL, 0, False, True), D("1e-13"))
@example((DECIMAL, 0, False, True), D(10) ** 26)
@example((STRING, 3, True, True), "éé")
@example((VARBINARY, 0, False, True), b"x" * 1048577)
@example((STRING, 0, False, True), "x" * 1048577)
def test_validation_matches_oracle(col, value):
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, False), col], None, -1, False, [],
                            names=["ID", "VAL"])
    row = (1, value)
    try:
        oracle.validate_value(*col, value)
    except _ERRORS as exc:
        with pytest.raises(type(exc)) as info:
            s.encode_row(row)
        msg = str(info.value)
        # The message names the column by position and name, and shows the value.
        assert "column 1" in msg and "VAL" in msg
        if value is not None and not isinstance(value, (bytes, str)):
            assert repr(value)[:20] in msg or str(value)[:20] in msg
    else:
        assert _same(s.decode_row(s.encode_row(row)), row)


@given(st.lists(columns_st, min_size=1, max_size=5), st.data())
def test_wrong_arity_is_type_mismatch(cols, data):
    s = _engine.TupleSchema(1, cols, None, -1, False, [])
    n = data.draw(st.integers(0, 8).filter(lambda k: k != len(cols)))
    with pytest.raises(TypeMismatchError):
        s.encode_row((None,) * n)


@pytest.mark.parametrize("row", [5, "abc", None, {1: 2}])
def test_non_tuple_row_is_type_mismatch(row):
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, True)], None, -1, False, [])
    with pytest.raises(TypeMismatchError):
        s.encode_row(row)


def test_not_null_is_constraint_error():
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, True), (STRING, 4, False, False)],
                            None, -1, False, [], names=["A", "B"])
    with pytest.raises(ConstraintError, match=r"column 1 \(B\) is NOT NULL"):
        s.encode_row((1, None))


@pytest.mark.parametrize(("args", "error"), [
    ((-1, [(INTEGER, 0, False, False)], None, -1, False, []), ValueOutOfRangeError),
    ((0xFFFF, [(INTEGER, 0, False, False)], None, -1, False, []), ValueOutOfRangeError),
    (("1", [(INTEGER, 0, False, False)], None, -1, False, []), TypeMismatchError),
    ((1, [], None, -1, False, []), ValueOutOfRangeError),
    ((1, [(99, 0, False, False)], None, -1, False, []), TypeMismatchError),
    ((1, [(INTEGER, 0, False)], None, -1, False, []), TypeMismatchError),
    ((1, [(STRING, -1, False, False)], None, -1, False, []), ValueOutOfRangeError),
    ((1, [(STRING, 2**21, False, False)], None, -1, False, []), ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)], [1], -1, False, []), ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)], [], -1, False, []), ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)] * 2, [0, 0], -1, False, []), ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)], None, 1, True, []), ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)], None, 0, False, []), ValueOutOfRangeError),
    ((1, [(FLOAT, 0, False, False)], None, 0, True, []), TypeMismatchError),
    ((1, [(INTEGER, 0, False, False)], None, -1, False, [(1, [2], True)]), ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)], None, -1, False, [(1, [0], True), (1, [0], False)]),
     ValueOutOfRangeError),
    ((1, [(INTEGER, 0, False, False)], None, -1, False, [(1, 0, True)]), TypeMismatchError),
    ((1, [(INTEGER, 0, False, False)], None, -1, False, None), TypeMismatchError),
    ((1, "abc", None, -1, False, []), TypeMismatchError),
])
def test_bad_schema_arguments_raise_typed_errors(args, error):
    with pytest.raises(error):
        _engine.TupleSchema(*args)


# ---- rows: robustness -----------------------------------------------------------------

def _check_decode_row(schema, buf):
    try:
        out = schema.decode_row(buf)
    except CodecError:
        # check_row (validation without decoding) rejects exactly what decode_row rejects.
        with pytest.raises(CodecError):
            schema.check_row(buf)
        return
    schema.check_row(buf)
    # Whatever decodes is a valid row whose encoding is exactly these bytes.
    assert isinstance(out, tuple)
    assert schema.encode_row(out) == bytes(buf)


@given(schemas(), st.binary(max_size=80))
def test_random_bytes_into_decode_row_never_crash(sc, buf):
    _check_decode_row(sc[0], buf)


@given(schema_and_rows(), st.data())
def test_corrupted_rows_raise_codec_error_or_decode_canonically(sr, data):
    schema, _cols, rows = sr
    buf = bytearray(schema.encode_row(rows[0]))
    kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "extend"]))
    if kind == "truncate":
        buf = buf[:data.draw(st.integers(0, len(buf) - 1))]
    elif kind == "flip":
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "insert":
        i = data.draw(st.integers(0, len(buf)))
        buf[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    else:
        buf += data.draw(st.binary(min_size=1, max_size=4))
    _check_decode_row(schema, bytes(buf))


def test_truncated_rows_all_raise():
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, False), (STRING, 0, False, True),
                                (DECIMAL, 0, False, True)], None, -1, False, [])
    buf = s.encode_row((1, "hello", D(5)))
    for n in range(len(buf)):
        with pytest.raises(CodecError):
            s.decode_row(buf[:n])


@pytest.mark.parametrize("buf", [3, None, "text", [1, 2]])
def test_decode_row_of_non_buffer_is_type_mismatch(buf):
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, True)], None, -1, False, [])
    with pytest.raises(TypeMismatchError):
        s.decode_row(buf)


# ---- keys -----------------------------------------------------------------------------

@given(key_types_st.flatmap(lambda ts: st.tuples(st.just(ts), key_values(ts))))
@example(([STRING], ("a\x00b",)))
@example(([FLOAT], (-0.0,)))
@example(([DECIMAL], (_dec(-DEC_MAX_UNSCALED),)))
@example(([BIGINT, TIMESTAMP], (INT_RANGES[BIGINT][0], None)))
def test_engine_key_matches_oracle(tv):
    types, values = tv
    key = _engine.encode_key(types, values)
    assert key == oracle.encode_key(types, values)
    out = _engine.decode_key(types, key)
    assert _same(out, tuple(_norm_key_value(v) for v in values))
    # A prefix of the values is a prefix of the key, and decodes to that prefix.
    for k in range(len(values) + 1):
        pk = _engine.encode_key(types, values[:k])
        assert key.startswith(pk)
        assert _same(_engine.decode_key(types, pk), tuple(_norm_key_value(v) for v in values[:k]))


@st.composite
def two_key_tuples(draw):
    types = draw(key_types_st)
    a = draw(key_values(types))
    # Often share a prefix with a so that later positions get compared.
    k = draw(st.integers(0, len(types)))
    b = a[:k] + draw(key_values(types[k:]))
    ka, kb = draw(st.integers(0, len(types))), draw(st.integers(0, len(types)))
    return types, a[:ka], b[:kb]


@given(two_key_tuples())
@example(([STRING], ("a",), ("a\x00",)))
@example(([STRING], ("\uffff",), ("\U00010000",)))
@example(([VARBINARY], (b"",), (b"\x00",)))
@example(([FLOAT], (-0.0,), (0.0,)))
@example(([FLOAT, INTEGER], (-1e-300,), (-1e-300, None)))
@example(([DECIMAL], (D("-0.000000000001"),), (D(0),)))
def test_key_order_is_sql_order(tvv):
    types, a, b = tvv
    ea, eb = _engine.encode_key(types, a), _engine.encode_key(types, b)
    sa, sb = oracle.sql_sort_key(a), oracle.sql_sort_key(b)
    note(f"{ea.hex()} {eb.hex()}")
    assert (ea < eb) == (sa < sb)
    assert (ea == eb) == (sa == sb)


@given(key_types_st, st.binary(max_size=60))
def test_random_bytes_into_decode_key_never_crash(types, buf):
    try:
        out = _engine.decode_key(types, buf)
    except CodecError:
        return
    assert _engine.encode_key(types, out) == buf


@given(key_types_st.flatmap(lambda ts: st.tuples(st.just(ts), key_values(ts))), st.data())
def test_corrupted_keys_raise_codec_error_or_decode_canonically(tv, data):
    types, values = tv
    buf = bytearray(_engine.encode_key(types, values))
    i = data.draw(st.integers(0, len(buf) - 1))
    if data.draw(st.booleans()):
        buf[i] ^= 1 << data.draw(st.integers(0, 7))
    else:
        del buf[i:]
    try:
        out = _engine.decode_key(types, bytes(buf))
    except CodecError:
        return
    assert _engine.encode_key(types, out) == bytes(buf)


@given(key_types_st.flatmap(lambda ts: st.tuples(st.just(ts), key_values(ts))),
       st.binary(max_size=10))
def test_decode_key_from_stops_after_the_key(tv, tail):
    types, values = tv
    key = _engine.encode_key(types, values)
    out, end = _engine.decode_key_from(types, b"xy" + key + tail, 2)
    assert end == 2 + len(key)
    assert _same(out, tuple(_norm_key_value(v) for v in values))


@pytest.mark.parametrize(("vtype", "value", "error"), [
    (INTEGER, True, TypeMismatchError),
    (INTEGER, 1.0, TypeMismatchError),
    (INTEGER, "1", TypeMismatchError),
    (BIGINT, 2**63, ValueOutOfRangeError),
    (TINYINT, -(2**63) - 1, ValueOutOfRangeError),
    (FLOAT, float("nan"), ValueOutOfRangeError),
    (FLOAT, 1, TypeMismatchError),
    (STRING, b"x", TypeMismatchError),
    (STRING, "\udc00", ValueOutOfRangeError),
    (VARBINARY, "x", TypeMismatchError),
    (VARBINARY, bytearray(b"x"), TypeMismatchError),
    (DECIMAL, 1, TypeMismatchError),
    (DECIMAL, D("NaN"), ValueOutOfRangeError),
    (DECIMAL, D("1e-13"), ValueOutOfRangeError),
    (DECIMAL, D(10) ** 26, ValueOutOfRangeError),
])
def test_bad_key_values_raise_typed_errors(vtype, value, error):
    with pytest.raises(error, match="key value 0"):
        _engine.encode_key([vtype], (value,))


def test_key_bounds_outside_column_range_encode():
    # Range scans may bound a TINYINT column by 1000 or a FLOAT column by infinity.
    assert _engine.encode_key([TINYINT], (1000,)) > _engine.encode_key([TINYINT], (127,))
    assert _engine.encode_key([FLOAT], (float("inf"),)) > _engine.encode_key([FLOAT], (1.7e308,))
    assert _engine.encode_key([FLOAT], (float("-inf"),)) > _engine.encode_key([FLOAT], (None,))


def test_key_arguments_are_checked():
    with pytest.raises(TypeMismatchError):
        _engine.encode_key([INTEGER], (1, 2))
    with pytest.raises(TypeMismatchError):
        _engine.encode_key([1234], (1,))
    with pytest.raises(CodecError):
        _engine.decode_key([INTEGER], _engine.encode_key([INTEGER], (1,)) + b"\x00")
    with pytest.raises(CodecError):
        _engine.decode_key_from([INTEGER, INTEGER], _engine.encode_key([INTEGER], (1,)))
    with pytest.raises(ValueOutOfRangeError):
        _engine.decode_key_from([INTEGER], b"", 5)


# ---- schema key helpers ---------------------------------------------------------------

@given(schema_and_rows())
def test_schema_keys_match_oracle(sr):
    schema, cols, rows = sr
    row = rows[0]
    types = [c[0] for c in cols]
    if schema.primary_key is None:
        with pytest.raises(TypeMismatchError):
            schema.pk_suffix(row)
    else:
        pk_vals = tuple(row[p] for p in schema.primary_key)
        pk_types = [types[p] for p in schema.primary_key]
        expect = oracle.encode_key(pk_types, pk_vals)
        assert schema.pk_suffix(row) == expect
        assert schema.encode_pk(pk_vals) == expect
        assert _same(schema.decode_pk(expect), tuple(_norm_key_value(v) for v in pk_vals))
    for pos, (_iid, icols, _unique) in enumerate(schema.indexes):
        vals = tuple(row[p] for p in icols)
        key, has_null = schema.index_key(pos, row)
        assert key == oracle.encode_key([types[p] for p in icols], vals)
        assert has_null == any(v is None for v in vals)
        assert schema.index_types(pos) == tuple(types[p] for p in icols)
        for k in range(len(vals) + 1):
            assert key.startswith(schema.encode_index_prefix(pos, vals[:k]))
    pc = schema.partition_column
    if pc < 0 or row[pc] is None:
        assert schema.row_token(row) == 0
    else:
        assert schema.row_token(row) == _engine.token_for(types[pc], row[pc])


def test_schema_key_helpers_check_arguments():
    s = _engine.TupleSchema(1, [(INTEGER, 0, False, False), (STRING, 5, False, True)],
                            [0], 0, True, [(2, [1, 0], False)])
    with pytest.raises(TypeMismatchError):
        s.encode_pk((1, 2))
    with pytest.raises(ValueOutOfRangeError):
        s.index_key(1, (1, "a"))
    with pytest.raises(TypeMismatchError):
        s.encode_index_prefix(0, ("a", 1, 2))
    with pytest.raises(TypeMismatchError, match="column 1"):
        s.encode_index_prefix(0, (1,))
    with pytest.raises(TypeMismatchError):
        s.index_key(0, (1,))
    assert s.row_token((5, None)) == _engine.token_for(INTEGER, 5)


_KEYS_SCHEMA = _engine.TupleSchema(
    7, [(STRING, 4, False, True), (DECIMAL, 0, False, True), (FLOAT, 0, False, True)],
    [0, 1], 0, True, [(70, [2, 0], True), (71, [1], False)])


@given(schema_and_rows())
@example(sr=(_KEYS_SCHEMA, _KEYS_SCHEMA.columns, [("a\x00\u00e9", D("-1.5"), -0.0)]))
@example(sr=(_KEYS_SCHEMA, _KEYS_SCHEMA.columns, [(None, None, None)]))
def test_keys_from_row_bytes_match_keys_from_values(sr):
    schema, _cols, rows = sr
    row = rows[0]
    token, pk, idx = schema.encoded_keys(schema.encode_row(row))
    assert token == schema.row_token(row)
    assert pk == (None if schema.primary_key is None else schema.pk_suffix(row))
    assert idx == [schema.index_key(i, row) for i in range(len(schema.indexes))]


def test_encoded_keys_and_check_row_reject_bad_rows():
    s = _engine.TupleSchema(1, [(STRING, 2, False, False)], [0], 0, True, [])
    for bad in (b"", b"\x02\x00\x01a", b"\x01\x00\x03abc", b"\x01\x00\x01\xff",
                b"\x01\x00\x02\xed\xa0", b"\x01\x01"):
        with pytest.raises(CodecError):
            s.check_row(bad)
        with pytest.raises(CodecError):
            s.encoded_keys(bad)
    s.check_row(b"\x01\x00\x02\xc3\xa9")

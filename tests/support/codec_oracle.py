# SPDX-License-Identifier: AGPL-3.0-or-later
"""Slow, obvious pure-Python oracle of the memcomparable key encoding and of row validation."""

from __future__ import annotations

import decimal
import math
import struct
from typing import Any

from voltdb_py.errors import ConstraintError, TypeMismatchError, ValueOutOfRangeError

TINYINT, SMALLINT, INTEGER, BIGINT, FLOAT, STRING, TIMESTAMP, DECIMAL, VARBINARY = (
    3, 4, 5, 6, 8, 9, 11, 22, 25)
INT_TYPES = (TINYINT, SMALLINT, INTEGER, BIGINT, TIMESTAMP)
ALL_TYPES = (TINYINT, SMALLINT, INTEGER, BIGINT, FLOAT, STRING, TIMESTAMP, DECIMAL, VARBINARY)
INT_RANGES = {
    TINYINT: (-127, 127),
    SMALLINT: (-32767, 32767),
    INTEGER: (-(2**31 - 1), 2**31 - 1),
    BIGINT: (-(2**63 - 1), 2**63 - 1),
    TIMESTAMP: (-(2**63 - 1), 2**63 - 1),
}
MAX_VAR_BYTES = 1048576


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def unscaled(d: decimal.Decimal) -> int:
    """Return d * 10^12 as an exact int; raise ValueOutOfRangeError if not exact or too big."""
    if not d.is_finite():
        raise ValueOutOfRangeError(f"{d!r} is not finite")
    sign, digits, exp = d.as_tuple()
    n = int("".join(map(str, digits)) or "0")
    shift = exp + 12
    if shift >= 0:
        q = n * 10**shift
    else:
        q, r = divmod(n, 10**-shift)
        if r:
            raise ValueOutOfRangeError(f"{d!r} has more than 12 decimal places")
    q = -q if sign else q
    if abs(q) >= 10**38:
        raise ValueOutOfRangeError(f"{d!r} has more than 26 digits before the point")
    return q


def validate_value(vtype: int, size: int, in_bytes: bool, nullable: bool, v: Any) -> None:
    """Raise the error encode_row must raise for value v in a column, or return None."""
    if v is None:
        if not nullable:
            raise ConstraintError("NOT NULL")
        return
    if vtype in INT_TYPES:
        if not _is_int(v):
            raise TypeMismatchError(repr(v))
        lo, hi = INT_RANGES[vtype]
        if not lo <= v <= hi:
            raise ValueOutOfRangeError(repr(v))
    elif vtype == FLOAT:
        if not isinstance(v, float):
            raise TypeMismatchError(repr(v))
        if not math.isfinite(v) or v <= -1.7e308:
            raise ValueOutOfRangeError(repr(v))
    elif vtype == STRING:
        if not isinstance(v, str):
            raise TypeMismatchError(repr(v))
        try:
            nbytes = len(v.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueOutOfRangeError(repr(v)) from None
        if size == 0:
            if nbytes > MAX_VAR_BYTES:
                raise ValueOutOfRangeError(repr(v))
        elif (nbytes if in_bytes else len(v)) > size:
            raise ValueOutOfRangeError(repr(v))
    elif vtype == VARBINARY:
        if not isinstance(v, bytes):
            raise TypeMismatchError(repr(v))
        if len(v) > (size or MAX_VAR_BYTES):
            raise ValueOutOfRangeError(repr(v))
    elif vtype == DECIMAL:
        if not isinstance(v, decimal.Decimal):
            raise TypeMismatchError(repr(v))
        unscaled(v)
    else:
        raise TypeMismatchError(f"type {vtype}")


def validate_row(columns: list[tuple[int, int, bool, bool]], row: tuple) -> None:
    """Raise what encode_row must raise for row, checking columns left to right."""
    if len(row) != len(columns):
        raise TypeMismatchError("arity")
    for (vtype, size, in_bytes, nullable), v in zip(columns, row):
        validate_value(vtype, size, in_bytes, nullable, v)


def _escape(b: bytes) -> bytes:
    out = bytearray()
    for c in b:
        out.append(c)
        if c == 0:
            out.append(0xFF)
    return bytes(out) + b"\x00\x00"


def key_value(vtype: int, v: Any) -> bytes:
    """Memcomparable bytes of one value (tag included)."""
    if v is None:
        return b"\x00"
    if vtype in INT_TYPES:
        return b"\x01" + struct.pack(">Q", (v + 2**63) % 2**64)
    if vtype == FLOAT:
        if v == 0.0:
            v = 0.0
        (u,) = struct.unpack(">Q", struct.pack(">d", v))
        u = (u ^ (2**64 - 1)) if u >> 63 else (u | 2**63)
        return b"\x01" + struct.pack(">Q", u)
    if vtype == DECIMAL:
        return b"\x01" + ((unscaled(v) + 2**127) % 2**128).to_bytes(16, "big")
    if vtype == STRING:
        return b"\x01" + _escape(v.encode("utf-8"))
    if vtype == VARBINARY:
        return b"\x01" + _escape(v)
    raise TypeMismatchError(f"type {vtype}")


def encode_key(types: list[int], values: tuple) -> bytes:
    """Concatenation of key_value over a prefix of types."""
    return b"".join(key_value(t, v) for t, v in zip(types, values))


def sql_sort_key(values: tuple) -> tuple:
    """A Python sort key giving SQL order of value tuples: NULL first, then by value."""
    return tuple((0,) if v is None else (1, v) for v in values)

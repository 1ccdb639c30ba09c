# SPDX-License-Identifier: AGPL-3.0-or-later
"""VoltDB's types, value coercion, result tables and client responses."""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any

from voltdb_py.engine import _engine
from voltdb_py.errors import TypeMismatchError, ValueOutOfRangeError


class VoltType(enum.IntEnum):
    """VoltDB's column and parameter types, with their wire codes."""

    NULL = _engine.T_NULL
    TINYINT = _engine.T_TINYINT
    SMALLINT = _engine.T_SMALLINT
    INTEGER = _engine.T_INTEGER
    BIGINT = _engine.T_BIGINT
    FLOAT = _engine.T_FLOAT
    STRING = _engine.T_STRING
    TIMESTAMP = _engine.T_TIMESTAMP
    DECIMAL = _engine.T_DECIMAL
    VARBINARY = _engine.T_VARBINARY

    @property
    def sql_name(self) -> str:
        """The name used in DDL and in @SystemCatalog (STRING is VARCHAR)."""
        return "VARCHAR" if self is VoltType.STRING else self.name

    @classmethod
    def from_sql_name(cls, name: str) -> VoltType:
        """Map a DDL type name (and VoltDB's aliases) to a VoltType."""
        key = name.strip().upper()
        try:
            return _SQL_NAMES[key]
        except KeyError:
            raise TypeMismatchError(f"unknown SQL type {name!r}") from None


_SQL_NAMES = {
    "TINYINT": VoltType.TINYINT,
    "SMALLINT": VoltType.SMALLINT,
    "INTEGER": VoltType.INTEGER,
    "INT": VoltType.INTEGER,
    "BIGINT": VoltType.BIGINT,
    "FLOAT": VoltType.FLOAT,
    "DOUBLE": VoltType.FLOAT,
    "VARCHAR": VoltType.STRING,
    "STRING": VoltType.STRING,
    "TIMESTAMP": VoltType.TIMESTAMP,
    "DECIMAL": VoltType.DECIMAL,
    "VARBINARY": VoltType.VARBINARY,
}

INTEGER_TYPES = frozenset({VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER, VoltType.BIGINT})

# Valid (non-NULL) ranges; the minimum of each integer type is VoltDB's NULL sentinel.
INT_RANGES = {
    VoltType.TINYINT: (-127, 127),
    VoltType.SMALLINT: (-32767, 32767),
    VoltType.INTEGER: (-2147483647, 2147483647),
    VoltType.BIGINT: (-9223372036854775807, 9223372036854775807),
    VoltType.TIMESTAMP: (-9223372036854775807, 9223372036854775807),
}
NULL_SENTINELS = {
    VoltType.TINYINT: _engine.NULL_TINYINT,
    VoltType.SMALLINT: _engine.NULL_SMALLINT,
    VoltType.INTEGER: _engine.NULL_INTEGER,
    VoltType.BIGINT: _engine.NULL_BIGINT,
    VoltType.TIMESTAMP: _engine.NULL_TIMESTAMP,
}
NULL_FLOAT = _engine.NULL_FLOAT
DECIMAL_SCALE = _engine.DECIMAL_SCALE
DECIMAL_QUANTUM = decimal.Decimal(1).scaleb(-DECIMAL_SCALE)
DECIMAL_MAX = decimal.Decimal(10) ** 26 - DECIMAL_QUANTUM
_DEC_CTX = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)
_EPOCH = _dt.datetime(1970, 1, 1)
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")


def decimal_value(value: Any) -> decimal.Decimal:
    """Return value as a DECIMAL(38,12), rounded half-even to 12 places; raise if too large."""
    try:
        d = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value).strip())
    except (decimal.InvalidOperation, ValueError):
        raise TypeMismatchError(f"{value!r} is not a DECIMAL value") from None
    if not d.is_finite():
        raise ValueOutOfRangeError(f"DECIMAL value {value!r} is not finite")
    d = d.quantize(DECIMAL_QUANTUM, context=_DEC_CTX)
    if abs(d) > DECIMAL_MAX:
        raise ValueOutOfRangeError(f"DECIMAL value {value!r} has more than 26 digits before the point")
    return d


def timestamp_micros(value: Any) -> int:
    """Return a TIMESTAMP value as microseconds since the epoch (naive datetimes are UTC)."""
    if isinstance(value, bool):
        raise TypeMismatchError(f"{value!r} is not a TIMESTAMP value")
    if isinstance(value, int):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        delta = value - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, _dt.date):
        return timestamp_micros(_dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        s = value.strip()
        if _INT_RE.match(s):
            return int(s)
        try:
            return timestamp_micros(_dt.datetime.fromisoformat(s))
        except ValueError:
            raise TypeMismatchError(f"{value!r} is not a TIMESTAMP value") from None
    raise TypeMismatchError(f"{type(value).__name__} value {value!r} is not a TIMESTAMP value")


def micros_to_datetime(micros: int) -> _dt.datetime:
    """Return the naive UTC datetime of a TIMESTAMP in microseconds."""
    return _EPOCH + _dt.timedelta(microseconds=micros)


def coerce(vtype: VoltType, value: Any, size: int = 0, in_bytes: bool = False,
           what: str = "value") -> Any:
    """Convert value to vtype's internal representation the way VoltDB converts parameters.

    None and the type's NULL sentinel become None. Integers are range-checked, numeric
    strings parsed, integral floats accepted for integer types; TIMESTAMP becomes int
    microseconds; DECIMAL a Decimal with scale 12; VARCHAR/VARBINARY are length-checked
    against size (characters, or UTF-8 bytes when in_bytes) when size > 0.

    :raises TypeMismatchError: the value cannot be converted.
    :raises ValueOutOfRangeError: the value is outside the type's range or size.
    """
    if value is None:
        return None
    t = vtype
    if t in INTEGER_TYPES or t is VoltType.TIMESTAMP:
        if t is VoltType.TIMESTAMP:
            v = timestamp_micros(value)
        elif isinstance(value, bool):
            v = int(value)
        elif isinstance(value, int):
            v = value
        elif isinstance(value, float):
            if not value.is_integer():
                raise TypeMismatchError(f"{what} {value!r} is not an integer for {t.sql_name}")
            v = int(value)
        elif isinstance(value, decimal.Decimal):
            if value != value.to_integral_value():
                raise TypeMismatchError(f"{what} {value!r} is not an integer for {t.sql_name}")
            v = int(value)
        elif isinstance(value, str) and _INT_RE.match(value):
            v = int(value)
        else:
            raise TypeMismatchError(
                f"{what} {value!r} ({type(value).__name__}) cannot be converted to {t.sql_name}")
        if v == NULL_SENTINELS[t]:
            return None
        lo, hi = INT_RANGES[t]
        if not lo <= v <= hi:
            raise ValueOutOfRangeError(f"{what} {v} is out of range for {t.sql_name} [{lo}, {hi}]")
        return v
    if t is VoltType.FLOAT:
        if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
            f = float(value)
        elif isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise TypeMismatchError(f"{what} {value!r} is not a FLOAT value") from None
        else:
            raise TypeMismatchError(f"{what} {value!r} ({type(value).__name__}) is not a FLOAT")
        if f <= NULL_FLOAT:
            return None
        if math.isnan(f) or math.isinf(f):
            raise ValueOutOfRangeError(f"{what} {value!r} is not a finite FLOAT")
        return f
    if t is VoltType.DECIMAL:
        if isinstance(value, (bool, bytes, bytearray)):
            raise TypeMismatchError(f"{what} {value!r} is not a DECIMAL value")
        return decimal_value(value)
    if t is VoltType.STRING:
        if isinstance(value, str):
            s = value
        elif isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
            s = str(value)
        else:
            raise TypeMismatchError(
                f"{what} {value!r} ({type(value).__name__}) cannot be converted to VARCHAR")
        if size:
            n = len(s.encode("utf-8")) if in_bytes else len(s)
            if n > size:
                unit = " BYTES" if in_bytes else ""
                raise ValueOutOfRangeError(
                    f"the size {n} of {what} exceeds the size of the VARCHAR({size}{unit}) column")
        return s
    if t is VoltType.VARBINARY:
        if isinstance(value, (bytes, bytearray, memoryview)):
            b = bytes(value)
        elif isinstance(value, str):
            try:
                b = bytes.fromhex(value)
            except ValueError:
                raise TypeMismatchError(f"{what} {value!r} is not a hex string for VARBINARY") from None
        else:
            raise TypeMismatchError(
                f"{what} {value!r} ({type(value).__name__}) cannot be converted to VARBINARY")
        if size and len(b) > size:
            raise ValueOutOfRangeError(
                f"the size {len(b)} of {what} exceeds the size of the VARBINARY({size}) column")
        return b
    raise TypeMismatchError(f"unsupported type {t!r}")


def to_client_value(vtype: VoltType, value: Any) -> Any:
    """Convert an internal value to what users see: TIMESTAMP as a naive UTC datetime."""
    if value is not None and vtype is VoltType.TIMESTAMP:
        return micros_to_datetime(value)
    return value


@dataclass(frozen=True, slots=True)
class Column:
    """A result-table column: its name and VoltType."""

    name: str
    type: VoltType


@dataclass(slots=True)
class VoltTable:
    """A result table: columns and rows (a list of tuples), as VoltDB returns them."""

    columns: list[Column]
    rows: list[tuple] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def scalar(self) -> Any:
        """Return the first column of the first row (VoltDB's asScalarLong and friends)."""
        if not self.rows:
            raise IndexError("the table has no rows")
        return self.rows[0][0]

    def column_index(self, name: str) -> int:
        """Return the position of the named column (case-insensitive)."""
        up = name.upper()
        for i, c in enumerate(self.columns):
            if c.name.upper() == up:
                return i
        raise KeyError(name)


class Status(enum.IntEnum):
    """VoltDB's ClientResponse status codes."""

    SUCCESS = 1
    USER_ABORT = -1
    GRACEFUL_FAILURE = -2
    UNEXPECTED_FAILURE = -3
    CONNECTION_LOST = -4
    SERVER_UNAVAILABLE = -5
    CONNECTION_TIMEOUT = -6
    RESPONSE_UNKNOWN = -7
    TXN_RESTART = -8
    OPERATIONAL_FAILURE = -9


APP_STATUS_UNSET = -128


@dataclass(slots=True)
class ClientResponse:
    """The answer to a call: status, status string, app status and result tables."""

    status: int
    status_string: str | None = None
    app_status: int = APP_STATUS_UNSET
    app_status_string: str | None = None
    tables: list[VoltTable] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == Status.SUCCESS

    @property
    def results(self) -> list[VoltTable]:
        """Alias of tables (the official client's name)."""
        return self.tables

    def __repr__(self) -> str:
        return (f"ClientResponse(status={self.status}, status_string={self.status_string!r}, "
                f"tables={len(self.tables)})")

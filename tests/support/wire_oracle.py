# SPDX-License-Identifier: AGPL-3.0-or-later
"""Slow, obvious pure-Python oracle of the response side of the client wire protocol (§5, §8).

Reads a stream of length-prefixed response frames with struct, one field at a time, into
plain tuples, so the compiled decoders can be checked against it value by value.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from typing import Any

_EPOCH = dt.datetime(1970, 1, 1)


class OracleError(Exception):
    """The bytes are not a valid response."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise OracleError(f"needs {n} bytes at {self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))[0]

    def string(self, text: bool) -> Any:
        n = self.unpack("i")
        if n == -1:
            return None
        if n < -1:
            raise OracleError("bad string length")
        b = self.take(n)
        if not text:
            return b
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise OracleError("bad utf-8") from None


def _value(r: _Reader, t: int, client_values: bool) -> Any:
    if t == 9:
        return r.string(True)
    if t in (25, 27):
        return r.string(False)
    if t in (6, 11):
        v = r.unpack("q")
        if v == -2**63:
            return None
        if t == 11 and client_values:
            return _EPOCH + dt.timedelta(microseconds=v)
        return v
    if t == 5:
        v = r.unpack("i")
        return None if v == -2**31 else v
    if t == 4:
        v = r.unpack("h")
        return None if v == -2**15 else v
    if t == 3:
        v = r.unpack("b")
        return None if v == -2**7 else v
    if t == 8:
        d = r.unpack("d")
        return None if d <= -1.7e308 else d
    if t == 22:
        raw = r.take(16)
        if raw == b"\x80" + b"\x00" * 15:
            return None
        u = int.from_bytes(raw, "big", signed=True)
        if not -10**38 < u < 10**38:
            raise OracleError("decimal too wide")
        return decimal.Decimal(f"{u}E-12")
    if t == 1:
        return None
    if t == 23:
        v = r.unpack("b")
        return True if v == 1 else False if v == 0 else None
    if t == 12:
        v = r.unpack("i")
        if v == -2**31:
            return None
        try:
            return dt.date((v >> 16) & 0xFFFF, (v >> 8) & 0xFF, v & 0xFF)
        except ValueError:
            raise OracleError("bad date") from None
    if t == 26:
        x, y = r.unpack("d"), r.unpack("d")
        return None if (x, y) == (360.0, 360.0) else (x, y)
    raise OracleError(f"type {t}")


_COLUMN_TYPES = {1, 3, 4, 5, 6, 8, 9, 11, 12, 22, 23, 25, 26, 27}


def table(r: _Reader, client_values: bool) -> tuple[list[tuple[str, int]], list[tuple]]:
    """Read one VoltTable: ([(column name, type code)], rows)."""
    total = r.unpack("i")
    end = r.pos + total
    if total < 0 or end > len(r.data):
        raise OracleError("bad table length")
    hlen = r.unpack("i")
    hstart = r.pos
    r.unpack("b")
    ncols = r.unpack("h")
    if ncols < 1:
        raise OracleError("no columns")
    types = list(struct.unpack(f">{ncols}b", r.take(ncols)))
    names = []
    for _ in range(ncols):
        name = r.string(True)
        if name is None:
            raise OracleError("NULL column name")
        names.append(name)
    if r.pos - hstart != hlen or any(t not in _COLUMN_TYPES for t in types):
        raise OracleError("bad header")
    nrows = r.unpack("i")
    if nrows < 0:
        raise OracleError("bad row count")
    rows = []
    for _ in range(nrows):
        rlen = r.unpack("i")
        rend = r.pos + rlen
        if rlen < 0 or rend > end:
            raise OracleError("bad row length")
        rows.append(tuple(_value(r, t, client_values) for t in types))
        if r.pos != rend:
            raise OracleError("row length mismatch")
    if r.pos != end:
        raise OracleError("table length mismatch")
    return list(zip(names, types)), rows


def response(body: bytes, client_values: bool = True) -> tuple:
    """One response body: (handle, status, status string, app status, app status string,
    tables)."""
    r = _Reader(body)
    if r.unpack("b") != 0:
        raise OracleError("version")
    handle = r.unpack("q")
    bits = r.unpack("B")
    status = r.unpack("b")
    sstr = r.string(True) if bits & 0x20 else None
    aps = r.unpack("b")
    astr = r.string(True) if bits & 0x80 else None
    r.unpack("i")
    if bits & 0x40:
        n = r.unpack("i")
        if n < 0:
            raise OracleError("exception length")
        r.take(n)
    if bits & 0x10:
        n = r.unpack("h")
        if n < 0:
            raise OracleError("hash count")
        r.take(4 * n)
    ntables = r.unpack("h")
    if ntables < 0:
        raise OracleError("table count")
    tables = [table(r, client_values) for _ in range(ntables)]
    if r.pos != len(body):
        raise OracleError("trailing bytes")
    return handle, status, sstr, aps, astr, tables


def response_frames(stream: bytes, client_values: bool = True) -> tuple[list[tuple], bool]:
    """Every complete frame of stream, decoded; stop at the first undecodable body.

    Returns (decoded responses, whether an undecodable body stopped the scan).
    """
    out = []
    pos = 0
    while len(stream) - pos >= 4:
        (n,) = struct.unpack_from(">i", stream, pos)
        if n <= 0:
            raise OracleError("frame length")
        if len(stream) - pos - 4 < n:
            break
        try:
            out.append(response(stream[pos + 4:pos + 4 + n], client_values))
        except (OracleError, struct.error):
            return out, True
        pos += 4 + n
    return out, False

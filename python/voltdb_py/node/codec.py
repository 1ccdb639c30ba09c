# SPDX-License-Identifier: AGPL-3.0-or-later
"""Internal message encoding between the hosts of a cluster: msgpack with a few ext types.

Messages are msgpack lists. Values that msgpack has no type for travel as ext types:
Decimal (as its exact string), datetime (microseconds since the epoch, UTC), VoltTable
(columns and rows, rows back as tuples), ClientResponse, and tuples and sets (so the
partial results of SQL fragments, dicts keyed by tuples, arrive as they left). Nothing is ever unpickled:
a peer's bytes can only become these plain values.
"""

from __future__ import annotations

import datetime as _dt
import struct
from decimal import Decimal
from typing import Any

import msgpack

from voltdb_py.errors import CodecError
from voltdb_py.types import ClientResponse, Column, VoltTable, VoltType

_EXT_DECIMAL = 1
_EXT_DATETIME = 2
_EXT_TABLE = 3
_EXT_RESPONSE = 4
_EXT_TUPLE = 5
_EXT_SET = 6

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_LEN = struct.Struct(">I")
#: A single internal message may not be larger (a bulk-load chunk is far smaller).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(obj).encode())
    if isinstance(obj, _dt.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=_dt.timezone.utc)
        delta = obj - _EPOCH
        us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        return msgpack.ExtType(_EXT_DATETIME, struct.pack(">q", us))
    if isinstance(obj, VoltTable):
        cols = [(c.name, int(c.type)) for c in obj.columns]
        return msgpack.ExtType(_EXT_TABLE, pack([cols, [list(r) for r in obj.rows]]))
    if isinstance(obj, ClientResponse):
        return msgpack.ExtType(_EXT_RESPONSE, pack([
            int(obj.status), obj.status_string, int(obj.app_status), obj.app_status_string,
            obj.tables]))
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, pack(list(obj)))
    if isinstance(obj, (set, frozenset)):
        return msgpack.ExtType(_EXT_SET, pack(list(obj)))
    if isinstance(obj, int) and not isinstance(obj, bool):  # IntEnum and other subclasses
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    raise TypeError(f"cannot send a {type(obj).__name__} between hosts")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DECIMAL:
        return Decimal(data.decode())
    if code == _EXT_DATETIME:
        (us,) = struct.unpack(">q", data)
        return _EPOCH + _dt.timedelta(microseconds=us)
    if code == _EXT_TABLE:
        cols, rows = unpack(data)
        return VoltTable([Column(n, VoltType(t)) for n, t in cols], [tuple(r) for r in rows])
    if code == _EXT_RESPONSE:
        status, ss, app, app_s, tables = unpack(data)
        return ClientResponse(status, ss, app, app_s, tables)
    if code == _EXT_TUPLE:
        return tuple(unpack(data))
    if code == _EXT_SET:
        return set(unpack(data))
    raise CodecError(f"unknown internal ext type {code}")


def pack(obj: Any) -> bytes:
    """Encode one message body."""
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)


def unpack(data: bytes) -> Any:
    """Decode one message body.

    :raises CodecError: the bytes are not a message.
    """
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False,
                               use_list=True)
    except CodecError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises several kinds
        raise CodecError(f"malformed internal message: {type(exc).__name__}: {exc}") from None


def frame(obj: Any) -> bytes:
    """One length-prefixed message, ready to write."""
    body = pack(obj)
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream into message bodies."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add received bytes; return the decoded messages they completed.

        :raises CodecError: a length over MAX_MESSAGE_BYTES or an undecodable body.
        """
        buf = self._buf
        buf += data
        out = []
        off = 0
        n = len(buf)
        while n - off >= 4:
            (size,) = _LEN.unpack_from(buf, off)
            if size > MAX_MESSAGE_BYTES:
                raise CodecError(f"internal message of {size} bytes is over the limit")
            if n - off - 4 < size:
                break
            out.append(unpack(bytes(buf[off + 4:off + 4 + size])))
            off += 4 + size
        if off:
            del buf[:off]
        return out

# SPDX-License-Identifier: AGPL-3.0-or-later
"""VoltDB client wire protocol (voltdb-wire-protocol.md §1-§8): codecs, constants, frame readers.

The codecs are compiled (engine/wire.pxi); this module re-exports them and adds the
asyncio/stream helpers that need no per-byte work.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from voltdb_py.engine import _engine
from voltdb_py.errors import CodecError

__all__ = [
    "InvocationError", "split_frames", "decode_login", "encode_login", "encode_login_response",
    "encode_login_failure", "decode_login_response", "decode_invocation", "encode_invocation",
    "encode_response", "encode_responses", "encode_response_list", "decode_response", "decode_response_frames", "answer_frames", "encode_volttable", "decode_volttable",
    "FrameBuffer", "read_frame", "DEFAULT_MAX_FRAME_BYTES",
]

InvocationError = _engine.InvocationError
split_frames = _engine.split_frames
decode_login = _engine.decode_login
encode_login = _engine.encode_login
encode_login_response = _engine.encode_login_response
encode_login_failure = _engine.encode_login_failure
decode_login_response = _engine.decode_login_response
decode_invocation = _engine.decode_invocation
encode_invocation = _engine.encode_invocation
encode_response = _engine.encode_response
encode_responses = _engine.encode_responses
encode_response_list = _engine.encode_response_list
decode_response = _engine.decode_response
decode_response_frames = _engine.decode_response_frames
answer_frames = _engine.answer_frames
encode_volttable = _engine.encode_volttable
decode_volttable = _engine.decode_volttable

DEFAULT_MAX_FRAME_BYTES = _engine.DEFAULT_MAX_FRAME_BYTES
DIGEST_LENGTHS = _engine.DIGEST_LENGTHS
HASH_SHA1 = _engine.HASH_SHA1
HASH_SHA256 = _engine.HASH_SHA256

# Wire type codes that voltdb_py.types.VoltType does not list (§7).
T_DATE = _engine.T_DATE
T_VOLTTABLE = _engine.T_VOLTTABLE
T_BOOLEAN = _engine.T_BOOLEAN
T_GEOGRAPHY_POINT = _engine.T_GEOGRAPHY_POINT
T_GEOGRAPHY = _engine.T_GEOGRAPHY
T_ARRAY = _engine.T_ARRAY

# Invocation extension types (§4.1); decode_invocation names them in its dict.
EXT_BATCH_TIMEOUT = _engine.EXT_BATCH_TIMEOUT
EXT_ALL_PARTITION = _engine.EXT_ALL_PARTITION
EXT_PARTITION_DESTINATION = _engine.EXT_PARTITION_DESTINATION
EXT_BATCH_CALL = _engine.EXT_BATCH_CALL
EXT_PRIORITY = _engine.EXT_PRIORITY
EXT_REQUEST_TIMEOUT = _engine.EXT_REQUEST_TIMEOUT

# Login failure codes (§3.2).
LOGIN_OK = 0
LOGIN_AUTH_FAILED = -1
LOGIN_TOO_MANY_CONNECTIONS = 1
LOGIN_TIMEOUT = 2
LOGIN_PROTOCOL_VIOLATION = 3
LOGIN_REJOINING = 4
LOGIN_UNKNOWN_SERVICE = 5

# Reserved client handles (§4.2).
PING_HANDLE = (1 << 63) - 1
ASYNC_TOPO_HANDLE = (1 << 63) - 2
ASYNC_PROC_HANDLE = (1 << 63) - 3
MAX_CALL_HANDLE = (1 << 63) - 65

_LEN = struct.Struct(">i")


class FrameBuffer:
    """Accumulates received bytes and yields complete frame bodies (for asyncio.Protocol)."""

    __slots__ = ("_buf", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self.max_frame_bytes = max_frame_bytes

    def feed(self, data: bytes) -> list[bytes]:
        """Add data; return the bodies of the frames now complete (CodecError on a bad length)."""
        buf = self._buf
        if not buf:
            frames, used = split_frames(data, self.max_frame_bytes)
            if used < len(data):
                buf += memoryview(data)[used:]
            return frames
        buf += data
        frames, used = split_frames(buf, self.max_frame_bytes)
        if used:
            del buf[:used]
        return frames

    def feed_responses(self, data: bytes) -> tuple[list[tuple[int, Any]], CodecError | None]:
        """Add data; decode the response frames now complete in one compiled call.

        Returns ((client_handle, ClientResponse) pairs, error): error is the CodecError of
        the first frame whose body does not decode (the pairs before it are returned, the
        rest is dropped), else None. A bad frame length raises CodecError, as feed does.
        """
        return self._feed(data, decode_response_frames, (self.max_frame_bytes,))

    def feed_answers(self, data: bytes, pending: dict, done: list
                     ) -> tuple[list[tuple[int, Any]], CodecError | None]:
        """Add data; decode the response frames now complete and match them to calls.

        Each frame whose client handle is a key of pending pops that entry and appends
        (entry, ClientResponse) to done; the other frames are returned as
        (client_handle, ClientResponse) pairs, with the error as in feed_responses.
        """
        return self._feed(data, answer_frames, (pending, done, self.max_frame_bytes))

    def _feed(self, data: bytes, decode: Any, args: tuple) -> tuple[list, CodecError | None]:
        """Decode what is complete of the buffered bytes plus data with decode(buf, *args),
        which returns (items, bytes consumed, error); keep the rest (none after an error)."""
        buf = self._buf
        if not buf:
            items, used, err = decode(data, *args)
            if err is None and used < len(data):
                buf += memoryview(data)[used:]
            return items, err
        buf += data
        items, used, err = decode(buf, *args)
        if err is not None:
            buf.clear()
        elif used:
            del buf[:used]
        return items, err

    def pending(self) -> int:
        """Return the number of buffered bytes of an incomplete frame."""
        return len(self._buf)


async def read_frame(reader: asyncio.StreamReader,
                     max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Read one frame body from reader; CodecError on a bad length, IncompleteReadError at EOF."""
    head = await reader.readexactly(4)
    (n,) = _LEN.unpack(head)
    if n <= 0 or n > max_frame_bytes:
        raise CodecError(f"frame length {n} is outside 1..{max_frame_bytes}")
    return await reader.readexactly(n)

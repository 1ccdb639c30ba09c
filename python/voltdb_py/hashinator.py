# SPDX-License-Identifier: AGPL-3.0-or-later
"""Hashinator configs in Python: VoltDB's default token layout, growth, and serial forms.

A *ring* is a list of ``(token, partition)`` pairs sorted by token, the first token at
INT32_MIN (voltdb-internals.md section 1.3). Lookups run in the engine
(``_engine.Hashinator``); this module builds and converts rings.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import heapq
import json
import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from voltdb_py.engine import _engine
from voltdb_py.errors import CodecError, TypeMismatchError, ValueOutOfRangeError

__all__ = [
    "TOTAL_TOKENS",
    "TOKEN_INTERVAL",
    "Ring",
    "default_ring",
    "add_partitions",
    "raw_config",
    "ring_from_raw",
    "cooked_config",
    "ring_from_cooked",
    "config_json",
    "ring_from_json",
    "signature",
    "make_hashinator",
    "hashinator_from_ring",
    "coerce_partition_value",
    "partition_for_parameter",
]

Ring = list[tuple[int, int]]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: ElasticHashinator.DEFAULT_TOTAL_TOKENS: tokens on the ring for the cluster's whole life.
TOTAL_TOKENS = 16384
#: Buckets.calculateTokenInterval(16384) = Integer.MAX_VALUE / (16384 / 2).
TOKEN_INTERVAL = INT32_MAX // (TOTAL_TOKENS // 2)

# A cooked config holds at most 8 bytes per token plus a count; 2^24 tokens is far beyond any
# real ring and bounds what a hostile gzip stream can make us allocate.
_MAX_COOKED_TOKENS = 1 << 24

_INT_TYPES = {
    _engine.T_TINYINT: (1, -(2**7)),
    _engine.T_SMALLINT: (2, -(2**15)),
    _engine.T_INTEGER: (4, -(2**31)),
    _engine.T_BIGINT: (8, -(2**63)),
}
# Long.parseLong: an optional sign then ASCII digits, nothing else (no spaces, no '_').
_LONG_RE = re.compile(r"[+-]?[0-9]+\Z")


def _token_interval(token_count: int) -> int:
    """Bucket width for token_count tokens (Buckets.calculateTokenInterval)."""
    return INT32_MAX // (token_count // 2)


def _check_ring(ring: Iterable[Sequence[int]]) -> Ring:
    """ring as a validated list of (token, partition) int tuples, else CodecError."""
    out: Ring = []
    prev = None
    for i, entry in enumerate(ring):
        try:
            token, partition = entry
        except (TypeError, ValueError):
            raise CodecError(f"ring entry {i} is not a (token, partition) pair: {entry!r}") from None
        if type(token) is not int or type(partition) is not int:
            raise CodecError(f"ring entry {i} must hold two ints, got {entry!r}")
        if not INT32_MIN <= token <= INT32_MAX:
            raise CodecError(f"ring entry {i}: token {token} is not a signed 32-bit int")
        if not 0 <= partition <= INT32_MAX:
            raise CodecError(f"ring entry {i}: partition {partition} is not in 0..2^31-1")
        if prev is None and token != INT32_MIN:
            raise CodecError(f"ring must start at token {INT32_MIN}, starts at {token}")
        if prev is not None and token <= prev:
            raise CodecError(f"ring entry {i}: token {token} does not follow {prev} (must increase)")
        out.append((token, partition))
        prev = token
    if not out:
        raise CodecError("ring has no tokens")
    return out


def _balance(heaps: list[list[int]], partitions_to_add: int) -> None:
    """Add partitions to heaps (each a min-heap of tokens) the way VoltDB's Buckets does."""
    # Buckets.LoadPair order: (token count, partition id); most-loaded is the last, least the first.
    load = sorted((len(h), pid) for pid, h in enumerate(heaps))
    for _ in range(partitions_to_add):
        heaps.append([])
        bisect.insort(load, (0, len(heaps) - 1))
        while True:
            most_count, most = load[-1]
            least_count, least = load[0]
            # Equal, or off by one: moving a token would only swap the roles (doNextBalanceOp).
            if most_count - least_count <= 1:
                break
            heapq.heappush(heaps[least], heapq.heappop(heaps[most]))
            del load[-1]
            del load[0]
            bisect.insort(load, (most_count - 1, most))
            bisect.insort(load, (least_count + 1, least))


def _ring_of_heaps(heaps: list[list[int]]) -> Ring:
    """Sorted (token, partition) list from per-partition token collections."""
    return sorted((token, pid) for pid, tokens in enumerate(heaps) for token in tokens)


@functools.lru_cache(maxsize=64)
def _default_ring(partition_count: int, token_count: int) -> tuple[tuple[int, int], ...]:
    interval = _token_interval(token_count)
    heaps = [[INT32_MIN + k * interval for k in range(token_count)]]
    _balance(heaps, partition_count - 1)
    return tuple(_ring_of_heaps(heaps))


def default_ring(partition_count: int, token_count: int = TOTAL_TOKENS) -> Ring:
    """VoltDB's default ring for partition_count partitions (Buckets(partitionCount, tokenCount)).

    Tokens are ``INT32_MIN + k * (INT32_MAX // (token_count // 2))``; all start on partition 0
    and partitions 1..P-1 are added one at a time, each taking the lowest token of the
    most-loaded partition until loads differ by at most one.

    :raises ValueOutOfRangeError: partition_count < 1, token_count odd or not above it.
    """
    if type(partition_count) is not int or partition_count < 1:
        raise ValueOutOfRangeError(f"partition_count must be an int >= 1, got {partition_count!r}")
    if type(token_count) is not int or token_count < 2 or token_count % 2:
        raise ValueOutOfRangeError(f"token_count must be an even int >= 2, got {token_count!r}")
    if token_count <= partition_count:
        raise ValueOutOfRangeError(
            f"token_count {token_count} must exceed partition_count {partition_count}")
    return list(_default_ring(partition_count, token_count))


def add_partitions(ring: Iterable[Sequence[int]], partitions_to_add: int) -> Ring:
    """Ring after adding partitions_to_add new partitions (ElasticHashinator.addPartitions).

    New partitions get ids N..N+k-1 and take tokens from the existing ones, which only lose
    tokens. For a default ring of a partitions this equals ``default_ring(a + k)``.

    :raises CodecError: ring is malformed.
    :raises ValueOutOfRangeError: partition ids are not 0..N-1, the token count is odd, or
        there would be as many partitions as tokens.
    """
    checked = _check_ring(ring)
    if type(partitions_to_add) is not int or partitions_to_add < 0:
        raise ValueOutOfRangeError(
            f"partitions_to_add must be an int >= 0, got {partitions_to_add!r}")
    ids = sorted({p for _, p in checked})
    # Buckets(SortedMap) indexes a list by partition id, so VoltDB needs ids 0..N-1.
    if ids != list(range(len(ids))):
        raise ValueOutOfRangeError(
            f"partition ids must be contiguous 0..{len(ids) - 1} to add partitions, got {ids}")
    if len(checked) % 2:
        raise ValueOutOfRangeError(f"token count {len(checked)} must be even to add partitions")
    if len(checked) <= len(ids) + partitions_to_add:
        raise ValueOutOfRangeError(
            f"{len(ids) + partitions_to_add} partitions need more than {len(checked)} tokens")
    heaps: list[list[int]] = [[] for _ in ids]
    for token, pid in checked:
        heaps[pid].append(token)  # ascending already, so each list is a valid min-heap
    _balance(heaps, partitions_to_add)
    return _ring_of_heaps(heaps)


def raw_config(ring: Iterable[Sequence[int]]) -> bytes:
    """VoltDB's raw config: BE int32 count, then count x (BE int32 token, BE int32 partition)."""
    checked = _check_ring(ring)
    flat = [v for pair in checked for v in pair]
    return struct.pack(f">i{len(flat)}i", len(checked), *flat)


def ring_from_raw(config: bytes) -> Ring:
    """Ring of a raw config; malformed bytes raise CodecError."""
    return _engine.Hashinator(config).ring()


def cooked_config(ring: Iterable[Sequence[int]]) -> bytes:
    """VoltDB's cooked (wire) config: gzip of count, token byte-planes MSB first, partitions."""
    checked = _check_ring(ring)
    n = len(checked)
    tokens = [t & 0xFFFFFFFF for t, _ in checked]
    body = bytearray(struct.pack(">i", n))
    # Byte-planes (ElasticHashinator.toCookedBytes): sorted tokens share high bytes, so each
    # plane is long runs that deflate well.
    for shift in (24, 16, 8, 0):
        body += bytes((t >> shift) & 0xFF for t in tokens)
    body += struct.pack(f">{n}i", *(p for _, p in checked))
    # mtime=0 keeps the bytes a pure function of the ring.
    return gzip.compress(bytes(body), mtime=0)


def ring_from_cooked(data: bytes) -> Ring:
    """Ring of a cooked config; bad gzip, sizes or ring rules raise CodecError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"cooked config must be bytes, not {type(data).__name__}")
    limit = 4 + 8 * _MAX_COOKED_TOKENS
    try:
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        body = inflater.decompress(bytes(data), limit + 1)
        if not inflater.eof:
            raise CodecError("cooked config: gzip stream is truncated or too large")
        if inflater.unused_data:
            raise CodecError("cooked config: bytes after the gzip stream")
    except zlib.error as exc:
        raise CodecError(f"cooked config is not valid gzip: {exc}") from None
    if len(body) < 4:
        raise CodecError(f"cooked config: {len(body)} bytes, too short for a count")
    (n,) = struct.unpack_from(">i", body)
    if n <= 0 or len(body) != 4 + 8 * n:
        raise CodecError(f"cooked config: count {n} does not match {len(body)} bytes")
    planes = [body[4 + k * n: 4 + (k + 1) * n] for k in range(4)]
    tokens = [
        int.from_bytes(bytes((planes[0][i], planes[1][i], planes[2][i], planes[3][i])), "big",
                       signed=True)
        for i in range(n)
    ]
    partitions = struct.unpack_from(f">{n}i", body, 4 + 4 * n)
    return _check_ring(zip(tokens, partitions))


def config_json(ring: Iterable[Sequence[int]]) -> str:
    """JSON object {"<token>": partition, ...} in token order (ElasticHashinator's JSON form)."""
    return json.dumps({str(t): p for t, p in _check_ring(ring)})


def ring_from_json(text: str | bytes) -> Ring:
    """Ring of a config_json() document; anything else raises CodecError."""
    try:
        obj = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise CodecError(f"hashinator JSON is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("hashinator JSON must be an object of token -> partition")
    pairs = []
    for key, value in obj.items():
        if not re.fullmatch(r"-?[0-9]+", key):
            raise CodecError(f"hashinator JSON key {key!r} is not a decimal token")
        pairs.append((int(key), value))
    return _check_ring(sorted(pairs, key=lambda kv: kv[0]))


def signature(ring: Iterable[Sequence[int]]) -> int:
    """CRC32C of the raw config (TheHashinator.computeConfigurationSignature)."""
    return _engine.crc32c(raw_config(ring))


def hashinator_from_ring(ring: Iterable[Sequence[int]]) -> Any:
    """Engine Hashinator of ring."""
    return _engine.Hashinator(raw_config(ring))


def make_hashinator(partition_count: int) -> Any:
    """Engine Hashinator of VoltDB's default ring for partition_count partitions."""
    return _engine.Hashinator(raw_config(default_ring(partition_count)))


def coerce_partition_value(vtype: int, value: Any) -> Any:
    """value as hashed for a partition column of type vtype, or None for NULL.

    VoltDB's coercions (TheHashinator.getPartitionForParameter): for an integer column a str
    is parsed as a decimal long ("0042" -> 42) and bytes are read back as the column's
    little-endian integer; then the column type's NULL sentinel (e.g. -2**31 for INTEGER)
    becomes None. VARCHAR takes str or raw bytes, VARBINARY bytes or a hex str.

    :raises TypeMismatchError: the value cannot be a partitioning value of this type.
    :raises ValueOutOfRangeError: an integer outside the signed 64-bit range.
    """
    if value is None:
        return None
    if vtype in _INT_TYPES:
        width, null = _INT_TYPES[vtype]
        if isinstance(value, str):
            if not _LONG_RE.match(value):
                raise TypeMismatchError(
                    f"cannot convert string {value!r} to an integer partitioning value")
            value = int(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            if len(raw) < width:
                raise TypeMismatchError(
                    f"{len(raw)} bytes cannot hold a {width}-byte integer partitioning value")
            # ByteBuffer.get/getShort/getInt/getLong in little-endian order read the first bytes.
            value = int.from_bytes(raw[:width], "little", signed=True)
        elif isinstance(value, bool) or not isinstance(value, int):
            raise TypeMismatchError(
                f"an integer partition column cannot take a {type(value).__name__} value")
        else:
            value = int(value)
        if not -(2**63) <= value < 2**63:
            raise ValueOutOfRangeError(f"partitioning value {value} does not fit in a BIGINT")
        return None if value == null else value
    if vtype == _engine.T_STRING:
        if isinstance(value, (str, bytes)):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise TypeMismatchError(f"a VARCHAR partition column cannot take {type(value).__name__}")
    if vtype == _engine.T_VARBINARY:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str):
            # VoltDB's client accepts a hex string for a VARBINARY parameter.
            try:
                return bytes.fromhex(value)
            except ValueError:
                raise TypeMismatchError(
                    f"string {value!r} is not hex for a VARBINARY partitioning value") from None
        raise TypeMismatchError(
            f"a VARBINARY partition column cannot take {type(value).__name__}")
    raise TypeMismatchError(f"type code {vtype} cannot be a partitioning type")


def partition_for_parameter(hashinator: Any, vtype: int, value: Any) -> int:
    """Partition of a procedure's partitioning parameter: coerce_partition_value, then hash."""
    coerced = coerce_partition_value(vtype, value)
    if coerced is None:
        return 0
    return hashinator.partition_for_value(vtype, coerced)

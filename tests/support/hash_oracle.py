# SPDX-License-Identifier: AGPL-3.0-or-later
"""Slow, obvious pure-Python oracles for hashing: MurmurHash3_x64_128, tokens, ring, Buckets.

Written straight from the reference algorithms (Appleby's MurmurHash3.cpp, VoltDB's
Buckets.java as described in voltdb-internals.md section 1.4) with no attempt at speed.
"""

from __future__ import annotations

import struct

MASK64 = (1 << 64) - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _rotl64(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK64


def _fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    k ^= k >> 33
    return k


def murmur3_x64_128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """(h1, h2) of MurmurHash3_x64_128, unsigned 64-bit, blocks and tail read little-endian."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = seed & 0xFFFFFFFF
    nblocks = len(data) // 16
    for i in range(nblocks):
        k1 = int.from_bytes(data[16 * i: 16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8: 16 * i + 16], "little")
        k1 = (k1 * c1) & MASK64
        k1 = _rotl64(k1, 31)
        k1 = (k1 * c2) & MASK64
        h1 ^= k1
        h1 = _rotl64(h1, 27)
        h1 = (h1 + h2) & MASK64
        h1 = (h1 * 5 + 0x52DCE729) & MASK64
        k2 = (k2 * c2) & MASK64
        k2 = _rotl64(k2, 33)
        k2 = (k2 * c1) & MASK64
        h2 ^= k2
        h2 = _rotl64(h2, 31)
        h2 = (h2 + h1) & MASK64
        h2 = (h2 * 5 + 0x38495AB5) & MASK64
    tail = data[16 * nblocks:]
    # Tail bytes are unsigned (VoltDB patched its Java copy to agree with the C++ one).
    k1 = int.from_bytes(tail[:8], "little")
    k2 = int.from_bytes(tail[8:16], "little")
    if len(tail) > 8:
        k2 = (k2 * c2) & MASK64
        k2 = _rotl64(k2, 33)
        k2 = (k2 * c1) & MASK64
        h2 ^= k2
    if len(tail) > 0:
        k1 = (k1 * c1) & MASK64
        k1 = _rotl64(k1, 31)
        k1 = (k1 * c2) & MASK64
        h1 ^= k1
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & MASK64
    h2 = (h2 + h1) & MASK64
    h1 = _fmix64(h1)
    h2 = _fmix64(h2)
    h1 = (h1 + h2) & MASK64
    h2 = (h2 + h1) & MASK64
    return h1, h2


def token(data: bytes) -> int:
    """VoltDB token: the upper 32 bits of h1 as a signed int32."""
    high = murmur3_x64_128(data)[0] >> 32
    return high - (1 << 32) if high >= 1 << 31 else high


def token_int(value: int) -> int:
    """Token of an integer partitioning value: its 8 little-endian bytes."""
    return token(struct.pack("<q", value))


def floor_lookup(ring: list[tuple[int, int]], hash_token: int) -> int:
    """Partition of the last ring entry whose token is <= hash_token (linear scan)."""
    owner = None
    for tok, partition in ring:
        if tok <= hash_token:
            owner = partition
        else:
            break
    assert owner is not None, "ring must start at INT32_MIN"
    return owner


def crc32c(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _balance_once(parts: list[list[int]]) -> bool:
    """One Buckets.doNextBalanceOp: most-loaded's lowest token to the least-loaded."""
    order = sorted(range(len(parts)), key=lambda pid: (len(parts[pid]), pid))
    least, most = order[0], order[-1]
    if len(parts[most]) - len(parts[least]) <= 1:
        return False
    moved = min(parts[most])
    parts[most].remove(moved)
    parts[least].append(moved)
    return True


def buckets_add(parts: list[list[int]], partitions_to_add: int) -> None:
    """Buckets.addPartitions: add empty partitions one by one, balancing after each."""
    for _ in range(partitions_to_add):
        parts.append([])
        while _balance_once(parts):
            pass


def buckets_ring(partition_count: int, token_count: int = 16384) -> list[tuple[int, int]]:
    """Buckets(partitionCount, tokenCount).getTokens() as a sorted (token, partition) list."""
    interval = INT32_MAX // (token_count // 2)
    parts = [[INT32_MIN + k * interval for k in range(token_count)]]
    buckets_add(parts, partition_count - 1)
    return sorted((t, pid) for pid, toks in enumerate(parts) for t in toks)


def ring_ranges(ring: list[tuple[int, int]], partition: int) -> list[tuple[int, int]]:
    """Inclusive token ranges owned by partition, adjacent ones merged."""
    out: list[tuple[int, int]] = []
    for i, (tok, pid) in enumerate(ring):
        if pid != partition:
            continue
        end = ring[i + 1][0] - 1 if i + 1 < len(ring) else INT32_MAX
        if out and out[-1][1] + 1 == tok:
            out[-1] = (out[-1][0], end)
        else:
            out.append((tok, end))
    return out

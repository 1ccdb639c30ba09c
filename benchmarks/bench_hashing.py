# SPDX-License-Identifier: AGPL-3.0-or-later
"""Hashing benchmarks: engine beside mmh3, per-key against batch, ring lookups.

Run with ``pytest benchmarks/bench_hashing.py --benchmark-only``; as a smoke test with
``--benchmark-disable`` (each body once).
"""

from __future__ import annotations

import random

import mmh3
import pytest

from voltdb_py import hashinator as H
from voltdb_py.engine import _engine

pytestmark = pytest.mark.bench

N_KEYS = 10_000
_rng = random.Random(1234)
KEYS = [_rng.randbytes(_rng.randint(0, 32)) for _ in range(N_KEYS)]
INTS = [_rng.randint(-(2**63) + 1, 2**63 - 1) for _ in range(N_KEYS)]
STRINGS = [f"customer-{i}" for i in range(N_KEYS)]


def _mmh3_token(data: bytes) -> int:
    high = mmh3.hash64(data, 0, signed=False)[0] >> 32
    return high - 2**32 if high >= 2**31 else high


@pytest.fixture(scope="module")
def hashinator():
    """Default 8-partition ring."""
    return H.make_hashinator(8)


def _engine_per_key():
    hash_key = _engine.hash_key
    return [hash_key(k) for k in KEYS]


def _mmh3_per_key():
    return [_mmh3_token(k) for k in KEYS]


def _engine_batch():
    return _engine.hash_keys(KEYS)


@pytest.mark.parametrize("impl", ["engine_per_key", "mmh3_per_key", "engine_batch"])
def test_hash_10k_keys(benchmark, impl):
    benchmark.group = "hash 10k keys"
    fn = {"engine_per_key": _engine_per_key, "mmh3_per_key": _mmh3_per_key,
          "engine_batch": _engine_batch}[impl]
    result = benchmark(fn)
    assert result == [_mmh3_token(k) for k in KEYS]


@pytest.mark.parametrize("impl", ["per_value", "batch"])
def test_partitions_for_bigint_values(benchmark, hashinator, impl):
    benchmark.group = "partition 10k BIGINT values"
    if impl == "batch":
        result = benchmark(hashinator.partitions_for_values, _engine.T_BIGINT, INTS)
    else:
        one = hashinator.partition_for_value
        result = benchmark(lambda: [one(_engine.T_BIGINT, v) for v in INTS])
    assert len(result) == N_KEYS and set(result) <= set(range(8))


@pytest.mark.parametrize("impl", ["per_value", "batch"])
def test_partitions_for_varchar_values(benchmark, hashinator, impl):
    benchmark.group = "partition 10k VARCHAR values"
    if impl == "batch":
        result = benchmark(hashinator.partitions_for_values, _engine.T_STRING, STRINGS)
    else:
        one = hashinator.partition_for_value
        result = benchmark(lambda: [one(_engine.T_STRING, v) for v in STRINGS])
    assert result == [hashinator.partition_for_key(s.encode()) for s in STRINGS]


def test_default_ring_build(benchmark):
    benchmark.group = "ring build"
    H._default_ring.cache_clear()

    def build():
        H._default_ring.cache_clear()
        return H.default_ring(16)

    ring = benchmark(build)
    assert len(ring) == H.TOTAL_TOKENS

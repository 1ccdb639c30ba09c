# SPDX-License-Identifier: AGPL-3.0-or-later
"""Benchmarks: every item is marked `bench`; shared LMDB environments and schemas."""

import time

import pytest

from voltdb_py.engine import _engine as E
from voltdb_py.storage import Storage

KV = E.TupleSchema(
    1, [(E.T_BIGINT, 0, False, False), (E.T_STRING, 64, False, True),
        (E.T_INTEGER, 0, False, True)],
    [0], 0, True, [(10, [0], True)],
)
N_ROWS = 20_000


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "benchmarks" in str(item.fspath):
            item.add_marker(pytest.mark.bench)


@pytest.fixture
def storage(tmp_path):
    s = Storage.open(str(tmp_path / "data"), map_size_bytes=1 << 30, sync="none")
    for name in ("p0", "p1", "raw"):
        s.db(name)
    yield s
    s.close()


@pytest.fixture
def kv_rows():
    return [(i, "value-%08d-" % i + "x" * 40, i % 100) for i in range(N_ROWS)]


def _report(name, engine_s, raw_s):
    """Print engine time vs the raw py-lmdb primitive's time, measured in the same run."""
    print(f"\n{name}: engine {engine_s * 1e3:.2f} ms, raw lmdb {raw_s * 1e3:.2f} ms, "
          f"ratio {engine_s / raw_s:.2f}x")


def _compare(name, engine, raw, n_ops, nbytes=0, rounds=7, setup=None):
    """Run engine and raw alternately; print best CPU and wall times, us/op and their ratio.

    CPU time (time.thread_time) is the figure to quote on a shared, noisy machine.
    """
    best = {"engine": [1e9, 1e9], "raw": [1e9, 1e9]}
    for _ in range(rounds):
        for label, fn in (("engine", engine), ("raw", raw)):
            if setup is not None:
                setup(label)
            c, w = time.thread_time(), time.perf_counter()
            fn()
            c, w = time.thread_time() - c, time.perf_counter() - w
            b = best[label]
            b[0], b[1] = min(b[0], c), min(b[1], w)
    ec, ew = best["engine"]
    rc, rw = best["raw"]
    rate = f", {nbytes / ec / 1e6:,.0f} MB/s" if nbytes else f", {n_ops / ec:,.0f} ops/s"
    print(f"\n{name}: engine {ec / n_ops * 1e6:.3f} us/op CPU ({ew * 1e3:.1f} ms wall){rate}; "
          f"raw lmdb {rc / n_ops * 1e6:.3f} us/op CPU; ratio {ec / rc:.2f}x")
    return ec / rc


@pytest.fixture
def compare():
    """compare(name, engine_fn, raw_fn, n_ops, nbytes=0, rounds=7, setup=None) -> CPU ratio."""
    return _compare


@pytest.fixture
def report():
    """report(name, engine_seconds, raw_seconds) prints both and their ratio."""
    return _report


@pytest.fixture
def kv():
    """(schema, number of rows) of the key-value benchmark table."""
    return KV, N_ROWS

# SPDX-License-Identifier: AGPL-3.0-or-later
"""PartitionStore insert / get / scan beside the raw py-lmdb primitive (put / get / iteration)."""

import time

import pytest
from voltdb_py.engine import _engine as E

pytestmark = pytest.mark.bench


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _fresh(storage, name):
    db = storage.db(name)
    with storage.write() as txn:
        txn.drop(db, delete=False)
    return db


def test_insert(benchmark, storage, kv_rows, kv, report):
    KV, N_ROWS = kv
    store = E.PartitionStore(0, storage.db("p0"))
    raw = storage.db("raw")
    encoded = [(KV.pk_suffix(r), KV.encode_row(r)) for r in kv_rows]

    def engine():
        _fresh(storage, "p0")
        with storage.write() as txn:
            for r in kv_rows:
                store.insert(txn, KV, r)

    def primitive():
        _fresh(storage, "raw")
        with storage.write() as txn:
            for k, v in encoded:
                txn.put(k, v, db=raw)

    benchmark.pedantic(engine, rounds=3, iterations=1)
    report(f"insert {N_ROWS} rows", _time(engine), _time(primitive))
    with storage.read() as txn:
        assert store.count(txn, KV) == N_ROWS


def test_get_by_pk(benchmark, storage, kv_rows, kv, report):
    KV, N_ROWS = kv
    store = E.PartitionStore(0, storage.db("p0"))
    raw = storage.db("raw")
    with storage.write() as txn:
        keys = [store.insert(txn, KV, r) for r in kv_rows]
        for k in keys:
            txn.put(k, b"v" * 60, db=raw)
    pks = [(r[0],) for r in kv_rows]

    def engine():
        with storage.read() as txn:
            for pk in pks:
                store.get(txn, KV, pk)

    def primitive():
        with storage.read() as txn:
            for k in keys:
                txn.get(k, db=raw)

    benchmark.pedantic(engine, rounds=3, iterations=1)
    report(f"get {N_ROWS} rows by pk", _time(engine), _time(primitive))


def test_scan(benchmark, storage, kv_rows, kv, report):
    KV, N_ROWS = kv
    store = E.PartitionStore(0, storage.db("p0"))
    raw = storage.db("raw")
    with storage.write() as txn:
        for r in kv_rows:
            k = store.insert(txn, KV, r)
            txn.put(k, KV.encode_row(r), db=raw)

    def engine():
        with storage.read() as txn:
            n = sum(1 for _ in store.scan(txn, KV))
        assert n == N_ROWS

    def primitive():
        with storage.read() as txn:
            n = sum(1 for _ in txn.cursor(db=raw).iternext())
        assert n == N_ROWS

    benchmark.pedantic(engine, rounds=3, iterations=1)
    e, p = _time(engine), _time(primitive)
    report(f"scan {N_ROWS} rows ({N_ROWS / e:,.0f} rows/s)", e, p)

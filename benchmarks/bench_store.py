# SPDX-License-Identifier: AGPL-3.0-or-later
"""PartitionStore insert / get / scan / aggregates beside the raw py-lmdb primitive.

The primitive works on the same keys and values as the engine (token-prefixed row keys),
so the ratio is the engine's own cost: key building, encoding, index entry, row counter.
"""

import random

import pytest
from voltdb_py.engine import _engine as E

pytestmark = pytest.mark.bench


def _fresh(storage, name):
    db = storage.db(name)
    with storage.write() as txn:
        txn.drop(db, delete=False)
    return db


@pytest.fixture
def loaded(storage, kv_rows, kv):
    """(store, row keys): the kv table in p0, and the same keys/values in raw."""
    KV = kv[0]
    store = E.PartitionStore(0, storage.db("p0"))
    raw = storage.db("raw")
    with storage.write() as txn:
        keys = [store.insert(txn, KV, r) for r in kv_rows]
        for k, r in zip(keys, kv_rows):
            txn.put(k, KV.encode_row(r), db=raw)
    return store, keys


def test_insert(benchmark, storage, kv_rows, kv, compare):
    KV, N_ROWS = kv
    store = E.PartitionStore(0, storage.db("p0"))
    raw = storage.db("raw")
    with storage.write() as txn:
        keys = [store.insert(txn, KV, r) for r in kv_rows]
    encoded = [(k, KV.encode_row(r)) for k, r in zip(keys, kv_rows)]

    def engine():
        with storage.write() as txn:
            for r in kv_rows:
                store.insert(txn, KV, r)

    def primitive():
        with storage.write() as txn:
            for k, v in encoded:
                txn.put(k, v, db=raw)

    def setup(label):
        _fresh(storage, "p0" if label == "engine" else "raw")

    setup("engine")
    benchmark.pedantic(engine, rounds=1, iterations=1)
    compare(f"insert {N_ROWS} rows (vs put)", engine, primitive, N_ROWS, setup=setup)
    with storage.read() as txn:
        assert store.count(txn, KV) == N_ROWS


def test_get_by_pk(benchmark, storage, kv_rows, kv, loaded, compare):
    KV, N_ROWS = kv
    store, keys = loaded
    raw = storage.db("raw")
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
    compare(f"get {N_ROWS} rows by pk (vs get)", engine, primitive, N_ROWS)


def test_upsert_existing(benchmark, storage, kv_rows, kv, loaded, compare):
    """Upsert of existing rows in random order, 100 per transaction, vs get + put."""
    KV, N_ROWS = kv
    store, keys = loaded
    raw = storage.db("raw")
    order = list(range(N_ROWS))
    random.Random(3).shuffle(order)
    rows = [kv_rows[i] for i in order]
    pairs = [(keys[i], KV.encode_row(kv_rows[i])) for i in order]

    def engine():
        for s in range(0, N_ROWS, 100):
            with storage.write() as txn:
                for r in rows[s:s + 100]:
                    store.upsert(txn, KV, r)

    def primitive():
        for s in range(0, N_ROWS, 100):
            with storage.write() as txn:
                for k, v in pairs[s:s + 100]:
                    txn.get(k, db=raw)
                    txn.put(k, v, db=raw)

    benchmark.pedantic(engine, rounds=1, iterations=1)
    compare(f"upsert {N_ROWS} existing rows, 100 per txn (vs get + put)", engine, primitive,
            N_ROWS)
    with storage.read() as txn:
        assert store.count(txn, KV) == N_ROWS


def test_delete(benchmark, storage, kv_rows, kv, compare):
    """Delete every row by row key, 100 per transaction, vs get + delete."""
    KV, N_ROWS = kv
    store = E.PartitionStore(0, storage.db("p0"))
    raw = storage.db("raw")
    keys = []

    def setup(label):
        _fresh(storage, "p0" if label == "engine" else "raw")
        with storage.write() as txn:
            if label == "engine":
                keys[:] = [store.insert(txn, KV, r) for r in kv_rows]
            else:
                for k, r in zip(keys, kv_rows):
                    txn.put(k, KV.encode_row(r), db=raw)

    def engine():
        for s in range(0, N_ROWS, 100):
            with storage.write() as txn:
                for k in keys[s:s + 100]:
                    store.delete(txn, KV, k)

    def primitive():
        for s in range(0, N_ROWS, 100):
            with storage.write() as txn:
                for k in keys[s:s + 100]:
                    txn.get(k, db=raw)
                    txn.delete(k, db=raw)

    setup("engine")
    benchmark.pedantic(engine, rounds=1, iterations=1)
    setup("engine")
    compare(f"delete {N_ROWS} rows, 100 per txn (vs get + delete)", engine, primitive, N_ROWS,
            setup=setup)
    with storage.read() as txn:
        assert store.count(txn, KV) == 0


def _raw_iter(storage, n):
    def primitive():
        with storage.read() as txn:
            assert sum(1 for _ in txn.cursor(db=storage.db("raw")).iternext()) == n
    return primitive


def test_scan(benchmark, storage, kv, loaded, compare):
    KV, N_ROWS = kv
    store, _ = loaded

    def engine():
        with storage.read() as txn:
            assert sum(1 for _ in store.scan(txn, KV)) == N_ROWS

    benchmark.pedantic(engine, rounds=3, iterations=1)
    compare(f"scan {N_ROWS} rows (vs iteration)", engine, _raw_iter(storage, N_ROWS), N_ROWS)


@pytest.mark.parametrize("op", ["COUNT", "SUM"])
def test_scan_aggregate(benchmark, storage, kv, kv_rows, loaded, compare, op):
    KV, N_ROWS = kv
    store, _ = loaded
    expect = N_ROWS if op == "COUNT" else sum(r[2] for r in kv_rows)

    def engine():
        with storage.read() as txn:
            assert store.scan_aggregate(txn, KV, 2, op) == expect

    benchmark.pedantic(engine, rounds=3, iterations=1)
    compare(f"scan_aggregate {op} over {N_ROWS} rows (vs iteration)", engine,
            _raw_iter(storage, N_ROWS), N_ROWS)


def test_scan_count(benchmark, storage, kv, loaded, compare):
    KV, N_ROWS = kv
    store, _ = loaded

    def engine():
        with storage.read() as txn:
            assert store.scan_count(txn, KV) == N_ROWS

    benchmark.pedantic(engine, rounds=3, iterations=1)
    compare(f"scan_count over {N_ROWS} rows (vs iteration)", engine,
            _raw_iter(storage, N_ROWS), N_ROWS)

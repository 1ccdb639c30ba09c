# SPDX-License-Identifier: AGPL-3.0-or-later
"""export_range / import_chunk throughput (MB/s) beside py-lmdb iteration / putmulti."""

import pytest
from voltdb_py.engine import _engine as E

pytestmark = pytest.mark.bench
TMIN, TMAX = -(2 ** 31), 2 ** 31 - 1
CHUNK_BYTES = 1 << 20


@pytest.fixture
def loaded(storage, kv_rows, kv):
    KV = kv[0]
    src = E.PartitionStore(0, storage.db("p0"))
    with storage.write() as txn:
        for r in kv_rows:
            src.insert(txn, KV, r)
    return src


def _export(storage, src, KV):
    chunks, resume = [], None
    with storage.read() as txn:
        while True:
            c, resume = E.export_range(txn, src, [KV], TMIN, TMAX, CHUNK_BYTES, resume)
            chunks.append(c)
            if resume is None:
                return chunks


def test_export(benchmark, storage, loaded, kv, compare):
    KV, N_ROWS = kv
    raw = storage.db("p0")
    chunks = _export(storage, loaded, KV)

    def primitive():
        # Iterate the same LMDB range (rows and index entries) and touch every byte count.
        with storage.read() as txn:
            return sum(len(k) + len(v) for k, v in txn.cursor(db=raw).iternext())

    benchmark.pedantic(_export, args=(storage, loaded, KV), rounds=3, iterations=1)
    mb = sum(map(len, chunks))
    compare(f"export {N_ROWS} rows, {mb / 1e6:.1f} MB (vs iteration)",
            lambda: _export(storage, loaded, KV), primitive, N_ROWS, nbytes=mb)


def test_import(benchmark, storage, loaded, kv, compare):
    KV, N_ROWS = kv
    chunks = _export(storage, loaded, KV)
    dst = E.PartitionStore(1, storage.db("p1"))
    raw = storage.db("raw")
    with storage.read() as txn:
        items = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=storage.db("p0")).iternext()]

    def engine():
        with storage.write() as txn:
            assert sum(E.import_chunk(txn, dst, {KV.table_id: KV}, c) for c in chunks) == N_ROWS

    def primitive():
        # The same keys and values (rows, index entries, counter) in one sorted putmulti.
        with storage.write() as txn:
            txn.cursor(db=raw).putmulti(items)

    def setup(label):
        with storage.write() as txn:
            txn.drop(storage.db("p1" if label == "engine" else "raw"), delete=False)

    # The same pairs in the order import writes them: per chunk its rows, then its index
    # entries (which fall between the earlier chunks' entries), then the counter. LMDB pays
    # more for keys landing amid existing ones than for one sorted pass: this is the floor
    # for an import that keeps the chunks' order.
    in_order = []
    with storage.write() as txn:
        have = set()
        for c in chunks:
            E.import_chunk(txn, dst, {KV.table_id: KV}, c)
            now = {bytes(k): bytes(v) for k, v in txn.cursor(db=storage.db("p1")).iternext()}
            new = sorted(k for k in now if k not in have and not k.startswith(b"\xff\xff"))
            rows = [k for k in new if k[:2] == KV.table_id.to_bytes(2, "big")]
            ents = [k for k in new if k[:2] != KV.table_id.to_bytes(2, "big")]
            in_order += [(k, now[k]) for k in rows + ents]
            have |= now.keys()
        in_order += [(k, now[k]) for k in sorted(now) if k.startswith(b"\xff\xff")]
    assert sorted(in_order) == items

    def primitive_in_order():
        with storage.write() as txn:
            txn.cursor(db=raw).putmulti(in_order)

    setup("engine")
    benchmark.pedantic(engine, rounds=1, iterations=1)
    mb = sum(map(len, chunks))
    compare(f"import {N_ROWS} rows, {mb / 1e6:.1f} MB (vs putmulti)", engine, primitive, N_ROWS,
            nbytes=mb, setup=setup)
    compare(f"import {N_ROWS} rows, {mb / 1e6:.1f} MB (vs putmulti in import's write order)",
            engine, primitive_in_order, N_ROWS, nbytes=mb, setup=setup)

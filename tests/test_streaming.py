# SPDX-License-Identifier: AGPL-3.0-or-later
"""Token-range streaming between partition stores in real LMDB environments."""

import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voltdb_py.engine import _engine as E
from voltdb_py.errors import CodecError, ConstraintError
from voltdb_py.storage import Storage

MB = 1 << 20
TMIN, TMAX = -(2 ** 31), 2 ** 31 - 1

T1 = E.TupleSchema(
    1, [(E.T_BIGINT, 0, False, False), (E.T_STRING, 30, False, True),
        (E.T_INTEGER, 0, False, True)],
    [0], 0, True, [(10, [0], True), (11, [1], True), (12, [2], False)],
)
T2 = E.TupleSchema(   # no primary key: rows keep their row ids when streamed
    2, [(E.T_STRING, 10, False, False), (E.T_VARBINARY, 50, False, True)],
    None, 0, True, [(20, [0, 1], False)],
)
SCHEMAS = [T1, T2]
BY_ID = {1: T1, 2: T2}


def token_of(schema, row):
    return schema.row_token(row)


def fill(txn, store, n, seed=0):
    for i in range(n):
        store.insert(txn, T1, (i * 7 + seed, f"name{i}" if i % 4 else None, i % 5))
        store.insert(txn, T2, (f"k{i % 9}", bytes([i % 256]) * (i % 40)))


def export_all(txn, store, lo, hi, chunk_bytes):
    chunks, resume = [], None
    while True:
        chunk, resume = E.export_range(txn, store, SCHEMAS, lo, hi, chunk_bytes, resume)
        chunks.append(chunk)
        if resume is None:
            return chunks


def table_state(txn, store):
    out = {}
    for s in SCHEMAS:
        rows = list(store.scan(txn, s))
        idx = {iid: list(store.index_scan(txn, s, iid)) for iid, _, _ in s.indexes}
        out[s.table_id] = (rows, idx, store.count(txn, s))
    return out


@pytest.fixture
def env(tmp_path):
    s = Storage.open(str(tmp_path / "d"), map_size_bytes=64 * MB, sync="none")
    for name in ("p0", "p1", "p2"):
        s.db(name)
    yield s
    s.close()


@given(n=st.integers(0, 60), chunk_bytes=st.integers(1, 3000),
       lo=st.integers(TMIN, TMAX), width=st.integers(0, 2 ** 32))
@settings(deadline=None, max_examples=40)
def test_export_import_roundtrip_any_chunk_size(n, chunk_bytes, lo, width):
    hi = min(TMAX, lo + width)
    with tempfile.TemporaryDirectory() as d:
        with Storage.open(d + "/e", map_size_bytes=32 * MB, sync="none") as s:
            src = E.PartitionStore(0, s.db("p0"))
            dst = E.PartitionStore(1, s.db("p1"))
            with s.write() as txn:
                fill(txn, src, n)
            with s.read() as txn:
                chunks = export_all(txn, src, lo, hi, chunk_bytes)
                expect = {}
                for sch in SCHEMAS:
                    expect[sch.table_id] = [(k, r) for k, r in src.scan(txn, sch)
                                            if lo <= token_of(sch, r) <= hi]
            # at most ~chunk_bytes, unless a chunk holds a single row
            rows_per_chunk = []
            with s.write() as txn:
                for c in chunks:
                    rows_per_chunk.append(E.import_chunk(txn, dst, BY_ID, c))
                    assert len(c) <= chunk_bytes or rows_per_chunk[-1] <= 1
                assert all(r >= 1 for r in rows_per_chunk[:-1])
                for sch in SCHEMAS:
                    got = list(dst.scan(txn, sch))
                    assert got == expect[sch.table_id]       # nothing twice, nothing skipped
                    assert dst.count(txn, sch) == len(got)
                    for iid, _, _ in sch.indexes:
                        want = [x for x in src.index_scan(txn, sch, iid)
                                if lo <= token_of(sch, x[1]) <= hi]
                        assert list(dst.index_scan(txn, sch, iid)) == want
            assert sum(rows_per_chunk) == sum(len(v) for v in expect.values())


@given(n=st.integers(0, 50), lo=st.integers(TMIN, TMAX), width=st.integers(0, 2 ** 32))
@settings(deadline=None, max_examples=30)
def test_delete_range_removes_exactly_the_range(n, lo, width):
    hi = min(TMAX, lo + width)
    with tempfile.TemporaryDirectory() as d:
        with Storage.open(d + "/e", map_size_bytes=32 * MB, sync="none") as s:
            p = E.PartitionStore(0, s.db("p0"))
            with s.write() as txn:
                fill(txn, p, n)
                before = {sch.table_id: list(p.scan(txn, sch)) for sch in SCHEMAS}
                seen = []
                deleted = E.delete_range(txn, p, SCHEMAS, lo, hi,
                                         on_row=lambda t, r: seen.append((t, r)))
                kept_total = 0
                for sch in SCHEMAS:
                    kept = [x for x in before[sch.table_id]
                            if not lo <= token_of(sch, x[1]) <= hi]
                    assert list(p.scan(txn, sch)) == kept
                    assert p.count(txn, sch) == len(kept)
                    for iid, _, _ in sch.indexes:
                        got = list(p.index_scan(txn, sch, iid))
                        assert sorted(got) == sorted(kept)
                    kept_total += len(kept)
                assert deleted == len(seen) == 2 * n - kept_total
                assert sorted(seen, key=repr) == sorted(
                    ((sch.table_id, r) for sch in SCHEMAS for _, r in before[sch.table_id]
                     if lo <= token_of(sch, r) <= hi), key=repr)


def test_large_table_delete_range_crosses_batches(env):
    p = E.PartitionStore(0, env.db("p0"))
    with env.write() as txn:
        fill(txn, p, 3000)
        assert E.delete_range(txn, p, SCHEMAS, TMIN, TMAX) == 6000
        assert p.count(txn, T1) == 0 and p.count(txn, T2) == 0
        assert list(p.scan(txn, T1)) == [] and list(p.index_scan(txn, T2, 20)) == []


def test_snapshot_is_consistent_while_writes_continue(env):
    src = E.PartitionStore(0, env.db("p0"))
    dst = E.PartitionStore(1, env.db("p1"))
    with env.write() as txn:
        fill(txn, src, 200)
    with env.read() as rtxn:
        want = {s.table_id: list(src.scan(rtxn, s)) for s in SCHEMAS}
        chunks = []
        for i, chunk in enumerate(E.snapshot_stream(rtxn, src, SCHEMAS, 700)):
            chunks.append(chunk)
            with env.write() as wtxn:   # writes between chunks, committed
                src.insert(wtxn, T1, (10 ** 6 + i, f"new{i}", 1))
                rk = next(iter(src.scan(wtxn, T2)))[0]
                src.delete(wtxn, T2, rk)
                src.truncate(wtxn, T1) if i == 3 else None
    assert len(chunks) > 4
    with env.write() as txn:
        for c in chunks:
            E.import_chunk(txn, dst, BY_ID, c)
        for s in SCHEMAS:
            assert list(dst.scan(txn, s)) == want[s.table_id]


def test_import_duplicates_raise_and_write_nothing(env):
    src = E.PartitionStore(0, env.db("p0"))
    dst = E.PartitionStore(1, env.db("p1"))
    with env.write() as txn:
        fill(txn, src, 30)
        chunk, resume = E.export_range(txn, src, SCHEMAS, TMIN, TMAX, 1 << 20)
        assert resume is None
        assert E.import_chunk(txn, dst, BY_ID, chunk) == 60
        with pytest.raises(ConstraintError):
            E.import_chunk(txn, dst, BY_ID, chunk)
        third = E.PartitionStore(2, env.db("p2"))
        # a unique-key clash with a different primary key
        third.insert(txn, T1, (999999, "name1", 0))
        before = table_state(txn, third)
        with pytest.raises(ConstraintError, match="index 11.*table 1"):
            E.import_chunk(txn, third, BY_ID, chunk)
        assert table_state(txn, third) == before


def _valid_chunk(env):
    src = E.PartitionStore(0, env.db("p0"))
    with env.write() as txn:
        fill(txn, src, 10)
        chunk, _ = E.export_range(txn, src, SCHEMAS, TMIN, TMAX, 1 << 20)
    return chunk


@given(data=st.data())
@settings(deadline=None, max_examples=60)
def test_garbage_chunks_raise_codec_error_and_import_nothing(data):
    with tempfile.TemporaryDirectory() as d:
        with Storage.open(d + "/e", map_size_bytes=32 * MB, sync="none") as s:
            s.db("p0")
            dst = E.PartitionStore(1, s.db("p1"))
            chunk = _valid_chunk(s)
            kind = data.draw(st.sampled_from(["flip", "truncate", "random", "extend"]))
            if kind == "flip":
                i = data.draw(st.integers(0, len(chunk) - 1))
                bad = chunk[:i] + bytes([chunk[i] ^ data.draw(st.integers(1, 255))]) + chunk[i + 1:]
            elif kind == "truncate":
                bad = chunk[:data.draw(st.integers(0, len(chunk) - 1))]
            elif kind == "extend":
                bad = chunk + data.draw(st.binary(min_size=1, max_size=20))
            else:
                bad = data.draw(st.binary(max_size=200))
            with s.write() as txn:
                with pytest.raises(CodecError):
                    E.import_chunk(txn, dst, BY_ID, bad)
                for sch in SCHEMAS:
                    assert dst.count(txn, sch) == 0
                    assert list(dst.scan(txn, sch)) == []


def test_well_formed_chunk_with_forged_row_key_is_rejected(env):
    """A chunk whose checksum is right but whose row key does not match its row."""
    import zlib
    src = E.PartitionStore(0, env.db("p0"))
    dst = E.PartitionStore(1, env.db("p1"))
    with env.write() as txn:
        src.insert(txn, T1, (5, "a", 1))
        chunk, _ = E.export_range(txn, src, [T1], TMIN, TMAX, 1 << 20)
        body = bytearray(chunk[:-4])
        body[1 + 6 + 2 + 4 + 3] ^= 0x01          # a byte of the pk suffix
        forged = bytes(body) + zlib.crc32(bytes(body)).to_bytes(4, "big")
        with pytest.raises(CodecError):
            E.import_chunk(txn, dst, BY_ID, forged)
        with pytest.raises(CodecError):
            E.import_chunk(txn, dst, {2: T2}, chunk)   # unknown table
        assert dst.count(txn, T1) == 0


def test_on_row_and_bad_arguments(env):
    src = E.PartitionStore(0, env.db("p0"))
    dst = E.PartitionStore(1, env.db("p1"))
    with env.write() as txn:
        fill(txn, src, 5)
        chunk, _ = E.export_range(txn, src, SCHEMAS, TMIN, TMAX, 1 << 20)
        seen = []
        E.import_chunk(txn, dst, BY_ID, chunk, on_row=lambda t, r: seen.append((t, r)))
        assert sorted(seen, key=repr) == sorted(
            [(s.table_id, r) for s in SCHEMAS for _, r in src.scan(txn, s)], key=repr)
        with pytest.raises(Exception):
            E.export_range(txn, src, SCHEMAS, 5, 4, 100)
        with pytest.raises(Exception):
            E.export_range(txn, src, SCHEMAS, 0, 1, 0)
        with pytest.raises(CodecError):
            E.export_range(txn, src, SCHEMAS, TMIN, TMAX, 100, b"\x09garbage")
    with env.read() as txn:
        empty, resume = E.export_range(txn, src, [], TMIN, TMAX, 10)
    assert resume is None
    with env.write() as txn:
        assert E.import_chunk(txn, dst, BY_ID, empty) == 0


# A table with a unique string index whose keys share long prefixes (so that index entries
# tie on their first 16 bytes and the import's sort must look further), and the same table
# without that index (to export chunks the unique index would refuse).
T3_COLS = [(E.T_BIGINT, 0, False, False), (E.T_STRING, 60, False, True),
           (E.T_INTEGER, 0, False, True)]
T3 = E.TupleSchema(3, T3_COLS, [0], 0, True, [(30, [1], True), (31, [2], False)])
T3_LOOSE = E.TupleSchema(3, T3_COLS, [0], 0, True, [(31, [2], False)])
_PREFIX = "customer-account-number-"


def _t3_row(pk, v):
    # v: None (NULL: never a clash) or a small int spelled after a long common prefix
    return (pk, None if v is None else f"{_PREFIX}{v:03d}", pk % 3)


@given(vals=st.lists(st.one_of(st.none(), st.integers(0, 400)), min_size=0, max_size=300),
       held=st.lists(st.integers(0, 400), max_size=5), chunk_bytes=st.sampled_from([MB, 4000]))
@settings(deadline=None, max_examples=40)
def test_import_unique_index_any_order_and_ties(vals, held, chunk_bytes):
    """Duplicates inside a chunk or against the store raise and write nothing; otherwise the
    index holds exactly the rows' keys (many entries: the radix-sort path, ties included)."""
    with tempfile.TemporaryDirectory() as d:
        with Storage.open(d + "/e", map_size_bytes=32 * MB, sync="none") as s:
            src = E.PartitionStore(0, s.db("p0"))
            dst = E.PartitionStore(1, s.db("p1"))
            with s.write() as txn:
                for i, v in enumerate(vals):
                    src.insert(txn, T3_LOOSE, _t3_row(i, v))
                for j, v in enumerate(held):
                    if v not in held[:j]:
                        dst.insert(txn, T3, _t3_row(10 ** 6 + j, v))
            with s.read() as txn:
                chunks, resume = [], None
                while True:
                    c, resume = E.export_range(txn, src, [T3_LOOSE], TMIN, TMAX, chunk_bytes, resume)
                    chunks.append(c)
                    if resume is None:
                        break
            with s.write() as txn:
                seen = set(held)
                before = list(dst.scan(txn, T3))
                for c in chunks:
                    rows = []
                    E.import_chunk(txn, E.PartitionStore(2, s.db("p2")), {3: T3_LOOSE}, c,
                                   on_row=lambda t, r: rows.append(r))
                    mine = [r[1] for r in rows if r[1] is not None]
                    clash = len(set(mine)) < len(mine) or any(
                        int(x[len(_PREFIX):]) in seen for x in mine)
                    if clash:
                        with pytest.raises(ConstraintError, match="index 30"):
                            E.import_chunk(txn, dst, {3: T3}, c)
                        assert list(dst.scan(txn, T3)) == before
                        break
                    assert E.import_chunk(txn, dst, {3: T3}, c) == len(rows)
                    seen.update(int(x[len(_PREFIX):]) for x in mine)
                    before = list(dst.scan(txn, T3))
                got = list(dst.scan(txn, T3))
                assert dst.count(txn, T3) == len(got)
                for iid in (30, 31):
                    want = sorted(got,  # NULL keys are indexed too (and sort first)
                                  key=lambda x: (E.encode_key([E.T_STRING], [x[1][1]]) if iid == 30
                                                 else E.encode_key([E.T_INTEGER], [x[1][2]]), x[0]))
                    assert [r for _, r in dst.index_scan(txn, T3, iid)] == [r for _, r in want]


def test_import_large_chunk_matches_source(env):
    """One chunk of many rows (both tables, with and without a primary key) lands whole."""
    src = E.PartitionStore(0, env.db("p0"))
    dst = E.PartitionStore(1, env.db("p1"))
    with env.write() as txn:
        fill(txn, src, 200)
        chunk, _ = E.export_range(txn, src, SCHEMAS, TMIN, TMAX, 1 << 20)
        assert E.import_chunk(txn, dst, BY_ID, chunk) == 400
        assert table_state(txn, dst) == table_state(txn, src)


@given(data=st.binary(max_size=3000), extra=st.integers(0, 70))
@settings(deadline=None, max_examples=200)
def test_chunk_crc_is_zlibs(data, extra):
    import zlib
    data = data + bytes(range(extra))
    assert E._sm_crc32_check(data) == zlib.crc32(data)
    big = data * (1 + 70000 // (len(data) + 1))
    assert E._sm_crc32_check(big) == zlib.crc32(big)

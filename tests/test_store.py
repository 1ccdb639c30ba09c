# SPDX-License-Identifier: AGPL-3.0-or-later
"""PartitionStore over a real LMDB environment: every method, constraints, index scans,
a stateful test against a dict model, persistence."""

import decimal
import struct

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from voltdb_py.engine import _engine as E
from voltdb_py.errors import (
    CodecError, ConstraintError, StorageError, TypeMismatchError, ValueOutOfRangeError,
)
from voltdb_py.storage import Storage

MB = 1 << 20

# Table 1: partitioned on id (the PK), unique nullable name, non-unique (grp, name).
A = E.TupleSchema(
    1,
    [(E.T_INTEGER, 0, False, False), (E.T_STRING, 8, False, True),
     (E.T_SMALLINT, 0, False, True), (E.T_FLOAT, 0, False, True)],
    [0], 0, True,
    [(100, [0], True), (101, [1], True), (102, [2, 1], False)],
)
# Table 2: no primary key, partitioned on k, index on v.
B = E.TupleSchema(
    2, [(E.T_BIGINT, 0, False, False), (E.T_VARBINARY, 4, False, True)],
    None, 0, True, [(200, [1], False)],
)
# Table 4: partitioned on its PK, no other index (upsert/update/delete take their
# one-descent paths).
D = E.TupleSchema(
    4, [(E.T_BIGINT, 0, False, False), (E.T_VARBINARY, 8, False, True)],
    [0], 0, True, [(400, [0], True)],
)
# Table 3: replicated, composite PK.
C = E.TupleSchema(
    3, [(E.T_STRING, 10, False, False), (E.T_BIGINT, 0, False, False),
        (E.T_STRING, 10, False, True)],
    [0, 1], -1, False, [(300, [0, 1], True)],
)


@pytest.fixture
def env(tmp_path):
    s = Storage.open(str(tmp_path / "data"), map_size_bytes=64 * MB, sync="none")
    s.db("p0")
    s.db("p3")
    s.db("rep")
    yield s
    s.close()


@pytest.fixture
def p0(env):
    return E.PartitionStore(0, env.db("p0"))


def raw_keys(env, name):
    db = env.db(name)
    with env.read() as txn:
        return [bytes(k) for k in txn.cursor(db=db).iternext(values=False)]


# ------------------------------------------------------------------ basic methods
def test_insert_get_and_key_layout(env, p0):
    with env.write() as txn:
        rk = p0.insert(txn, A, (7, "x", 1, 2.5))
        assert isinstance(rk, bytes)
        assert rk[:2] == b"\x00\x01"
        token = E.token_for(E.T_INTEGER, 7)
        assert struct.unpack(">I", rk[2:6])[0] == (token & 0xFFFFFFFF) ^ 0x80000000
        assert rk[6:] == A.pk_suffix((7, "x", 1, 2.5))
        assert p0.get(txn, A, (7,)) == (7, "x", 1, 2.5)
        assert p0.get(txn, A, (8,)) is None
        assert p0.get_by_rowkey(txn, A, rk) == (7, "x", 1, 2.5)
        assert p0.get_key(txn, A, (7,)) == (rk, (7, "x", 1, 2.5))
        assert p0.count(txn, A) == 1
    keys = raw_keys(env, "p0")
    # the row, three index entries, the row counter
    assert rk in keys
    assert b"\x00\x64" + A.index_key(0, (7, "x", 1, 2.5))[0] + rk[2:] in keys
    assert b"\x00\x65" + A.index_key(1, (7, "x", 1, 2.5))[0] + rk[2:] in keys
    assert b"\x00\x66" + A.index_key(2, (7, "x", 1, 2.5))[0] + rk[2:] in keys
    assert len([k for k in keys if not k.startswith(b"\xff\xff")]) == 4


def test_pk_and_unique_violations_write_nothing(env, p0):
    with env.write() as txn:
        p0.insert(txn, A, (1, "a", 1, None))
        p0.insert(txn, A, (2, None, 1, None))
    before = raw_keys(env, "p0")
    with env.write() as txn:
        with pytest.raises(ConstraintError, match=r"PRIMARY KEY.*index 100.*table 1"):
            p0.insert(txn, A, (1, "zz", 2, None))
        with pytest.raises(ConstraintError, match=r"UNIQUE.*index 101.*table 1"):
            p0.insert(txn, A, (3, "a", 2, None))
        with pytest.raises(ConstraintError, match="NOT NULL"):
            p0.insert(txn, A, (None, "q", 2, None))
        # update into another row's PK or unique key
        rk2 = p0.get_key(txn, A, (2,))[0]
        with pytest.raises(ConstraintError, match="PRIMARY KEY"):
            p0.update(txn, A, rk2, (1, None, 1, None))
        with pytest.raises(ConstraintError, match="UNIQUE"):
            p0.update(txn, A, rk2, (2, "a", 1, None))
        with pytest.raises(ConstraintError, match="UNIQUE"):
            p0.upsert(txn, A, (2, "a", 1, None))
        with pytest.raises(ConstraintError, match="UNIQUE"):
            p0.upsert(txn, A, (9, "a", 1, None))
    assert raw_keys(env, "p0") == before   # committed after the failures: nothing written


def test_nulls_never_conflict_in_unique_indexes(env, p0):
    with env.write() as txn:
        for i in range(5):
            p0.insert(txn, A, (i, None, None, None))
        assert p0.count(txn, A) == 5
        got = list(p0.index_scan(txn, A, 101, (None,), True, (None,), True))
        assert sorted(r[0] for _, r in got) == [0, 1, 2, 3, 4]
        assert [k for k, _ in got] == sorted(k for k, _ in got)   # ties in row-key order


def test_update_in_place_and_key_change(env, p0):
    with env.write() as txn:
        rk = p0.insert(txn, A, (1, "a", 1, 1.0))
        assert p0.update(txn, A, rk, (1, "b", 2, 3.0)) == rk
        assert p0.get(txn, A, (1,)) == (1, "b", 2, 3.0)
        assert list(p0.index_scan(txn, A, 101, ("a",), True, ("a",), True)) == []
        assert [r for _, r in p0.index_scan(txn, A, 101, ("b",), True, ("b",), True)] == \
            [(1, "b", 2, 3.0)]
        rk2 = p0.update(txn, A, rk, (5, "b", 2, 3.0))
        assert rk2 != rk
        assert p0.get(txn, A, (1,)) is None
        assert p0.get(txn, A, (5,)) == (5, "b", 2, 3.0)
        assert p0.get_by_rowkey(txn, A, rk) is None
        assert p0.count(txn, A) == 1
        assert [k for k, _ in p0.index_scan(txn, A, 100)] == [rk2]
        assert p0.update(txn, A, rk, (6, None, None, None)) is None


def test_upsert(env, p0):
    with env.write() as txn:
        rk = p0.upsert(txn, A, (1, "a", 1, None))
        assert p0.upsert(txn, A, (1, "b", 2, None)) == rk
        assert p0.get(txn, A, (1,)) == (1, "b", 2, None)
        assert p0.count(txn, A) == 1
        with pytest.raises(TypeMismatchError):
            p0.upsert(txn, B, (1, b"x"))
        with pytest.raises(TypeMismatchError):
            p0.get(txn, B, (1,))


def test_pk_only_upsert_update_delete_keep_keys_and_count(env, p0):
    with env.write() as txn:
        rk = p0.upsert(txn, D, (5, b"a"))
        assert p0.upsert(txn, D, (5, b"b")) == rk
        assert p0.update(txn, D, rk, (5, None)) == rk
        assert p0.get(txn, D, (5,)) == (5, None)
        assert p0.count(txn, D) == 1
        # an update that moves the row to another primary key
        rk6 = p0.update(txn, D, rk, (6, b"c"))
        assert rk6 != rk and p0.get(txn, D, (5,)) is None and p0.get(txn, D, (6,)) == (6, b"c")
        with pytest.raises(ConstraintError):
            p0.update(txn, D, p0.upsert(txn, D, (7, b"")), (6, b"x"))
        assert [r for _, r in p0.index_scan(txn, D, 400)] == [(6, b"c"), (7, b"")]
        assert p0.count(txn, D) == p0.scan_count(txn, D) == 2
    keys = raw_keys(env, "p0")
    assert len(keys) == 2 * 2 + 1      # rows, PK index entries, the counter


def test_update_of_a_missing_row_writes_nothing(env, p0):
    with env.write() as txn:
        rk = p0.insert(txn, D, (1, b"x"))
        p0.delete(txn, D, rk)
        assert p0.update(txn, D, rk, (1, b"y")) is None
        # an invalid new row: nothing to update, so no error either
        assert p0.update(txn, D, rk, (1, b"far too long")) is None
        assert p0.get(txn, D, (1,)) is None and p0.count(txn, D) == 0
    assert len(raw_keys(env, "p0")) == 1   # the counter only
    with env.write() as txn:
        rk = p0.insert(txn, D, (1, b"x"))
        with pytest.raises(ValueOutOfRangeError):
            p0.update(txn, D, rk, (1, b"far too long"))
        assert p0.get(txn, D, (1,)) == (1, b"x")


def test_row_counter_exact_after_aborts_other_writers_and_truncate(env):
    db = env.db("p0")
    p, q = E.PartitionStore(0, db), E.PartitionStore(0, db)
    with env.write() as txn:
        for i in range(3):
            p.insert(txn, D, (i, None))
    with pytest.raises(RuntimeError), env.write() as txn:
        p.insert(txn, D, (10, None))      # p now guesses 4, but this is rolled back
        raise RuntimeError
    with env.write() as txn:
        p.upsert(txn, D, (11, None))
        assert p.count(txn, D) == 4
        q.insert(txn, D, (12, None))      # the other store object moves the counter
        p.delete(txn, D, p.get_key(txn, D, (0,))[0])
        assert p.count(txn, D) == q.count(txn, D) == 4
        p.truncate(txn, D)
        q.upsert(txn, D, (1, b"z"))
        p.insert(txn, D, (2, b"z"))
        assert p.count(txn, D) == p.scan_count(txn, D) == 2
    with env.write() as txn:
        p.insert(txn, D, (3, None))
        with pytest.raises(RuntimeError), env.nested(txn) as child:
            p.insert(child, D, (4, None))
            raise RuntimeError
        with env.nested(txn) as child:
            p.insert(child, D, (5, None))
        p.insert(txn, D, (6, None))
        assert p.count(txn, D) == p.scan_count(txn, D) == 5


def test_delete_of_a_corrupt_row_leaves_it(env, p0):
    with env.write() as txn:
        rk = p0.insert(txn, D, (1, b"x"))
        txn.put(rk, b"\x07garbage", db=env.db("p0"))
        with pytest.raises(CodecError):
            p0.delete(txn, D, rk)
        assert txn.get(rk, db=env.db("p0")) == b"\x07garbage"
        assert p0.count(txn, D) == 1


def test_delete_and_truncate(env, p0):
    with env.write() as txn:
        keys = [p0.insert(txn, A, (i, f"n{i}", i % 2, None)) for i in range(10)]
        for i in range(10):
            p0.insert(txn, B, (i, b"v"))
        assert p0.delete(txn, A, keys[3]) == (3, "n3", 1, None)
        assert p0.delete(txn, A, keys[3]) is None
        assert p0.count(txn, A) == 9
        assert p0.truncate(txn, A) == 9
        assert p0.count(txn, A) == 0
        assert list(p0.scan(txn, A)) == []
        assert p0.count(txn, B) == 10
    keys = raw_keys(env, "p0")
    assert not [k for k in keys if k[:2] in (b"\x00\x01", b"\x00\x64", b"\x00\x65", b"\x00\x66")]


def test_rowids_carry_the_partition(env):
    p3 = E.PartitionStore(3, env.db("p3"))
    rep = E.PartitionStore(-1, env.db("rep"))
    with env.write() as txn:
        a = p3.insert(txn, B, (1, b"x"))
        b = p3.insert(txn, B, (1, b"x"))
        c = rep.insert(txn, B, (1, b"x"))
        assert a != b
        ida, idb, idc = (struct.unpack(">Q", k[6:])[0] for k in (a, b, c))
        assert ida >> 48 == 3 and idb >> 48 == 3 and idb == ida + 1
        assert idc >> 48 == 0xFFFF
        assert sorted(r for _, r in p3.scan(txn, B)) == [(1, b"x"), (1, b"x")]


def test_replicated_composite_pk(env):
    rep = E.PartitionStore(-1, env.db("rep"))
    with env.write() as txn:
        rep.insert(txn, C, ("a", 1, None))
        rep.insert(txn, C, ("a", 2, "z"))
        with pytest.raises(ConstraintError):
            rep.insert(txn, C, ("a", 2, None))
        assert rep.get(txn, C, ("a", 2)) == ("a", 2, "z")
        assert [r for _, r in rep.scan(txn, C)] == [("a", 1, None), ("a", 2, "z")]
        assert [r for _, r in rep.index_scan(txn, C, 300, ("a",), True, ("a",), True,
                                             reverse=True)] == [("a", 2, "z"), ("a", 1, None)]


def test_iterators_yield_bytes_with_buffers(env, p0):
    with env.write() as txn:
        p0.insert(txn, A, (1, "a", 1, None))
    with env.env.begin(buffers=True) as txn:
        (k, r), = list(p0.scan(txn, A))
        assert type(k) is bytes and r == (1, "a", 1, None)
        (k2, r2), = list(p0.index_scan(txn, A, 101))
        assert type(k2) is bytes and k2 == k
        assert p0.get(txn, A, (1,)) == r
        assert p0.count(txn, A) == 1


def test_unknown_index_and_wrong_rowkey(env, p0):
    with env.write() as txn:
        rk = p0.insert(txn, A, (1, "a", 1, None))
        with pytest.raises(Exception, match="no index 999"):
            p0.index_scan(txn, A, 999)
        with pytest.raises(Exception, match="not a key of table 2"):
            p0.get_by_rowkey(txn, B, rk)


def test_use_after_close_raises_storage_error(tmp_path):
    s = Storage.open(str(tmp_path / "d"), map_size_bytes=16 * MB, sync="none")
    p = E.PartitionStore(0, s.db("p0"))
    txn = s.env.begin(write=True)
    p.insert(txn, A, (1, "a", 1, None))
    s.close()
    with pytest.raises(StorageError):
        p.insert(txn, A, (2, "b", 1, None))
    with pytest.raises(StorageError):
        p.get(txn, A, (1,))
    with pytest.raises(StorageError):
        list(p.scan(txn, A))


def test_persistence_across_reopen(tmp_path):
    path = str(tmp_path / "d")
    with Storage.open(path, map_size_bytes=16 * MB, sync="commit") as s:
        p = E.PartitionStore(0, s.db("p0"))
        with s.write() as txn:
            for i in range(50):
                p.insert(txn, A, (i, f"n{i}", i % 3, i / 2))
            p.insert(txn, B, (5, b"q"))
    with Storage.open(path, map_size_bytes=16 * MB) as s:
        p = E.PartitionStore(0, s.db("p0"))
        with s.write() as txn:
            assert p.count(txn, A) == 50
            assert p.get(txn, A, (17,)) == (17, "n17", 2, 8.5)
            rk = p.insert(txn, B, (5, b"q"))
            assert struct.unpack(">Q", rk[6:])[0] == 2   # counter survived


# ------------------------------------------------------------------ index_scan bounds
I = E.TupleSchema(
    5, [(E.T_INTEGER, 0, False, False), (E.T_INTEGER, 0, False, True),
        (E.T_STRING, 5, False, True)],
    [0], -1, False, [(50, [0], True), (51, [1, 2], False)],
)
VALUES_1 = [None, -3, 0, 1, 2, 5]
VALUES_2 = [None, "", "a", "a\x00", "ab", "b"]


def _key(v):
    return (v is not None, v if v is not None else 0)


def _cmp_prefix(row_vals, bound):
    """-1/0/1 comparing the row's first len(bound) index values with bound (NULL first)."""
    a = tuple(_key(v) for v in row_vals[:len(bound)])
    b = tuple(_key(v) for v in bound)
    return (a > b) - (a < b)


@pytest.fixture(scope="module")
def idx_env(tmp_path_factory):
    s = Storage.open(str(tmp_path_factory.mktemp("idx") / "d"), map_size_bytes=16 * MB,
                     sync="none")
    p = E.PartitionStore(0, s.db("p0"))
    rows = []
    with s.write() as txn:
        n = 0
        for a in VALUES_1:
            for b in VALUES_2:
                for _ in range(2):
                    rows.append((n, a, b))
                    p.insert(txn, I, (n, a, b))
                    n += 1
    yield s, p, rows
    s.close()


bound_st = st.one_of(st.none(), st.tuples(st.sampled_from(VALUES_1)),
                     st.tuples(st.sampled_from(VALUES_1), st.sampled_from(VALUES_2)))


@given(lo=bound_st, lo_inc=st.booleans(), hi=bound_st, hi_inc=st.booleans(),
       reverse=st.booleans())
@settings(deadline=None)
def test_index_scan_bounds_match_model(idx_env, lo, lo_inc, hi, hi_inc, reverse):
    s, p, rows = idx_env

    def ok(r):
        vals = (r[1], r[2])
        if lo is not None:
            c = _cmp_prefix(vals, lo)
            if c < 0 or (c == 0 and not lo_inc):
                return False
        if hi is not None:
            c = _cmp_prefix(vals, hi)
            if c > 0 or (c == 0 and not hi_inc):
                return False
        return True

    want = sorted((r for r in rows if ok(r)), key=lambda r: (_key(r[1]), _key(r[2]), r[0]))
    if reverse:
        want.reverse()
    with s.read() as txn:
        got = [r for _, r in p.index_scan(txn, I, 51, lo, lo_inc, hi, hi_inc, reverse)]
    # Ties (same index key) come in row-key order; row keys sort by pk here (no token).
    assert got == want


def test_index_scan_pk_range_and_equality(idx_env):
    s, p, rows = idx_env
    with s.read() as txn:
        assert [r[0] for _, r in p.index_scan(txn, I, 50, (3,), False, (7,), True)] == \
            [4, 5, 6, 7]
        assert [r[0] for _, r in p.index_scan(txn, I, 50, (3,), True, (3,), True)] == [3]
        assert [r[0] for _, r in p.index_scan(txn, I, 50, (3,), True, (3,), False)] == []
        assert [r[0] for _, r in p.index_scan(txn, I, 50, None, True, (2,), True,
                                              reverse=True)] == [2, 1, 0]
        assert len(list(p.index_scan(txn, I, 50))) == len(rows)


# ------------------------------------------------------------------ stateful model test
ids = st.integers(min_value=0, max_value=12)
names = st.sampled_from([None, "a", "b", "c", "a\x00b", ""])
grps = st.sampled_from([None, -1, 0, 7])
amts = st.one_of(st.none(), st.floats(allow_nan=False, min_value=-1e9, max_value=1e9))


class StoreMachine(RuleBasedStateMachine):
    """PartitionStore vs a dict model: table A by PK, table B as a dict of row keys."""

    def __init__(self):
        super().__init__()
        import tempfile
        self.tmp = tempfile.TemporaryDirectory()
        self.st = Storage.open(self.tmp.name + "/d", map_size_bytes=16 * MB, sync="none")
        self.p = E.PartitionStore(2, self.st.db("p2"))
        # A second store object on the same DB: each keeps its own guess of the row counter.
        self.stores = (self.p, E.PartitionStore(2, self.st.db("p2")))
        self.a = {}
        self.b = {}
        self.d = {}

    def teardown(self):
        self.st.close()
        self.tmp.cleanup()

    def _a_conflict(self, row, own_id=None):
        if row[0] in self.a and row[0] != own_id:
            return True
        return row[1] is not None and any(
            r[1] == row[1] and i != own_id for i, r in self.a.items())

    @rule(i=ids, n=names, g=grps, x=amts)
    def insert_a(self, i, n, g, x):
        row = (i, n, g, x)
        conflict = self._a_conflict(row)
        with self.st.write() as txn:
            if conflict:
                with pytest.raises(ConstraintError):
                    self.p.insert(txn, A, row)
            else:
                self.p.insert(txn, A, row)
                self.a[i] = row

    @rule(i=ids, n=names, g=grps, x=amts)
    def upsert_a(self, i, n, g, x):
        row = (i, n, g, x)
        conflict = self._a_conflict(row, own_id=i)
        with self.st.write() as txn:
            if conflict:
                with pytest.raises(ConstraintError):
                    self.p.upsert(txn, A, row)
            else:
                self.p.upsert(txn, A, row)
                self.a[i] = row

    @precondition(lambda self: self.a)
    @rule(data=st.data(), i=ids, n=names, g=grps)
    def update_a(self, data, i, n, g):
        old = data.draw(st.sampled_from(sorted(self.a)))
        row = (i, n, g, None)
        conflict = self._a_conflict(row, own_id=old)
        with self.st.write() as txn:
            rk = self.p.get_key(txn, A, (old,))[0]
            if conflict:
                with pytest.raises(ConstraintError):
                    self.p.update(txn, A, rk, row)
            else:
                self.p.update(txn, A, rk, row)
                del self.a[old]
                self.a[i] = row

    @rule(i=ids)
    def delete_a(self, i):
        with self.st.write() as txn:
            got = self.p.get_key(txn, A, (i,))
            if i in self.a:
                assert self.p.delete(txn, A, got[0]) == self.a.pop(i)
            else:
                assert got is None

    @rule(k=st.integers(-5, 5), v=st.sampled_from([None, b"", b"\x00", b"xy"]))
    def insert_b(self, k, v):
        with self.st.write() as txn:
            rk = self.p.insert(txn, B, (k, v))
        assert rk not in self.b
        self.b[rk] = (k, v)

    @precondition(lambda self: self.b)
    @rule(data=st.data())
    def delete_b(self, data):
        rk = data.draw(st.sampled_from(sorted(self.b)))
        with self.st.write() as txn:
            assert self.p.delete(txn, B, rk) == self.b.pop(rk)

    @rule(which=st.sampled_from(["A", "B"]))
    def truncate(self, which):
        with self.st.write() as txn:
            if which == "A":
                assert self.p.truncate(txn, A) == len(self.a)
                self.a.clear()
            else:
                assert self.p.truncate(txn, B) == len(self.b)
                self.b.clear()

    @rule(i=ids, n=names)
    def aborted_insert_leaves_nothing(self, i, n):
        with pytest.raises(RuntimeError):
            with self.st.write() as txn:
                if not self._a_conflict((i, n, None, None)):
                    self.p.insert(txn, A, (i, n, None, None))
                raise RuntimeError

    @rule(i=ids, v=st.sampled_from([None, b"", b"v", b"\x00w"]), which=st.sampled_from([0, 1]),
          abort=st.booleans(), insert=st.booleans())
    def write_d(self, i, v, which, abort, insert):
        store = self.stores[which]
        try:
            with self.st.write() as txn:
                if insert and i in self.d:
                    with pytest.raises(ConstraintError):
                        store.insert(txn, D, (i, v))
                    return
                if insert:
                    store.insert(txn, D, (i, v))
                else:
                    store.upsert(txn, D, (i, v))
                if abort:
                    raise RuntimeError
        except RuntimeError:
            return
        self.d[i] = (i, v)

    @rule(i=ids, j=ids, v=st.sampled_from([None, b"u", b"too long!"]),
          which=st.sampled_from([0, 1]))
    def update_d(self, i, j, v, which):
        store = self.stores[which]
        key = D.encode_pk((i,))
        rowkey = b"\x00\x04" + struct.pack(">I", (E.token_for(E.T_BIGINT, i) & 0xFFFFFFFF)
                                             ^ 0x80000000) + key
        with self.st.write() as txn:
            if v == b"too long!":
                if i in self.d:
                    with pytest.raises(ValueOutOfRangeError):
                        store.update(txn, D, rowkey, (j, v))
                else:
                    assert store.update(txn, D, rowkey, (j, v)) is None
                return
            if i not in self.d:
                assert store.update(txn, D, rowkey, (j, v)) is None
                return
            if j != i and j in self.d:
                with pytest.raises(ConstraintError):
                    store.update(txn, D, rowkey, (j, v))
                return
            store.update(txn, D, rowkey, (j, v))
        del self.d[i]
        self.d[j] = (j, v)

    @rule(i=ids, which=st.sampled_from([0, 1]))
    def delete_d(self, i, which):
        store = self.stores[which]
        with self.st.write() as txn:
            got = store.get_key(txn, D, (i,))
            if i in self.d:
                assert store.delete(txn, D, got[0]) == self.d.pop(i)
            else:
                assert got is None

    @rule()
    def truncate_d(self):
        with self.st.write() as txn:
            assert self.stores[1].truncate(txn, D) == len(self.d)
        self.d.clear()

    @invariant()
    def matches_model(self):
        with self.st.read() as txn:
            scanned = list(self.p.scan(txn, A))
            keys = [k for k, _ in scanned]
            assert keys == sorted(keys)
            assert sorted(r for _, r in scanned) == sorted(self.a.values())
            assert self.p.count(txn, A) == len(self.a)
            for i in range(13):
                assert self.p.get(txn, A, (i,)) == self.a.get(i)
            by_name = [r for _, r in self.p.index_scan(txn, A, 101)]
            assert [_key(r[1]) for r in by_name] == sorted(_key(r[1]) for r in self.a.values())
            for g in (None, -1, 0, 7):
                got = sorted(r for _, r in self.p.index_scan(txn, A, 102, (g,), True, (g,), True))
                assert got == sorted(r for r in self.a.values() if r[2] == g)
            assert dict(self.p.scan(txn, B)) == self.b
            assert self.p.count(txn, B) == len(self.b)
            for v in (None, b"", b"\x00", b"xy"):
                got = sorted(k for k, _ in self.p.index_scan(txn, B, 200, (v,), True, (v,), True))
                assert got == sorted(k for k, r in self.b.items() if r[1] == v)
            # every index entry points at a row: entries = rows x indexes
            cur = txn.cursor(db=self.st.db("p2"))
            n_entries = sum(1 for k in cur.iternext(values=False)
                            if not bytes(k).startswith(b"\xff\xff"))
            assert n_entries == 4 * len(self.a) + 2 * len(self.b) + 2 * len(self.d)
            assert sorted(r for _, r in self.p.scan(txn, D)) == sorted(self.d.values())
            assert self.p.count(txn, D) == self.stores[1].count(txn, D) == len(self.d)
            assert self.p.scan_count(txn, D) == len(self.d)
            assert [r for _, r in self.p.index_scan(txn, D, 400)] == \
                [self.d[i] for i in sorted(self.d)]


StoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30,
                                          deadline=None)
TestStoreMachine = StoreMachine.TestCase


# ------------------------------------------------------------------ compiled aggregates
def _oracle_aggregate(rows, col, op):
    vals = [r[col] for r in rows if r[col] is not None]
    if op == "COUNT":
        return len(vals)
    if not vals:
        return None
    if op == "SUM":
        if isinstance(vals[0], decimal.Decimal):
            with decimal.localcontext(decimal.Context(prec=80)):
                return sum(vals, decimal.Decimal(0))
        total = vals[0]
        for v in vals[1:]:
            total += v
        return total
    return min(vals) if op == "MIN" else max(vals)


AGG = E.TupleSchema(
    5, [(E.T_BIGINT, 0, False, False), (E.T_TINYINT, 0, False, True),
        (E.T_FLOAT, 0, False, True), (E.T_DECIMAL, 0, False, True),
        (E.T_STRING, 6, False, True), (E.T_VARBINARY, 4, False, True),
        (E.T_BIGINT, 0, False, True)],
    [0], 0, True, [(500, [0], True)],
)
_I64 = st.integers(-(2 ** 63) + 1, 2 ** 63 - 1)
agg_rows = st.lists(st.tuples(
    st.integers(-(2 ** 63) + 1, 2 ** 63 - 1),
    st.none() | st.integers(-127, 127),
    st.none() | st.floats(-1e300, 1e300, allow_nan=False),
    st.none() | st.decimals(min_value=-(10 ** 20), max_value=10 ** 20, places=12,
                            allow_nan=False, allow_infinity=False),
    st.none() | st.text(max_size=6),
    st.none() | st.binary(max_size=4),
    st.none() | _I64,
), max_size=25, unique_by=lambda r: r[0])


@given(rows=agg_rows)
@settings(deadline=None, max_examples=40)
def test_scan_aggregate_matches_python(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("agg")
    with Storage.open(str(path / "d"), map_size_bytes=16 * MB, sync="none") as s:
        store = E.PartitionStore(0, s.db("p0"))
        with s.write() as txn:
            for r in rows:
                store.insert(txn, AGG, r)
            # Another table's rows and the index entries around it must not count.
            store.insert(txn, A, (1, "a", 1, None))
        with s.read() as txn:
            assert store.scan_count(txn, AGG) == len(rows)
            # Floats add up in scan (key) order, so the oracle takes that order too.
            rows = [r for _, r in store.scan(txn, AGG)]
            for col in range(AGG.ncols):
                for op in ("COUNT", "SUM", "MIN", "MAX"):
                    if op == "SUM" and col in (4, 5):
                        with pytest.raises(TypeMismatchError):
                            store.scan_aggregate(txn, AGG, col, op)
                        continue
                    got = store.scan_aggregate(txn, AGG, col, op)
                    want = _oracle_aggregate(rows, col, op)
                    assert got == want and type(got) is type(want), (col, op, got, want)


def test_scan_aggregate_arguments_and_counter_check(env, p0):
    with env.write() as txn:
        p0.insert(txn, A, (1, "a", 1, None))
        with pytest.raises(ValueOutOfRangeError):
            p0.scan_aggregate(txn, A, 9, "SUM")
        with pytest.raises(ValueOutOfRangeError):
            p0.scan_aggregate(txn, A, 0, "AVG")
        assert p0.scan_aggregate(txn, A, 0, "max") == 1
        # A counter that disagrees with the rows is reported, never silently used.
        txn.put(b"\xff\xff\x02\x00\x01", struct.pack(">Q", 2), db=env.db("p0"))
        with pytest.raises(StorageError, match="disagrees"):
            p0.scan_aggregate(txn, A, 0, "COUNT")
        assert p0.scan_count(txn, A) == 1

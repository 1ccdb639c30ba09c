# SPDX-License-Identifier: AGPL-3.0-or-later
"""Storage: the LMDB environment lifecycle, named DBs, transactions, sync modes, map growth."""

import os
import time

import lmdb
import pytest

from voltdb_py.errors import StorageError
from voltdb_py.storage import Storage

MB = 1 << 20


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "db" / "data")


def test_open_creates_dirs_and_reopen_keeps_data(store_path):
    st = Storage.open(store_path, map_size_bytes=16 * MB, sync="commit")
    assert os.path.isfile(os.path.join(store_path, "data.mdb"))
    with st.write() as txn:
        txn.put(b"k", b"v", db=st.db("p0"))
        txn.put(b"m", b"1", db=st.db("meta"))
    st.close()
    st = Storage.open(store_path, map_size_bytes=16 * MB)
    try:
        with st.read() as txn:
            assert txn.get(b"k", db=st.db("p0")) == b"v"
            assert txn.get(b"m", db=st.db("meta")) == b"1"
            assert txn.get(b"k", db=st.db("meta")) is None
        assert sorted(st.db_names()) == ["meta", "p0"]
    finally:
        st.close()


def test_write_aborts_on_exception(store_path):
    with Storage.open(store_path, map_size_bytes=16 * MB, sync="none") as st:
        db = st.db("p0")
        with pytest.raises(RuntimeError):
            with st.write() as txn:
                txn.put(b"a", b"1", db=db)
                raise RuntimeError("boom")
        with st.read() as txn:
            assert txn.get(b"a", db=db) is None


def test_nested_abort_keeps_parent(store_path):
    with Storage.open(store_path, map_size_bytes=16 * MB, sync="none") as st:
        db = st.db("p0")
        with st.write() as txn:
            txn.put(b"a", b"1", db=db)
            with pytest.raises(ValueError):
                with st.nested(txn) as child:
                    child.put(b"b", b"2", db=db)
                    raise ValueError
            with st.nested(txn) as child:
                child.put(b"c", b"3", db=db)
        with st.read() as txn:
            assert txn.get(b"a", db=db) == b"1"
            assert txn.get(b"b", db=db) is None
            assert txn.get(b"c", db=db) == b"3"


def test_db_opened_inside_write_txn_does_not_deadlock(store_path):
    with Storage.open(store_path, map_size_bytes=16 * MB, sync="none") as st:
        with st.write() as txn:
            txn.put(b"x", b"y", db=st.db("p7"))
        db = st.db("p7")
        with st.read() as txn:
            assert txn.get(b"x", db=db) == b"y"
        # A handle first opened in an aborted txn is not kept.
        with pytest.raises(KeyError):
            with st.write() as txn:
                st.db("p8")
                raise KeyError
        assert "p8" not in st.db_names()
        with st.write() as txn:
            txn.put(b"x", b"z", db=st.db("p8"))
        assert "p8" in st.db_names()


def test_drop_db(store_path):
    with Storage.open(store_path, map_size_bytes=16 * MB, sync="none") as st:
        with st.write() as txn:
            txn.put(b"x", b"y", db=st.db("p1"))
        st.drop_db("p1")
        assert "p1" not in st.db_names()
        st.drop_db("nothing-here")
        db = st.db("p1")
        with st.read() as txn:
            assert txn.get(b"x", db=db) is None


@pytest.mark.parametrize("mode", ["periodic", "commit", "none"])
def test_sync_modes(store_path, mode):
    st = Storage.open(store_path, map_size_bytes=16 * MB, sync=mode, sync_interval_s=0.01)
    assert st.sync_mode == mode
    assert st.env.flags()["sync"] is (mode == "commit")
    with st.write() as txn:
        txn.put(b"k", b"v", db=st.db("p0"))
    st.sync()
    if mode == "periodic":
        assert st._thread is not None and st._thread.is_alive()
        with st.write() as txn:
            txn.put(b"k2", b"v", db=st.db("p0"))
        # the background thread flushes the new commit within a few intervals
        deadline = time.monotonic() + 10
        while st._dirty and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not st._dirty
    st.close()
    if mode == "periodic":
        assert not st._thread.is_alive()
    with Storage.open(store_path, map_size_bytes=16 * MB) as st2:
        db = st2.db("p0")
        with st2.read() as txn:
            assert txn.get(b"k", db=db) == b"v"


@pytest.mark.parametrize("kwargs", [{"sync": "sometimes"}, {"sync_interval_s": 0},
                                    {"map_size_bytes": 0}])
def test_bad_arguments(store_path, kwargs):
    with pytest.raises(StorageError):
        Storage.open(store_path, **kwargs)


def test_use_after_close_raises(store_path):
    st = Storage.open(store_path, map_size_bytes=16 * MB, sync="none")
    db = st.db("p0")
    st.close()
    st.close()  # idempotent
    assert st.closed
    with pytest.raises(StorageError):
        st.db("p0")
    with pytest.raises(StorageError):
        with st.write():
            pass
    with pytest.raises(StorageError):
        with st.read():
            pass
    with pytest.raises(StorageError):
        st.sync()
    with pytest.raises(StorageError):
        st.drop_db("p0")
    assert db is not None


def test_double_open_in_one_process_refused(store_path):
    with Storage.open(store_path, map_size_bytes=16 * MB, sync="none"):
        with pytest.raises(StorageError):
            Storage.open(store_path, map_size_bytes=16 * MB)
    # After close it can be opened again.
    Storage.open(store_path, map_size_bytes=16 * MB).close()


def test_map_full_grows_and_transact_retries(store_path):
    with Storage.open(store_path, map_size_bytes=1 * MB, sync="none") as st:
        db = st.db("p0")
        before = st.map_size_bytes
        value = b"x" * 1000

        def fill(txn):
            for i in range(3000):  # about 3 MB: more than the initial map
                txn.put(b"%08d" % i, value, db=db)
            return 3000

        assert st.transact(fill) == 3000
        assert st.map_size_bytes > before
        with st.read() as txn:
            assert txn.stat(db)["entries"] == 3000


def test_map_full_in_write_raises_storage_error_and_grows(store_path):
    with Storage.open(store_path, map_size_bytes=1 * MB, sync="none") as st:
        db = st.db("p0")
        before = st.map_size_bytes
        with pytest.raises(StorageError) as info:
            with st.write() as txn:
                for i in range(3000):
                    txn.put(b"%08d" % i, b"y" * 1000, db=db)
        assert isinstance(info.value.__cause__, lmdb.MapFullError)
        assert st.map_size_bytes == 2 * before
        with st.read() as txn:
            assert txn.stat(db)["entries"] == 0


def test_copy_to(store_path, tmp_path):
    with Storage.open(store_path, map_size_bytes=16 * MB, sync="none") as st:
        with st.write() as txn:
            txn.put(b"k", b"v", db=st.db("p0"))
        st.copy_to(str(tmp_path / "copy"))
    with Storage.open(str(tmp_path / "copy"), map_size_bytes=16 * MB) as st2:
        with st2.read() as txn:
            assert txn.get(b"k", db=st2.db("p0")) == b"v"

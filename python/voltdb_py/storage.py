# SPDX-License-Identifier: AGPL-3.0-or-later
"""The LMDB environment of one database directory: open, named DBs, transactions, sync, close.

Durability trade-off of the ``sync`` modes (LMDB writes every page with ``write()``/``msync``
before a commit returns, so the OS holds a committed transaction even if the process is
killed with ``kill -9``; only an OS crash or power loss can lose it):

- ``"commit"``: the environment is opened with ``sync=True``; each commit waits for
  ``fdatasync``. Nothing acknowledged is lost on power loss, at the cost of a few
  thousand commits per second.
- ``"periodic"`` (default): ``sync=False`` plus a daemon thread that calls
  ``env.sync(True)`` every ``sync_interval_s`` while there were commits. Power loss loses
  at most about the last interval of commits; the database stays consistent.
- ``"none"``: never synced except on :meth:`Storage.close`. Power loss may lose everything
  since the last close (still consistent; LMDB keeps its last good meta page).

The environment must be opened in the process that uses it (py-lmdb's fork rule): open it
after spawning, never before a fork.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, Iterator, TypeVar

import lmdb

from voltdb_py.errors import StorageError

__all__ = ["Storage", "SYNC_MODES", "DEFAULT_MAP_SIZE_BYTES"]

SYNC_MODES = ("periodic", "commit", "none")
# A sparse map: on Linux without writemap the file only grows as pages are written.
DEFAULT_MAP_SIZE_BYTES = 64 << 30
DEFAULT_MAX_DBS = 1024

T = TypeVar("T")

_open_paths: set[str] = set()
_open_paths_lock = threading.Lock()


def _is_map_full(exc: BaseException) -> bool:
    """True if exc (or what it was raised from) is LMDB's MDB_MAP_FULL."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, lmdb.MapFullError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return False


class Storage:
    """One LMDB environment (``<path>/data.mdb``) holding the named DBs of a database."""

    def __init__(self, env: lmdb.Environment, path: str, map_size_bytes: int, sync: str,
                 sync_interval_s: float, max_dbs: int) -> None:
        """Use Storage.open(); this wraps an already opened environment."""
        self._env: lmdb.Environment | None = env
        self._path = path
        self._map_size_bytes = map_size_bytes
        self._sync = sync
        self._sync_interval_s = sync_interval_s
        self._max_dbs = max_dbs
        self._dbs: dict[str, Any] = {}
        self._lock = threading.RLock()        # guards open/close/db-handle/grow
        self._local = threading.local()       # per-thread active write txn
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if sync == "periodic":
            self._thread = threading.Thread(target=self._sync_loop,
                                            name=f"voltdb_py-sync:{path}", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, map_size_bytes: int = DEFAULT_MAP_SIZE_BYTES,
             sync: str = "periodic", sync_interval_s: float = 0.2,
             max_dbs: int = DEFAULT_MAX_DBS, writemap: bool = False,
             max_readers: int = 126) -> Storage:
        """Open (creating directories as needed) the LMDB environment in directory ``path``.

        :param map_size_bytes: initial map size; grown (doubled) when a write finds it full.
        :param sync: ``"periodic"``, ``"commit"`` or ``"none"`` (see the module docstring).
        :param sync_interval_s: period of the background sync in ``"periodic"`` mode.
        :param writemap: write through a writable mmap (much faster small commits; the data
            file is then extended to the map size, sparse on Linux).
        :raises StorageError: bad arguments, path already open in this process, LMDB failure.
        """
        if sync not in SYNC_MODES:
            raise StorageError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        if sync_interval_s <= 0:
            raise StorageError("sync_interval_s must be > 0")
        if map_size_bytes <= 0:
            raise StorageError("map_size_bytes must be > 0")
        real = os.path.realpath(os.fspath(path))
        with _open_paths_lock:
            if real in _open_paths:
                raise StorageError(f"LMDB environment {real} is already open in this process")
            try:
                os.makedirs(real, exist_ok=True)
                env = lmdb.open(real, map_size=map_size_bytes, subdir=True, max_dbs=max_dbs,
                                sync=(sync == "commit"), metasync=True, writemap=writemap,
                                readahead=False, max_readers=max_readers, lock=True)
            except (lmdb.Error, OSError) as exc:
                raise StorageError(f"cannot open LMDB environment {real}: {exc}") from exc
            _open_paths.add(real)
        # The file may already be larger than asked for (reopen after growth).
        size = max(map_size_bytes, env.info()["map_size"])
        st = cls(env, real, size, sync, sync_interval_s, max_dbs)
        # Open the handles of the existing named DBs now: LMDB makes a handle opened
        # later invisible to transactions that had already begun.
        try:
            for name in st.db_names():
                st.db(name)
        except BaseException:
            st.close()
            raise
        return st

    def close(self) -> None:
        """Sync and close the environment; idempotent. Later use raises StorageError."""
        with self._lock:
            env = self._env
            if env is None:
                return
            self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._env = None
            self._dbs.clear()
            try:
                env.sync(True)
            except lmdb.Error:
                pass
            finally:
                env.close()
                with _open_paths_lock:
                    _open_paths.discard(self._path)

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._env is not None:
                self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # ------------------------------------------------------------------ properties
    @property
    def path(self) -> str:
        """The environment's directory."""
        return self._path

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._env is None

    @property
    def sync_mode(self) -> str:
        """``"periodic"``, ``"commit"`` or ``"none"``."""
        return self._sync

    @property
    def map_size_bytes(self) -> int:
        """The current map size."""
        return self._map_size_bytes

    @property
    def env(self) -> lmdb.Environment:
        """The py-lmdb Environment (for the engine and tools)."""
        return self._require()

    def _require(self) -> lmdb.Environment:
        env = self._env
        if env is None:
            raise StorageError(f"storage {self._path} is closed")
        return env

    # ------------------------------------------------------------------ named DBs
    def db(self, name: str) -> Any:
        """The handle of named DB ``name`` (created if missing), cached.

        Handles of the DBs that exist at open() are opened then. A handle first opened
        later is unknown to transactions that began before it (LMDB's rule): get the
        handles of new DBs before beginning the transactions that use them.
        """
        handle = self._dbs.get(name)
        if handle is not None and self._env is not None:
            return handle
        with self._lock:
            env = self._require()
            handle = self._dbs.get(name)
            if handle is not None:
                return handle
            wtxn = getattr(self._local, "txn", None)
            try:
                # Inside a write txn of this thread, a second write txn would deadlock:
                # open the handle in that txn (and forget it if the txn aborts).
                handle = env.open_db(name.encode("utf-8"), txn=wtxn, create=True)
            except lmdb.Error as exc:
                raise StorageError(f"cannot open named DB {name!r}: {exc}") from exc
            self._dbs[name] = handle
            if wtxn is not None:
                self._local.opened.append(name)
            return handle

    def db_names(self) -> list[str]:
        """Names of the named DBs present in the environment."""
        with self.read() as txn:
            cur = txn.cursor()
            return [bytes(k).decode("utf-8") for k in cur.iternext(keys=True, values=False)]

    def drop_db(self, name: str, txn: lmdb.Transaction | None = None) -> None:
        """Delete named DB ``name`` and all its keys (no-op if it does not exist)."""
        env = self._require()
        if name not in self._dbs and name not in self.db_names():
            return
        handle = self.db(name)
        try:
            if txn is not None:
                txn.drop(handle, delete=True)
            else:
                with self.write() as wtxn:
                    wtxn.drop(handle, delete=True)
        except lmdb.Error as exc:
            raise StorageError(f"cannot drop named DB {name!r}: {exc}") from exc
        finally:
            del env
        with self._lock:
            self._dbs.pop(name, None)

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        """A read-only transaction: one consistent snapshot; aborted on exit."""
        env = self._require()
        try:
            txn = env.begin(write=False)
        except lmdb.Error as exc:
            raise StorageError(f"cannot begin read transaction: {exc}") from exc
        try:
            yield txn
        finally:
            try:
                txn.abort()
            except lmdb.Error:
                pass

    @contextlib.contextmanager
    def write(self) -> Iterator[lmdb.Transaction]:
        """A write transaction: committed if the block succeeds, aborted if it raises.

        If the map is full, the transaction is aborted, the map size doubled, and
        StorageError raised (retry, or use :meth:`transact`, which retries itself).
        """
        env = self._require()
        if getattr(self._local, "txn", None) is not None:
            raise StorageError("a write transaction is already active in this thread")
        try:
            txn = env.begin(write=True)
        except lmdb.Error as exc:
            raise StorageError(f"cannot begin write transaction: {exc}") from exc
        self._local.txn = txn
        self._local.opened = []
        try:
            try:
                yield txn
            except BaseException as exc:
                txn.abort()
                self._forget_opened()
                if _is_map_full(exc):
                    self._grow()
                    raise StorageError(
                        f"LMDB map full; grown to {self._map_size_bytes} bytes, retry") from exc
                raise
            try:
                txn.commit()
            except lmdb.Error as exc:
                self._forget_opened()
                if isinstance(exc, lmdb.MapFullError):
                    self._grow()
                raise StorageError(f"commit failed: {exc}") from exc
            self._dirty = True
        finally:
            self._local.txn = None
            self._local.opened = []

    def begin(self, write: bool = False) -> lmdb.Transaction:
        """Begin a transaction for the caller to end with commit() or abort() (the hot path).

        Cheaper than the read()/write() context managers; the caller must end it.
        """
        env = self._require()
        try:
            return env.begin(write=write)
        except lmdb.Error as exc:
            raise StorageError(f"cannot begin transaction: {exc}") from exc

    def commit(self, txn: lmdb.Transaction) -> None:
        """Commit a write transaction from begin(write=True); it is then safe from kill -9."""
        try:
            txn.commit()
        except lmdb.Error as exc:
            if isinstance(exc, lmdb.MapFullError):
                self._grow()
            raise StorageError(f"commit failed: {exc}") from exc
        self._dirty = True

    @contextlib.contextmanager
    def nested(self, parent: lmdb.Transaction) -> Iterator[lmdb.Transaction]:
        """A child of write transaction ``parent``: its writes vanish if the block raises."""
        env = self._require()
        try:
            child = env.begin(write=True, parent=parent)
        except lmdb.Error as exc:
            raise StorageError(f"cannot begin nested transaction: {exc}") from exc
        try:
            yield child
        except BaseException:
            child.abort()
            raise
        else:
            try:
                child.commit()
            except lmdb.Error as exc:
                raise StorageError(f"nested commit failed: {exc}") from exc

    def transact(self, fn: Callable[[lmdb.Transaction], T], *, retries: int = 4) -> T:
        """Run fn(txn) in a write transaction and commit; grow the map and retry when full."""
        for attempt in range(retries + 1):
            try:
                with self.write() as txn:
                    return fn(txn)
            except StorageError as exc:
                if attempt < retries and _is_map_full(exc):
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _forget_opened(self) -> None:
        for name in getattr(self._local, "opened", ()):
            self._dbs.pop(name, None)

    def _grow(self) -> None:
        """Double the map size (no transaction of this process may be active)."""
        with self._lock:
            env = self._require()
            new_size = self._map_size_bytes * 2
            try:
                env.set_mapsize(new_size)
            except lmdb.Error as exc:
                raise StorageError(f"cannot grow LMDB map to {new_size} bytes: {exc}") from exc
            self._map_size_bytes = env.info()["map_size"]

    # ------------------------------------------------------------------ durability
    def sync(self) -> None:
        """Flush committed transactions to disk now (fdatasync)."""
        with self._lock:
            env = self._require()
            self._dirty = False
            try:
                env.sync(True)
            except lmdb.Error as exc:
                raise StorageError(f"sync failed: {exc}") from exc

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._sync_interval_s):
            if not self._dirty:
                continue
            with self._lock:
                if self._env is None:
                    return
                self._dirty = False
                try:
                    self._env.sync(True)
                except lmdb.Error:  # pragma: no cover - disk failure; next close reports
                    self._dirty = True

    # ------------------------------------------------------------------ tools
    def stat(self) -> dict[str, Any]:
        """LMDB's environment info and stat merged (map size, pages, entries...)."""
        env = self._require()
        out = dict(env.info())
        out.update(env.stat())
        return out

    def copy_to(self, path: str | os.PathLike[str], *, compact: bool = False) -> None:
        """Write a consistent copy of the environment into directory ``path``."""
        env = self._require()
        os.makedirs(os.fspath(path), exist_ok=True)
        try:
            env.copy(os.fspath(path), compact=compact)
        except lmdb.Error as exc:
            raise StorageError(f"copy failed: {exc}") from exc

    def __repr__(self) -> str:
        state = "closed" if self._env is None else f"sync={self._sync}"
        return f"<Storage {self._path} {state}>"

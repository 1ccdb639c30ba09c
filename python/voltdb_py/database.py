# SPDX-License-Identifier: AGPL-3.0-or-later
"""The embedded database: a durable, partitioned VoltDB-style database in one process.

Example::

    from voltdb_py import Database

    with Database.open("/tmp/mydb", sites_per_host=4) as db:
        db.execute_ddl('''
            CREATE TABLE kv (k VARCHAR(64) NOT NULL PRIMARY KEY, v VARBINARY(1024));
            PARTITION TABLE kv ON COLUMN k;
            CREATE PROCEDURE Put PARTITION ON TABLE kv COLUMN k AS UPSERT INTO kv VALUES (?, ?);
            CREATE PROCEDURE Get PARTITION ON TABLE kv COLUMN k AS SELECT v FROM kv WHERE k = ?;
        ''')
        db.call("Put", "alice", b"1")
        print(db.call("Get", "alice").tables[0].rows)   # [(b'1',)]
"""

from __future__ import annotations

import importlib
import re
import os
import shutil
import sys
import threading
import time
import types as _pytypes
from collections import OrderedDict
from pathlib import Path
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack

from voltdb_py import hashinator as _hashinator
from voltdb_py.catalog.ddl import compile_ddl
from voltdb_py.catalog.model import Catalog, Procedure, Table
from voltdb_py.catalog.runtime import build_table_schema
from voltdb_py.catalog.serialize import catalog_from_bytes, catalog_to_bytes
from voltdb_py.engine import _engine
from voltdb_py.fastpath import compile_point_procedure
from voltdb_py.errors import (
    CatalogError,
    ConstraintError,
    DatabaseClosedError,
    ExpectationError,
    MispartitionedError,
    SQLError,
    StorageError,
    TypeMismatchError,
    ValueOutOfRangeError,
    VoltAbortException,
    VoltError,
)
from voltdb_py.procedures import (
    SQLStmt,
    VoltProcedure,
    check_expectation,
    declared_param_types,
    statements_of,
)
from voltdb_py.sql import plan_statement
from voltdb_py.sql.context import ExecutionContext
from voltdb_py.sql.views import maintain_views_on_delete, maintain_views_on_insert, view_insert
from voltdb_py.storage import Storage, _is_map_full
from voltdb_py.types import (
    APP_STATUS_UNSET,
    ClientResponse,
    Column,
    Status,
    VoltTable,
    VoltType,
    coerce,
    to_client_value,
)

_META = "meta"
_REP = "rep"
_MP_PID = _engine.MP_INIT_PID
_run_point_calls = _engine.run_point_calls
_ADHOC_CACHE_SIZE = 512


def _pdb(pid: int) -> str:
    return f"p{pid}"


#: Times one run_many call may grow a full LMDB map and run its group again.
_MAX_GROWS = 8

_INT_VTYPES = {VoltType.TINYINT: 8, VoltType.SMALLINT: 16, VoltType.INTEGER: 32,
               VoltType.BIGINT: 64}


class _ProcRuntime:
    """A procedure ready to run: its class or SQL statement, planned for one catalog."""

    __slots__ = ("proc", "cls", "plans", "param_types", "read_only", "part_index",
                 "part_type", "part_table", "sql_stmt", "name", "fast", "result_columns",
                 "stats", "part_int", "part_lo", "part_hi")

    def __init__(self, name: str, proc: Procedure | None, cls: type | None,
                 plans: dict[int, Any], param_types: list | None, read_only: bool,
                 part_index: int, part_type: VoltType | None, part_table: str | None,
                 sql_stmt: SQLStmt | None) -> None:
        self.name = name
        self.proc = proc
        self.cls = cls
        self.plans = plans
        self.param_types = param_types
        self.read_only = read_only
        self.part_index = part_index
        self.part_type = part_type
        # the type code and range (NULL sentinel included) when the partitioning column is
        # an integer: route()'s short way
        self.part_int = int(part_type) if part_type in _INT_VTYPES else -1
        bits = _INT_VTYPES.get(part_type, 64)
        self.part_lo, self.part_hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        self.part_table = part_table
        self.sql_stmt = sql_stmt
        self.fast: Any = None  # compiled PointProcedure, when the procedure qualifies
        self.stats: list = [0, 0, 0.0, 0]  # calls, failures, timed seconds, timed calls
        self.result_columns: list[Column] = []


class _Txn:
    """One call's transaction: its LMDB transaction, deterministic context and SQL queue."""

    __slots__ = ("db", "lmdb_txn", "partition_id", "txn_id", "timestamp_us", "rng",
                 "app_status", "app_status_string", "queued", "contexts", "runtime",
                 "runner")

    def __init__(self, db: Database, lmdb_txn: Any, runtime: _ProcRuntime | None,
                 partition_id: int | None, txn_id: int, timestamp_us: int) -> None:
        self.db = db
        self.lmdb_txn = lmdb_txn
        self.runtime = runtime
        self.partition_id = partition_id
        self.txn_id = txn_id
        self.timestamp_us = timestamp_us
        self.rng = None
        self.app_status = APP_STATUS_UNSET
        self.app_status_string: str | None = None
        self.queued: list[tuple] = []
        self.contexts: dict[int, ExecutionContext] = {}
        # Runs a statement's fragments elsewhere (a cluster's multi-partition coordinator):
        # runner(plan, params, kind, pids) -> partial results; None runs them here.
        self.runner: Any = None

    def context(self, pid: int) -> ExecutionContext:
        ctx = self.contexts.get(pid)
        if ctx is None:
            ctx = self.contexts[pid] = self.db._make_context(self, pid)
        return ctx

    def queue(self, stmt: SQLStmt, params: tuple, expect: Any, expect_value: Any) -> None:
        plan = self.runtime.plans.get(id(stmt)) if self.runtime is not None else None
        if plan is None:
            plan = self.db._plan(stmt.sql)
        read_only_call = self.runtime is None or self.runtime.read_only
        if read_only_call and not plan.read_only:
            raise SQLError(f"read-only procedure cannot run the write statement {stmt.sql!r}")
        self.queued.append((stmt, plan, params, expect, expect_value))

    def execute(self, final: bool) -> list[VoltTable]:
        queued, self.queued = self.queued, []
        out = []
        for stmt, plan, params, expect, expect_value in queued:
            table = self.db._run_statement(self, plan, params)
            check_expectation(stmt, table, expect, expect_value)
            out.append(table)
        return out


class Database:
    """An embedded voltdb_py database: partitions over LMDB, DDL, SQL and procedures.

    Open with :meth:`Database.open`; use as a context manager or call :meth:`close`.
    Not shared between processes; calls from several threads are serialized.
    """

    def __init__(self, path: Path, storage: Storage, partition_count: int) -> None:
        self._path = path
        self._storage = storage
        self._lock = threading.RLock()
        self._closed = False
        self._partition_count = partition_count
        self._hashinator = _hashinator.make_hashinator(partition_count)
        self._catalog = Catalog()
        self._schemas: dict[str, Any] = {}
        self._schemas_by_id: dict[int, Any] = {}
        self._stores = [_engine.PartitionStore(p, storage.db(_pdb(p)))
                        for p in range(partition_count)]
        self._rep_store = _engine.PartitionStore(-1, storage.db(_REP))
        self._procs: dict[str, _ProcRuntime] = {}
        self._procs_ci: dict[str, str] = {}
        self._adhoc: OrderedDict[str, Any] = OrderedDict()
        self._seq = 0
        self._stats: dict[str, list[float]] = {}
        self._classes_dir = path / "classes"
        # A read snapshot stays valid until the next commit: every writer is this object.
        self._read_txn: Any = None
        # One ExecutionContext per partition (and catalog); each call resets its txn fields.
        self._contexts: dict[int, ExecutionContext] = {}
        self._fast_path_enabled = True
        # Deterministic replay for replicas: (txn id, timestamp) pairs to hand out instead
        # of the clock's, and the list the leader records the ones it handed out into.
        self._replay_ids: list[tuple[int, int]] | None = None
        self._record_ids: list[tuple[int, int]] | None = None
        # The open write transaction of a multi-partition transaction run from elsewhere.
        self._mp_session: _Txn | None = None

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, path: str | os.PathLike[str], sites_per_host: int | None = None, *,
             sync: str = "periodic", sync_interval_s: float = 0.2,
             map_size_bytes: int | None = None, writemap: bool = True) -> Database:
        """Open (creating if missing) the database in directory path.

        :param sites_per_host: number of partitions; default 8 for a new database. A
            reopened database keeps the count it was created with.
        :param sync: "periodic" (default: every commit is safe against a process crash, and
            flushed to disk every sync_interval_s), "commit" (fsync before each call
            returns) or "none" (the OS decides when to flush).
        :param writemap: write through LMDB's writable memory map (default): commits cost
            about a fifth; a committed call is as safe from a process crash either way.
        :raises ValueError: bad arguments.
        :raises StorageError: the directory cannot be used.
        """
        if sites_per_host is not None and (
                isinstance(sites_per_host, bool) or not isinstance(sites_per_host, int)
                or not 1 <= sites_per_host <= 16382):
            raise ValueError(f"sites_per_host must be an int in 1..16382, not {sites_per_host!r}")
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise StorageError(f"{root} exists and is not a directory")
        root.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"sync": sync, "sync_interval_s": sync_interval_s,
                                  "writemap": bool(writemap)}
        if map_size_bytes is not None:
            kwargs["map_size_bytes"] = map_size_bytes
        storage = Storage.open(root / "data", **kwargs)
        try:
            meta = storage.db(_META)  # LMDB: open handles before beginning transactions
            with storage.read() as txn:
                raw_count = txn.get(b"partition_count", db=meta)
                raw_catalog = txn.get(b"catalog", db=meta)
                raw_classes = txn.get(b"classes", db=meta)
            if raw_count is None:
                count = 8 if sites_per_host is None else sites_per_host
                with storage.write() as txn:
                    txn.put(b"partition_count", str(count).encode(), db=storage.db(_META))
            else:
                count = int(bytes(raw_count))
                if sites_per_host is not None and sites_per_host != count:
                    raise ValueError(
                        f"{root} was created with {count} partitions; it cannot be reopened "
                        f"with sites_per_host={sites_per_host}")
            db = cls(root, storage, count)
            if raw_classes is not None:
                for module in msgpack.unpackb(bytes(raw_classes)):
                    db._import_module(module)
            if raw_catalog is not None:
                db._install(catalog_from_bytes(bytes(raw_catalog)))
            return db
        except BaseException:
            storage.close()
            raise

    def close(self) -> None:
        """Flush and close; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._drop_read_txn()
                self._storage.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError("the database is closed")

    @property
    def path(self) -> Path:
        return self._path

    @property
    def catalog(self) -> Catalog:
        """The current catalog (do not modify it)."""
        return self._catalog

    @property
    def partition_count(self) -> int:
        return self._partition_count

    @property
    def hashinator(self) -> Any:
        """The compiled hashinator mapping partitioning values to partitions."""
        return self._hashinator

    # ----------------------------------------------------------------- classes

    def load_classes(self, path: str | os.PathLike[str]) -> list[str]:
        """Load procedure classes from a Python module file or package directory.

        The code is copied into the database directory so that reopening restores it.
        Returns the names of the modules loaded (VoltDB's LOAD CLASSES).

        :raises FileNotFoundError: path does not exist.
        :raises CatalogError: path is not a .py file or a package directory, or fails to import.
        """
        self._check_open()
        src = Path(path)
        if not src.exists():
            raise FileNotFoundError(f"no such module or package: {src}")
        if src.is_file():
            if src.suffix != ".py":
                raise CatalogError(f"{src} is not a Python module (.py)")
            module = src.stem
        elif (src / "__init__.py").is_file():
            module = src.name
        else:
            raise CatalogError(f"{src} is neither a .py module nor a package directory")
        if not module.isidentifier():
            raise CatalogError(f"{module!r} is not a valid module name")
        with self._lock:
            self._classes_dir.mkdir(parents=True, exist_ok=True)
            dest = self._classes_dir / (module + ".py" if src.is_file() else module)
            tmp = self._classes_dir / (".tmp-" + dest.name)
            if tmp.exists():
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
            if src.is_file():
                shutil.copyfile(src, tmp)
            else:
                shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("__pycache__"))
            old = None
            if dest.exists():
                old = self._classes_dir / (".old-" + dest.name)
                os.replace(dest, old)
            os.replace(tmp, dest)
            try:
                self._import_module(module, reload=True)
            except BaseException:
                if dest.is_dir():
                    shutil.rmtree(dest)
                else:
                    dest.unlink()
                if old is not None:
                    os.replace(old, dest)
                raise
            if old is not None:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            with self._storage.read() as txn:
                raw = txn.get(b"classes", db=self._storage.db(_META))
            modules = msgpack.unpackb(bytes(raw)) if raw is not None else []
            if module not in modules:
                modules.append(module)
                self._drop_read_txn()
                with self._storage.write() as txn:
                    txn.put(b"classes", msgpack.packb(modules), db=self._storage.db(_META))
            if self._catalog.procedures:
                self._install(self._catalog)  # procedures pick up reloaded classes
            return [module]

    def _import_module(self, module: str, reload: bool = False) -> _pytypes.ModuleType:
        cdir = str(self._classes_dir)
        if cdir not in sys.path:
            sys.path.insert(0, cdir)
        importlib.invalidate_caches()
        try:
            if reload and module in sys.modules:
                for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
                    del sys.modules[name]
            return importlib.import_module(module)
        except Exception as exc:
            raise CatalogError(f"loading classes from module {module!r} failed: {exc!r}") from exc

    def _load_class(self, class_path: str) -> type:
        module, _, name = class_path.rpartition(".")
        if not module:
            raise CatalogError(f"class name {class_path!r} needs a module: module.Class")
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise CatalogError(
                f"cannot find class {class_path!r}: load its module with load_classes() "
                f"first ({exc})") from exc
        cls = getattr(mod, name, None)
        if cls is None:
            raise CatalogError(f"module {module!r} has no class {name!r}")
        if not (isinstance(cls, type) and issubclass(cls, VoltProcedure)):
            raise CatalogError(f"{class_path} is not a VoltProcedure subclass")
        return cls

    # ----------------------------------------------------------------- DDL

    def execute_ddl(self, text: str) -> None:
        """Apply one or more DDL statements (separated by ';') atomically.

        :raises DDLError: malformed DDL or a broken VoltDB rule; nothing is changed.
        :raises CatalogError: unknown or duplicate names; nothing is changed.
        :raises ConstraintError: a new unique index conflicts with existing rows.
        """
        self._check_open()
        if not isinstance(text, str):
            raise TypeError("execute_ddl takes a str")
        with self._lock:
            new = compile_ddl(self._catalog, text, class_loader=self._load_class)
            self._apply_catalog(new)

    def _apply_catalog(self, new: Catalog) -> None:
        old = self._catalog
        old_by_id = {t.table_id: t for t in old.tables.values()}
        new_by_id = {t.table_id: t for t in new.tables.values()}
        new_schemas = {t.name: build_table_schema(t) for t in new.tables.values()}
        old_schemas_by_id = self._schemas_by_id
        self._drop_read_txn()
        with self._storage.write() as txn:
            # Tables that are gone (dropped, or replaced by an ALTER): migrate, then delete.
            for tid, table in old_by_id.items():
                if tid in new_by_id:
                    continue
                successor = next((t for t in new.tables.values()
                                  if getattr(t, "altered_from", None) == tid), None)
                schema = old_schemas_by_id[tid]
                for store in self._stores_for(table):
                    rows = [(k, r) for k, r in store.scan(txn, schema)]
                    for key, _row in rows:
                        store.delete(txn, schema, key)
                    if successor is not None and not successor.is_view:
                        mapper = self._column_mapper(table, successor)
                        sschema = new_schemas[successor.name]
                        for _key, row in rows:
                            store.insert(txn, sschema, mapper(row))
            # Tables whose indexes changed: re-insert rows so indexes are rebuilt and checked.
            for tid, table in new_by_id.items():
                before = old_by_id.get(tid)
                if before is None or table.is_view:
                    continue
                if [(i.index_id, i.unique or i.assume_unique or i.primary_key)
                        for i in before.indexes] == \
                        [(i.index_id, i.unique or i.assume_unique or i.primary_key)
                         for i in table.indexes]:
                    continue
                oschema = old_schemas_by_id[tid]
                nschema = new_schemas[table.name]
                for store in self._stores_for(table):
                    rows = list(store.scan(txn, oschema))
                    for key, _row in rows:
                        store.delete(txn, oschema, key)
                    for _key, row in rows:
                        store.insert(txn, nschema, row)
            # New views over tables that have rows: populate from the source rows.
            for tid, table in new_by_id.items():
                if tid in old_by_id or not table.is_view:
                    continue
                src = new.tables[table.view.source]
                for pid, store in self._store_items(src):
                    ctx = self._bare_context(txn, pid, new, new_schemas)
                    for _key, row in store.scan(txn, new_schemas[src.name]):
                        view_insert(ctx, table, row)
            txn.put(b"catalog", catalog_to_bytes(new), db=self._storage.db(_META))
        self._install(new)

    @staticmethod
    def _column_mapper(old: Table, new: Table):
        positions = []
        for col in new.columns:
            try:
                positions.append((old.column_index(col.name), None))
            except KeyError:
                positions.append((-1, col))

        def mapper(row: tuple) -> tuple:
            out = []
            for pos, col in positions:
                if pos >= 0:
                    out.append(row[pos])
                elif col.has_default:
                    out.append(col.default)
                elif col.nullable:
                    out.append(None)
                else:
                    raise ConstraintError(
                        f"column {new.name}.{col.name} is NOT NULL without a DEFAULT and the "
                        f"table has rows")
            return tuple(out)

        return mapper

    def _stores_for(self, table: Table) -> list[Any]:
        return self._stores if table.partitioned else [self._rep_store]

    def _store_items(self, table: Table) -> list[tuple[int, Any]]:
        if table.partitioned:
            return list(enumerate(self._stores))
        return [(0, self._rep_store)]

    def _install(self, catalog: Catalog) -> None:
        """Make catalog current: schemas, planned procedures."""
        schemas = {t.name: build_table_schema(t) for t in catalog.tables.values()}
        by_id = {catalog.tables[name].table_id: s for name, s in schemas.items()}
        old = (self._catalog, self._schemas, self._schemas_by_id, self._procs, self._procs_ci)
        self._catalog, self._schemas, self._schemas_by_id = catalog, schemas, by_id
        try:
            procs: dict[str, _ProcRuntime] = {}
            for proc in catalog.procedures.values():
                rt = procs[proc.name] = self._prepare_procedure(proc)
                rt.stats = self._stats.setdefault(proc.name, rt.stats)
            self._procs = procs
            self._procs_ci = {name.upper(): name for name in procs}
        except BaseException:
            self._catalog, self._schemas, self._schemas_by_id, self._procs, self._procs_ci = old
            raise
        self._adhoc.clear()
        self._contexts = {}

    def _prepare_procedure(self, proc: Procedure) -> _ProcRuntime:
        part_type = None
        part_index = -1
        if proc.single_partition:
            table = self._catalog.tables[proc.partition_table]
            part_type = table.column(proc.partition_column).vtype
            part_index = proc.partition_parameter
        if proc.sql is not None:
            stmt = SQLStmt(proc.sql)
            stmt.name = proc.name
            plan = plan_statement(self._catalog, proc.sql)
            ptypes = list(getattr(plan, "param_types", None) or [None] * plan.param_count)
            if len(ptypes) != plan.param_count:
                ptypes = [None] * plan.param_count
            rt = _ProcRuntime(proc.name, proc, None, {id(stmt): plan}, ptypes,
                              plan.read_only, part_index, part_type, proc.partition_table,
                              stmt)
            if self._fast_path_enabled and proc.single_partition:
                table = self._catalog.tables.get(proc.partition_table)
                rt.fast = compile_point_procedure(
                    self._catalog, proc, plan, self._schemas.get(proc.partition_table),
                    self._stores, self._hashinator, _ParamError) if table else None
                if rt.fast is not None:
                    rt.result_columns = (list(plan.result_columns) if rt.fast.read_only
                                         else [Column("modified_tuples", VoltType.BIGINT)])
            return rt
        cls = self._load_class(proc.class_path)
        plans = {}
        read_only = True
        for name, stmt in statements_of(cls).items():
            if stmt.name is None:
                stmt.name = name
            try:
                plan = plan_statement(self._catalog, stmt.sql)
            except VoltError as exc:
                raise type(exc)(f"procedure {proc.name}, statement {name}: {exc}") from exc
            plans[id(stmt)] = plan
            read_only = read_only and plan.read_only
        if not plans:
            read_only = False  # no SQL to judge by: run it as a writer, like VoltDB
        return _ProcRuntime(proc.name, proc, cls, plans, declared_param_types(cls), read_only,
                            part_index, part_type, proc.partition_table, None)

    # ----------------------------------------------------------------- SQL plumbing

    def _plan(self, sql: str) -> Any:
        plan = self._adhoc.get(sql)
        if plan is None:
            plan = plan_statement(self._catalog, sql)
            self._adhoc[sql] = plan
            if len(self._adhoc) > _ADHOC_CACHE_SIZE:
                self._adhoc.popitem(last=False)
        else:
            self._adhoc.move_to_end(sql)
        return plan

    def partition_for(self, table: str | Table, value: Any) -> int:
        """Return the partition that owns value of table's partition column."""
        t = table if isinstance(table, Table) else self._catalog.tables[table.upper()]
        if not t.partitioned or t.partition_column is None:
            return 0
        vtype = t.column(t.partition_column).vtype
        return self._hashinator.partition_for_value(int(vtype), value)

    def _bare_context(self, txn: Any, pid: int, catalog: Catalog | None = None,
                      schemas: dict | None = None) -> ExecutionContext:
        cat = catalog or self._catalog
        sch = schemas or self._schemas
        store = self._stores[pid] if 0 <= pid < len(self._stores) else self._rep_store
        return ExecutionContext(
            txn=txn, store=store, rep_store=self._rep_store, catalog=cat,
            schema_for=lambda t: sch[t.name], partition_id=pid,
            partition_for=self.partition_for, txn_id=0,
            txn_timestamp_us=int(time.time() * 1_000_000))

    def _schema_of(self, table: Table) -> Any:
        return self._schemas[table.name]

    def _make_context(self, t: _Txn, pid: int) -> ExecutionContext:
        ctx = self._contexts.get(pid)
        if ctx is None:
            ctx = self._contexts[pid] = ExecutionContext(
                txn=None, store=self._stores[pid], rep_store=self._rep_store,
                catalog=self._catalog, schema_for=self._schema_of, partition_id=pid,
                partition_for=self.partition_for)
        ctx.txn = t.lmdb_txn
        ctx.txn_id = t.txn_id
        ctx.txn_timestamp_us = t.timestamp_us
        return ctx

    def _drop_read_txn(self) -> None:
        txn, self._read_txn = self._read_txn, None
        if txn is not None:
            txn.abort()

    def _run_statement(self, t: _Txn, plan: Any, params: tuple) -> VoltTable:
        if len(params) != plan.param_count:
            raise SQLError(f"statement expects {plan.param_count} parameters but got "
                           f"{len(params)}: {plan.sql!r}")
        part = plan.partitioning
        if t.partition_id is not None:
            pids = [t.partition_id]
        elif part[0] == "single":
            _, table, _column, source = part
            value = params[source[1]] if source[0] == "param" else source[1]
            tbl = self._catalog.tables[table.upper()] if isinstance(table, str) else table
            value = coerce(tbl.column(tbl.partition_column).vtype, value, what="partitioning value")
            pids = [self.partition_for(tbl, value)]
        elif part[0] == "replicated":
            pids = [0]
        else:
            pids = range(self._partition_count)
        if t.runner is not None:
            results = t.runner(plan, params, part[0], list(pids))
            return self._client_table(plan.merge(results))
        results = [plan.run_fragment(t.context(pid), params) for pid in pids]
        return self._client_table(plan.merge(results))

    @staticmethod
    def _client_table(table: VoltTable) -> VoltTable:
        cols = table.columns
        ts = [i for i, c in enumerate(cols) if c.type is VoltType.TIMESTAMP]
        if ts:
            rows = []
            for row in table.rows:
                row = list(row)
                for i in ts:
                    row[i] = to_client_value(VoltType.TIMESTAMP, row[i])
                rows.append(tuple(row))
            table.rows = rows
        return table

    def _next_txn_id(self, pid: int | None) -> tuple[int, int]:
        replay = self._replay_ids
        if replay:
            pair = replay.pop(0)
            self._seq = max(self._seq, pair[0] >> 14)
            return pair
        now_us = int(time.time() * 1_000_000)
        seq = max(self._seq + 1, (now_us // 1000) << 8)
        self._seq = seq
        pair = (seq << 14) | (_MP_PID if pid is None else pid), now_us
        if self._record_ids is not None:
            self._record_ids.append(pair)
        return pair

    # ----------------------------------------------------------------- range streaming

    def _streamed_schemas(self) -> list[Any]:
        """Schemas of the tables whose rows move with their tokens (not views)."""
        return [self._schemas[t.name] for t in sorted(self._catalog.tables.values(),
                                                       key=lambda t: t.table_id)
                if t.partitioned and t.partition_column is not None and not t.is_view]

    def _check_partition(self, partition_id: int) -> None:
        if isinstance(partition_id, bool) or not isinstance(partition_id, int) or \
                not 0 <= partition_id < self._partition_count:
            raise ValueError(f"partition {partition_id!r} does not exist "
                             f"(0..{self._partition_count - 1})")

    def export_range(self, partition_id: int, token_lo: int, token_hi: int, *,
                     chunk_bytes: int = 1 << 20, resume: bytes | None = None
                     ) -> tuple[bytes, bytes | None]:
        """Export one chunk of partition's rows with tokens in [token_lo, token_hi].

        Returns (chunk, resume): pass resume back to get the next chunk; None when done.
        Chunks are engine-encoded and opaque; import them with :meth:`import_chunk`.
        """
        self._check_open()
        self._check_partition(partition_id)
        with self._lock, self._storage.read() as txn:
            return _engine.export_range(txn, self._stores[partition_id],
                                        self._streamed_schemas(), token_lo, token_hi,
                                        chunk_bytes, resume)

    def snapshot_partition(self, partition_id: int, *, chunk_bytes: int = 1 << 20) -> list[bytes]:
        """All rows of a partition as chunks, read from one consistent snapshot."""
        self._check_open()
        self._check_partition(partition_id)
        with self._lock, self._storage.read() as txn:
            return list(_engine.snapshot_stream(txn, self._stores[partition_id],
                                                self._streamed_schemas(), chunk_bytes))

    def import_chunk(self, partition_id: int, chunk: bytes) -> int:
        """Write a chunk's rows into partition (indexes and views maintained); atomic.

        :raises CodecError: malformed chunk (nothing written).
        :raises ConstraintError: a row is already there (nothing written).
        """
        self._check_open()
        self._check_partition(partition_id)
        by_id = {s.table_id: s for s in self._streamed_schemas()}
        with self._lock:
            self._drop_read_txn()
            with self._storage.write() as txn:
                ctx = self._bare_context(txn, partition_id)
                return _engine.import_chunk(
                    txn, self._stores[partition_id], by_id, chunk,
                    lambda tid, row: maintain_views_on_insert(ctx, tid, row))

    def delete_range(self, partition_id: int, token_lo: int, token_hi: int) -> int:
        """Delete partition's rows with tokens in [token_lo, token_hi] (views maintained)."""
        self._check_open()
        self._check_partition(partition_id)
        with self._lock:
            self._drop_read_txn()
            with self._storage.write() as txn:
                ctx = self._bare_context(txn, partition_id)
                return _engine.delete_range(
                    txn, self._stores[partition_id], self._streamed_schemas(), token_lo,
                    token_hi, lambda tid, row: maintain_views_on_delete(ctx, tid, row))

    # ----------------------------------------------------------------- calls

    def call(self, procedure: str, *params: Any) -> ClientResponse:
        """Call a stored or system procedure; the response carries status and result tables.

        Failures inside the call (bad parameters, constraint violations, aborts) come back
        as a response with a failure status and roll back everything the call did.

        :raises DatabaseClosedError: the database is closed.
        :raises TypeError: procedure is not a str.
        """
        rt = self._procs.get(procedure)
        if rt is None:
            return self._call_other(procedure, params)
        with self._lock:
            if self._closed:
                raise DatabaseClosedError("the database is closed")
            st = rt.stats
            st[0] += 1
            # Time one call in 16: the mean stays exact enough and the clock stays off
            # the hot path.
            timed = not st[0] & 15
            if timed:
                start = time.perf_counter()
            fast = rt.fast
            resp = self._invoke_fast(rt, fast, params) if fast is not None else \
                self._invoke(rt, params)
            if resp.status != 1:
                st[1] += 1
            if timed:
                st[2] += time.perf_counter() - start
                st[3] += 1
            return resp

    def _call_other(self, procedure: Any, params: tuple) -> ClientResponse:
        """call() for system procedures, names in another case, unknown names and misuse."""
        self._check_open()
        if not isinstance(procedure, str):
            raise TypeError(f"procedure name must be a str, not {type(procedure).__name__}")
        if procedure.startswith("@"):
            from voltdb_py.sysprocs import call_sysproc
            with self._lock:
                self._check_open()
                return call_sysproc(self, procedure, params)
        real = self._procs_ci.get(procedure.upper())
        if real is None:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"Procedure {procedure} was not found")
        return self.call(real, *params)

    def call_many(self, calls: Iterable[tuple[str, Sequence[Any]]], *,
                  txn_ids_out: list | None = None,
                  txn_ids_in: Sequence[Sequence[tuple[int, int]]] | None = None
                  ) -> list[ClientResponse]:
        """Run several calls in order with group commit; one response per call.

        The same as :meth:`run_many`, with every result a ClientResponse.
        """
        out = self.run_many(calls, txn_ids_out=txn_ids_out, txn_ids_in=txn_ids_in)
        for i, r in enumerate(out):
            if type(r) is tuple:
                out[i] = ClientResponse(Status.SUCCESS, None, APP_STATUS_UNSET, None,
                                        [VoltTable(r[0], r[1])])
        return out

    def run_many(self, calls: Iterable[tuple[str, Sequence[Any]]], *,
                 txn_ids_out: list | None = None,
                 txn_ids_in: Sequence[Sequence[tuple[int, int]]] | None = None,
                 stood_out: list | None = None) -> list[Any]:
        """Run several calls in order with group commit; one result per call, for the wire.

        A result is a ClientResponse, or, for a compiled point procedure that succeeded,
        a (columns, rows) tuple standing for a success with that one table: the servers
        encode it (wire.encode_response_list) without building response objects.

        Each call is still its own transaction: it sees the calls before it, and a call
        that fails leaves no trace. The writes of consecutive compiled point procedures
        (see docs/internals.md) share one LMDB commit, made before this returns, so a
        batch costs far less than the same calls made one by one. Other calls commit
        on their own.

        :param calls: (procedure name, parameters) pairs (more items after these two,
            as in a cluster's [name, parameters, destination] entries, are ignored).
        :param txn_ids_out: when given, receives one list per call of the (transaction id,
            timestamp) pairs the call was given (a cluster leader sends them to replicas).
        :param txn_ids_in: one such list per call, handed out instead of the clock's (a
            replica replays its leader's calls identically); None for a call that takes
            the clock's.
        :param stood_out: when given and the run raises, receives the results of the
            calls whose effects stand (a prefix of calls: those committed before the
            failure); txn_ids_out is cut to the same calls either way. Running the other
            calls again then runs each call once.
        :raises DatabaseClosedError: the database is closed.
        :raises StorageError: a group commit failed: none of that group's writes stand
            (the calls before the group, committed, do).
        """
        self._check_open()
        calls = calls if isinstance(calls, list) else list(calls)
        n = len(calls)
        out: list[Any] = []
        append = out.append
        ids_base = 0 if txn_ids_out is None else len(txn_ids_out)
        with self._lock:
            self._check_open()
            txn = None
            start = 0   # the first call of the open group transaction
            stood = 0   # the calls before this one are committed
            grown = 0
            i = 0
            try:
                while True:
                    while i < n:
                        call = calls[i]
                        name, params = call[0], tuple(call[1])
                        rt = self._procs.get(name) if isinstance(name, str) else None
                        fast = rt.fast if rt is not None else None
                        if fast is None:
                            if txn is not None:
                                txn, txn_open = None, txn
                                if not self._commit_group(txn_open, grown):
                                    i = self._regroup(calls, start, out, txn_ids_out, ids_base)
                                    grown += 1
                                    continue
                                stood = i
                            if txn_ids_in is not None and txn_ids_in[i] is not None:
                                self._replay_ids = list(txn_ids_in[i])
                            if txn_ids_out is not None:
                                self._record_ids = []
                            try:
                                append(self.call(name, *params))
                            finally:
                                self._replay_ids = None
                                if txn_ids_out is not None:
                                    txn_ids_out.append(self._record_ids)
                                    self._record_ids = None
                            i += 1
                            stood = i
                            continue
                        if txn is None:
                            self._drop_read_txn()
                            txn = self._storage.begin(write=True)
                            start = i
                        try:  # this and the compiled calls after it, in one C loop
                            i = _run_point_calls(txn, self._procs, calls, i, out, txn_ids_out,
                                                 _FAST_ERRORS, _fast_failure)
                        except StorageError as exc:
                            if not _is_map_full(exc) or grown >= _MAX_GROWS:
                                raise
                            txn, txn_open = None, txn
                            txn_open.abort()
                            self._storage._grow()
                            # out holds one result per call before the one that failed
                            i = self._regroup(calls, start, out, txn_ids_out, ids_base,
                                              len(out) + 1)
                            grown += 1
                    if txn is None:
                        break
                    txn, txn_open = None, txn
                    if self._commit_group(txn_open, grown):
                        break
                    i = self._regroup(calls, start, out, txn_ids_out, ids_base)
                    grown += 1
            except BaseException:
                # the calls from stood on did not happen: forget their results and ids
                self._regroup(calls, stood, out, txn_ids_out, ids_base)
                if stood_out is not None:
                    stood_out.extend(out)
                raise
            finally:
                if txn is not None:
                    txn.abort()
        return out

    def _commit_group(self, txn: Any, grown: int) -> bool:
        """Commit a group transaction; False when the map was full (it has grown: run the
        group again), unless it has grown _MAX_GROWS times already."""
        try:
            self._storage.commit(txn)
        except StorageError as exc:
            if _is_map_full(exc) and grown < _MAX_GROWS:
                return False
            raise
        return True

    def _regroup(self, calls: list, start: int, out: list, ids_out: list | None,
                 ids_base: int, end: int | None = None) -> int:
        """Forget what a rolled-back group transaction answered (calls start..end-1 or to the
        end of out) so that they run again; return the index to run from."""
        stop = len(out) if end is None else end
        for k in range(start, stop):
            rt = self._procs.get(calls[k][0])
            if rt is not None:
                rt.stats[0] -= 1
                if k < len(out) and type(out[k]) is not tuple:
                    rt.stats[1] -= 1
        del out[start:]
        if ids_out is not None:
            del ids_out[ids_base + start:]
        return start

    def call_partition(self, partition_id: int, procedure: str, *params: Any) -> ClientResponse:
        """Run a single-partition procedure in the given partition (VoltDB's directed legs).

        This is how ``call_all_partitions`` runs. The procedure must be partitioned on its
        first parameter, and the partition must exist; otherwise the response is a
        graceful failure, as in VoltDB.
        """
        self._check_open()
        if not isinstance(procedure, str):
            raise TypeError(f"procedure name must be a str, not {type(procedure).__name__}")
        real = procedure if procedure in self._procs else self._procs_ci.get(procedure.upper())
        rt = self._procs.get(real) if real else None
        if rt is None:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"Procedure {procedure} was not found")
        if rt.part_index != 0:
            return ClientResponse(
                Status.GRACEFUL_FAILURE,
                "Invalid procedure for all-partition execution. Targeted procedure must be "
                "partitioned, must be partitioned on the first parameter, and must not be a "
                "system procedure.")
        if isinstance(partition_id, bool) or not isinstance(partition_id, int) or \
                not 0 <= partition_id < self._partition_count:
            return ClientResponse(Status.GRACEFUL_FAILURE,
                                  f"Partition {partition_id} does not exist")
        with self._lock:
            self._check_open()
            try:
                params = self._coerce_params(rt, params)
            except _ParamError as exc:
                return ClientResponse(Status.GRACEFUL_FAILURE, str(exc))
            return self._execute(rt, params, partition_id)

    # ----------------------------------------------------------------- cluster hooks
    #
    # A cluster host (voltdb_py.node.cluster) routes single-partition calls to partition
    # leaders, replays them on replicas, and runs multi-partition work from one
    # coordinator whose statements execute here fragment by fragment.

    def route(self, procedure: str, params: Sequence[Any]) -> tuple[int | None, bool]:
        """Where a call runs and whether it writes: (partition, read_only).

        The partition is -1 for a multi-partition procedure and None when the call cannot
        be placed (unknown procedure, bad partitioning parameter): run it anywhere and it
        answers with the error.
        """
        rt = self._procs.get(procedure) if isinstance(procedure, str) else None
        if rt is not None and rt.part_int >= 0 and 0 <= rt.part_index < len(params):
            value = params[rt.part_index]
            if type(value) is int and rt.part_lo <= value <= rt.part_hi:
                # the common case, without coerce(): the same partition
                return self._hashinator.partition_for_value(rt.part_int, value), rt.read_only
        if rt is None:
            real = self._procs_ci.get(procedure.upper()) if isinstance(procedure, str) \
                else None
            rt = self._procs.get(real) if real else None
            if rt is None:
                return None, True
        if rt.part_index < 0:
            return -1, rt.read_only
        if rt.part_index >= len(params):
            return None, True
        try:
            value = coerce(rt.part_type, params[rt.part_index], what="partitioning parameter")
        except (TypeMismatchError, ValueOutOfRangeError):
            return None, True
        return self._hashinator.partition_for_value(int(rt.part_type), value), rt.read_only

    def is_read_only(self, procedure: str) -> bool | None:
        """Whether a procedure only reads (None: no such procedure)."""
        rt = self._procs.get(procedure) if isinstance(procedure, str) else None
        if rt is None and isinstance(procedure, str):
            real = self._procs_ci.get(procedure.upper())
            rt = self._procs.get(real) if real else None
        return None if rt is None else rt.read_only

    def mp_begin(self, txn_id: int, timestamp_us: int) -> None:
        """Open the write transaction of a multi-partition transaction run from elsewhere."""
        with self._lock:
            self._check_open()
            if self._mp_session is not None:
                raise StorageError("a multi-partition transaction is already open")
            self._drop_read_txn()
            self._mp_session = _Txn(self, self._storage.begin(write=True), None, None,
                                    txn_id, timestamp_us)

    def mp_fragments(self, sql: str, params: Sequence[Any],
                     pids: Sequence[int]) -> list[VoltTable]:
        """Run one statement's fragment on each partition in pids inside the open
        multi-partition transaction; return the partial results (unmerged)."""
        with self._lock:
            t = self._mp_session
            if t is None:
                raise StorageError("no multi-partition transaction is open")
            plan = self._plan(sql)
            params = tuple(params)
            return [plan.run_fragment(t.context(pid), params) for pid in pids]

    def mp_end(self, commit: bool) -> None:
        """Commit or roll back the open multi-partition transaction (no-op if none)."""
        with self._lock:
            t, self._mp_session = self._mp_session, None
            if t is None:
                return
            if commit:
                self._storage.commit(t.lmdb_txn)
            else:
                t.lmdb_txn.abort()

    def run_distributed(self, procedure: str, params: Sequence[Any], runner: Any
                        ) -> ClientResponse:
        """Run a multi-partition procedure (or ``@AdHoc``) whose statements execute
        elsewhere: ``runner(plan, params, kind, pids)`` returns each fragment's partial
        result (kind is ``"replicated"``, ``"single"`` or ``"all"``) and raises the
        statement's error. No storage is touched here: call from any thread.
        """
        params = tuple(params)
        if procedure == "@AdHoc":
            if not params or not isinstance(params[0], str):
                return ClientResponse(Status.GRACEFUL_FAILURE,
                                      "@AdHoc expects a SQL statement string")
            return self._run_sql(params[0], params[1:], runner)
        rt = self._procs.get(procedure)
        if rt is None:
            real = self._procs_ci.get(procedure.upper())
            rt = self._procs.get(real) if real else None
        if rt is None:
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"Procedure {procedure} was not found")
        try:
            params = self._coerce_params(rt, params)
        except _ParamError as exc:
            return ClientResponse(Status.GRACEFUL_FAILURE, str(exc))
        return self._execute(rt, params, None, runner=runner)

    def reset_partition_count(self, count: int) -> None:
        """Give a database that holds no partitioned rows another partition count.

        A cluster's partition count is known only when it forms (hosts x sites per host
        / (k + 1)); a root initialized before that is re-laid out once, while empty.

        :raises StorageError: a partition already holds rows.
        """
        with self._lock:
            self._check_open()
            if count == self._partition_count:
                return
            if isinstance(count, bool) or not isinstance(count, int) or \
                    not 1 <= count <= 16382:
                raise ValueError(f"partition count must be an int in 1..16382, not {count!r}")
            self._drop_read_txn()
            with self._storage.read() as txn:
                for pid in range(self._partition_count):
                    with txn.cursor(db=self._storage.db(_pdb(pid))) as cur:
                        if cur.first() and bytes(cur.key())[:2] != b"\xff\xff":
                            raise StorageError(
                                f"partition {pid} holds rows: the partition count of a "
                                "database with data cannot change")
            with self._storage.write() as txn:
                txn.put(b"partition_count", str(count).encode(), db=self._storage.db(_META))
            self._partition_count = count
            self._hashinator = _hashinator.make_hashinator(count)
            self._stores = [_engine.PartitionStore(p, self._storage.db(_pdb(p)))
                            for p in range(count)]
            self._contexts.clear()
            self._adhoc.clear()
            self._install(self._catalog)

    def adhoc(self, sql: str, *params: Any) -> ClientResponse:
        """Run one ad hoc SQL statement (VoltDB's @AdHoc) with ? parameters."""
        return self.call("@AdHoc", sql, *params)

    def _coerce_params(self, rt: _ProcRuntime, params: tuple) -> tuple:
        types = rt.param_types
        if types is None:
            return params
        if len(params) != len(types):
            raise _ParamError(f"PROCEDURE {rt.name} EXPECTS {len(types)} PARAMS, "
                              f"BUT RECEIVED {len(params)}")
        out = []
        for i, (vtype, value) in enumerate(zip(types, params)):
            if vtype is None or value is None:
                out.append(value)
                continue
            try:
                out.append(coerce(vtype, value, what=f"parameter {i + 1}"))
            except (TypeMismatchError, ValueOutOfRangeError) as exc:
                raise _ParamError(f"procedure {rt.name}: {exc}") from exc
        return tuple(out)

    def _invoke_fast(self, rt: _ProcRuntime, fast: Any, params: tuple) -> ClientResponse:
        """Run a compiled point procedure: one C-level call does the whole statement."""
        if fast.read_only:
            txn = self._read_txn
            if txn is None:
                txn = self._read_txn = self._storage.begin(write=False)
            try:
                rows = fast.execute(txn, params)
            except (SQLError, ConstraintError, TypeMismatchError, ValueOutOfRangeError,
                    MispartitionedError, _ParamError) as exc:
                return ClientResponse(Status.GRACEFUL_FAILURE, _fast_error(rt, exc))
            return ClientResponse(Status.SUCCESS, None, APP_STATUS_UNSET, None,
                                  [VoltTable(rt.result_columns, rows)])
        self._drop_read_txn()
        txn = self._storage.begin(write=True)
        try:
            count = fast.execute(txn, params)
        except (SQLError, ConstraintError, TypeMismatchError, ValueOutOfRangeError,
                MispartitionedError, _ParamError) as exc:
            txn.abort()
            return ClientResponse(Status.GRACEFUL_FAILURE, _fast_error(rt, exc))
        except BaseException:
            txn.abort()
            raise
        self._storage.commit(txn)
        return ClientResponse(Status.SUCCESS, None, APP_STATUS_UNSET, None,
                              [VoltTable(rt.result_columns, [(count,)])])

    def _invoke(self, rt: _ProcRuntime, params: tuple) -> ClientResponse:
        try:
            params = self._coerce_params(rt, params)
            pid = None
            if rt.part_index >= 0:
                if rt.part_index >= len(params):
                    raise _ParamError(f"procedure {rt.name} is partitioned on parameter "
                                      f"{rt.part_index} but got {len(params)} parameters")
                try:
                    value = coerce(rt.part_type, params[rt.part_index],
                                   what="partitioning parameter")
                except (TypeMismatchError, ValueOutOfRangeError) as exc:
                    raise _ParamError(f"procedure {rt.name}: {exc}") from exc
                pid = self._hashinator.partition_for_value(int(rt.part_type), value)
        except _ParamError as exc:
            return ClientResponse(Status.GRACEFUL_FAILURE, str(exc))
        return self._execute(rt, params, pid)

    def _execute(self, rt: _ProcRuntime | None, params: tuple, pid: int | None,
                 body: Any = None, read_only: bool | None = None,
                 runner: Any = None) -> ClientResponse:
        """Run a procedure body in one LMDB transaction (read or write) and answer.

        With a runner (a cluster's coordinator) no LMDB transaction is opened here: every
        statement's fragments run where runner sends them.
        """
        txn_id, ts = self._next_txn_id(pid)
        ro = rt.read_only if read_only is None else read_only
        storage = self._storage
        if runner is not None:
            ro = True  # nothing to commit or abort here
            lmdb_txn = None
        elif ro:
            lmdb_txn = self._read_txn
            if lmdb_txn is None:
                lmdb_txn = self._read_txn = storage.begin(write=False)
        else:
            self._drop_read_txn()
            lmdb_txn = storage.begin(write=True)
        t = _Txn(self, lmdb_txn, rt, pid, txn_id, ts)
        t.runner = runner
        try:
            if body is not None:
                result = body(t)
            elif rt.cls is None:
                t.queue(rt.sql_stmt, params, None, None)
                result = t.execute(True)
            else:
                inst = rt.cls.__new__(rt.cls)
                inst._txn = t
                result = inst.run(*params)
            tables = _result_tables(result, rt.name if rt else "procedure")
        except VoltAbortException as exc:
            self._end_failed(lmdb_txn, ro)
            return ClientResponse(Status.USER_ABORT, str(exc) or "VoltAbortException",
                                  t.app_status, t.app_status_string)
        except (SQLError, ConstraintError, TypeMismatchError, ValueOutOfRangeError,
                MispartitionedError, CatalogError, ExpectationError, _ParamError) as exc:
            self._end_failed(lmdb_txn, ro)
            return ClientResponse(Status.GRACEFUL_FAILURE, _describe(exc),
                                  t.app_status, t.app_status_string)
        except StorageError:
            self._end_failed(lmdb_txn, ro)
            raise
        except Exception as exc:
            self._end_failed(lmdb_txn, ro)
            return ClientResponse(Status.UNEXPECTED_FAILURE,
                                  f"unexpected error in {rt.name if rt else 'call'}: "
                                  f"{type(exc).__name__}: {exc}",
                                  t.app_status, t.app_status_string)
        except BaseException:
            self._end_failed(lmdb_txn, ro)
            raise
        if not ro:
            storage.commit(lmdb_txn)
        return ClientResponse(Status.SUCCESS, None, t.app_status, t.app_status_string, tables)

    def _end_failed(self, lmdb_txn: Any, read_only: bool) -> None:
        """Undo a failed call: abort its write transaction (a read snapshot stays usable)."""
        if not read_only:
            lmdb_txn.abort()

    def _run_adhoc(self, sql: str, params: tuple) -> ClientResponse:
        if _DDL_START.match(sql):
            # VoltDB's @AdHoc also takes DDL (one or more statements): sqlcmd relies on it.
            if params:
                return ClientResponse(Status.GRACEFUL_FAILURE,
                                      "DDL statements take no parameters")
            try:
                new = compile_ddl(self._catalog, sql, class_loader=self._load_class)
                self._apply_catalog(new)
            except VoltError as exc:
                return ClientResponse(Status.GRACEFUL_FAILURE, _describe(exc))
            return ClientResponse(Status.SUCCESS, None, APP_STATUS_UNSET, None,
                                  [VoltTable([Column("STATUS", VoltType.BIGINT)], [(0,)])])
        return self._run_sql(sql, params)

    def _run_sql(self, sql: str, params: tuple, runner: Any = None) -> ClientResponse:
        """Plan one SQL statement and run it as its own transaction (its fragments through
        runner when given: run_distributed)."""
        try:
            plan = self._plan(sql)
        except VoltError as exc:
            return ClientResponse(Status.GRACEFUL_FAILURE, _describe(exc))
        return self._execute(None, params, None,
                             body=lambda t: [self._run_statement(t, plan, params)],
                             read_only=plan.read_only, runner=runner)


_DDL_START = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(CREATE|DROP|ALTER|PARTITION|DR|EXPORT|SET)\b",
    re.I | re.S)


class _ParamError(VoltError):
    """Parameters do not fit the procedure (count or type)."""


#: What a compiled point procedure may raise that answers its call (a graceful failure).
_FAST_ERRORS = (SQLError, ConstraintError, TypeMismatchError, ValueOutOfRangeError,
                MispartitionedError, _ParamError)


def _fast_failure(rt: _ProcRuntime, exc: BaseException) -> ClientResponse:
    """The answer of a compiled point procedure that raised one of _FAST_ERRORS."""
    return ClientResponse(Status.GRACEFUL_FAILURE, _fast_error(rt, exc))


def _fast_error(rt: _ProcRuntime, exc: BaseException) -> str:
    if isinstance(exc, _ParamError):
        return f"PROCEDURE {rt.name} {exc}"
    if isinstance(exc, (TypeMismatchError, ValueOutOfRangeError)):
        return f"procedure {rt.name}: {_describe(exc)}"
    return _describe(exc)


def _describe(exc: BaseException) -> str:
    kind = {
        ConstraintError: "CONSTRAINT VIOLATION",
        TypeMismatchError: "TYPE ERROR",
        ValueOutOfRangeError: "VALUE OUT OF RANGE",
    }
    for cls, label in kind.items():
        if isinstance(exc, cls):
            return f"{label}: {exc}"
    return str(exc)


def _result_tables(result: Any, name: str) -> list[VoltTable]:
    """Convert a procedure's return value into result tables, as VoltDB does."""
    if result is None:
        return []
    if isinstance(result, VoltTable):
        return [result]
    if isinstance(result, (list, tuple)):
        if all(isinstance(t, VoltTable) for t in result):
            return list(result)
        raise TypeMismatchError(f"procedure {name} returned a list that is not all VoltTables")
    if isinstance(result, bool):
        raise TypeMismatchError(f"procedure {name} returned a bool; return an int instead")
    if isinstance(result, int):
        return [VoltTable([Column("", VoltType.BIGINT)], [(result,)])]
    if isinstance(result, float):
        return [VoltTable([Column("", VoltType.FLOAT)], [(result,)])]
    if isinstance(result, str):
        return [VoltTable([Column("", VoltType.STRING)], [(result,)])]
    if isinstance(result, bytes):
        return [VoltTable([Column("", VoltType.VARBINARY)], [(result,)])]
    raise TypeMismatchError(
        f"procedure {name} returned {type(result).__name__}; return VoltTable(s), a scalar "
        f"or None")

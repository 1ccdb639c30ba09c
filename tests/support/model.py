# SPDX-License-Identifier: AGPL-3.0-or-later
"""A pure-Python model of the engine's PartitionStore and TableSchema (see internals.md).

``ModelStore`` implements the PartitionStore API over dicts; it serves the SQL layer's tests
before/independently of the compiled store, and as the oracle model of stateful tests.
``ModelSchema(table)`` has the attributes of the engine's TableSchema, built from a catalog
``Table``. Constraints: primary key and unique indexes (keys containing NULL never
conflict), NOT NULL; violations raise ConstraintError.
"""

from __future__ import annotations

from voltdb_py.errors import ConstraintError, SQLError, TypeMismatchError
from voltdb_py.types import VoltType, coerce


def _sk(values):
    """Order key of a tuple of values: NULL first, like the memcomparable encoding."""
    return tuple((0, 0) if v is None else (1, v) for v in values)


class ModelSchema:
    """Engine-TableSchema-alike: table_id, columns, types, primary_key, partitioning, indexes."""

    def __init__(self, table):
        self.name = table.name
        self.table_id = table.table_id
        self.columns = [(c.vtype, c.size, c.in_bytes, c.nullable) for c in table.columns]
        self.column_names = [c.name for c in table.columns]
        self.ncols = len(table.columns)
        self.types = [c.vtype for c in table.columns]
        self.primary_key = ([table.column_index(n) for n in table.primary_key]
                            if table.primary_key else None)
        self.partitioned = bool(table.partitioned)
        self.partition_column = (table.column_index(table.partition_column)
                                 if table.partition_column else -1)
        self.indexes = [(ix.index_id, [table.column_index(n) for n in ix.columns],
                         ix.enforces_uniqueness) for ix in table.indexes]

    def validate(self, row) -> tuple:
        row = tuple(row)
        if len(row) != self.ncols:
            raise TypeMismatchError(f"row of {len(row)} values for {self.ncols} columns of {self.name}")
        for i, (v, (t, size, in_bytes, nullable)) in enumerate(zip(row, self.columns)):
            if v is None:
                if not nullable:
                    raise ConstraintError(
                        f"CONSTRAINT VIOLATION: column {self.column_names[i]} of {self.name} is NOT NULL")
                continue
            if coerce(VoltType(t), v, size, in_bytes) != v:
                raise TypeMismatchError(f"value {v!r} is not an internal {VoltType(t).sql_name}")
        return row


class ModelStore:
    """PartitionStore over dicts: {table_id: {rowkey: row}}."""

    def __init__(self, partition_id: int = 0):
        self.partition_id = partition_id
        self.tables: dict[int, dict[bytes, tuple]] = {}
        self._counter = 0

    # helpers ------------------------------------------------------------------------
    def _rows(self, schema) -> dict:
        return self.tables.setdefault(schema.table_id, {})

    def _rowkey(self, schema, row) -> bytes:
        if schema.primary_key is not None:
            return repr(tuple(row[i] for i in schema.primary_key)).encode()
        self._counter += 1
        return ((self.partition_id & 0xFFFF) << 48 | self._counter).to_bytes(8, "big")

    def _check_unique(self, schema, row, ignore_key=None):
        rows = self._rows(schema)
        checks = [(None, schema.primary_key)] if schema.primary_key is not None else []
        checks += [(ix_id, cols) for ix_id, cols, unique in schema.indexes if unique]
        for ix_id, cols in checks:
            key = tuple(row[i] for i in cols)
            if any(v is None for v in key):
                continue
            for rk, other in rows.items():
                if rk != ignore_key and tuple(other[i] for i in cols) == key:
                    what = "PRIMARY KEY" if ix_id is None else f"unique index {ix_id}"
                    raise ConstraintError(f"CONSTRAINT VIOLATION: duplicate {what} value {key!r} "
                                          f"in {schema.name}")

    # PartitionStore API -------------------------------------------------------------
    def insert(self, txn, schema, row):
        row = schema.validate(row)
        self._check_unique(schema, row)
        rk = self._rowkey(schema, row)
        self._rows(schema)[rk] = row
        return rk

    def upsert(self, txn, schema, row):
        if schema.primary_key is None:
            raise SQLError(f"UPSERT needs a primary key on {schema.name}")
        row = schema.validate(row)
        rk = self._rowkey(schema, row)
        rows = self._rows(schema)
        if rk in rows:
            self._check_unique(schema, row, ignore_key=rk)
            rows[rk] = row
            return rk
        return self.insert(txn, schema, row)

    def get(self, txn, schema, pk_values):
        if schema.primary_key is None:
            raise SQLError(f"{schema.name} has no primary key")
        return self._rows(schema).get(repr(tuple(pk_values)).encode())

    def get_key(self, txn, schema, pk_values):
        if schema.primary_key is None:
            raise SQLError(f"{schema.name} has no primary key")
        rk = repr(tuple(pk_values)).encode()
        row = self._rows(schema).get(rk)
        return None if row is None else (rk, row)

    def get_by_rowkey(self, txn, schema, rowkey):
        return self._rows(schema).get(rowkey)

    def update(self, txn, schema, rowkey, new_row):
        rows = self._rows(schema)
        if rowkey not in rows:
            return None                       # as the engine: nothing written
        new_row = schema.validate(new_row)
        self._check_unique(schema, new_row, ignore_key=rowkey)
        if schema.primary_key is not None:
            newkey = self._rowkey(schema, new_row)
        else:
            newkey = rowkey
        del rows[rowkey]
        rows[newkey] = new_row
        return newkey

    def delete(self, txn, schema, rowkey):
        return self._rows(schema).pop(rowkey, None)

    def scan(self, txn, schema):
        rows = self._rows(schema)
        if schema.primary_key is not None:
            items = sorted(rows.items(), key=lambda kv: _sk([kv[1][i] for i in schema.primary_key]))
        else:
            items = sorted(rows.items())
        return iter(items)

    def index_scan(self, txn, schema, index_id, lo, lo_inclusive, hi, hi_inclusive, reverse=False):
        cols = None
        for ix_id, c, _u in schema.indexes:
            if ix_id == index_id:
                cols = c
        if cols is None:
            raise SQLError(f"no index {index_id} on {schema.name}")
        out = []
        for rk, row in self._rows(schema).items():
            key = _sk([row[i] for i in cols])
            if lo is not None:
                k, b = key[:len(lo)], _sk(lo)
                if k < b or (k == b and not lo_inclusive):
                    continue
            if hi is not None:
                k, b = key[:len(hi)], _sk(hi)
                if k > b or (k == b and not hi_inclusive):
                    continue
            out.append((key, rk, row))
        out.sort(key=lambda t: (t[0], t[1]), reverse=reverse)
        return iter([(rk, row) for _k, rk, row in out])

    def count(self, txn, schema):
        return len(self._rows(schema))

    def truncate(self, txn, schema):
        rows = self._rows(schema)
        n = len(rows)
        rows.clear()
        return n

    # test helpers -------------------------------------------------------------------
    def all_rows(self, schema) -> list[tuple]:
        return list(self._rows(schema).values())


def partition_of(vtype, value, nparts: int) -> int:
    """Simple stand-in hashinator: token_for(value) mod nparts (NULL -> partition 0)."""
    from voltdb_py.engine import _engine
    if value is None:
        return 0
    return _engine.token_for(int(vtype), value) % nparts


class ModelCluster:
    """N ModelStore partitions plus a replicated store; runs planned statements the way the
    integrator does (single -> one partition, multi -> all, replicated -> one fragment)."""

    def __init__(self, catalog, nparts: int = 3):
        self.catalog = catalog
        self.nparts = nparts
        self.stores = [ModelStore(i) for i in range(nparts)]
        self.rep = ModelStore(-1)
        self._schemas: dict = {}
        self.now = 1_600_000_000_000_000
        self.txn = None

    kind = "model"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        pass

    def store_rows(self, store, schema) -> list[tuple]:
        """All rows of one table in one store."""
        return [row for _rk, row in store.scan(self.txn, schema)]

    def schema_for(self, table):
        s = self._schemas.get(table.name)
        if s is None:
            s = self._schemas[table.name] = ModelSchema(table)
        return s

    def partition_for(self, table_name, value):
        t = self.catalog.tables[table_name.upper()]
        return partition_of(t.column(t.partition_column).vtype, value, self.nparts)

    def ctx(self, pid: int):
        from voltdb_py.sql.context import ExecutionContext
        return ExecutionContext(self.txn, self.stores[pid], self.rep, self.schema_for, self.catalog,
                                partition_id=pid, partition_for=self.partition_for,
                                txn_id=1, txn_timestamp_us=self.now)

    def run(self, stmt, params=()):
        from voltdb_py.sql import plan_statement
        if isinstance(stmt, str):
            stmt = plan_statement(self.catalog, stmt)
        p = stmt.partitioning
        if p[0] == "single":
            val = stmt.partition_value(params)
            pids = [self.partition_for(p[1], val)]
        elif p[0] == "replicated":
            pids = [0]
        else:
            pids = list(range(self.nparts))
        return stmt.merge([stmt.run_fragment(self.ctx(pid), params) for pid in pids])

    def rows(self, table_name):
        """All rows of a table (across partitions)."""
        t = self.catalog.tables[table_name.upper()]
        schema = self.schema_for(t)
        src = self.catalog.tables[t.view.source] if t.view else t
        stores = self.stores if src.partitioned else [self.rep]
        out = []
        for s in stores:
            out.extend(self.store_rows(s, schema))
        return out


class EngineCluster(ModelCluster):
    """The same interface over the REAL engine: a ``voltdb_py.storage.Storage`` in a fresh
    temporary directory, one ``_engine.PartitionStore`` per partition plus the replicated
    store, ``build_table_schema`` schemas and the real hashinator (VoltDB's default ring).

    Everything runs in one long LMDB write transaction (``self.txn``), like the model which
    has no rollback either; ``close()`` aborts it and removes the directory.
    """

    kind = "engine"

    def __init__(self, catalog, nparts: int = 3, directory=None):
        import shutil
        import tempfile

        from voltdb_py.engine import _engine
        from voltdb_py.hashinator import make_hashinator
        from voltdb_py.storage import Storage
        self.catalog = catalog
        self.nparts = nparts
        self.now = 1_600_000_000_000_000
        self._schemas = {}
        self._own_dir = directory is None
        self.directory = tempfile.mkdtemp(prefix="vdb-sql-") if directory is None else str(directory)
        self._rmtree = shutil.rmtree
        self.storage = Storage.open(self.directory, sync="none", map_size_bytes=1 << 30)
        # every named DB handle before the transaction that uses them (LMDB's rule)
        self.stores = [_engine.PartitionStore(p, self.storage.db(f"p{p}")) for p in range(nparts)]
        self.rep = _engine.PartitionStore(-1, self.storage.db("rep"))
        self.hashinator = make_hashinator(nparts)
        self.txn = self.storage.begin(write=True)

    def schema_for(self, table):
        s = self._schemas.get(table.name)
        if s is None:
            from voltdb_py.catalog.runtime import build_table_schema
            s = self._schemas[table.name] = build_table_schema(table)
        return s

    def partition_for(self, table_name, value):
        if value is None:
            return 0
        t = self.catalog.tables[table_name.upper()]
        return self.hashinator.partition_for_value(int(t.column(t.partition_column).vtype), value)

    def close(self):
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        if not self.storage.closed:
            self.storage.close()
        if self._own_dir:
            self._rmtree(self.directory, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


CLUSTER_KINDS = ("model", "engine")


def make_cluster(kind: str, catalog, nparts: int = 3):
    """A ModelCluster ("model") or an EngineCluster ("engine"); use as a context manager."""
    if kind == "model":
        return ModelCluster(catalog, nparts)
    if kind == "engine":
        return EngineCluster(catalog, nparts)
    raise ValueError(f"unknown cluster kind {kind!r}")

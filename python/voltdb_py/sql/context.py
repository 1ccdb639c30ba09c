# SPDX-License-Identifier: AGPL-3.0-or-later
"""The execution context of SQL fragments: where rows live and how writes are made.

``ExecutionContext(txn, store, rep_store, schema_for, catalog, partition_id=0,
partition_for=None, txn_id=0, txn_timestamp_us=0)``

- ``txn``: the LMDB (or model) transaction passed first to every store method.
- ``store``: the PartitionStore of the partition this fragment runs on (may be None when
  only replicated tables are touched).
- ``rep_store``: the PartitionStore holding the replicated tables.
- ``schema_for(table: catalog.model.Table) -> TableSchema``: the integrator's factory (real
  engine ``_engine.TableSchema`` or ``tests.support.model.ModelSchema``); results are cached
  per table name in the context.
- ``catalog``: the catalog ``Catalog`` (for tables, views and their definitions).
- ``partition_id``: the id of ``store``'s partition.
- ``partition_for(table_name, value) -> int``: the partition owning a partition-column
  value (NULL goes to partition 0); used to reject mispartitioned INSERT/UPSERT.
- ``txn_id``, ``txn_timestamp_us``: the transaction id and its timestamp (microseconds
  since the epoch; NOW/CURRENT_TIMESTAMP return it, so replicas agree).

Every write of the SQL layer goes through ``insert_row``, ``update_row``, ``delete_row``
and ``truncate``, which call the store and then maintain every materialized view whose
source is the table (views live in the same store as their source). Those go through a
:class:`TableWriter` (the table's store side and its views' maintenance info, built once per
catalog and table): statements build theirs at plan time, the context caches its own.
"""

from __future__ import annotations

from typing import Any, Callable

from voltdb_py.errors import SQLError


def stored_partitioned(catalog, table) -> bool:
    """Whether the rows of table (a view: of its source) live in the partition stores."""
    if table.view is not None:
        src = catalog.tables.get(table.view.source.upper())
        if src is not None:
            return bool(src.partitioned)
    return bool(table.partitioned)


class TableWriter:
    """Writes of one table through a context, with maintenance of the table's views.

    Built from a catalog and a table (plan time); ``views`` holds one views._ViewInfo per
    materialized view whose source is the table.
    """

    __slots__ = ("table", "name", "partitioned", "views")

    def __init__(self, catalog, table):
        from voltdb_py.sql.views import ViewInfo
        self.table = table
        self.name = table.name
        self.partitioned = stored_partitioned(catalog, table)
        self.views = [ViewInfo(catalog, t) for t in catalog.tables.values()
                      if t.view is not None and t.view.source.upper() == table.name]

    def store(self, ctx):
        store = ctx.store if self.partitioned else ctx.rep_store
        if store is None:
            raise SQLError(f"no store for table {self.name} in this context")
        return store

    def insert(self, ctx, row):
        rk = self.store(ctx).insert(ctx.txn, ctx.schema_of(self.table), row)
        for vi in self.views:
            vi.insert(ctx, row)
        return rk

    def update(self, ctx, rowkey, old, new):
        rk = self.store(ctx).update(ctx.txn, ctx.schema_of(self.table), rowkey, new)
        for vi in self.views:
            vi.update(ctx, old, new)
        return rk

    def delete(self, ctx, rowkey, old=None):
        gone = self.store(ctx).delete(ctx.txn, ctx.schema_of(self.table), rowkey)
        if old is None:
            old = gone
        if old is not None:
            for vi in self.views:
                vi.delete(ctx, old)
        return gone

    def truncate(self, ctx):
        n = self.store(ctx).truncate(ctx.txn, ctx.schema_of(self.table))
        for vi in self.views:
            vi.store(ctx).truncate(ctx.txn, ctx.schema_of(vi.view))
        return n


class ExecutionContext:
    """What a fragment needs: transaction, stores, schemas, partition, timestamp."""

    __slots__ = ("txn", "store", "rep_store", "schema_for", "catalog", "partition_id",
                 "_partition_for", "txn_id", "txn_timestamp_us", "_schemas", "_views",
                 "_writers", "_view_info", "__dict__")

    def __init__(self, txn: Any, store: Any, rep_store: Any, schema_for: Callable, catalog: Any,
                 partition_id: int = 0, partition_for: Callable | None = None,
                 txn_id: int = 0, txn_timestamp_us: int = 0):
        self.txn = txn
        self.store = store
        self.rep_store = rep_store
        self.schema_for = schema_for
        self.catalog = catalog
        self.partition_id = partition_id
        self._partition_for = partition_for
        self.txn_id = txn_id
        self.txn_timestamp_us = txn_timestamp_us
        self._schemas: dict[str, Any] = {}
        self._views: dict[str, list] = {}
        self._writers: dict[str, TableWriter] = {}
        self._view_info: dict[str, Any] = {}

    # lookups ------------------------------------------------------------------------
    def table(self, name: str):
        try:
            return self.catalog.tables[name.upper()]
        except KeyError:
            raise SQLError(f"object not found: table {name.upper()}") from None

    def schema(self, name: str):
        key = name.upper()
        s = self._schemas.get(key)
        if s is None:
            s = self._schemas[key] = self.schema_for(self.table(key))
        return s

    def schema_of(self, table):
        """The schema of a catalog Table object (no lookup by name in the catalog)."""
        s = self._schemas.get(table.name)
        if s is None:
            s = self._schemas[table.name] = self.schema_for(table)
        return s

    def store_for(self, name: str):
        """The store holding the table's rows (a view lives with its source)."""
        t = self.table(name)
        if t.view is not None:
            t = self.table(t.view.source)
        store = self.store if t.partitioned else self.rep_store
        if store is None:
            raise SQLError(f"no store for table {t.name} in this context")
        return store

    def partition_for(self, table: str, value: Any) -> int:
        if self._partition_for is None:
            return self.partition_id
        return self._partition_for(table, value)

    def views_of(self, name: str) -> list:
        key = name.upper()
        v = self._views.get(key)
        if v is None:
            v = self._views[key] = [t for t in self.catalog.tables.values()
                                    if t.view is not None and t.view.source.upper() == key]
        return v

    def writer(self, name: str) -> TableWriter:
        key = name.upper()
        w = self._writers.get(key)
        if w is None:
            w = self._writers[key] = TableWriter(self.catalog, self.table(key))
        return w

    # writes (with view maintenance) -------------------------------------------------
    def insert_row(self, table: str, row: tuple):
        return self.writer(table).insert(self, row)

    def update_row(self, table: str, rowkey, old: tuple, new: tuple):
        return self.writer(table).update(self, rowkey, old, new)

    def delete_row(self, table: str, rowkey, old: tuple | None = None):
        return self.writer(table).delete(self, rowkey, old)

    def truncate(self, table: str) -> int:
        return self.writer(table).truncate(self)

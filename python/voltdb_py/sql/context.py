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
source is the table (views live in the same store as their source).
"""

from __future__ import annotations

from typing import Any, Callable

from voltdb_py.errors import SQLError


class ExecutionContext:
    """What a fragment needs: transaction, stores, schemas, partition, timestamp."""

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

    # writes (with view maintenance) -------------------------------------------------
    def insert_row(self, table: str, row: tuple):
        from voltdb_py.sql.views import view_insert
        rk = self.store_for(table).insert(self.txn, self.schema(table), row)
        for v in self.views_of(table):
            view_insert(self, v, row)
        return rk

    def update_row(self, table: str, rowkey, old: tuple, new: tuple):
        from voltdb_py.sql.views import view_update
        rk = self.store_for(table).update(self.txn, self.schema(table), rowkey, new)
        for v in self.views_of(table):
            view_update(self, v, old, new)
        return rk

    def delete_row(self, table: str, rowkey, old: tuple | None = None):
        from voltdb_py.sql.views import view_delete
        gone = self.store_for(table).delete(self.txn, self.schema(table), rowkey)
        if old is None:
            old = gone
        for v in self.views_of(table):
            view_delete(self, v, old)
        return gone

    def truncate(self, table: str) -> int:
        n = self.store_for(table).truncate(self.txn, self.schema(table))
        for v in self.views_of(table):
            self.store_for(v.name).truncate(self.txn, self.schema(v.name))
        return n

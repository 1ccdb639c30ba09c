# SPDX-License-Identifier: AGPL-3.0-or-later
"""Catalog -> the engine's TableSchema (see docs/internals.md, "Engine API")."""

from __future__ import annotations

from voltdb_py.catalog.model import Table

__all__ = ["table_schema_args", "build_table_schema"]


def table_schema_args(table: Table) -> tuple:
    """Return the arguments of ``_engine.TableSchema`` for a table or view:

    ``(table_id, [(vtype, size, in_bytes, nullable)...], primary-key positions or None,
    partition column position or -1, partitioned, [(index_id, [positions], unique)...])``.
    Every index is listed (the primary key's too); ASSUMEUNIQUE and primary-key indexes
    have unique=True. A view has its group-by columns as primary key.
    """
    pos = {c.name: i for i, c in enumerate(table.columns)}
    try:
        columns = [(int(c.vtype), int(c.size), bool(c.in_bytes), bool(c.nullable))
                   for c in table.columns]
        pk = None if table.primary_key is None else [pos[n] for n in table.primary_key]
        pcol = pos[table.partition_column] if table.partition_column is not None else -1
        indexes = [(ix.index_id, [pos[n] for n in ix.columns], bool(ix.enforces_uniqueness))
                   for ix in table.indexes]
    except KeyError as e:
        raise ValueError(f"table {table.name}: unknown column {e.args[0]}") from None
    return (table.table_id, columns, pk, pcol, bool(table.partitioned), indexes)


def build_table_schema(table: Table):
    """Return ``_engine.TableSchema(*table_schema_args(table))``."""
    from voltdb_py.engine import _engine
    return _engine.TableSchema(*table_schema_args(table))

# SPDX-License-Identifier: AGPL-3.0-or-later
"""The catalog: tables, views, indexes and procedures, as plain data.

Names are stored upper-case (VoltDB folds unquoted identifiers). Every table, view and
index has a numeric id, unique in the catalog and never reused after a DROP, because the
partition stores key their rows and index entries by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voltdb_py.types import VoltType

NO_DEFAULT = None  # Column.has_default tells "no DEFAULT" from "DEFAULT NULL".


@dataclass(slots=True)
class Column:
    """A table column."""

    name: str
    vtype: VoltType
    size: int = 0            # VARCHAR/VARBINARY maximum length; 0 for fixed-size types
    in_bytes: bool = False   # VARCHAR(n BYTES): size counts UTF-8 bytes, else characters
    nullable: bool = True
    has_default: bool = False
    default: Any = None      # internal representation (see types.coerce)
    # DEFAULT NOW / CURRENT_TIMESTAMP of a TIMESTAMP column: the value is taken at insert
    # time (has_default is True, default is None).
    default_now: bool = False


@dataclass(slots=True)
class Index:
    """A tree index over columns of one table (also the one behind a PRIMARY KEY/UNIQUE)."""

    name: str
    index_id: int
    table: str
    columns: list[str]
    unique: bool = False          # UNIQUE or PRIMARY KEY (enforced cluster-wide)
    assume_unique: bool = False   # ASSUMEUNIQUE: unique, enforced per partition only
    primary_key: bool = False
    from_constraint: bool = False  # made by a constraint in CREATE TABLE, not CREATE INDEX
    constraint: str | None = None  # the constraint's name (given or generated) if from_constraint

    @property
    def enforces_uniqueness(self) -> bool:
        return self.unique or self.assume_unique or self.primary_key


@dataclass(slots=True)
class ViewDef:
    """A materialized view: SELECT g1.., agg1.. FROM source GROUP BY g1.. (maintained live).

    aggregates holds one (function, source column or None) per aggregate output column,
    function being COUNT (column None for COUNT(*)), SUM, MIN or MAX.
    """

    source: str
    group_by: list[str]
    aggregates: list[tuple[str, str | None]]
    sql: str = ""
    # The view's WHERE predicate as SQL text over the source's columns (None: no WHERE).
    # Only source rows for which it is TRUE are aggregated.
    where: str | None = None


@dataclass(slots=True)
class Table:
    """A table or a materialized view (view is not None), with its columns and indexes.

    partitioned: rows live in the partition stores; otherwise the table is replicated.
    partition_column: the column whose hash picks the partition (None for replicated
    tables and for views of partitioned tables that do not group by it).
    """

    name: str
    table_id: int
    columns: list[Column]
    primary_key: list[str] | None = None
    partitioned: bool = False
    partition_column: str | None = None
    indexes: list[Index] = field(default_factory=list)
    view: ViewDef | None = None
    # Set by compile_ddl on a table whose shape (columns, primary key, partitioning) the
    # batch changed: the table_id it had in the input catalog. The table and all its
    # indexes got new ids; the store rebuilds rows from the old id. None otherwise (reset
    # by every compile_ddl).
    altered_from: int | None = None

    def column_index(self, name: str) -> int:
        up = name.upper()
        for i, c in enumerate(self.columns):
            if c.name == up:
                return i
        raise KeyError(name)

    def column(self, name: str) -> Column:
        return self.columns[self.column_index(name)]

    @property
    def is_view(self) -> bool:
        return self.view is not None


@dataclass(slots=True)
class Procedure:
    """A stored procedure: from SQL (sql) or from a Python class (class_path 'module.Class').

    Single-partition when partition_table is set: parameter partition_parameter (0-based)
    carries the value of partition_table.partition_column.
    """

    name: str
    sql: str | None = None
    class_path: str | None = None
    partition_table: str | None = None
    partition_column: str | None = None
    partition_parameter: int = 0

    @property
    def single_partition(self) -> bool:
        return self.partition_table is not None


@dataclass(slots=True)
class Catalog:
    """Everything DDL defines. version grows by one with each successful DDL batch."""

    tables: dict[str, Table] = field(default_factory=dict)   # views included
    procedures: dict[str, Procedure] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)         # loaded module names
    next_id: int = 1
    version: int = 0

# SPDX-License-Identifier: AGPL-3.0-or-later
"""The SQL layer: planner, executor (fragments + merge), view maintenance, EXPLAIN.

API:

- ``plan_statement(catalog, sql) -> Statement`` (sql/planner.py). A Statement has
  ``sql, kind, param_count, param_types, read_only, tables_read, tables_written,
  partitioning, result_columns`` and ``run_fragment(ctx, params)`` / ``merge(results)``
  (sql/executor.py); ``partition_value(params)`` gives the pinning value of a
  single-partition statement; ``execute(ctx, params)`` = merge([run_fragment(...)]).
- ``ExecutionContext`` (sql/context.py): what fragments run against; all writes go
  through it and maintain materialized views.
- ``maintain_views_on_insert/..._on_delete(ctx, table_id, row)`` (sql/views.py).
- ``explain(stmt) -> str`` (sql/explain.py).

A SELECT reading a view of a partitioned table not grouped by its partition column is a
``PartialViewSelect``: fragments ship the view's partial rows, ``merge`` re-aggregates them
(COUNT/SUM summed, MIN/MAX of MIN/MAX) before the rest of the plan, so a multi-partition
read sees one row per group; one fragment (single-partition) sees its own partition's rows.
Stores are used through the PartitionStore API of docs/internals.md plus ``get_key(txn,
schema, pk_values) -> (rowkey, row) | None`` (used when present).
"""

from voltdb_py.sql.context import ExecutionContext
from voltdb_py.sql.executor import Statement
from voltdb_py.sql.explain import explain
from voltdb_py.sql.planner import plan_statement
from voltdb_py.sql.views import maintain_views_on_delete, maintain_views_on_insert

__all__ = ["ExecutionContext", "Statement", "explain", "maintain_views_on_delete",
           "maintain_views_on_insert", "plan_statement"]

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Recognize single-partition point procedures and bind them to the compiled fast path.

A SQL procedure qualifies when it is partitioned, its one statement is

- ``SELECT cols FROM t WHERE pk1 = ? AND ...`` (every primary-key column pinned by a
  parameter, nothing else: no joins, aggregates, ORDER BY, LIMIT, DISTINCT),
- ``INSERT|UPSERT INTO t [(cols)] VALUES (...)`` with parameters, literals and defaults, or
- ``DELETE FROM t WHERE pk1 = ? AND ...``,

on a partitioned table without materialized views, routed by the parameter that feeds the
partition column. Anything else runs on the general SQL path; both give the same answers
(tests/test_fastpath.py checks this).
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from voltdb_py.catalog.model import Catalog, Procedure, Table
from voltdb_py.engine import _engine
from voltdb_py.errors import VoltError
from voltdb_py.sql.planner import _preprocess as preprocess_sql
from voltdb_py.types import VoltType, coerce

def _param_index(node: exp.Expression) -> int:
    return int(node.name[1:])


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _pk_params(table: Table, where: exp.Expression | None) -> dict | None:
    """Map primary-key column -> parameter index when where is exactly pk1 = ? AND ..."""
    if where is None or not table.primary_key:
        return None
    found: dict[str, int] = {}
    for term in _conjuncts(where.this):
        if not isinstance(term, exp.EQ):
            return None
        left, right = term.this, term.expression
        if isinstance(left, exp.Placeholder):
            left, right = right, left
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Placeholder)):
            return None
        if left.table and left.table.upper() != table.name:
            return None
        name = left.name.upper()
        if name in found or name not in table.primary_key:
            return None
        found[name] = _param_index(right)
    if set(found) != set(table.primary_key):
        return None
    return found


def _coerce_code(vtype: int, value: Any, size: int, in_bytes: bool, what: str) -> Any:
    """types.coerce for a type given by its wire code (the compiled path's slow branch)."""
    return coerce(VoltType(vtype), value, size, in_bytes, what)


def _spec(col: Any) -> tuple[int, int, bool]:
    return (int(col.vtype), col.size, col.in_bytes)


def compile_point_procedure(catalog: Catalog, proc: Procedure, plan: Any, schema: Any,
                            stores: list, hashinator: Any, param_error: type) -> Any:
    """Return a compiled PointProcedure for proc, or None when it does not qualify."""
    if not proc.single_partition or proc.sql is None:
        return None
    sql = proc.sql.strip().rstrip(";")
    if ":" in sql:
        return None
    try:
        # The planner's own rewrite: ? -> :pN, UPSERT -> INSERT, X'..' -> UNHEX('..').
        sql, nparams, upsert = preprocess_sql(sql)
    except VoltError:
        return None
    try:
        tree = sqlglot.parse_one(sql)
    except sqlglot.errors.ParseError:
        return None
    placeholders = list(tree.find_all(exp.Placeholder))
    if sorted(_param_index(p) for p in placeholders) != list(range(nparams)):
        return None
    table_node = tree.find(exp.Table)
    if table_node is None or len(list(tree.find_all(exp.Table))) != 1:
        return None
    table = catalog.tables.get(table_node.name.upper())
    if table is None or not table.partitioned or table.partition_column is None or \
            table.is_view:
        return None
    if any(t.view is not None and t.view.source == table.name
           for t in catalog.tables.values()):
        return None
    if proc.partition_table != table.name or proc.partition_column != table.partition_column:
        return None
    part_col = table.column(table.partition_column)
    specs: list[Any] = [None] * nparams
    if isinstance(tree, (exp.Select, exp.Delete)):
        if isinstance(tree, exp.Select):
            for arg in ("joins", "group", "having", "order", "limit", "offset", "distinct",
                        "with"):
                if tree.args.get(arg):
                    return None
        pk = _pk_params(table, tree.args.get("where"))
        if pk is None or len(pk) != nparams:
            return None
        for name, i in pk.items():
            specs[i] = _spec(table.column(name))
        key_params = tuple(pk[name] for name in table.primary_key)
        part_param = pk[table.partition_column]
        projection: tuple = ()
        kind = _engine.FP_DELETE
        if isinstance(tree, exp.Select):
            kind = _engine.FP_GET
            positions = []
            for e in tree.expressions:
                if isinstance(e, exp.Star):
                    positions.extend(range(len(table.columns)))
                elif isinstance(e, exp.Column) and not (e.table and
                                                        e.table.upper() != table.name):
                    try:
                        positions.append(table.column_index(e.name))
                    except KeyError:
                        return None
                elif isinstance(e, exp.Alias) and isinstance(e.this, exp.Column):
                    try:
                        positions.append(table.column_index(e.this.name))
                    except KeyError:
                        return None
                else:
                    return None
            if any(table.columns[p].vtype is VoltType.TIMESTAMP for p in positions):
                return None  # results need the client-side datetime conversion
            projection = tuple(positions)
        row_sources: tuple = ()
        row_defaults: tuple = ()
    elif isinstance(tree, exp.Insert):
        target = tree.this
        if isinstance(target, exp.Schema):
            names = [i.name.upper() for i in target.expressions]
        else:
            names = [c.name for c in table.columns]
        values = tree.expression
        if not isinstance(values, exp.Values) or len(values.expressions) != 1:
            return None
        items = values.expressions[0].expressions
        if len(items) != len(names) or len(set(names)) != len(names):
            return None
        by_name = dict(zip(names, items))
        sources, defaults = [], []
        for col in table.columns:
            item = by_name.pop(col.name, None)
            if item is None:
                if getattr(col, "default_now", False) or (not col.has_default
                                                          and not col.nullable):
                    return None
                sources.append(-1)
                defaults.append(col.default if col.has_default else None)
            elif isinstance(item, exp.Placeholder):
                i = _param_index(item)
                sources.append(i)
                defaults.append(None)
                specs[i] = _spec(col)
            elif isinstance(item, exp.Unhex) and isinstance(item.this, exp.Literal):
                try:
                    defaults.append(coerce(col.vtype, bytes.fromhex(item.this.this), col.size,
                                           col.in_bytes))
                except (ValueError, VoltError):
                    return None
                sources.append(-1)
            elif isinstance(item, (exp.Literal, exp.Null, exp.Neg)):
                try:
                    lit = None if isinstance(item, exp.Null) else \
                        (item.this if isinstance(item, exp.Literal) and item.is_string
                         else item.sql())
                    defaults.append(coerce(col.vtype, lit, col.size, col.in_bytes))
                except VoltError:
                    return None
                sources.append(-1)
            else:
                return None
        if by_name or any(s is None for s in specs):
            return None
        part_param = sources[table.column_index(table.partition_column)]
        if part_param < 0:
            return None
        kind = _engine.FP_UPSERT if upsert else _engine.FP_INSERT
        if upsert and not table.primary_key:
            return None
        key_params, projection = (), ()
        row_sources, row_defaults = tuple(sources), tuple(defaults)
    else:
        return None
    if part_param != proc.partition_parameter or specs[part_param][0] != int(part_col.vtype):
        return None
    if getattr(plan, "param_count", nparams) != nparams:
        return None
    return _engine.PointProcedure(
        kind, schema, stores, hashinator, int(part_col.vtype), part_param, tuple(specs),
        key_params, row_sources, row_defaults, projection, _coerce_code, param_error)

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Materialized view maintenance (VoltDB's views: SELECT g.., COUNT(*), aggs FROM t GROUP BY g..).

A view table's columns are its GROUP BY columns, then one column per aggregate of its
``ViewDef.aggregates`` ((function, source column or None) with function COUNT, SUM, MIN,
MAX). View rows live in the same store as their source's rows. Maintenance after a write
of the source (the store already holds the new state):

- insert: COUNT(*)/COUNT(col)/SUM/MIN/MAX incremental, the group row created if missing;
- delete: COUNT decremented, SUM subtracted; a MIN/MAX whose removed value was the
  current extreme (or a SUM that may become NULL) is recomputed from the group's source
  rows; the view row is deleted when COUNT(*) reaches 0 (or the group has no row left);
- update: removal from the old group then addition to the new one.

``maintain_views_on_insert(ctx, table_id, row)`` / ``maintain_views_on_delete(ctx,
table_id, row)`` do the same for rows written by streaming (import/delete_range) through
``ctx`` (an ExecutionContext whose store is the partition concerned).
"""

from __future__ import annotations

from voltdb_py.errors import SQLError
from voltdb_py.types import coerce

_RECOMPUTE = object()


class _ViewInfo:
    __slots__ = ("view", "source", "gpos", "aggs", "ng", "count_star", "pk_is_group", "where")

    def __init__(self, ctx, view):
        vd = view.view
        src = ctx.table(vd.source)
        self.view = view
        self.source = src
        self.gpos = [src.column_index(g) for g in vd.group_by]
        self.ng = len(self.gpos)
        self.aggs = [(f.upper(), None if c is None else src.column_index(c)) for f, c in vd.aggregates]
        if len(view.columns) != self.ng + len(self.aggs):
            raise SQLError(f"view {view.name} has {len(view.columns)} columns for "
                           f"{self.ng} groups and {len(self.aggs)} aggregates")
        self.count_star = next((self.ng + i for i, (f, c) in enumerate(self.aggs)
                                if f == "COUNT" and c is None), None)
        self.where = None
        wsql = getattr(vd, "where", None)
        if wsql:
            import sqlglot
            from voltdb_py.sql.expressions import Compiler, Env, Scope, Source
            pred = Compiler(Scope([Source(src.name, src, 0)])).compile(sqlglot.parse_one(wsql)).fn
            env = Env([], getattr(ctx, "txn_timestamp_us", 0))
            self.where = lambda row: pred(row, env) is True
        self.pk_is_group = bool(view.primary_key) and \
            [view.column_index(n) for n in view.primary_key] == list(range(self.ng)) and self.ng > 0


def _info(ctx, view) -> _ViewInfo:
    cache = ctx.__dict__.setdefault("_view_info", {})
    vi = cache.get(view.name)
    if vi is None:
        vi = cache[view.name] = _ViewInfo(ctx, view)
    return vi


def _find(ctx, vi, group):
    store = ctx.store_for(vi.view.name)
    schema = ctx.schema(vi.view.name)
    if vi.pk_is_group and all(g is not None for g in group):
        row = store.get(ctx.txn, schema, list(group))
        if row is None:
            return None, None
        # the row key is needed to update: find it by a scan of the pk index when present
        for rk, r in _scan_group(ctx, vi, store, schema, group):
            return rk, r
        return None, None
    for rk, r in _scan_group(ctx, vi, store, schema, group):
        return rk, r
    return None, None


def _scan_group(ctx, vi, store, schema, group):
    if vi.pk_is_group:
        for ix_id, cols, _u in schema.indexes:
            if list(cols[:vi.ng]) == list(range(vi.ng)):
                for rk, r in store.index_scan(ctx.txn, schema, ix_id, tuple(group), True,
                                              tuple(group), True):
                    if tuple(r[:vi.ng]) == tuple(group):
                        yield rk, r
                return
    for rk, r in store.scan(ctx.txn, schema):
        if tuple(r[:vi.ng]) == tuple(group):
            yield rk, r


def _write(ctx, vi, rk, old_row, new_vals):
    view = vi.view
    new_row = tuple(coerce(c.vtype, v, c.size, c.in_bytes, what=f"view column {c.name}")
                    for c, v in zip(view.columns, new_vals))
    store = ctx.store_for(view.name)
    schema = ctx.schema(view.name)
    if rk is None:
        store.insert(ctx.txn, schema, new_row)
    elif new_row != old_row:
        store.update(ctx.txn, schema, rk, new_row)


def _add(vals, vi, row):
    for i, (f, c) in enumerate(vi.aggs):
        j = vi.ng + i
        if c is None:
            vals[j] = (vals[j] or 0) + 1
            continue
        v = row[c]
        if f == "COUNT":
            vals[j] = (vals[j] or 0) + (v is not None)
        elif v is None:
            continue
        elif f == "SUM":
            vals[j] = v if vals[j] is None else vals[j] + v
        elif f == "MIN":
            vals[j] = v if vals[j] is None or v < vals[j] else vals[j]
        elif f == "MAX":
            vals[j] = v if vals[j] is None or v > vals[j] else vals[j]
        else:
            raise SQLError(f"unsupported view aggregate {f}")


def _remove(vals, vi, row):
    """Remove row's contribution; return False when a recompute is needed."""
    count_cols = {c for f, c in vi.aggs if f == "COUNT" and c is not None}
    for i, (f, c) in enumerate(vi.aggs):
        j = vi.ng + i
        if c is None:
            vals[j] -= 1
            continue
        v = row[c]
        if f == "COUNT":
            vals[j] -= v is not None
        elif v is None:
            continue
        elif f == "SUM":
            if c not in count_cols:
                return False
            vals[j] = vals[j] - v
        elif v == vals[j]:          # MIN/MAX lost its extreme
            return False
    # SUM may become NULL: decided by the COUNT of its column
    for i, (f, c) in enumerate(vi.aggs):
        if f == "SUM" and c in count_cols:
            k = next(vi.ng + n for n, (g, d) in enumerate(vi.aggs) if g == "COUNT" and d == c)
            if vals[k] == 0:
                vals[vi.ng + i] = None
    return True


def _recompute(ctx, vi, group):
    store = ctx.store_for(vi.source.name)
    schema = ctx.schema(vi.source.name)
    vals = list(group) + [None] * len(vi.aggs)
    n = 0
    for _rk, r in store.scan(ctx.txn, schema):
        if tuple(r[p] for p in vi.gpos) == tuple(group) and (vi.where is None or vi.where(r)):
            n += 1
            _add(vals, vi, r)
    for i, (f, c) in enumerate(vi.aggs):
        if f == "COUNT" and vals[vi.ng + i] is None:
            vals[vi.ng + i] = 0
    rk, old = _find(ctx, vi, group)
    if n == 0:
        if rk is not None:
            ctx.store_for(vi.view.name).delete(ctx.txn, ctx.schema(vi.view.name), rk)
        return
    _write(ctx, vi, rk, old, vals)


def _group(vi, row):
    return tuple(row[p] for p in vi.gpos)


def view_insert(ctx, view, row):
    vi = _info(ctx, view)
    if vi.where is not None and not vi.where(row):
        return
    g = _group(vi, row)
    rk, old = _find(ctx, vi, g)
    vals = list(old) if old is not None else list(g) + [None] * len(vi.aggs)
    _add(vals, vi, row)
    for i, (f, c) in enumerate(vi.aggs):
        if f == "COUNT" and vals[vi.ng + i] is None:
            vals[vi.ng + i] = 0
    _write(ctx, vi, rk, old, vals)


def view_delete(ctx, view, row):
    vi = _info(ctx, view)
    if vi.where is not None and not vi.where(row):
        return
    g = _group(vi, row)
    rk, old = _find(ctx, vi, g)
    if old is None:
        _recompute(ctx, vi, g)
        return
    vals = list(old)
    if vi.count_star is None or not _remove(vals, vi, row):
        _recompute(ctx, vi, g)
        return
    if vals[vi.count_star] <= 0:
        ctx.store_for(view.name).delete(ctx.txn, ctx.schema(view.name), rk)
        return
    _write(ctx, vi, rk, old, vals)


def view_update(ctx, view, old_row, new_row):
    vi = _info(ctx, view)
    g_old, g_new = _group(vi, old_row), _group(vi, new_row)
    if vi.where is not None and not (vi.where(old_row) and vi.where(new_row)):
        view_delete(ctx, view, old_row)
        view_insert(ctx, view, new_row)
        return
    if g_old != g_new:
        view_delete(ctx, view, old_row)
        view_insert(ctx, view, new_row)
        return
    rk, old = _find(ctx, vi, g_old)
    if old is None or vi.count_star is None:
        _recompute(ctx, vi, g_old)
        return
    vals = list(old)
    if not _remove(vals, vi, old_row):
        _recompute(ctx, vi, g_old)       # the store already holds new_row
        return
    _add(vals, vi, new_row)
    _write(ctx, vi, rk, old, vals)


def _views_by_id(ctx, table_id):
    for t in ctx.catalog.tables.values():
        if t.table_id == table_id:
            return ctx.views_of(t.name)
    return []


def maintain_views_on_insert(ctx, table_id: int, row: tuple) -> None:
    """After a row of table table_id was added to ctx's store (streaming import)."""
    for v in _views_by_id(ctx, table_id):
        view_insert(ctx, v, tuple(row))


def maintain_views_on_delete(ctx, table_id: int, row: tuple) -> None:
    """After a row of table table_id was removed from ctx's store (streaming delete)."""
    for v in _views_by_id(ctx, table_id):
        view_delete(ctx, v, tuple(row))

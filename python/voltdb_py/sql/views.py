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

The per-view facts (group/aggregate positions, column coercions, compiled WHERE) are a
:class:`ViewInfo`, built once per catalog (statements hold theirs, see context.TableWriter).

``maintain_views_on_insert(ctx, table_id, row)`` / ``maintain_views_on_delete(ctx,
table_id, row)`` do the same for rows written by streaming (import/delete_range) through
``ctx`` (an ExecutionContext whose store is the partition concerned).
"""

from __future__ import annotations

from voltdb_py.errors import SQLError
from voltdb_py.types import coerce


def passthrough(vtype, size=0, in_bytes=False):
    """A cheap test ``check(v)`` that is True only when ``coerce(vtype, v, size, in_bytes)``
    would return v itself (so the coercion can be skipped), or None when there is none."""
    from voltdb_py.types import INT_RANGES, NULL_FLOAT, VoltType
    import math
    if vtype in INT_RANGES:
        lo, hi = INT_RANGES[vtype]
        return lambda v: type(v) is int and lo <= v <= hi
    if vtype is VoltType.STRING:
        if not size:
            return lambda v: type(v) is str
        if in_bytes:
            quarter = size // 4
            return lambda v: type(v) is str and (len(v) <= quarter or len(v.encode("utf-8")) <= size)
        return lambda v: type(v) is str and len(v) <= size
    if vtype is VoltType.VARBINARY:
        if not size:
            return lambda v: type(v) is bytes
        return lambda v: type(v) is bytes and len(v) <= size
    if vtype is VoltType.FLOAT:
        isfinite = math.isfinite
        return lambda v: type(v) is float and v > NULL_FLOAT and isfinite(v)
    return None


def column_coercer(col, what):
    """f(v) -> coerce(col type, v) with the identity case made cheap."""
    check = passthrough(col.vtype, col.size, col.in_bytes)
    vt, size, in_bytes = col.vtype, col.size, col.in_bytes
    if check is None:
        return lambda v: coerce(vt, v, size, in_bytes, what=what)
    return lambda v: v if v is None or check(v) else coerce(vt, v, size, in_bytes, what=what)


class ViewInfo:
    """A materialized view's maintenance plan (from the catalog, reusable across txns)."""

    __slots__ = ("view", "source", "gpos", "aggs", "ng", "count_star", "pk_is_group", "where",
                 "partitioned", "coercers", "count_cols", "sum_count", "group_of", "index_id")

    def __init__(self, catalog, view):
        from voltdb_py.sql.context import stored_partitioned
        vd = view.view
        src = catalog.tables.get(vd.source.upper())
        if src is None:
            raise SQLError(f"object not found: table {vd.source.upper()} (source of view {view.name})")
        self.view = view
        self.source = src
        self.partitioned = stored_partitioned(catalog, view)
        self.gpos = [src.column_index(g) for g in vd.group_by]
        self.ng = len(self.gpos)
        self.aggs = [(f.upper(), None if c is None else src.column_index(c)) for f, c in vd.aggregates]
        if len(view.columns) != self.ng + len(self.aggs):
            raise SQLError(f"view {view.name} has {len(view.columns)} columns for "
                           f"{self.ng} groups and {len(self.aggs)} aggregates")
        self.count_star = next((self.ng + i for i, (f, c) in enumerate(self.aggs)
                                if f == "COUNT" and c is None), None)
        self.count_cols = {c for f, c in self.aggs if f == "COUNT" and c is not None}
        # SUM position -> position of the COUNT of the same column (decides NULL)
        self.sum_count = {}
        for i, (f, c) in enumerate(self.aggs):
            if f == "SUM" and c in self.count_cols:
                self.sum_count[self.ng + i] = next(self.ng + n for n, (g, d) in enumerate(self.aggs)
                                                   if g == "COUNT" and d == c)
        self.where = None
        wsql = getattr(vd, "where", None)
        if wsql:
            import sqlglot
            from voltdb_py.sql.expressions import Compiler, Env, Scope, Source
            pred = Compiler(Scope([Source(src.name, src, 0)])).compile(sqlglot.parse_one(wsql)).fn
            self.where = lambda row, ctx: pred(row, Env([], getattr(ctx, "txn_timestamp_us", 0))) is True
        self.pk_is_group = bool(view.primary_key) and \
            [view.column_index(n) for n in view.primary_key] == list(range(self.ng)) and self.ng > 0
        self.index_id = None
        if self.pk_is_group:
            for ix in view.indexes:
                cols = [view.column_index(n) for n in ix.columns]
                if cols[:self.ng] == list(range(self.ng)):
                    self.index_id = ix.index_id
                    break
        self.coercers = [column_coercer(c, f"view column {c.name}") for c in view.columns]
        gpos = self.gpos
        if self.ng == 1:
            p0 = gpos[0]
            self.group_of = lambda row: (row[p0],)
        else:
            self.group_of = lambda row: tuple([row[p] for p in gpos])

    # store access -------------------------------------------------------------------
    def store(self, ctx):
        store = ctx.store if self.partitioned else ctx.rep_store
        if store is None:
            raise SQLError(f"no store for view {self.view.name} in this context")
        return store

    def find(self, ctx, group):
        """(rowkey, row) of the view row of group, or (None, None)."""
        store = self.store(ctx)
        schema = ctx.schema_of(self.view)
        if self.pk_is_group and None not in group:
            get_key = getattr(store, "get_key", None)
            if get_key is not None:
                hit = get_key(ctx.txn, schema, group)
                return (None, None) if hit is None else hit
        for rk, r in self._scan_group(ctx, store, schema, group):
            return rk, r
        return None, None

    def _scan_group(self, ctx, store, schema, group):
        ng = self.ng
        if self.index_id is not None:
            it = store.index_scan(ctx.txn, schema, self.index_id, group, True, group, True)
        else:
            it = store.scan(ctx.txn, schema)
        for rk, r in it:
            if tuple(r[:ng]) == group:
                yield rk, r

    def write(self, ctx, rk, old_row, vals):
        new_row = tuple([f(v) for f, v in zip(self.coercers, vals)])
        if rk is None:
            self.store(ctx).insert(ctx.txn, ctx.schema_of(self.view), new_row)
        elif new_row != old_row:
            self.store(ctx).update(ctx.txn, ctx.schema_of(self.view), rk, new_row)

    # aggregate arithmetic -----------------------------------------------------------
    def add(self, vals, row):
        ng = self.ng
        for i, (f, c) in enumerate(self.aggs):
            j = ng + i
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

    def remove(self, vals, row):
        """Remove row's contribution; return False when a recompute is needed."""
        count_cols = self.count_cols
        ng = self.ng
        for i, (f, c) in enumerate(self.aggs):
            j = ng + i
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
        for j, k in self.sum_count.items():
            if vals[k] == 0:
                vals[j] = None
        return True

    def _zero_counts(self, vals):
        ng = self.ng
        for i, (f, _c) in enumerate(self.aggs):
            if f == "COUNT" and vals[ng + i] is None:
                vals[ng + i] = 0

    def recompute(self, ctx, group):
        src = self.source
        store = ctx.store if self.partitioned else ctx.rep_store
        schema = ctx.schema_of(src)
        vals = list(group) + [None] * len(self.aggs)
        n = 0
        group_of = self.group_of
        where = self.where
        for _rk, r in store.scan(ctx.txn, schema):
            if group_of(r) == group and (where is None or where(r, ctx)):
                n += 1
                self.add(vals, r)
        self._zero_counts(vals)
        rk, old = self.find(ctx, group)
        if n == 0:
            if rk is not None:
                self.store(ctx).delete(ctx.txn, ctx.schema_of(self.view), rk)
            return
        self.write(ctx, rk, old, vals)

    # maintenance --------------------------------------------------------------------
    def insert(self, ctx, row):
        if self.where is not None and not self.where(row, ctx):
            return
        g = self.group_of(row)
        rk, old = self.find(ctx, g)
        vals = list(old) if old is not None else list(g) + [None] * len(self.aggs)
        self.add(vals, row)
        self._zero_counts(vals)
        self.write(ctx, rk, old, vals)

    def delete(self, ctx, row):
        if self.where is not None and not self.where(row, ctx):
            return
        g = self.group_of(row)
        rk, old = self.find(ctx, g)
        if old is None:
            self.recompute(ctx, g)
            return
        vals = list(old)
        if self.count_star is None or not self.remove(vals, row):
            self.recompute(ctx, g)
            return
        if vals[self.count_star] <= 0:
            self.store(ctx).delete(ctx.txn, ctx.schema_of(self.view), rk)
            return
        self.write(ctx, rk, old, vals)

    def update(self, ctx, old_row, new_row):
        g_old, g_new = self.group_of(old_row), self.group_of(new_row)
        if self.where is not None and not (self.where(old_row, ctx) and self.where(new_row, ctx)):
            self.delete(ctx, old_row)
            self.insert(ctx, new_row)
            return
        if g_old != g_new:
            self.delete(ctx, old_row)
            self.insert(ctx, new_row)
            return
        rk, old = self.find(ctx, g_old)
        if old is None or self.count_star is None:
            self.recompute(ctx, g_old)
            return
        vals = list(old)
        if not self.remove(vals, old_row):
            self.recompute(ctx, g_old)       # the store already holds new_row
            return
        self.add(vals, new_row)
        self.write(ctx, rk, old, vals)

    # reading: the merge of partial groups (a view of a partitioned table not grouped by
    # its partition column holds one partial row per group in every partition) -----------
    def merge_rows(self, row_lists):
        """One row per group from the partial rows of several partitions."""
        ng = self.ng
        if ng == 0:
            key_of = lambda r: ()                               # noqa: E731
        else:
            key_of = lambda r: r[:ng]                           # noqa: E731
        merged: dict = {}
        funcs = [f for f, _c in self.aggs]
        for rows in row_lists:
            for r in rows:
                k = key_of(r)
                cur = merged.get(k)
                if cur is None:
                    merged[k] = list(r)
                    continue
                for i, f in enumerate(funcs):
                    j = ng + i
                    a, b = cur[j], r[j]
                    if b is None:
                        continue
                    if a is None:
                        cur[j] = b
                    elif f in ("COUNT", "SUM"):
                        cur[j] = a + b
                    elif f == "MIN":
                        if b < a:
                            cur[j] = b
                    elif b > a:
                        cur[j] = b
        return [tuple(v) for v in merged.values()]


def is_partial_view(catalog, table) -> bool:
    """A view of a partitioned table whose GROUP BY lacks the source's partition column:
    every partition holds partial groups, to re-aggregate for a multi-partition read."""
    vd = table.view
    if vd is None:
        return False
    src = catalog.tables.get(vd.source.upper())
    if src is None or not src.partitioned:
        return False
    pc = (src.partition_column or "").upper()
    return not pc or pc not in [g.upper() for g in vd.group_by]


def _info(ctx, view) -> ViewInfo:
    cache = ctx._view_info
    vi = cache.get(view.name)
    if vi is None or vi.view is not view:
        vi = cache[view.name] = ViewInfo(ctx.catalog, view)
    return vi


def view_insert(ctx, view, row):
    _info(ctx, view).insert(ctx, row)


def view_delete(ctx, view, row):
    _info(ctx, view).delete(ctx, row)


def view_update(ctx, view, old_row, new_row):
    _info(ctx, view).update(ctx, old_row, new_row)


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

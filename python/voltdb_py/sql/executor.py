# SPDX-License-Identifier: AGPL-3.0-or-later
"""Statements: run_fragment(ctx, params) on one partition, merge(results) on the coordinator.

Fragment results are plain picklable data:

- SELECT without aggregates: ``("rows", rows, limit, offset)`` where rows hold the output
  columns plus hidden ORDER BY keys;
- SELECT with aggregates: ``("groups", {group key: [partial states]}, limit, offset)``;
- DML: ``("count", n)``.

``merge`` returns a VoltTable whose rows hold internal values (TIMESTAMP as int
microseconds; see types.to_client_value for the client form). DML returns VoltDB's
"modified_tuples" table: one BIGINT column, one row.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from typing import Any

from voltdb_py.errors import ConstraintError, MispartitionedError, SQLError, VoltError
from voltdb_py.sql.expressions import Env, sort_key
from voltdb_py.sql.views import column_coercer, passthrough
from voltdb_py.types import Column as RColumn, VoltTable, VoltType, coerce, decimal_value

MODIFIED = [RColumn("modified_tuples", VoltType.BIGINT)]


@dataclass
class AccessPath:
    kind: str                      # "pk" (store.get), "index" (index_scan), "scan"
    index: Any                     # catalog Index for "index"
    eq: list                       # CExpr per leading (equality) key column
    lo: Any                        # (CExpr, inclusive) on the next key column, or None
    hi: Any
    cols: list                     # key column positions in the table
    used: list = field(default_factory=list)   # conjunct indexes a "pk" path fully answers
    partitioned: bool = True       # rows in the partition store (else the replicated one)
    mem: int = -1                  # "mem" paths: index of the shipped rows (partial views)


class _NoRows(Exception):
    pass


class _Fallback(Exception):
    pass


def _key_value(col, v):
    if v is None:
        raise _NoRows
    try:
        return coerce(col.vtype, v, 0, False)
    except VoltError:
        raise _Fallback from None


def _index_id(schema, cols):
    for ix_id, icols, _u in getattr(schema, "indexes", ()):
        if list(icols) == list(cols):
            return ix_id
    return None


def access(ctx, src, path, prefix, env):
    """Iterate (rowkey, row) of one source, narrowed by path (filters re-checked later)."""
    t = src.table
    if path.kind == "mem":
        return iter(ctx.mem[path.mem])
    store = ctx.store if path.partitioned else ctx.rep_store
    if store is None:
        raise SQLError(f"no store for table {t.name} in this context")
    schema = ctx.schema_of(t)
    try:
        if path.kind == "pk":
            key = [_key_value(t.columns[c], ce.fn(prefix, env)) for c, ce in zip(path.cols, path.eq)]
            row = store.get(ctx.txn, schema, key)
            return iter([] if row is None else [(None, row)])
        if path.kind == "index":
            eq = [_key_value(t.columns[c], ce.fn(prefix, env)) for c, ce in zip(path.cols, path.eq)]
            ix_id = path.index.index_id
            nxt = path.cols[len(eq)] if len(eq) < len(path.cols) else None
            lo = hi = tuple(eq) if eq else None
            lo_inc = hi_inc = True
            if path.lo is not None:
                lo = tuple(eq) + (_key_value(t.columns[nxt], path.lo[0].fn(prefix, env)),)
                lo_inc = path.lo[1]
            if path.hi is not None:
                hi = tuple(eq) + (_key_value(t.columns[nxt], path.hi[0].fn(prefix, env)),)
                hi_inc = path.hi[1]
            if lo is None and hi is None:
                return store.scan(ctx.txn, schema)
            return store.index_scan(ctx.txn, schema, ix_id, lo, lo_inc, hi, hi_inc)
    except _NoRows:
        return iter(())
    except _Fallback:
        pass
    return store.scan(ctx.txn, schema)


def _coerce_params(stmt, params):
    params = list(params or ())
    if len(params) != stmt.param_count:
        raise SQLError(f"statement {stmt.sql!r} expects {stmt.param_count} parameter(s), "
                       f"got {len(params)}")
    checks = stmt._pchecks
    for i, v in enumerate(params):
        if v is not None:
            spec, check = checks[i]
            if spec is not None and (check is None or not check(v)):
                params[i] = coerce(spec[0], v, spec[1], False, what=f"parameter {i + 1}")
    return params


def _env(stmt, ctx, params):
    return Env(_coerce_params(stmt, params), getattr(ctx, "txn_timestamp_us", 0))


def _limit_value(spec, env):
    if spec is None:
        return None
    kind, v = spec
    if kind == "param":
        v = env.params[v]
        if v is None or v < 0:
            raise SQLError(f"LIMIT/OFFSET parameter must be a non-negative integer, got {v!r}")
    return v


def sort_rows(rows, sort):
    for idx, desc in reversed(sort):
        rows.sort(key=lambda r, i=idx: sort_key(r[i]), reverse=desc)
    return rows


def _dedupe(rows):
    seen = set()
    out = []
    for r in rows:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


class Statement:
    """Common attributes: see plan_statement."""

    sql: str = ""
    kind: str = ""
    param_count: int = 0
    param_types: list = []
    param_coerce: list = []
    read_only: bool = True
    tables_read: list = []
    tables_written: list = []
    partitioning: tuple = ("multi",)
    result_columns: list = []

    _pchecks: list = []

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    def prepare(self, catalog):
        """Plan-time precomputation (called by the planner once parameters are typed)."""
        self.catalog = catalog
        self._pchecks = [(spec, None if spec is None else passthrough(spec[0], spec[1]))
                         for spec in self.param_coerce]

    @property
    def is_single_partition(self) -> bool:
        return self.partitioning[0] == "single"

    def partition_value(self, params):
        """The pinning value for 'single' statements (from the parameters or constant)."""
        if self.partitioning[0] != "single":
            return None
        kind, v = self.partitioning[3]
        if kind == "const":
            return v
        val = list(params)[v]
        spec = self.param_coerce[v] if v < len(self.param_coerce) else None
        if spec is not None and val is not None:
            val = coerce(spec[0], val, 0, False, what=f"parameter {v + 1}")
        return val

    def execute(self, ctx, params=()):
        """Convenience: run on one context and merge (single-partition or replicated use)."""
        return self.merge([self.run_fragment(ctx, params)])

    def __repr__(self):
        return f"<{type(self).__name__} {self.kind} {self.sql!r} {self.partitioning}>"


# ------------------------------------------------------------------------------ SELECT

_EMPTY_ROWS = ("rows", [], None, None)


class SelectStatement(Statement):
    _point = None
    _whole_aggs = None
    _simple = False
    rest_filters = None
    out_cols = None

    def prepare(self, catalog):
        super().prepare(catalog)
        self._simple = (self.group_plan is None and not self.distinct and not self.sort
                        and self.limit is None and self.offset is None)
        self._point = None
        if self._simple and len(self.sources) == 1 and self.paths[0].kind == "pk" \
                and self.rest_filters is not None:
            self._point = self._plan_point()
        self._whole_aggs = self._plan_whole_table_aggregates()

    def _plan_whole_table_aggregates(self):
        """[(op, column)] when the statement aggregates one whole table without grouping.

        Such a fragment is answered by the engine's compiled scan_count/scan_aggregate,
        which read only the aggregated column of each row.
        """
        if self.group_plan is None or len(self.sources) != 1:
            return None
        gexprs, ascope, _hav = self.group_plan
        path = self.paths[0]
        if gexprs or path.kind != "scan" or any(self.level_filters[0]):
            return None
        ops = []
        for a in ascope.aggs:
            if a.distinct:
                return None
            if a.func == "COUNT_STAR":
                ops.append(("COUNT_STAR", -1))
            elif a.func in ("COUNT", "SUM", "MIN", "MAX") and a.arg is not None \
                    and a.arg.column is not None:
                col = self.sources[0].table.columns[a.arg.column]
                if a.func == "SUM" and col.vtype not in _SUMMABLE:
                    return None
                ops.append((a.func, a.arg.column))
            else:
                return None
        return ops

    def _run_whole_aggregates(self, ctx, params):
        path = self.paths[0]
        store = ctx.store if path.partitioned else ctx.rep_store
        if store is None or not hasattr(store, "scan_aggregate"):
            return None
        schema = ctx.schema(self.sources[0].table.name)
        txn = ctx.txn
        state = []
        for op, col in self._whole_aggs:
            if op == "COUNT_STAR":
                state.append(store.count(txn, schema))
            else:
                state.append(store.scan_aggregate(txn, schema, col, op))
        env = _env(self, ctx, params)
        return ("groups", {(): state}, _limit_value(self.limit, env),
                _limit_value(self.offset, env))

    def _plan_point(self):
        """Precompute the primary-key point lookup: (key spec, table, partitioned, getter)."""
        path = self.paths[0]
        t = self.sources[0].table
        keyspec = []
        nparams = 0
        for c, ce in zip(path.cols, path.eq):
            col = t.columns[c]
            kchk = passthrough(col.vtype)
            if kchk is None:
                return None
            if ce.param is not None:
                spec, pchk = self._pchecks[ce.param]
                if spec is not None and pchk is None:
                    return None
                chk = kchk if spec is None else (lambda v, a=kchk, b=pchk: a(v) and b(v))
                keyspec.append((ce.param, None, chk))
                nparams += 1
            elif ce.const:
                try:
                    v = ce.value()
                    v = None if v is None else coerce(col.vtype, v, 0, False)
                except VoltError:
                    return None
                keyspec.append((-1, v, None))
            else:
                return None
        if nparams != self.param_count:
            return None
        getter = None
        if self.out_cols is not None:
            cols = list(self.out_cols)
            if len(cols) == 1:
                c0 = cols[0]
                getter = lambda row: (row[c0],)                 # noqa: E731
            else:
                import operator
                getter = operator.itemgetter(*cols)
        return keyspec, t, self.paths[0].partitioned, getter

    def _run_point(self, ctx, params):
        """The point lookup without per-row machinery; None: use the general path."""
        keyspec, table, part, getter = self._point
        if len(params) != self.param_count:
            return None
        key = []
        missing = False
        for pi, const, chk in keyspec:
            if pi < 0:
                v = const
            else:
                v = params[pi]
                if v is not None and not chk(v):
                    return None
            if v is None:
                missing = True
            key.append(v)
        if missing:
            return _EMPTY_ROWS[0], [], None, None
        store = ctx.store if part else ctx.rep_store
        if store is None:
            return None
        row = store.get(ctx.txn, ctx.schema_of(table), key)
        if row is None:
            return "rows", [], None, None
        env = None
        rest = self.rest_filters
        if rest:
            env = Env(list(params), ctx.txn_timestamp_us)
            for f in rest:
                if f(row, env) is not True:
                    return "rows", [], None, None
        if getter is not None:
            return "rows", [getter(row)], None, None
        if env is None:
            env = Env(list(params), ctx.txn_timestamp_us)
        return "rows", [tuple([f(row, env) for f in self.outputs])], None, None

    def _rows(self, ctx, env):
        sources = self.sources
        if not sources:
            yield ()
            return
        paths = self.paths
        filters = self.level_filters
        last = len(sources) - 1

        def level(i, prefix):
            fl = filters[i]
            for _rk, row in access(ctx, sources[i], paths[i], prefix, env):
                full = prefix + row
                ok = True
                for f in fl:
                    if f(full, env) is not True:
                        ok = False
                        break
                if ok:
                    if i == last:
                        yield full
                    else:
                        yield from level(i + 1, full)
        yield from level(0, ())

    def run_fragment(self, ctx, params=()):
        if self._point is not None:
            res = self._run_point(ctx, params)
            if res is not None:
                return res
        if self._whole_aggs is not None:
            res = self._run_whole_aggregates(ctx, params)
            if res is not None:
                return res
        env = _env(self, ctx, params)
        limit = _limit_value(self.limit, env)
        offset = _limit_value(self.offset, env)
        if self.group_plan is None:
            outs = self.outputs
            rows = [tuple(f(r, env) for f in outs) for r in self._rows(ctx, env)]
            if not self.distinct and limit is not None:
                keep = limit + (offset or 0)
                if self.sort:
                    sort_rows(rows, self.sort)
                rows = rows[:keep]
            return ("rows", rows, limit, offset)
        gexprs, ascope, _hav = self.group_plan
        aggs = ascope.aggs
        groups: dict = {}
        gfns = [g.fn for g in gexprs]
        for r in self._rows(ctx, env):
            key = tuple(f(r, env) for f in gfns)
            st = groups.get(key)
            if st is None:
                st = groups[key] = [_agg_init(a) for a in aggs]
            for i, a in enumerate(aggs):
                st[i] = _agg_step(a, st[i], r, env)
        return ("groups", groups, limit, offset)

    def merge(self, results):
        if self._simple:
            if type(results) is not list:
                results = list(results)
            if len(results) == 1:
                return VoltTable(list(self.result_columns), results[0][1])
            rows = []
            for res in results:
                rows.extend(res[1])
            return VoltTable(list(self.result_columns), rows)
        results = list(results)
        limit = offset = None
        if results:
            limit, offset = results[0][2], results[0][3]
        if self.group_plan is None:
            rows = []
            for res in results:
                rows.extend(res[1])
        else:
            gexprs, ascope, hav = self.group_plan
            aggs = ascope.aggs
            merged: dict = {}
            for res in results:
                for key, st in res[1].items():
                    cur = merged.get(key)
                    if cur is None:
                        merged[key] = list(st)
                    else:
                        for i, a in enumerate(aggs):
                            cur[i] = _agg_merge(a, cur[i], st[i])
            if not merged and not gexprs:
                merged[()] = [_agg_init(a) for a in aggs]
            env = Env([], 0)
            rows = []
            outs = self.outputs
            for key, st in merged.items():
                grow = key + tuple(_agg_final(a, s) for a, s in zip(aggs, st))
                if hav is not None and hav.fn(grow, env) is not True:
                    continue
                rows.append(tuple(f(grow, env) for f in outs))
        if self.distinct:
            rows = _dedupe(rows)
        if self.sort:
            sort_rows(rows, self.sort)
        if offset:
            rows = rows[offset:]
        if limit is not None:
            rows = rows[:limit]
        n = self.nvisible
        if any(len(r) != n for r in rows):
            rows = [r[:n] for r in rows]
        return VoltTable(list(self.result_columns), rows)


class _MemContext:
    """What the coordinator part of a PartialViewSelect runs against: shipped rows."""

    __slots__ = ("mem", "txn_timestamp_us")

    def __init__(self, mem, now):
        self.mem = mem
        self.txn_timestamp_us = now


class PartialViewSelect(Statement):
    """A SELECT reading a view whose groups are split over partitions (see
    planner._partial_view_select). Fragment result: ``("mv", [rows per source], params,
    now)``; merge re-aggregates the partial groups and runs ``inner`` over the merged rows."""

    def prepare(self, catalog):
        super().prepare(catalog)

    def run_fragment(self, ctx, params=()):
        env = _env(self, ctx, params)
        out = []
        for single, path, fns, _vi, _part in self.frags:
            rows = []
            for _rk, row in access(ctx, single, path, (), env):
                for f in fns:
                    if f(row, env) is not True:
                        break
                else:
                    rows.append(row)
            out.append(rows)
        return ("mv", out, env.params, env.now)

    def merge(self, results):
        results = list(results)
        params = results[0][2] if results else [None] * self.param_count
        now = results[0][3] if results else 0
        mem = []
        for i, (_single, _path, _fns, vi, part) in enumerate(self.frags):
            if vi is not None:
                rows = vi.merge_rows([r[1][i] for r in results])
            elif part:
                rows = [row for r in results for row in r[1][i]]
            else:
                rows = results[0][1][i] if results else []
            mem.append([(None, row) for row in rows])
        inner = self.inner
        return inner.merge([inner.run_fragment(_MemContext(mem, now), params)])


_SUMMABLE = frozenset({VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER, VoltType.BIGINT,
                       VoltType.FLOAT, VoltType.DECIMAL})


def _agg_init(a):
    if a.distinct:
        return set()
    if a.func in ("COUNT", "COUNT_STAR"):
        return 0
    if a.func == "AVG":
        return [None, 0]
    return None


def _agg_step(a, st, row, env):
    f = a.func
    if f == "COUNT_STAR":
        return st + 1
    v = a.arg.fn(row, env)
    if v is None:
        return st
    if a.distinct:
        st.add(v)
        return st
    if f == "COUNT":
        return st + 1
    if f == "SUM":
        return v if st is None else _add(st, v)
    if f == "MIN":
        return v if st is None or v < st else st
    if f == "MAX":
        return v if st is None or v > st else st
    # AVG
    st[0] = v if st[0] is None else _add(st[0], v)
    st[1] += 1
    return st


def _add(a, b):
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        if isinstance(a, float) or isinstance(b, float):
            return float(a) + float(b)
        return decimal_value(decimal.Decimal(a) + decimal.Decimal(b))
    return a + b


def _agg_merge(a, x, y):
    if a.distinct:
        return x | y
    f = a.func
    if f in ("COUNT", "COUNT_STAR"):
        return x + y
    if y is None:
        return x
    if x is None:
        return y
    if f == "SUM":
        return _add(x, y)
    if f == "MIN":
        return y if y < x else x
    if f == "MAX":
        return y if y > x else x
    if y[0] is None:
        return x
    if x[0] is None:
        return y
    return [_add(x[0], y[0]), x[1] + y[1]]


def _avg(total, n, vtype):
    if total is None or n == 0:
        return None
    if isinstance(total, int):
        q = abs(total) // n
        return q if total >= 0 else -q
    if isinstance(total, decimal.Decimal):
        return decimal_value(total / n)
    return total / n


def _agg_final(a, st):
    f = a.func
    if a.distinct:
        vals = list(st)
        if f == "COUNT":
            return len(vals)
        if not vals:
            return None
        if f == "SUM":
            t = vals[0]
            for v in vals[1:]:
                t = _add(t, v)
            return t
        if f == "MIN":
            return min(vals)
        if f == "MAX":
            return max(vals)
        t = vals[0]
        for v in vals[1:]:
            t = _add(t, v)
        return _avg(t, len(vals), a.vtype)
    if f == "AVG":
        return _avg(st[0], st[1], a.vtype)
    return st


# ------------------------------------------------------------------------------ DML

def _check_partition(stmt, ctx, table, row):
    pos = stmt._part_pos
    if pos is None:
        return True
    v = row[pos]
    owner = ctx.partition_for(table.name, v)
    if owner == ctx.partition_id:
        return True
    if stmt.partitioning[0] == "single":
        raise MispartitionedError(
            f"{stmt.kind.upper()} into {table.name}: partition column value {v!r} belongs to "
            f"partition {owner}, not to partition {ctx.partition_id}")
    return False


def _pk_rowkey(ctx, writer, pk, pk_values):
    """(rowkey, row) of the row with these primary-key values, or (None, None)."""
    table = writer.table
    schema = ctx.schema_of(table)
    store = writer.store(ctx)
    get_key = getattr(store, "get_key", None)
    if get_key is not None:
        hit = get_key(ctx.txn, schema, pk_values)
        return (None, None) if hit is None else hit
    if store.get(ctx.txn, schema, list(pk_values)) is None:
        return None, None
    ix = _index_id(schema, pk)
    it = (store.index_scan(ctx.txn, schema, ix, tuple(pk_values), True, tuple(pk_values), True)
          if ix is not None else store.scan(ctx.txn, schema))
    for rk, row in it:
        if tuple(row[i] for i in pk) == tuple(pk_values):
            return rk, row
    return None, None


class _DMLMerge:
    def merge(self, results):
        total = 0
        for res in results:
            total += res[1]
        return VoltTable(list(MODIFIED), [(total,)])


class _Writes(_DMLMerge, Statement):
    """DML statements: the written table's writer and column facts, made at plan time."""

    result_columns = MODIFIED

    def prepare(self, catalog):
        super().prepare(catalog)
        from voltdb_py.sql.context import TableWriter
        t = self.table
        self._writer = TableWriter(catalog, t)
        self._part_pos = (t.column_index(t.partition_column)
                          if t.partitioned and t.partition_column is not None else None)
        self._coercers = [column_coercer(c, f"value for column {c.name}") for c in t.columns]

    def writer(self, ctx):
        if ctx.catalog is self.catalog:
            return self._writer
        return ctx.writer(self.table.name)


class InsertStatement(_Writes):
    _fast = None

    def prepare(self, catalog):
        super().prepare(catalog)
        t = self.table
        self._pk = [t.column_index(c) for c in t.primary_key] if t.primary_key else None
        self._fast = self._plan_fast()

    def _plan_fast(self):
        """Per column: (param index, None) / (-1, constant) / (-2, None) for NOW, with the
        cheap check that the value needs no coercion; None when not possible."""
        specs = getattr(self, "value_specs", None)
        if self.select is not None or specs is None:
            return None
        given = dict(zip(self.cols, specs))
        out = []
        nparams = 0
        for i, c in enumerate(self.table.columns):
            if i in given:
                spec = given[i]
                if spec is None:
                    return None
                kind, v = spec
                if kind == "param":
                    pspec, pchk = self._pchecks[v]
                    cchk = passthrough(c.vtype, c.size, c.in_bytes)
                    if cchk is None or (pspec is not None and pchk is None):
                        return None
                    chk = cchk if pspec is None else (lambda x, a=cchk, b=pchk: a(x) and b(x))
                    out.append((v, None, chk, c.nullable))
                    nparams += 1
                    continue
                try:
                    v = coerce(c.vtype, v, c.size, c.in_bytes)
                except VoltError:
                    return None
            elif getattr(c, "default_now", False):
                out.append((-2, None, None, c.nullable))
                continue
            else:
                v = c.default if c.has_default else None
            if v is None and not c.nullable:
                return None
            out.append((-1, v, None, True))
        if nparams != self.param_count:
            return None
        return out

    def _fast_row(self, ctx, params):
        if len(params) != self.param_count:
            return None
        row = []
        for pi, v, chk, nullable in self._fast:
            if pi >= 0:
                v = params[pi]
                if v is None:
                    if not nullable:
                        return None
                elif not chk(v):
                    return None
            elif pi == -2:
                v = ctx.txn_timestamp_us
            row.append(v)
        return tuple(row)

    def _rows_to_write(self, ctx, env):
        if self.select is not None:
            sel = self.select
            frag = sel.run_fragment(ctx, env.params)
            for r in sel.merge([frag]).rows:
                yield r
        else:
            yield tuple(f((), env) for f in self.values)

    def _make_row(self, vals, now):
        """Full row from the given column values (coerced), defaults elsewhere."""
        t = self.table
        row = []
        given = dict(zip(self.cols, vals))
        coercers = self._coercers
        for i, c in enumerate(t.columns):
            if i in given:
                v = coercers[i](given[i])
            elif getattr(c, "default_now", False):
                v = now
            else:
                v = c.default if c.has_default else None
            if v is None and not c.nullable:
                why = "" if i in given else " (no value and no default)"
                raise ConstraintError(f"CONSTRAINT VIOLATION: column {c.name} of {t.name} "
                                      f"is NOT NULL{why}")
            row.append(v)
        return tuple(row)

    def _write(self, ctx, w, row):
        if self._part_pos is not None and not _check_partition(self, ctx, self.table, row):
            return 0
        if self.kind == "upsert":
            pk = self._pk
            rk, old = _pk_rowkey(ctx, w, pk, tuple([row[i] for i in pk]))
            if old is not None:
                if self.explicit_cols:
                    new = list(old)
                    for ci in self.cols:
                        new[ci] = row[ci]
                    new = tuple(new)
                else:
                    new = row
                w.update(ctx, rk, old, new)
                return 1
        w.insert(ctx, row)
        return 1

    def run_fragment(self, ctx, params=()):
        if self._fast is not None:
            row = self._fast_row(ctx, params)
            if row is not None:
                return "count", self._write(ctx, self.writer(ctx), row)
        env = _env(self, ctx, params)
        w = self.writer(ctx)
        n = 0
        rows = list(self._rows_to_write(ctx, env))
        for vals in rows:
            n += self._write(ctx, w, self._make_row(vals, env.now))
        return ("count", n)


class _Targeted(_Writes):

    def _matches(self, ctx, env):
        src = self.sources[0]
        out = []
        filters = self.filters
        for rk, row in access(ctx, src, self.paths[0], (), env):
            if all(f(row, env) is True for f in filters):
                out.append((rk, row))
        return out


class UpdateStatement(_Targeted):
    def run_fragment(self, ctx, params=()):
        env = _env(self, ctx, params)
        t = self.table
        w = self.writer(ctx)
        coercers = self._coercers
        hits = self._matches(ctx, env)
        n = 0
        for rk, old in hits:
            new = list(old)
            for ci, fn in self.sets:
                v = coercers[ci](fn(old, env))
                if v is None and not t.columns[ci].nullable:
                    raise ConstraintError(f"CONSTRAINT VIOLATION: column {t.columns[ci].name} of "
                                          f"{t.name} is NOT NULL")
                new[ci] = v
            new = tuple(new)
            if new != old:
                w.update(ctx, rk, old, new)
            n += 1
        return ("count", n)


class DeleteStatement(_Targeted):
    def run_fragment(self, ctx, params=()):
        env = _env(self, ctx, params)
        hits = self._matches(ctx, env)
        w = self.writer(ctx)
        for rk, old in hits:
            w.delete(ctx, rk, old)
        return ("count", len(hits))


class TruncateStatement(_Writes):

    def run_fragment(self, ctx, params=()):
        _env(self, ctx, params)
        return ("count", self.writer(ctx).truncate(ctx))

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
    store = ctx.store_for(t.name)
    schema = ctx.schema(t.name)
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
    out = []
    for i, (v, spec) in enumerate(zip(params, stmt.param_coerce)):
        if spec is not None and v is not None:
            vt, size = spec
            v = coerce(vt, v, size, False, what=f"parameter {i + 1}")
        out.append(v)
    return out


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

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

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

class SelectStatement(Statement):

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
    if not table.partitioned or table.partition_column is None:
        return True
    v = row[table.column_index(table.partition_column)]
    owner = ctx.partition_for(table.name, v)
    if owner == ctx.partition_id:
        return True
    if stmt.partitioning[0] == "single":
        raise MispartitionedError(
            f"{stmt.kind.upper()} into {table.name}: partition column value {v!r} belongs to "
            f"partition {owner}, not to partition {ctx.partition_id}")
    return False


def _pk_rowkey(ctx, table, pk_values):
    """(rowkey, row) of the row with these primary-key values, or (None, None)."""
    schema = ctx.schema(table.name)
    store = ctx.store_for(table.name)
    pk = [table.column_index(n) for n in table.primary_key]
    if store.get(ctx.txn, schema, list(pk_values)) is None:
        return None, None
    ix = _index_id(schema, pk)
    it = (store.index_scan(ctx.txn, schema, ix, tuple(pk_values), True, tuple(pk_values), True)
          if ix is not None else store.scan(ctx.txn, schema))
    for rk, row in it:
        if tuple(row[i] for i in pk) == tuple(pk_values):
            return rk, row
    return None, None


def _make_row(table, cols, values, now=None):
    """Full row from given column positions/values (coerced), defaults elsewhere."""
    row = []
    given = dict(zip(cols, values))
    for i, c in enumerate(table.columns):
        if i in given:
            v = coerce(c.vtype, given[i], c.size, c.in_bytes, what=f"value for column {c.name}")
        elif getattr(c, "default_now", False):
            v = now
        else:
            v = c.default if c.has_default else None
        if v is None and not c.nullable:
            why = "" if i in given else " (no value and no default)"
            raise ConstraintError(f"CONSTRAINT VIOLATION: column {c.name} of {table.name} "
                                  f"is NOT NULL{why}")
        row.append(v)
    return tuple(row)


class _DMLMerge:
    def merge(self, results):
        total = 0
        for res in results:
            total += res[1]
        return VoltTable(list(MODIFIED), [(total,)])


class InsertStatement(_DMLMerge, Statement):
    result_columns = MODIFIED

    def _rows_to_write(self, ctx, env):
        if self.select is not None:
            sel = self.select
            frag = sel.run_fragment(ctx, env.params)
            for r in sel.merge([frag]).rows:
                yield r
        else:
            yield tuple(f((), env) for f in self.values)

    def run_fragment(self, ctx, params=()):
        env = _env(self, ctx, params)
        t = self.table
        n = 0
        rows = list(self._rows_to_write(ctx, env))
        for vals in rows:
            row = _make_row(t, self.cols, vals, env.now)
            if not _check_partition(self, ctx, t, row):
                continue
            if self.kind == "upsert":
                pk = [t.column_index(c) for c in t.primary_key]
                rk, old = _pk_rowkey(ctx, t, [row[i] for i in pk])
                if old is not None:
                    if self.explicit_cols:
                        new = list(old)
                        for ci in self.cols:
                            new[ci] = row[ci]
                        new = tuple(new)
                    else:
                        new = row
                    ctx.update_row(t.name, rk, old, new)
                    n += 1
                    continue
            ctx.insert_row(t.name, row)
            n += 1
        return ("count", n)


class _Targeted(_DMLMerge, Statement):
    result_columns = MODIFIED

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
        hits = self._matches(ctx, env)
        n = 0
        for rk, old in hits:
            new = list(old)
            for ci, fn in self.sets:
                c = t.columns[ci]
                v = coerce(c.vtype, fn(old, env), c.size, c.in_bytes, what=f"value for column {c.name}")
                if v is None and not c.nullable:
                    raise ConstraintError(f"CONSTRAINT VIOLATION: column {c.name} of {t.name} is NOT NULL")
                new[ci] = v
            new = tuple(new)
            if new != old:
                ctx.update_row(t.name, rk, old, new)
            n += 1
        return ("count", n)


class DeleteStatement(_Targeted):
    def run_fragment(self, ctx, params=()):
        env = _env(self, ctx, params)
        hits = self._matches(ctx, env)
        for rk, old in hits:
            ctx.delete_row(self.table.name, rk, old)
        return ("count", len(hits))


class TruncateStatement(_DMLMerge, Statement):
    result_columns = MODIFIED

    def run_fragment(self, ctx, params=()):
        _env(self, ctx, params)
        return ("count", ctx.truncate(self.table.name))

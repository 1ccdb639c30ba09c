# SPDX-License-Identifier: AGPL-3.0-or-later
"""plan_statement(catalog, sql) -> Statement: parse with sqlglot, resolve, plan once.

Planning resolves names and types, compiles every expression into closures, chooses an
access path per table (primary-key get, index range scan, or full scan), and decides the
statement's partitioning (VoltDB's rule: an equality on the partition column of a
partitioned table pins a single partition). The Statement classes in executor.py then run
fragments per partition and merge them.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Tokenizer, TokenType

from voltdb_py.errors import PlanningError, SQLError, VoltError
from voltdb_py.sql.expressions import (
    CExpr, Compiler, Scope, Source, const_expr, is_aggregate, norm_key,
)
from voltdb_py.sql import executor as X
from voltdb_py.sql.views import is_partial_view
from voltdb_py.types import Column as RColumn, VoltType, coerce


def _preprocess(sql: str) -> tuple[str, int, bool]:
    """Number '?' as :p0, :p1.. left to right and turn VoltDB's UPSERT INTO into INSERT."""
    try:
        tokens = Tokenizer().tokenize(sql)
    except SqlglotError as e:
        raise SQLError(f"SQL syntax error: {e}") from None
    out = []
    last = 0
    n = 0
    upsert = False
    for i, t in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t.text.upper() == "X" and nxt is not None and nxt.token_type == TokenType.STRING \
                and nxt.start == t.end + 1 and sql[t.start:t.end + 1].upper() == "X":
            # VoltDB's X'0AFF' VARBINARY literal, which sqlglot's default dialect lacks.
            out.append(sql[last:t.start])
            out.append("UNHEX")
            last = t.end + 1
            out.append("(")
            out.append(sql[last:nxt.end + 1])
            out.append(")")
            last = nxt.end + 1
            continue
        if i == 0 and t.text.upper() == "UPSERT":
            out.append(sql[last:t.start])
            out.append("INSERT")
            last = t.end + 1
            upsert = True
        elif t.token_type == TokenType.PLACEHOLDER and t.text == "?":
            out.append(sql[last:t.start])
            out.append(f":p{n}")
            n += 1
            last = t.end + 1
    out.append(sql[last:])
    return "".join(out), n, upsert


def plan_statement(catalog, sql: str):
    """Parse and plan one SQL statement against catalog; return a Statement.

    :raises SQLError: syntax errors; PlanningError: unknown names, type errors, and
        constructs that are unsupported or against VoltDB's rules.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise SQLError("empty SQL statement")
    text, nparams, upsert = _preprocess(sql)
    try:
        trees = [t for t in sqlglot.parse(text) if t is not None]
    except SqlglotError as e:
        raise SQLError(f"SQL syntax error in {sql!r}: {str(e).splitlines()[0]}") from None
    if len(trees) != 1:
        raise SQLError(f"expected exactly one SQL statement, got {len(trees)}: {sql!r}")
    tree = trees[0]
    p = _Planner(catalog, sql, nparams)
    if isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)) and upsert:
        raise SQLError("UPSERT must be UPSERT INTO")
    if isinstance(tree, exp.Select):
        stmt = p.select(tree)
    elif isinstance(tree, exp.Insert):
        stmt = p.insert(tree, upsert)
    elif isinstance(tree, exp.Update):
        stmt = p.update(tree)
    elif isinstance(tree, exp.Delete):
        stmt = p.delete(tree)
    elif isinstance(tree, exp.TruncateTable):
        stmt = p.truncate(tree)
    elif isinstance(tree, (exp.Union, exp.Intersect, exp.Except)):
        raise PlanningError("unsupported: set operations (UNION/INTERSECT/EXCEPT)")
    else:
        raise PlanningError(f"unsupported SQL statement: {type(tree).__name__.upper()} ({sql!r})")
    stmt.sql = sql
    p.finish(stmt)
    return stmt


def _conjuncts(node) -> list:
    node = _strip(node)
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _strip(node):
    while isinstance(node, exp.Paren):
        node = node.this
    return node


_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_OPS = {exp.EQ: "=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}


class _Planner:
    def __init__(self, catalog, sql, nparams):
        self.catalog = catalog
        self.sql = sql
        self.nparams = nparams
        self.param_types: dict = {}
        self.param_coerce: dict = {}

    def finish(self, stmt):
        stmt.param_count = self.nparams
        stmt.param_types = [self.param_types.get(i) for i in range(self.nparams)]
        stmt.param_coerce = [self.param_coerce.get(i) for i in range(self.nparams)]
        for inner in (getattr(stmt, "select", None), getattr(stmt, "inner", None)):
            if inner is not None:
                inner.sql = stmt.sql
                self.finish(inner)
        stmt.prepare(self.catalog)

    def scope(self, sources) -> Scope:
        return Scope(sources, self.param_types, self.param_coerce)

    def table(self, name: str):
        t = self.catalog.tables.get(name.upper())
        if t is None:
            raise PlanningError(f"object not found: table {name.upper()}")
        return t

    def _table_node(self, node):
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            raise PlanningError(f"unsupported FROM item: {node.sql()} (subqueries are not supported)")
        t = self.table(node.name)
        alias = node.alias.upper() if node.alias else t.name
        return t, alias

    def _writable(self, node):
        t, _ = self._table_node(node)
        if t.view is not None:
            raise SQLError(f"{t.name} is a materialized view; views are read-only")
        return t

    # ------------------------------------------------------------------ FROM / WHERE
    def from_clause(self, tree):
        items = []
        frm = tree.args.get("from_") or tree.args.get("from")
        ons = []
        if frm is not None:
            items.append(frm.this)
        for j in tree.args.get("joins") or []:
            side = (j.args.get("side") or "").upper()
            kind = (j.args.get("kind") or "").upper()
            if side or kind not in ("", "INNER", "CROSS"):
                raise PlanningError(f"unsupported join: {j.sql()} (only inner joins)")
            if j.args.get("using"):
                raise PlanningError("unsupported: JOIN ... USING")
            items.append(j.this)
            if j.args.get("on") is not None:
                ons.append(j.args["on"])
        sources = []
        offset = 0
        for it in items:
            t, alias = self._table_node(it)
            if any(s.alias == alias for s in sources):
                raise PlanningError(f"table or alias {alias} appears twice in FROM; use aliases")
            sources.append(Source(alias, t, offset))
            offset += len(t.columns)
        return sources, ons

    def filters(self, sources, where_nodes):
        """Compile WHERE/ON conjuncts; return (list of (node, CExpr))."""
        comp = Compiler(self.scope(sources))
        out = []
        for w in where_nodes:
            for c in _conjuncts(w):
                if is_aggregate(c):
                    raise PlanningError(f"aggregate in WHERE: {c.sql()} (use HAVING)")
                ce = comp.compile(c)
                if ce.vtype is not None and ce.vtype not in (VoltType.TINYINT,) and not ce.const:
                    pass
                out.append((c, ce))
        return out

    def access_paths(self, sources, conj, for_write=False):
        """Choose an access path per source given the conjuncts (nodes, compiled)."""
        comp = Compiler(self.scope(sources))
        paths = []
        for si, src in enumerate(sources):
            cands = []   # (col position in table, op, CExpr of the other side, conjunct index)
            for k, (node, _ce) in enumerate(conj):
                node = _strip(node)
                pairs = []
                if type(node) in _OPS:
                    pairs.append((node.this, _OPS[type(node)], node.expression))
                    pairs.append((node.expression, _FLIP[_OPS[type(node)]], node.this))
                elif isinstance(node, exp.Between):
                    pairs.append((node.this, ">=", node.args["low"]))
                    pairs.append((node.this, "<=", node.args["high"]))
                for col, op, other in pairs:
                    col = _strip(col)
                    if not isinstance(col, exp.Column) or isinstance(col.this, exp.Star):
                        continue
                    try:
                        pos, s, ci = comp.scope.resolve(col.name, col.table or None)
                    except PlanningError:
                        continue
                    if s is not src:
                        continue
                    oc = comp.compile(other)
                    if oc.has_agg or any(k >= si for k in oc.sources):
                        continue
                    ctype = src.table.columns[ci].vtype
                    if oc.vtype is not None and not _key_compatible(ctype, oc.vtype):
                        continue
                    cands.append((ci, op, oc, k))
            path = _choose_path(src, cands, for_write)
            t = src.table
            if t.view is not None and t.view.source.upper() in self.catalog.tables:
                t = self.catalog.tables[t.view.source.upper()]
            path.partitioned = bool(t.partitioned)
            paths.append(path)
        return paths

    def partitioning(self, sources, conj, written=None):
        parted = [s for s in sources if s.table.partitioned]
        if not parted:
            return ("replicated",)
        if len(parted) > 1:
            self._check_copartitioned(parted, conj)
        comp = Compiler(self.scope(sources))
        for node, _ce in conj:
            node = _strip(node)
            if not isinstance(node, exp.EQ):
                continue
            for col, other in ((node.this, node.expression), (node.expression, node.this)):
                col, other = _strip(col), _strip(other)
                if not isinstance(col, exp.Column) or isinstance(col.this, exp.Star):
                    continue
                try:
                    _pos, s, ci = comp.scope.resolve(col.name, col.table or None)
                except PlanningError:
                    continue
                t = s.table
                if not t.partitioned or t.partition_column is None or \
                        t.columns[ci].name != t.partition_column.upper():
                    continue
                oc = comp.compile(other)
                if oc.param is not None:
                    return ("single", t.name, t.columns[ci].name, ("param", oc.param))
                if oc.const:
                    v = oc.value()
                    c = t.columns[ci]
                    try:
                        v = coerce(c.vtype, v, 0, False)
                    except VoltError:
                        continue
                    return ("single", t.name, c.name, ("const", v))
        return ("multi",)

    def _check_copartitioned(self, parted, conj):
        # union-find over partition columns joined by equality
        names = {s.alias: s for s in parted}
        parent = {a: a for a in names}

        def find(a):
            while parent[a] != a:
                a = parent[a]
            return a
        comp = Compiler(self.scope(parted))
        for node, _ce in conj:
            node = _strip(node)
            if not isinstance(node, exp.EQ):
                continue
            a, b = _strip(node.this), _strip(node.expression)
            if not (isinstance(a, exp.Column) and isinstance(b, exp.Column)):
                continue
            try:
                _, sa, ca = comp.scope.resolve(a.name, a.table or None)
                _, sb, cb = comp.scope.resolve(b.name, b.table or None)
            except PlanningError:
                continue
            if sa.alias in names and sb.alias in names and \
                    sa.table.columns[ca].name == (sa.table.partition_column or "").upper() and \
                    sb.table.columns[cb].name == (sb.table.partition_column or "").upper():
                parent[find(sa.alias)] = find(sb.alias)
        if len({find(a) for a in names}) > 1:
            raise PlanningError("Join of multiple partitioned tables has insufficient join criteria "
                                "(partitioned tables must be joined on their partition columns)")

    # ------------------------------------------------------------------ SELECT
    def select(self, tree, for_insert=False):
        for bad in ("with", "windows", "qualify"):
            if tree.args.get(bad):
                raise PlanningError(f"unsupported: {bad.upper()} clause")
        for n in tree.walk():
            if isinstance(n, (exp.Subquery, exp.Exists)) or (isinstance(n, exp.Select) and n is not tree):
                raise PlanningError("unsupported: subqueries")
            if isinstance(n, exp.Window):
                raise PlanningError("unsupported: window functions")
        sources, ons = self.from_clause(tree)
        where = [tree.args["where"].this] if tree.args.get("where") is not None else []
        conj = self.filters(sources, ons + where)
        scope = self.scope(sources)
        comp = Compiler(scope)

        # select list
        items = []   # (name, node)
        for i, e in enumerate(tree.expressions):
            e0 = e
            if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
                qual = e.table.upper() if isinstance(e, exp.Column) and e.table else None
                hit = False
                for s in sources:
                    if qual is None or s.alias == qual:
                        hit = True
                        for c in s.table.columns:
                            items.append((c.name, exp.Column(this=exp.to_identifier(c.name),
                                                             table=exp.to_identifier(s.alias))))
                if not hit:
                    raise PlanningError(f"object not found: {qual or '*'} in select list")
                continue
            if isinstance(e, exp.Alias):
                name = e.alias.upper()
                e = e.this
            elif isinstance(_strip(e), exp.Column):
                name = _strip(e).name.upper()
            else:
                name = None
            items.append((name, e))
            del e0
        for i, (name, node) in enumerate(items):
            if name is None:
                items[i] = (f"C{i + 1}", node)

        group_nodes = list(tree.args["group"].expressions) if tree.args.get("group") else []
        having = tree.args["having"].this if tree.args.get("having") is not None else None
        aggregated = bool(group_nodes) or having is not None or any(is_aggregate(n) for _, n in items)

        # ORDER BY (as nodes first)
        order_nodes = []
        if tree.args.get("order") is not None:
            for o in tree.args["order"].expressions:
                order_nodes.append((o.this, bool(o.args.get("desc"))))

        group_plan = None
        if aggregated:
            # aliases may be used in GROUP BY (VoltDB allows)
            alias_map = {n: node for n, node in items}
            gexprs = []
            gkeys = []
            gtypes = []
            for g in group_nodes:
                g = _strip(g)
                if isinstance(g, exp.Literal) and not g.is_string:
                    k = int(g.this)
                    if not 1 <= k <= len(items):
                        raise PlanningError(f"GROUP BY position {k} is not in the select list")
                    g = items[k - 1][1]
                elif isinstance(g, exp.Column) and not g.table and g.name.upper() in alias_map:
                    try:
                        scope.resolve(g.name, None)
                    except PlanningError:
                        g = alias_map[g.name.upper()]
                if is_aggregate(g):
                    raise PlanningError(f"aggregate in GROUP BY: {g.sql()}")
                ce = comp.compile(g)
                gexprs.append(ce)
                gkeys.append((norm_key(g), ce.column))
                gtypes.append(ce.vtype)
            ascope = Scope(sources, self.param_types, self.param_coerce, agg_mode=True,
                           group_keys=gkeys, group_types=gtypes)
            acomp = Compiler(ascope)
            outs = [acomp.compile(n) for _, n in items]
            hav = acomp.compile(having) if having is not None else None
            group_plan = (gexprs, ascope, hav)
            ocomp = acomp
        else:
            outs = [comp.compile(n) for _, n in items]
            ocomp = comp
        result_columns = [RColumn(n, o.vtype if o.vtype is not None else VoltType.STRING)
                          for (n, _), o in zip(items, outs)]

        distinct = bool(tree.args.get("distinct"))
        sort = []     # (index into output row, desc)
        hidden = []
        for node, desc in order_nodes:
            node = _strip(node)
            idx = None
            if isinstance(node, exp.Literal) and not node.is_string:
                k = int(node.this)
                if not 1 <= k <= len(items):
                    raise PlanningError(f"ORDER BY position {k} is not in the select list")
                idx = k - 1
            elif isinstance(node, exp.Column) and not node.table and not isinstance(node.this, exp.Star):
                nm = node.name.upper()
                alias_hits = [i for i, (n, src) in enumerate(items) if n == nm]
                if alias_hits:
                    idx = alias_hits[0]
            if idx is None:
                key = norm_key(node)
                for i, (_n, src) in enumerate(items):
                    if norm_key(src) == key:
                        idx = i
                        break
            if idx is None:
                if distinct:
                    raise PlanningError(f"ORDER BY expression {node.sql()} must be in the select "
                                        "list of a SELECT DISTINCT")
                ce = ocomp.compile(node)
                idx = len(items) + len(hidden)
                hidden.append(ce)
            sort.append((idx, desc))

        limit = self._limit_expr(tree.args.get("limit"), "LIMIT")
        offset = self._limit_expr(tree.args.get("offset"), "OFFSET")

        paths = self.access_paths(sources, conj)
        partitioning = self.partitioning(sources, conj)
        # filters by level
        levels = [[] for _ in range(max(len(sources), 1))]
        for _node, ce in conj:
            lvl = max(ce.sources) if ce.sources else 0
            levels[lvl].append(ce.fn)
        names = [s.table.name for s in sources]
        rest = None
        if len(sources) == 1 and paths[0].kind == "pk":
            used = set(paths[0].used)
            rest = [ce.fn for k, (_node, ce) in enumerate(conj) if k not in used]
        out_cols = None
        if not hidden and group_plan is None and all(o.column is not None for o in outs):
            out_cols = [o.column for o in outs]
        stmt = X.SelectStatement(
            kind="select", sources=sources, paths=paths, level_filters=levels,
            rest_filters=rest, out_cols=out_cols,
            outputs=[o.fn for o in outs] + [h.fn for h in hidden], nvisible=len(outs),
            group_plan=group_plan, distinct=distinct, sort=sort, limit=limit, offset=offset,
            result_columns=result_columns, partitioning=partitioning,
            tables_read=sorted(set(names)), tables_written=[], read_only=True)
        if any(is_partial_view(self.catalog, s.table) for s in sources):
            return self._partial_view_select(stmt, sources, conj)
        return stmt

    def _pushable(self, node, si, src, ng):
        """Whether conjunct node reads only source si (and, for a view with partial groups,
        only its GROUP BY columns, positions < ng): then fragments can filter with it."""
        scope = self.scope([src])
        for col in node.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                return False
            try:
                _pos, _s, ci = scope.resolve(col.name, col.table or None)
            except PlanningError:
                if col.table or col.name.upper() not in ("NOW", "CURRENT_TIMESTAMP"):
                    return False
                continue
            if ng is not None and ci >= ng:
                return False
        return True

    def _partial_view_select(self, stmt, sources, conj):
        """VoltDB's treatment of views whose groups are split over partitions: fragments ship
        each source's rows (pushed-down filters applied), the coordinator re-aggregates the
        view's partial groups (COUNT/SUM summed, MIN/MAX of MIN/MAX) and runs the rest of
        the statement over the merged rows. One fragment (single-partition) sees its own
        partition's rows, as in VoltDB."""
        from voltdb_py.sql.views import ViewInfo
        frags = []
        for si, src in enumerate(sources):
            t = src.table
            partial = is_partial_view(self.catalog, t)
            vi = ViewInfo(self.catalog, t) if partial else None
            single = Source(src.alias, t, 0)
            comp = Compiler(self.scope([single]))
            pushed = []
            for node, ce in conj:
                if ce.sources != frozenset([si]) or ce.has_agg:
                    continue
                if not self._pushable(node, si, single, vi.ng if partial else None):
                    continue
                pushed.append((node, comp.compile(node)))
            path = self.access_paths([single], pushed)[0]
            frags.append((single, path, [c.fn for _n, c in pushed], vi, path.partitioned))
        inner = stmt
        inner.paths = [X.AccessPath("mem", None, [], None, None, [], mem=i)
                       for i in range(len(sources))]
        inner.rest_filters = None
        return X.PartialViewSelect(
            kind="select", inner=inner, frags=frags, sources=sources,
            paths=[f[1] for f in frags], level_filters=inner.level_filters,
            group_plan=inner.group_plan, distinct=inner.distinct, sort=inner.sort,
            limit=inner.limit, offset=inner.offset, result_columns=inner.result_columns,
            partitioning=inner.partitioning, tables_read=inner.tables_read, tables_written=[],
            read_only=True, views_merged=[f[3].view.name for f in frags if f[3] is not None])

    def _limit_expr(self, node, what):
        if node is None:
            return None
        e = node.expression if node.args.get("expression") is not None else node.this
        ce = Compiler(self.scope([])).compile(e)
        if ce.param is not None:
            self.param_types.setdefault(ce.param, VoltType.INTEGER)
            self.param_coerce.setdefault(ce.param, (VoltType.BIGINT, 0))
            return ("param", ce.param)
        if not ce.const or not isinstance(ce.value(), int) or ce.value() < 0:
            raise PlanningError(f"{what} must be a non-negative integer or '?', got {e.sql()}")
        return ("const", ce.value())

    # ------------------------------------------------------------------ DML
    def insert(self, tree, upsert):
        target = tree.this
        cols_nodes = None
        if isinstance(target, exp.Schema):
            cols_nodes = target.expressions
            target = target.this
        t = self._writable(target)
        if upsert and not t.primary_key:
            raise PlanningError(f"UPSERT needs a table with a primary key; {t.name} has none")
        if cols_nodes is None:
            cols = list(range(len(t.columns)))
        else:
            cols = []
            for c in cols_nodes:
                try:
                    ci = t.column_index(c.name)
                except KeyError:
                    raise PlanningError(f"object not found: column {c.name.upper()} in table {t.name}") from None
                if ci in cols:
                    raise PlanningError(f"column {c.name.upper()} appears twice in the INSERT column list")
                cols.append(ci)
        src = tree.expression
        kind = "upsert" if upsert else "insert"
        if isinstance(src, exp.Select):
            sel = self.select(src)
            if len(sel.result_columns) != len(cols):
                raise PlanningError(f"INSERT INTO {t.name} SELECT: {len(cols)} target columns but "
                                    f"{len(sel.result_columns)} selected")
            if t.partitioned:
                if isinstance(sel, X.PartialViewSelect) and sel.partitioning[0] != "single":
                    raise PlanningError(
                        f"unsupported: multi-partition INSERT INTO {t.name} SELECT from the view(s) "
                        f"{', '.join(sel.views_merged)} whose groups span partitions")
                part = sel.partitioning if sel.partitioning[0] != "replicated" else ("multi",)
                if sel.partitioning[0] == "replicated":
                    raise PlanningError("INSERT INTO a partitioned table SELECT from replicated tables only "
                                        "is not supported")
            else:
                if sel.partitioning[0] != "replicated":
                    raise PlanningError("INSERT INTO a replicated table cannot SELECT from partitioned tables")
                part = ("replicated",)
            return X.InsertStatement(kind=kind, table=t, cols=cols, values=None, select=sel,
                                     partitioning=part, tables_read=sel.tables_read,
                                     tables_written=[t.name], read_only=False,
                                     explicit_cols=cols_nodes is not None)
        if not isinstance(src, exp.Values):
            raise PlanningError(f"unsupported INSERT source: {src.sql() if src else None}")
        rows = src.expressions
        if len(rows) != 1:
            raise PlanningError("INSERT ... VALUES takes exactly one row in VoltDB")
        vals = rows[0].expressions if isinstance(rows[0], exp.Tuple) else [rows[0]]
        if len(vals) != len(cols):
            raise PlanningError(f"INSERT INTO {t.name}: {len(cols)} columns but {len(vals)} values")
        comp = Compiler(self.scope([]))
        ces = []
        value_specs = []
        for ci, v in zip(cols, vals):
            c = t.columns[ci]
            ce = comp.compile(v)
            comp.hint(ce, c.vtype, c.size, widened=False)
            if ce.vtype is not None and c.vtype is not None:
                _check_assign(c, ce)
            ces.append(ce)
            if ce.param is not None:
                value_specs.append(("param", ce.param))
            elif ce.const:
                value_specs.append(("const", ce.value()))
            else:
                value_specs.append(None)
        part = ("replicated",)
        if t.partitioned:
            pi = t.column_index(t.partition_column) if t.partition_column else None
            part = ("multi",)
            if pi is not None:
                pc = t.columns[pi]
                if pi in cols:
                    ce = ces[cols.index(pi)]
                    if ce.param is not None:
                        part = ("single", t.name, pc.name, ("param", ce.param))
                    elif ce.const:
                        try:
                            part = ("single", t.name, pc.name,
                                    ("const", coerce(pc.vtype, ce.value(), pc.size, pc.in_bytes)))
                        except VoltError:
                            part = ("multi",)
                else:
                    part = ("single", t.name, pc.name, ("const", pc.default))
        return X.InsertStatement(kind=kind, table=t, cols=cols, values=[c.fn for c in ces],
                                 value_specs=value_specs, select=None, partitioning=part, tables_read=[],
                                 tables_written=[t.name], read_only=False,
                                 explicit_cols=cols_nodes is not None)

    def _single_target(self, node):
        t = self._writable(node)
        alias = node.alias.upper() if node.alias else t.name
        return t, [Source(alias, t, 0)]

    def update(self, tree):
        if tree.args.get("from") or tree.args.get("from_") or tree.args.get("joins"):
            raise PlanningError("unsupported: UPDATE with FROM/joins")
        t, sources = self._single_target(tree.this)
        where = [tree.args["where"].this] if tree.args.get("where") is not None else []
        conj = self.filters(sources, where)
        comp = Compiler(self.scope(sources))
        sets = []
        for a in tree.expressions:
            if not isinstance(a, exp.EQ) or not isinstance(a.this, exp.Column):
                raise PlanningError(f"bad SET item {a.sql()}")
            try:
                ci = t.column_index(a.this.name)
            except KeyError:
                raise PlanningError(f"object not found: column {a.this.name.upper()} in table {t.name}") from None
            if any(ci == s[0] for s in sets):
                raise PlanningError(f"column {t.columns[ci].name} is SET twice")
            if is_aggregate(a.expression):
                raise PlanningError("aggregate in UPDATE SET")
            ce = comp.compile(a.expression)
            comp.hint(ce, t.columns[ci].vtype, t.columns[ci].size, widened=False)
            _check_assign(t.columns[ci], ce)
            if t.partitioned and t.partition_column and t.columns[ci].name == t.partition_column.upper() \
                    and ce.column != ci:
                raise PlanningError(f"the partitioning column {t.columns[ci].name} of {t.name} "
                                    "cannot be updated")
            sets.append((ci, ce.fn))
        paths = self.access_paths(sources, conj, for_write=True)
        return X.UpdateStatement(kind="update", table=t, sources=sources, paths=paths,
                                 filters=[ce.fn for _, ce in conj], sets=sets,
                                 partitioning=self._dml_partitioning(t, sources, conj),
                                 tables_read=[t.name], tables_written=[t.name], read_only=False)

    def _dml_partitioning(self, t, sources, conj):
        if not t.partitioned:
            return ("replicated",)
        return self.partitioning(sources, conj)

    def delete(self, tree):
        t, sources = self._single_target(tree.this)
        where = [tree.args["where"].this] if tree.args.get("where") is not None else []
        if tree.args.get("order") or tree.args.get("limit"):
            raise PlanningError("unsupported: DELETE with ORDER BY/LIMIT")
        conj = self.filters(sources, where)
        paths = self.access_paths(sources, conj, for_write=True)
        return X.DeleteStatement(kind="delete", table=t, sources=sources, paths=paths,
                                 filters=[ce.fn for _, ce in conj],
                                 partitioning=self._dml_partitioning(t, sources, conj),
                                 tables_read=[t.name], tables_written=[t.name], read_only=False)

    def truncate(self, tree):
        if len(tree.expressions) != 1:
            raise PlanningError("TRUNCATE TABLE takes one table")
        t = self._writable(tree.expressions[0])
        return X.TruncateStatement(kind="truncate", table=t,
                                   partitioning=("multi",) if t.partitioned else ("replicated",),
                                   tables_read=[], tables_written=[t.name], read_only=False)


def _check_assign(col, ce: CExpr):
    from voltdb_py.sql.expressions import _family
    if ce.vtype is None or ce.param is not None:
        return
    a, b = _family(col.vtype), _family(ce.vtype)
    if a == "ts" and b in ("num", "str"):
        return
    if a == "num" and b == "str" and ce.const:
        return
    if a == "str" and b == "num":
        return
    if a != b:
        raise PlanningError(f"incompatible data type: cannot assign {ce.vtype.sql_name} to column "
                            f"{col.name} of type {col.vtype.sql_name}")


def _key_compatible(ctype, etype) -> bool:
    from voltdb_py.sql.expressions import _family
    if ctype is VoltType.TIMESTAMP:
        return etype is VoltType.TIMESTAMP
    return _family(ctype) == _family(etype)


def _choose_path(src, cands, for_write):
    """Pick the best access path for one source given (col, op, CExpr) candidates."""
    t = src.table
    eq = {}
    eq_conj = {}
    rng = {}
    for ci, op, ce, k in cands:
        if op == "=":
            if ci not in eq:
                eq[ci] = ce
                eq_conj[ci] = k
        else:
            rng.setdefault(ci, []).append((op, ce))
    if t.primary_key and not for_write:
        pk = [t.column_index(n) for n in t.primary_key]
        if all(ci in eq for ci in pk):
            return X.AccessPath("pk", None, [eq[ci] for ci in pk], None, None, pk,
                                used=[eq_conj[ci] for ci in pk])
    best = None
    best_score = (0, 0)
    for ix in t.indexes:
        cols = [t.column_index(n) for n in ix.columns]
        n = 0
        while n < len(cols) and cols[n] in eq:
            n += 1
        lo = hi = None
        if n < len(cols) and cols[n] in rng:
            for op, ce in rng[cols[n]]:
                if op in (">", ">=") and lo is None:
                    lo = (ce, op == ">=")
                elif op in ("<", "<=") and hi is None:
                    hi = (ce, op == "<=")
        score = (n + (1 if (lo or hi) else 0), int(n == len(cols) and ix.enforces_uniqueness))
        if score > best_score:
            best, best_score = (ix, cols, n, lo, hi), score
    if best is None:
        return X.AccessPath("scan", None, [], None, None, [])
    ix, cols, n, lo, hi = best
    return X.AccessPath("index", ix, [eq[c] for c in cols[:n]], lo, hi, cols)


__all__ = ["plan_statement", "const_expr"]

# SPDX-License-Identifier: AGPL-3.0-or-later
"""explain(stmt) -> str: a readable plan tree for @Explain, in VoltDB's spirit."""

from __future__ import annotations


def _part(stmt) -> str:
    p = stmt.partitioning
    if p[0] == "single":
        src = f"parameter {p[3][1] + 1}" if p[3][0] == "param" else f"constant {p[3][1]!r}"
        return f"SINGLE PARTITION (\"{p[1]}\".\"{p[2]}\" = {src})"
    if p[0] == "replicated":
        return "REPLICATED TABLES ONLY" + (" (one fragment)" if stmt.read_only else
                                           " (write to every copy: multi-partition)")
    return "MULTI-PARTITION (a fragment per partition, merged by the coordinator)"


def _access(src, path) -> str:
    name = src.table.name
    al = f" ({src.alias})" if src.alias != name else ""
    if path.kind == "pk":
        return f"PRIMARY KEY LOOKUP of \"{name}\"{al} on ({', '.join(src.table.columns[c].name for c in path.cols)})"
    if path.kind == "index":
        cols = [src.table.columns[c].name for c in path.cols]
        parts = [f"{c} =" for c in cols[:len(path.eq)]]
        if path.lo is not None or path.hi is not None:
            c = cols[len(path.eq)]
            if path.lo is not None:
                parts.append(f"{c} {'>=' if path.lo[1] else '>'}")
            if path.hi is not None:
                parts.append(f"{c} {'<=' if path.hi[1] else '<'}")
        return f"INDEX SCAN of \"{name}\"{al} using \"{path.index.name}\" ({', '.join(parts)})"
    return f"SEQUENTIAL SCAN of \"{name}\"{al}"


def explain(stmt) -> str:
    lines = ["RETURN RESULTS TO STORED PROCEDURE", f" {_part(stmt)}"]
    ind = "  "
    k = stmt.kind
    if k == "select":
        if stmt.sort or stmt.limit or stmt.offset:
            bits = []
            if stmt.sort:
                bits.append("ORDER BY")
            if stmt.limit:
                bits.append("LIMIT")
            if stmt.offset:
                bits.append("OFFSET")
            lines.append(f"{ind}{' '.join(bits)} (after merge)")
            ind += " "
        if stmt.distinct:
            lines.append(f"{ind}DISTINCT")
            ind += " "
        if stmt.group_plan is not None:
            g, scope, hav = stmt.group_plan
            aggs = ", ".join(a.key for a in scope.aggs) or "no aggregates"
            lines.append(f"{ind}AGGREGATION ({len(g)} group key(s); {aggs})"
                         + (" with HAVING" if hav is not None else "")
                         + " partial per partition, re-aggregated on merge")
            ind += " "
        lines.append(f"{ind}PROJECTION ({', '.join(c.name for c in stmt.result_columns)})")
        ind += " "
        if getattr(stmt, "views_merged", None):
            lines.append(f"{ind}RE-AGGREGATE PARTIAL GROUPS of view(s) "
                         f"{', '.join(stmt.views_merged)} on merge, then the rest of the plan")
            ind += " "
        if len(stmt.sources) > 1:
            lines.append(f"{ind}NESTED LOOP INNER JOIN")
            ind += " "
        if not stmt.sources:
            lines.append(f"{ind}ONE EMPTY ROW")
        for s, p, f in zip(stmt.sources, stmt.paths, stmt.level_filters):
            lines.append(f"{ind}{_access(s, p)}" + (f" filter by {len(f)} predicate(s)" if f else ""))
            ind += " "
    elif k in ("insert", "upsert"):
        lines.append(f"{ind}{k.upper()} into \"{stmt.table.name}\"")
        if stmt.select is not None:
            lines.append(explain(stmt.select).replace("\n", "\n" + ind + " "))
        else:
            lines.append(f"{ind} MATERIALIZE ONE ROW")
    elif k in ("update", "delete"):
        lines.append(f"{ind}{k.upper()} \"{stmt.table.name}\"")
        f = f" filter by {len(stmt.filters)} predicate(s)" if stmt.filters else ""
        lines.append(f"{ind} {_access(stmt.sources[0], stmt.paths[0])}{f}")
    elif k == "truncate":
        lines.append(f"{ind}TRUNCATE TABLE \"{stmt.table.name}\"")
    return "\n".join(lines)

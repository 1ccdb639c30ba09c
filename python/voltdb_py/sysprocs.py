# SPDX-License-Identifier: AGPL-3.0-or-later
"""System procedures of the embedded database: @AdHoc, @Explain, @ExplainProc,
@SystemCatalog, @Statistics, @GetPartitionKeys and @Ping, with VoltDB's result layouts."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from voltdb_py.errors import VoltError
from voltdb_py.types import ClientResponse, Column, Status, VoltTable, VoltType

if TYPE_CHECKING:
    from voltdb_py.database import Database

S, I, B, SM, TI = (VoltType.STRING, VoltType.INTEGER, VoltType.BIGINT, VoltType.SMALLINT,
                   VoltType.TINYINT)


def _table(spec: list[tuple[str, VoltType]], rows: list[tuple]) -> VoltTable:
    return VoltTable([Column(n, t) for n, t in spec], rows)


def _fail(msg: str) -> ClientResponse:
    return ClientResponse(Status.GRACEFUL_FAILURE, msg)


def call_sysproc(db: Database, name: str, params: tuple) -> ClientResponse:
    """Dispatch a system procedure call by name (case-insensitive after the '@')."""
    handler = _HANDLERS.get(name.upper())
    if handler is None:
        return ClientResponse(Status.UNEXPECTED_FAILURE, f"Procedure {name} was not found")
    try:
        return handler(db, params)
    except VoltError as exc:
        return _fail(str(exc))


def _adhoc(db: Database, params: tuple) -> ClientResponse:
    if not params or not isinstance(params[0], str):
        return _fail("@AdHoc expects a SQL statement string as its first parameter")
    return db._run_adhoc(params[0], tuple(params[1:]))


def _explain(db: Database, params: tuple) -> ClientResponse:
    from voltdb_py.sql import explain
    if len(params) != 1 or not isinstance(params[0], str):
        return _fail("@Explain expects one SQL statement string")
    plan = db._plan(params[0])
    return ClientResponse(Status.SUCCESS, tables=[
        _table([("EXECUTION_PLAN", S)], [(explain(plan),)])])


def _explain_proc(db: Database, params: tuple) -> ClientResponse:
    from voltdb_py.sql import explain
    if len(params) != 1 or not isinstance(params[0], str):
        return _fail("@ExplainProc expects one procedure name")
    rt = db._procs.get(params[0]) or db._procs.get(db._procs_ci.get(params[0].upper(), ""))
    if rt is None:
        return _fail(f"Procedure {params[0]} not in catalog")
    rows = []
    from voltdb_py.procedures import statements_of
    if rt.cls is None:
        rows.append((rt.name, rt.sql_stmt.sql, explain(next(iter(rt.plans.values())))))
    else:
        for sname, stmt in statements_of(rt.cls).items():
            rows.append((sname, stmt.sql, explain(rt.plans[id(stmt)])))
    return ClientResponse(Status.SUCCESS, tables=[
        _table([("STATEMENT_NAME", S), ("SQL_STATEMENT", S), ("EXECUTION_PLAN", S)], rows)])


def _ping(db: Database, params: tuple) -> ClientResponse:
    return ClientResponse(Status.SUCCESS, "SUCCESS", tables=[_table([("STATUS", B)], [(0,)])])


def _column_size(col: Any) -> int:
    sizes = {VoltType.TINYINT: 7, VoltType.SMALLINT: 15, VoltType.INTEGER: 31,
             VoltType.BIGINT: 63, VoltType.FLOAT: 53, VoltType.TIMESTAMP: 63,
             VoltType.DECIMAL: 38}
    return col.size if col.vtype in (VoltType.STRING, VoltType.VARBINARY) else sizes[col.vtype]


def _default_text(col: Any) -> str | None:
    if not col.has_default:
        return None
    return "NULL" if col.default is None else str(col.default)


def _system_catalog(db: Database, params: tuple) -> ClientResponse:
    if len(params) != 1 or not isinstance(params[0], str):
        return _fail("@SystemCatalog expects one selector string")
    sel = params[0].upper()
    cat = db.catalog
    tables = sorted(cat.tables.values(), key=lambda t: t.name)
    if sel == "TABLES":
        rows = []
        for t in tables:
            remarks = None
            if t.partitioned and t.partition_column:
                remarks = json.dumps({"partitionColumn": t.partition_column})
            if t.is_view:
                remarks = json.dumps({"partitionColumn": t.partition_column,
                                      "sourceTable": t.view.source} if t.partition_column
                                     else {"sourceTable": t.view.source})
            rows.append((None, None, t.name, "VIEW" if t.is_view else "TABLE", remarks,
                         None, None, None, None, None))
        spec = [("TABLE_CAT", S), ("TABLE_SCHEM", S), ("TABLE_NAME", S), ("TABLE_TYPE", S),
                ("REMARKS", S), ("TYPE_CAT", S), ("TYPE_SCHEM", S), ("TYPE_NAME", S),
                ("SELF_REFERENCING_COL_NAME", S), ("REF_GENERATION", S)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    if sel == "COLUMNS":
        rows = []
        for t in tables:
            for pos, c in enumerate(t.columns, 1):
                remarks = "PARTITION_COLUMN" if (t.partitioned and
                                                 c.name == t.partition_column) else None
                size = _column_size(c)
                rows.append((
                    None, None, t.name, c.name, int(c.vtype), c.vtype.sql_name, size, None,
                    12 if c.vtype is VoltType.DECIMAL else None,
                    2 if c.vtype in (VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER,
                                     VoltType.BIGINT, VoltType.FLOAT) else
                    (10 if c.vtype is VoltType.DECIMAL else None),
                    1 if c.nullable else 0, remarks, _default_text(c), None, None,
                    size if c.vtype in (VoltType.STRING, VoltType.VARBINARY) else None,
                    pos, "YES" if c.nullable else "NO", None, None, None, None, "NO"))
        spec = [("TABLE_CAT", S), ("TABLE_SCHEM", S), ("TABLE_NAME", S), ("COLUMN_NAME", S),
                ("DATA_TYPE", I), ("TYPE_NAME", S), ("COLUMN_SIZE", I), ("BUFFER_LENGTH", I),
                ("DECIMAL_DIGITS", I), ("NUM_PREC_RADIX", I), ("NULLABLE", I), ("REMARKS", S),
                ("COLUMN_DEF", S), ("SQL_DATA_TYPE", I), ("SQL_DATETIME_SUB", I),
                ("CHAR_OCTET_LENGTH", I), ("ORDINAL_POSITION", I), ("IS_NULLABLE", S),
                ("SCOPE_CATALOG", S), ("SCOPE_SCHEMA", S), ("SCOPE_TABLE", S),
                ("SOURCE_DATA_TYPE", SM), ("IS_AUTOINCREMENT", S)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    if sel == "INDEXINFO":
        rows = []
        for t in tables:
            for idx in t.indexes:
                for seq, cname in enumerate(idx.columns, 1):
                    rows.append((None, None, t.name, 0 if idx.enforces_uniqueness else 1,
                                 None, idx.name, 3, seq, cname, "A", 0, 0, None))
        spec = [("TABLE_CAT", S), ("TABLE_SCHEM", S), ("TABLE_NAME", S), ("NON_UNIQUE", TI),
                ("INDEX_QUALIFIER", S), ("INDEX_NAME", S), ("TYPE", SM),
                ("ORDINAL_POSITION", SM), ("COLUMN_NAME", S), ("ASC_OR_DESC", S),
                ("CARDINALITY", I), ("PAGES", I), ("FILTER_CONDITION", S)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    if sel == "PRIMARYKEYS":
        rows = []
        for t in tables:
            if t.is_view or not t.primary_key:
                continue
            pk = next((i for i in t.indexes if i.primary_key), None)
            for seq, cname in enumerate(t.primary_key, 1):
                rows.append((None, None, t.name, cname, seq, pk.name if pk else None))
        spec = [("TABLE_CAT", S), ("TABLE_SCHEM", S), ("TABLE_NAME", S), ("COLUMN_NAME", S),
                ("KEY_SEQ", SM), ("PK_NAME", S)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    if sel == "PROCEDURES":
        rows = []
        for name in sorted(db._procs):
            rt = db._procs[name]
            remarks: dict[str, Any] = {"readOnly": bool(rt.read_only),
                                       "singlePartition": rt.part_index >= 0}
            if rt.part_index >= 0:
                remarks["partitionParameter"] = rt.part_index
                remarks["partitionParameterType"] = int(rt.part_type)
            remarks["compound"] = False
            rows.append((None, None, name, None, None, None, json.dumps(remarks), 1, name))
        spec = [("PROCEDURE_CAT", S), ("PROCEDURE_SCHEM", S), ("PROCEDURE_NAME", S),
                ("RESERVED1", S), ("RESERVED2", S), ("RESERVED3", S), ("REMARKS", S),
                ("PROCEDURE_TYPE", SM), ("SPECIFIC_NAME", S)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    return _fail(f"Invalid @SystemCatalog selector {params[0]!r}: use TABLES, COLUMNS, "
                 "INDEXINFO, PRIMARYKEYS or PROCEDURES")


def _row_counts(db: Database):
    """(table, partition id, row count) for every table in every partition holding it."""
    with db._storage.read() as txn:
        for t in sorted(db.catalog.tables.values(), key=lambda t: t.name):
            schema = db._schemas[t.name]
            for pid, store in db._store_items(t):
                yield t, pid, store.count(txn, schema)


def _statistics(db: Database, params: tuple) -> ClientResponse:
    if not params or not isinstance(params[0], str):
        return _fail("@Statistics expects a component name string (and an interval flag)")
    sel = params[0].upper()
    now_ms = int(time.time() * 1000)
    cat = db.catalog
    if sel == "PARTITIONCOUNT":
        return ClientResponse(Status.SUCCESS, tables=[_table(
            [("TIMESTAMP", B), ("HOST_ID", I), ("HOSTNAME", S), ("PARTITION_COUNT", I)],
            [(now_ms, 0, "localhost", db.partition_count)])])
    if sel == "TABLE":
        rows = [(now_ms, 0, "localhost", 0, pid, t.name,
                 "VIEW" if t.is_view else
                 ("PersistentTable" if t.partitioned else "ReplicatedTable"),
                 count, 0, 0, 0, None, 0 if t.partitioned else 1)
                for t, pid, count in _row_counts(db)]
        spec = [("TIMESTAMP", B), ("HOST_ID", I), ("HOSTNAME", S), ("SITE_ID", I),
                ("PARTITION_ID", B), ("TABLE_NAME", S), ("TABLE_TYPE", S),
                ("TUPLE_COUNT", B), ("TUPLE_ALLOCATED_MEMORY", B), ("TUPLE_DATA_MEMORY", B),
                ("STRING_DATA_MEMORY", B), ("TUPLE_LIMIT", I), ("DR", TI)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    if sel == "INDEX":
        rows = [(now_ms, 0, "localhost", 0, pid, idx.name, t.name, "BinaryTreeIndex",
                 1 if idx.enforces_uniqueness else 0, 1 if idx.assume_unique else 0, count, 0)
                for t, pid, count in _row_counts(db) for idx in t.indexes]
        spec = [("TIMESTAMP", B), ("HOST_ID", I), ("HOSTNAME", S), ("SITE_ID", I),
                ("PARTITION_ID", B), ("INDEX_NAME", S), ("TABLE_NAME", S), ("INDEX_TYPE", S),
                ("IS_UNIQUE", TI), ("IS_COUNTABLE", TI), ("ENTRY_COUNT", B),
                ("MEMORY_ESTIMATE", B)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    if sel == "PROCEDURE":
        rows = []
        for name in sorted(db._stats):
            calls, failures, total_s, timed = db._stats[name]
            avg_ns = int(total_s / timed * 1e9) if timed else 0
            rows.append((now_ms, 0, "localhost", 0, 0, name, calls, avg_ns, 0, 0, 0, 0,
                         0, 0, 0, 0, failures, 0))
        spec = [("TIMESTAMP", B), ("HOST_ID", I), ("HOSTNAME", S), ("SITE_ID", I),
                ("PARTITION_ID", I), ("PROCEDURE", S), ("INVOCATIONS", B),
                ("AVG_EXECUTION_TIME", B), ("MIN_EXECUTION_TIME", B),
                ("MAX_EXECUTION_TIME", B), ("MIN_RESULT_SIZE", I), ("MAX_RESULT_SIZE", I),
                ("AVG_RESULT_SIZE", I), ("MIN_PARAMETER_SET_SIZE", I),
                ("MAX_PARAMETER_SET_SIZE", I), ("AVG_PARAMETER_SET_SIZE", I), ("ABORTS", B),
                ("FAILURES", B)]
        return ClientResponse(Status.SUCCESS, tables=[_table(spec, rows)])
    return _fail(f"Invalid @Statistics component {params[0]!r}: use TABLE, INDEX, PROCEDURE "
                 "or PARTITIONCOUNT")


def partition_keys(hashinator: Any, partitions: list[int], kind: str) -> list[tuple]:
    """One (partition, key) per partition: the smallest i in 0, 1, ... that hashes there."""
    want = set(partitions)
    found: dict[int, Any] = {}
    i = 0
    while want - found.keys() and i < 500_000:
        if kind == "INTEGER":
            key, vtype = i, VoltType.BIGINT
        elif kind == "STRING":
            key, vtype = str(i), VoltType.STRING
        else:
            key, vtype = i.to_bytes(4, "big"), VoltType.VARBINARY
        p = hashinator.partition_for_value(int(vtype), key)
        if p in want and p not in found:
            found[p] = key
        i += 1
    return sorted(found.items())


def _get_partition_keys(db: Database, params: tuple) -> ClientResponse:
    if len(params) != 1 or not isinstance(params[0], str):
        return _fail("@GetPartitionKeys expects one type string: INTEGER, STRING or VARBINARY")
    kind = params[0].upper()
    if kind == "VARCHAR":
        kind = "STRING"
    if kind not in ("INTEGER", "STRING", "VARBINARY"):
        return _fail(f"Type {params[0]} is not a supported type of partition key")
    vtype = {"INTEGER": I, "STRING": S, "VARBINARY": VoltType.VARBINARY}[kind]
    rows = partition_keys(db.hashinator, list(range(db.partition_count)), kind)
    return ClientResponse(Status.SUCCESS, tables=[
        _table([("PARTITION_ID", I), ("PARTITION_KEY", vtype)], rows)])


_HANDLERS = {
    "@ADHOC": _adhoc,
    "@EXPLAIN": _explain,
    "@EXPLAINPROC": _explain_proc,
    "@PING": _ping,
    "@SYSTEMCATALOG": _system_catalog,
    "@STATISTICS": _statistics,
    "@GETPARTITIONKEYS": _get_partition_keys,
}

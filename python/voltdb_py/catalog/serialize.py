# SPDX-License-Identifier: AGPL-3.0-or-later
"""Catalog <-> bytes (msgpack), versioned.

Layout: the 8 magic bytes ``VDBCATLG``, a big-endian u16 format version, then one msgpack
map ``{"tables": [...], "procedures": [...], "classes": [...], "next_id": n, "version": v}``
where every table, column, index, view and procedure is a map keyed by its field names.
DECIMAL defaults are msgpack ext type 1 (the decimal's text). Unknown keys are ignored on
read (so newer writers that add optional fields stay readable); missing required keys,
wrong types, bad magic or an unknown format version raise CodecError.
"""

from __future__ import annotations

import decimal
import struct
from typing import Any

import msgpack

from voltdb_py.catalog.model import Catalog, Column, Index, Procedure, Table, ViewDef
from voltdb_py.errors import CodecError
from voltdb_py.types import VoltType

__all__ = ["MAGIC", "FORMAT_VERSION", "catalog_to_bytes", "catalog_from_bytes"]

MAGIC = b"VDBCATLG"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sH")
_EXT_DECIMAL = 1


def _default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(obj).encode("ascii"))
    raise TypeError(f"cannot serialize {type(obj).__name__} value {obj!r} in a catalog")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DECIMAL:
        try:
            return decimal.Decimal(data.decode("ascii"))
        except (UnicodeDecodeError, decimal.InvalidOperation):
            raise CodecError("bad DECIMAL value in catalog bytes") from None
    raise CodecError(f"unknown msgpack extension type {code} in catalog bytes")


def _col(c: Column) -> dict:
    return {"name": c.name, "vtype": int(c.vtype), "size": c.size, "in_bytes": c.in_bytes,
            "nullable": c.nullable, "has_default": c.has_default, "default": c.default,
            "default_now": c.default_now}


def _idx(ix: Index) -> dict:
    return {"name": ix.name, "index_id": ix.index_id, "table": ix.table,
            "columns": list(ix.columns), "unique": ix.unique, "assume_unique": ix.assume_unique,
            "primary_key": ix.primary_key, "from_constraint": ix.from_constraint,
            "constraint": ix.constraint}


def _view(v: ViewDef | None) -> dict | None:
    if v is None:
        return None
    return {"source": v.source, "group_by": list(v.group_by),
            "aggregates": [[f, c] for f, c in v.aggregates], "sql": v.sql, "where": v.where}


def _table(t: Table) -> dict:
    return {"name": t.name, "table_id": t.table_id, "columns": [_col(c) for c in t.columns],
            "primary_key": None if t.primary_key is None else list(t.primary_key),
            "partitioned": t.partitioned, "partition_column": t.partition_column,
            "indexes": [_idx(ix) for ix in t.indexes], "view": _view(t.view),
            "altered_from": t.altered_from}


def _proc(p: Procedure) -> dict:
    return {"name": p.name, "sql": p.sql, "class_path": p.class_path,
            "partition_table": p.partition_table, "partition_column": p.partition_column,
            "partition_parameter": p.partition_parameter}


def catalog_to_bytes(cat: Catalog) -> bytes:
    """Serialize a catalog (tables in their dict order, procedures likewise)."""
    body = {"tables": [_table(t) for t in cat.tables.values()],
            "procedures": [_proc(p) for p in cat.procedures.values()],
            "classes": list(cat.classes), "next_id": cat.next_id, "version": cat.version}
    try:
        payload = msgpack.packb(body, default=_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise CodecError(f"catalog cannot be serialized: {e}") from None
    return _HEADER.pack(MAGIC, FORMAT_VERSION) + payload


# -- decoding with type checks ----------------------------------------------------------


def _get(d: Any, key: str, types: type | tuple, what: str, optional: bool = False,
         default: Any = None) -> Any:
    if not isinstance(d, dict):
        raise CodecError(f"catalog bytes: {what} is not a map")
    if key not in d:
        if optional:
            return default
        raise CodecError(f"catalog bytes: {what} has no {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _astuple(types)):
        raise CodecError(f"catalog bytes: {what}.{key} has type {type(v).__name__}")
    return v


def _astuple(types: type | tuple) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _strlist(v: Any, what: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise CodecError(f"catalog bytes: {what} is not a list of strings")
    return list(v)


_NONE = type(None)
_VALUE_TYPES = (int, float, str, bytes, decimal.Decimal, _NONE)


def _read_col(d: Any, what: str) -> Column:
    vt = _get(d, "vtype", int, what)
    try:
        vtype = VoltType(vt)
    except ValueError:
        raise CodecError(f"catalog bytes: {what} has unknown type code {vt}") from None
    default = _get(d, "default", _VALUE_TYPES, what, optional=True)
    return Column(_get(d, "name", str, what), vtype, _get(d, "size", int, what),
                  _get(d, "in_bytes", bool, what), _get(d, "nullable", bool, what),
                  _get(d, "has_default", bool, what), default,
                  _get(d, "default_now", bool, what, optional=True, default=False))


def _read_idx(d: Any, what: str) -> Index:
    return Index(_get(d, "name", str, what), _get(d, "index_id", int, what),
                 _get(d, "table", str, what), _strlist(_get(d, "columns", list, what), what),
                 _get(d, "unique", bool, what), _get(d, "assume_unique", bool, what),
                 _get(d, "primary_key", bool, what), _get(d, "from_constraint", bool, what),
                 _get(d, "constraint", (str, _NONE), what, optional=True))


def _read_view(d: Any, what: str) -> ViewDef | None:
    if d is None:
        return None
    aggs = []
    for a in _get(d, "aggregates", list, what):
        if (not isinstance(a, list) or len(a) != 2 or not isinstance(a[0], str)
                or not isinstance(a[1], (str, _NONE))):
            raise CodecError(f"catalog bytes: {what} has a bad aggregate {a!r}")
        aggs.append((a[0], a[1]))
    return ViewDef(_get(d, "source", str, what), _strlist(_get(d, "group_by", list, what), what),
                   aggs, _get(d, "sql", str, what),
                   _get(d, "where", (str, _NONE), what, optional=True))


def _read_table(d: Any) -> Table:
    name = _get(d, "name", str, "table")
    what = f"table {name}"
    pk = _get(d, "primary_key", (list, _NONE), what)
    return Table(name, _get(d, "table_id", int, what),
                 [_read_col(c, f"{what} column") for c in _get(d, "columns", list, what)],
                 None if pk is None else _strlist(pk, what),
                 _get(d, "partitioned", bool, what),
                 _get(d, "partition_column", (str, _NONE), what),
                 [_read_idx(i, f"{what} index") for i in _get(d, "indexes", list, what)],
                 _read_view(_get(d, "view", (dict, _NONE), what), f"{what} view"),
                 _get(d, "altered_from", (int, _NONE), what, optional=True))


def _read_proc(d: Any) -> Procedure:
    name = _get(d, "name", str, "procedure")
    what = f"procedure {name}"
    return Procedure(name, _get(d, "sql", (str, _NONE), what),
                     _get(d, "class_path", (str, _NONE), what),
                     _get(d, "partition_table", (str, _NONE), what),
                     _get(d, "partition_column", (str, _NONE), what),
                     _get(d, "partition_parameter", int, what))


def catalog_from_bytes(b: bytes) -> Catalog:
    """Rebuild a catalog written by catalog_to_bytes. :raises CodecError: bad bytes."""
    b = bytes(b)
    if len(b) < _HEADER.size:
        raise CodecError("catalog bytes are too short")
    magic, fmt = _HEADER.unpack_from(b)
    if magic != MAGIC:
        raise CodecError("not catalog bytes (bad magic)")
    if fmt != FORMAT_VERSION:
        raise CodecError(f"catalog format version {fmt} is not supported (this reader: "
                         f"{FORMAT_VERSION})")
    try:
        body = msgpack.unpackb(b[_HEADER.size:], ext_hook=_ext_hook, raw=False,
                               strict_map_key=True)
    except CodecError:
        raise
    except Exception as e:  # msgpack raises several exception types on garbage
        raise CodecError(f"catalog bytes do not decode: {type(e).__name__}: {e}") from None
    tables = [_read_table(t) for t in _get(body, "tables", list, "catalog")]
    procs = [_read_proc(p) for p in _get(body, "procedures", list, "catalog")]
    cat = Catalog({t.name: t for t in tables}, {p.name: p for p in procs},
                  _strlist(_get(body, "classes", list, "catalog"), "classes"),
                  _get(body, "next_id", int, "catalog"), _get(body, "version", int, "catalog"))
    if len(cat.tables) != len(tables) or len(cat.procedures) != len(procs):
        raise CodecError("catalog bytes: duplicate table or procedure names")
    return cat

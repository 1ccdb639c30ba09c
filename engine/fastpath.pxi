# SPDX-License-Identifier: AGPL-3.0-or-later
# Compiled single-partition point procedures: a whole call (parameter coercion, routing,
# primary-key read or write, projection) in one C-level method, for SQL procedures whose
# one statement is a primary-key SELECT, an INSERT/UPSERT of parameters, or a primary-key
# DELETE on a table without materialized views. Everything else takes the general path.

from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM, PyTuple_GET_ITEM, PyTuple_GET_SIZE

DEF _FP_GET = 0
DEF _FP_INSERT = 1
DEF _FP_UPSERT = 2
DEF _FP_DELETE = 3

FP_GET = _FP_GET
FP_INSERT = _FP_INSERT
FP_UPSERT = _FP_UPSERT
FP_DELETE = _FP_DELETE

cdef double _FP_NULL_FLOAT = -1.7E308


cdef inline bint _fp_int_ok(int vtype, object v):
    """True when v is already a valid, non-NULL internal value of integer type vtype."""
    cdef long long x
    if type(v) is not int:
        return False
    try:
        x = v
    except OverflowError:
        return False
    if vtype == _T_BIGINT or vtype == _T_TIMESTAMP:
        return x != (-9223372036854775807 - 1)
    if vtype == _T_INTEGER:
        return -2147483647 <= x <= 2147483647
    if vtype == _T_SMALLINT:
        return -32767 <= x <= 32767
    if vtype == _T_TINYINT:
        return -127 <= x <= 127
    return False


cdef class PointProcedure:
    """One compiled single-partition point statement, bound to its stores and schema.

    kind: FP_GET, FP_INSERT, FP_UPSERT or FP_DELETE. param_specs: per parameter
    (vtype, size, in_bytes). part_param: the parameter that routes the call. key_params:
    for GET/DELETE, the parameter of each primary-key column in key order. row_sources:
    for INSERT/UPSERT, per table column, a parameter index or -1 (then row_defaults gives
    the value). projection: for GET, the table columns returned, in order.
    """
    cdef readonly int kind
    cdef readonly bint read_only
    cdef object schema
    cdef list stores
    cdef object hashinator
    cdef int part_vtype
    cdef int part_param
    cdef int nparams
    cdef tuple param_specs
    cdef tuple key_params
    cdef tuple row_sources
    cdef tuple row_defaults
    cdef tuple projection
    cdef object coerce_fn
    cdef object param_error

    def __init__(self, int kind, schema, list stores, hashinator, int part_vtype,
                 int part_param, tuple param_specs, tuple key_params, tuple row_sources,
                 tuple row_defaults, tuple projection, coerce_fn, param_error):
        if kind not in (_FP_GET, _FP_INSERT, _FP_UPSERT, _FP_DELETE):
            raise ValueError(f"unknown point procedure kind {kind}")
        if not 0 <= part_param < len(param_specs):
            raise ValueError("the partitioning parameter is out of range")
        # execute() indexes these tuples without bounds checks.
        nparams = len(param_specs)
        if not all(type(spec) is tuple and len(spec) == 3 for spec in param_specs):
            raise ValueError("each parameter spec must be a (vtype, size, in_bytes) tuple")
        if not all(type(i) is int and 0 <= i < nparams for i in key_params):
            raise ValueError("a key parameter is out of range")
        if not all(type(i) is int and -1 <= i < nparams for i in row_sources) or \
                len(row_defaults) != len(row_sources):
            raise ValueError("row sources and defaults do not match the parameters")
        if not all(type(i) is int and 0 <= i < schema.ncols for i in projection):
            raise ValueError("a projected column is out of range")
        self.kind = kind
        self.read_only = kind == _FP_GET
        self.schema = schema
        self.stores = stores
        self.hashinator = hashinator
        self.part_vtype = part_vtype
        self.part_param = part_param
        self.nparams = len(param_specs)
        self.param_specs = param_specs
        self.key_params = key_params
        self.row_sources = row_sources
        self.row_defaults = row_defaults
        self.projection = projection
        self.coerce_fn = coerce_fn
        self.param_error = param_error

    cdef tuple _coerce(self, tuple params):
        """params with each value coerced to its parameter's type (params itself if all fit)."""
        cdef list out = None
        cdef Py_ssize_t i
        cdef int vtype, size
        cdef object v, spec
        if PyTuple_GET_SIZE(params) != self.nparams:
            raise self.param_error(
                f"EXPECTS {self.nparams} PARAMS, BUT RECEIVED {len(params)}")
        for i in range(self.nparams):
            v = <object>PyTuple_GET_ITEM(params, i)
            if v is None:
                continue
            spec = <object>PyTuple_GET_ITEM(self.param_specs, i)
            vtype = (<tuple>spec)[0]
            size = (<tuple>spec)[1]
            if vtype == _T_STRING:
                if type(v) is str and not spec[2] and (size == 0 or len(<str>v) <= size):
                    continue
            elif vtype == _T_VARBINARY:
                if type(v) is bytes and (size == 0 or len(<bytes>v) <= size):
                    continue
            elif vtype == _T_FLOAT:
                if type(v) is float and <double>v > _FP_NULL_FLOAT and v == v \
                        and v != float("inf"):
                    continue
            elif _fp_int_ok(vtype, v):
                continue
            if out is None:
                out = list(params)
            out[i] = self.coerce_fn(vtype, v, size, spec[2], f"parameter {i + 1}")
        return params if out is None else tuple(out)

    def partition(self, list values):
        """The partition of the call: where its partitioning parameter hashes."""
        return self.hashinator.partition_for_value(self.part_vtype, values[self.part_param])

    cdef int _fp_partition(self, object value) except -1:
        cdef Hashinator h
        if type(self.hashinator) is Hashinator:
            h = <Hashinator>self.hashinator
            if _hz_is_null(self.part_vtype, value):
                return 0
            return h._lookup(_token_for(self.part_vtype, value))
        return self.hashinator.partition_for_value(self.part_vtype, value)

    def execute(self, txn, tuple params):
        """Run the call in txn: rows (GET) or the modified row count (writes).

        Raises the typed errors of the general path: TypeMismatchError,
        ValueOutOfRangeError, ConstraintError, MispartitionedError, param_error.
        """
        return self._execute(txn, params)

    cdef object _execute(self, txn, tuple params):
        cdef tuple values = self._coerce(params)
        cdef int pid = self._fp_partition(<object>PyTuple_GET_ITEM(values, self.part_param))
        cdef PartitionStore store = <PartitionStore?>self.stores[pid]
        cdef _TableInfo inf = store.info(self.schema)
        cdef Py_ssize_t i, n
        cdef int src
        cdef object row, v
        if self.kind == _FP_GET or self.kind == _FP_DELETE:
            n = PyTuple_GET_SIZE(self.key_params)
            key = PyTuple_New(n)
            for i in range(n):
                src = <int>(<object>PyTuple_GET_ITEM(self.key_params, i))
                v = <object>PyTuple_GET_ITEM(values, src)
                if v is None:  # NULL = x is never true
                    return [] if self.kind == _FP_GET else 0
                Py_INCREF(v)
                PyTuple_SET_ITEM(key, i, v)
            if self.kind == _FP_DELETE:
                return 1 if store._st_delete_pk(txn, inf, key) else 0
            row = store._st_get(txn, inf, key)
            if row is None:
                return []
            n = PyTuple_GET_SIZE(self.projection)
            out_row = PyTuple_New(n)
            for i in range(n):
                v = <object>PyTuple_GET_ITEM(
                    <tuple>row, <int>(<object>PyTuple_GET_ITEM(self.projection, i)))
                Py_INCREF(v)
                PyTuple_SET_ITEM(out_row, i, v)
            return [out_row]
        n = PyTuple_GET_SIZE(self.row_sources)
        row = PyTuple_New(n)
        for i in range(n):
            src = <int>(<object>PyTuple_GET_ITEM(self.row_sources, i))
            v = <object>PyTuple_GET_ITEM(values, src) if src >= 0 else \
                <object>PyTuple_GET_ITEM(self.row_defaults, i)
            Py_INCREF(v)
            PyTuple_SET_ITEM(row, i, v)
        if self.kind == _FP_INSERT:
            store._st_insert_row(txn, inf, row)
        else:
            store._st_upsert(txn, inf, row)
        return 1


def run_point_calls(txn, dict procs not None, list calls not None, Py_ssize_t start,
                    list out not None, ids_out, tuple errors not None, make_error):
    """Run ``calls[start:]`` in txn while each is a compiled point procedure (the loop of
    Database.run_many, compiled); return the index of the first call that is not one, or
    len(calls).

    A call is ``(name, params, ...)`` (params a tuple or list); procs maps a name to its
    runtime, whose ``fast`` is the PointProcedure (None when it has none), ``stats`` its
    counters (calls, failures, ...) and ``result_columns`` its result's columns. Each call
    run appends one result to out: ``(result_columns, rows)`` (a write's rows are
    ``[(count,)]``), or, when execute raised one of errors, ``make_error(runtime,
    exception)``; and ``()`` to ids_out when it is a list. Other exceptions propagate
    (out then holds the results of the calls before the one that raised).
    """
    cdef Py_ssize_t i, n = len(calls)
    cdef PointProcedure fast
    cdef list stats
    cdef tuple params
    for i in range(start, n):
        call = calls[i]
        name = call[0]
        p = call[1]
        if not isinstance(name, str):
            return i
        rt = procs.get(name)
        if rt is None:
            return i
        f = rt.fast
        if f is None or not isinstance(f, PointProcedure):
            return i
        fast = <PointProcedure>f
        params = p if type(p) is tuple else tuple(p)
        if ids_out is not None:
            ids_out.append(())
        stats = rt.stats
        stats[0] = stats[0] + 1
        try:
            result = fast._execute(txn, params)
        except errors as exc:
            stats[1] = stats[1] + 1
            out.append(make_error(rt, exc))
            continue
        out.append((rt.result_columns, result if fast.read_only else [(result,)]))
    return n

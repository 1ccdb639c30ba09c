# SPDX-License-Identifier: AGPL-3.0-or-later
# VoltDB client wire protocol: compiled (de)serialization.
#
# Spec: voltdb-wire-protocol.md §1-§8. Everything is big-endian. Decoders work on a
# (pointer, length, position) cursor over the caller's buffer and check every length
# against what is left before touching or allocating anything; malformed input raises
# CodecError naming the field and offset. Encoders write into one growable C buffer and
# patch length prefixes in place, so a frame is built with one final bytes allocation.

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.bytes cimport PyBytes_CheckExact
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8
from cpython.long cimport PyLong_Check
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from cpython.bool cimport PyBool_Check
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.object cimport PyObject
from cpython.type cimport PyType_GenericAlloc
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdlib cimport malloc, realloc, free
from libc.stdint cimport INT64_MIN

import datetime as _wire_dt_mod
import decimal as _wire_dec_mod
import hashlib as _wire_hashlib

cdef extern from "structmember.h":
    ctypedef struct _wire_PyMemberDef "PyMemberDef":
        int type
        Py_ssize_t offset
        int flags

cdef extern from "Python.h":
    ctypedef struct _wire_PyMemberDescr "PyMemberDescrObject":
        _wire_PyMemberDef *d_member
    const char* _wire_utf8 "PyUnicode_AsUTF8AndSize"(object s, Py_ssize_t* size) except NULL
    long long _wire_as_ll "PyLong_AsLongLongAndOverflow"(object v, int* overflow) except? -1

DEF _WT_DATE = 12
DEF _WT_MONEY = 20
DEF _WT_VOLTTABLE = 21
DEF _WT_BOOLEAN = 23
DEF _WT_POINT = 26
DEF _WT_GEOGRAPHY = 27
DEF _WT_ARRAY = -99
DEF _WIRE_MAX_COLUMNS = 32767

T_DATE = _WT_DATE
T_VOLTTABLE = _WT_VOLTTABLE
T_BOOLEAN = _WT_BOOLEAN
T_GEOGRAPHY_POINT = _WT_POINT
T_GEOGRAPHY = _WT_GEOGRAPHY
T_ARRAY = _WT_ARRAY

# Invocation extension types (§4.1).
EXT_BATCH_TIMEOUT = 1
EXT_ALL_PARTITION = 2
EXT_PARTITION_DESTINATION = 3
EXT_BATCH_CALL = 4
EXT_PRIORITY = 5
EXT_REQUEST_TIMEOUT = 6
# Login digest lengths by hash scheme (§3.1).
HASH_SHA1 = 0
HASH_SHA256 = 1
DIGEST_LENGTHS = {0: 20, 1: 32, 2: 0}
DEFAULT_MAX_FRAME_BYTES = 50 * 1024 * 1024


class InvocationError(CodecError):
    """An invocation whose header was readable but whose rest is malformed (answer on .client_handle)."""

    def __init__(self, message, client_handle, procedure):
        super().__init__(message)
        self.client_handle = client_handle
        self.procedure = procedure


_WIRE_Decimal = _wire_dec_mod.Decimal
_WIRE_DEC_CTX = _wire_dec_mod.Context(prec=80, rounding=_wire_dec_mod.ROUND_HALF_EVEN)
_WIRE_QUANTUM = _WIRE_Decimal(1).scaleb(-12)
_WIRE_DEC_LIMIT = 10 ** 38
_WIRE_MASK64 = (1 << 64) - 1
_WIRE_date = _wire_dt_mod.date
_WIRE_datetime = _wire_dt_mod.datetime
_WIRE_EPOCH = _wire_dt_mod.datetime(1970, 1, 1)
_WIRE_PARAM_WHATS = tuple(f"parameter {i}" for i in range(64))
_WIRE_EXT_NAMES = {1: "batch_timeout", 2: "all_partition", 3: "partition_destination",
                   4: "batch_call", 5: "priority", 6: "request_timeout"}
_WIRE_EXT_CODES = {v: k for k, v in _WIRE_EXT_NAMES.items()}
_wire_types_mod = None
cdef int64_t _wire_i64_min = INT64_MIN


_WIRE_new = object.__new__
_WIRE_Column = None
_WIRE_VoltTable = None
_WIRE_ClientResponse = None


# Decoded answers are built without calling their classes: the slots of a ClientResponse
# and of a VoltTable are written at their offsets in the new object (their dataclass
# __init__, a Python frame, cost more than the whole decode of a one-row answer, and
# object.__new__ plus setattr half of it). The offsets are read once from the classes'
# slot descriptors; if either class is not laid out that way, setattr is used.
cdef Py_ssize_t _wire_resp_slots[5]   # status, status_string, app_status, app_status_string, tables
cdef Py_ssize_t _wire_table_slots[2]  # columns, rows
cdef bint _wire_slots_ok = False
DEF _WIRE_T_OBJECT_EX = 16            # structmember.h: an object slot, AttributeError when unset
DEF _WIRE_READONLY = 1


cdef bint _wire_slot_offsets(object cls, tuple names, Py_ssize_t *out):
    """Fill out with the offsets of cls's writable object slots names; False when one of
    them is something else (a property, a __dict__ attribute, a read-only member...)."""
    import types
    cdef _wire_PyMemberDef *m
    cdef Py_ssize_t i
    # A plain class straight from object (allocated by PyType_GenericAlloc), with no
    # __new__ of its own to skip, no instance __dict__, and no slot left unset: names
    # are all of its slots.
    if type(cls) is not type or cls.__mro__ != (cls, object) \
            or cls.__new__ is not object.__new__ or getattr(cls, "__dictoffset__", 0) \
            or sorted(cls.__dict__.get("__slots__", ())) != sorted(names):
        return False
    for i, name in enumerate(names):
        d = cls.__dict__.get(name)
        if type(d) is not types.MemberDescriptorType:
            return False
        m = (<_wire_PyMemberDescr *><PyObject *>d).d_member
        if m.type != _WIRE_T_OBJECT_EX or m.flags & _WIRE_READONLY or m.offset <= 0:
            return False
        out[i] = m.offset
    return True


cdef inline void _wire_slot_put(object obj, Py_ssize_t offset, object v) noexcept:
    """Set the object slot at offset in obj to v (a new reference)."""
    cdef PyObject **p = <PyObject **>((<char *><PyObject *>obj) + offset)
    Py_INCREF(v)
    Py_XDECREF(p[0])
    p[0] = <PyObject *>v


cdef object _wire_types():
    """Return voltdb_py.types (imported lazily: it imports this module)."""
    global _wire_types_mod, _WIRE_Column, _WIRE_VoltTable, _WIRE_ClientResponse, _wire_slots_ok
    if _wire_types_mod is None:
        import voltdb_py.types as m
        _WIRE_Column = m.Column
        _WIRE_VoltTable = m.VoltTable
        _WIRE_ClientResponse = m.ClientResponse
        _wire_slots_ok = _wire_slot_offsets(
            m.ClientResponse, ("status", "status_string", "app_status", "app_status_string",
                               "tables"), _wire_resp_slots) and _wire_slot_offsets(
            m.VoltTable, ("columns", "rows"), _wire_table_slots)
        _wire_types_mod = m
    return _wire_types_mod


cdef object _wire_new_table(list columns, list rows):
    """A VoltTable(columns, rows), built at C level (see _wire_slot_offsets)."""
    _wire_types()
    if not _wire_slots_ok:
        t = _WIRE_new(_WIRE_VoltTable)
        t.columns = columns
        t.rows = rows
        return t
    t = PyType_GenericAlloc(_WIRE_VoltTable, 0)
    _wire_slot_put(t, _wire_table_slots[0], columns)
    _wire_slot_put(t, _wire_table_slots[1], rows)
    return t


cdef object _wire_new_response(int status, object status_string, int app_status,
                               object app_status_string, list tables):
    """A ClientResponse of these fields, built at C level (see _wire_slot_offsets)."""
    _wire_types()
    if not _wire_slots_ok:
        r = _WIRE_new(_WIRE_ClientResponse)
        r.status = status
        r.status_string = status_string
        r.app_status = app_status
        r.app_status_string = app_status_string
        r.tables = tables
        return r
    r = PyType_GenericAlloc(_WIRE_ClientResponse, 0)
    _wire_slot_put(r, _wire_resp_slots[0], status)
    _wire_slot_put(r, _wire_resp_slots[1], status_string)
    _wire_slot_put(r, _wire_resp_slots[2], app_status)
    _wire_slot_put(r, _wire_resp_slots[3], app_status_string)
    _wire_slot_put(r, _wire_resp_slots[4], tables)
    return r


def _wire_slots_in_use():
    """True when decoded answers are built by writing their slots (tests)."""
    _wire_types()
    return _wire_slots_ok


def _wire_slots_of(cls, names):
    """The slot offsets _wire_slot_offsets finds for cls's names, or None (tests)."""
    cdef Py_ssize_t out[8]
    names = tuple(names)
    if len(names) > 8 or not _wire_slot_offsets(cls, names, out):
        return None
    return [out[i] for i in range(len(names))]


cdef str _wire_param_what(Py_ssize_t i):
    """Return the name of parameter i used in error messages."""
    if i < 64:
        return _WIRE_PARAM_WHATS[i]
    return f"parameter {i}"


# ---------------------------------------------------------------- reading

ctypedef struct _wire_rd:
    const unsigned char *p
    Py_ssize_t n
    Py_ssize_t pos


cdef int _wire_need(_wire_rd *r, Py_ssize_t k, str what) except -1:
    """Raise CodecError unless k more bytes are available."""
    if k < 0 or k > r.n - r.pos:
        raise CodecError(f"{what}: needs {k} bytes at offset {r.pos}, only {r.n - r.pos} left")
    return 0


cdef inline int _wire_u8(_wire_rd *r, str what) except -1:
    """Read one unsigned byte."""
    if r.pos >= r.n:
        _wire_need(r, 1, what)
    r.pos += 1
    return r.p[r.pos - 1]


cdef inline int _wire_i8(_wire_rd *r, str what) except? -1000:
    """Read an i8."""
    if r.pos >= r.n:
        _wire_need(r, 1, what)
    r.pos += 1
    return <int8_t>r.p[r.pos - 1]


cdef inline int _wire_i16(_wire_rd *r, str what) except? -100000:
    """Read a big-endian i16."""
    cdef const unsigned char *q
    if r.n - r.pos < 2:
        _wire_need(r, 2, what)
    q = r.p + r.pos
    r.pos += 2
    return <int16_t>((<uint16_t>q[0] << 8) | q[1])


cdef inline int32_t _wire_i32(_wire_rd *r, str what) except? -1:
    """Read a big-endian i32."""
    cdef const unsigned char *q
    if r.n - r.pos < 4:
        _wire_need(r, 4, what)
    q = r.p + r.pos
    r.pos += 4
    return <int32_t>((<uint32_t>q[0] << 24) | (<uint32_t>q[1] << 16) | (<uint32_t>q[2] << 8) | q[3])


cdef inline uint64_t _wire_load64(const unsigned char *q) noexcept:
    """Load a big-endian u64."""
    cdef uint64_t v = 0
    cdef int i
    for i in range(8):
        v = (v << 8) | q[i]
    return v


cdef inline int64_t _wire_i64(_wire_rd *r, str what) except? -1:
    """Read a big-endian i64."""
    if r.n - r.pos < 8:
        _wire_need(r, 8, what)
    r.pos += 8
    return <int64_t>_wire_load64(r.p + r.pos - 8)


cdef inline double _wire_f64(_wire_rd *r, str what) except? -1.0:
    """Read a big-endian IEEE double."""
    cdef uint64_t u
    cdef double d
    if r.n - r.pos < 8:
        _wire_need(r, 8, what)
    u = _wire_load64(r.p + r.pos)
    r.pos += 8
    memcpy(&d, &u, 8)
    return d


cdef object _wire_text(_wire_rd *r, Py_ssize_t n, str what):
    """Decode n bytes at the cursor as UTF-8."""
    cdef Py_ssize_t start = r.pos
    _wire_need(r, n, what)
    try:
        s = PyUnicode_DecodeUTF8(<const char *>(r.p + start), n, NULL)
    except UnicodeDecodeError as e:
        raise CodecError(f"{what}: invalid UTF-8 at offset {start + e.start}") from None
    r.pos += n
    return s


cdef object _wire_string(_wire_rd *r, str what, bint text):
    """Read an i32-length-prefixed string (text) or varbinary; length -1 is None."""
    cdef Py_ssize_t at = r.pos
    cdef int32_t n = _wire_i32(r, what)
    if n == -1:
        return None
    if n < -1:
        raise CodecError(f"{what}: bad length {n} at offset {at}")
    if text:
        return _wire_text(r, n, what)
    _wire_need(r, n, what)
    r.pos += n
    return PyBytes_FromStringAndSize(<const char *>(r.p + r.pos - n), n)


cdef object _wire_name(_wire_rd *r, str what):
    """Read a non-NULL string."""
    cdef Py_ssize_t at = r.pos
    s = _wire_string(r, what, True)
    if s is None:
        raise CodecError(f"{what}: NULL (length -1) at offset {at}")
    return s


cdef object _wire_decimal(_wire_rd *r, str what):
    """Read a 16-byte DECIMAL (scale 12); the sentinel is None."""
    cdef Py_ssize_t at = r.pos
    cdef int64_t hi
    cdef uint64_t lo
    if r.n - r.pos < 16:
        _wire_need(r, 16, what)
    hi = <int64_t>_wire_load64(r.p + r.pos)
    lo = _wire_load64(r.p + r.pos + 8)
    r.pos += 16
    if hi == _wire_i64_min and lo == 0:
        return None
    if (hi == 0 and lo < 0x8000000000000000ULL) or (hi == -1 and lo >= 0x8000000000000000ULL):
        unscaled = <int64_t>lo  # fits an int64
    else:
        unscaled = (<object>hi << 64) | <object>lo
        if not -_WIRE_DEC_LIMIT < unscaled < _WIRE_DEC_LIMIT:
            raise CodecError(f"{what}: DECIMAL at offset {at} has more than 38 digits")
    return _WIRE_Decimal(f"{unscaled}E-12")


cdef object _wire_value(_wire_rd *r, int t, str what):
    """Read one value of wire type t (no type byte) as its internal Python value."""
    cdef int64_t v64
    cdef int32_t v32
    cdef int v
    cdef double d, d2
    cdef Py_ssize_t at = r.pos
    if t == _T_STRING:
        return _wire_string(r, what, True)
    if t == _T_BIGINT or t == _T_TIMESTAMP:
        v64 = _wire_i64(r, what)
        return None if v64 == _wire_i64_min else v64
    if t == _T_INTEGER:
        v32 = _wire_i32(r, what)
        return None if v32 == -2147483648 else v32
    if t == _T_SMALLINT:
        v = _wire_i16(r, what)
        return None if v == -32768 else v
    if t == _T_TINYINT:
        v = _wire_i8(r, what)
        return None if v == -128 else v
    if t == _T_FLOAT:
        d = _wire_f64(r, what)
        return None if d <= -1.7E308 else d
    if t == _T_VARBINARY:
        return _wire_string(r, what, False)
    if t == _T_DECIMAL:
        return _wire_decimal(r, what)
    if t == _T_NULL:
        return None
    if t == _WT_BOOLEAN:
        v = _wire_i8(r, what)
        if v == 1:
            return True
        if v == 0:
            return False
        return None
    if t == _WT_DATE:
        v32 = _wire_i32(r, what)
        if v32 == -2147483648:
            return None
        try:
            return _WIRE_date((v32 >> 16) & 0xFFFF, (v32 >> 8) & 0xFF, v32 & 0xFF)
        except ValueError:
            raise CodecError(f"{what}: invalid DATE 0x{<uint32_t>v32:08x} at offset {at}") from None
    if t == _WT_POINT:
        d = _wire_f64(r, what)
        d2 = _wire_f64(r, what)
        if d == 360.0 and d2 == 360.0:
            return None
        return (d, d2)
    if t == _WT_GEOGRAPHY:
        return _wire_string(r, what, False)
    if t == _WT_VOLTTABLE:
        return _wire_table(r, what, False)
    raise CodecError(f"{what}: unsupported type code {t} at offset {at}")


cdef object _wire_array(_wire_rd *r, str what):
    """Read an ARRAY parameter body (after the -99 marker)."""
    cdef Py_ssize_t at = r.pos
    cdef int et = _wire_i8(r, what + " array element type")
    cdef int32_t n
    cdef Py_ssize_t i
    cdef list out
    if r.pos == r.n:
        # The Python client writes nothing after the element type for an empty list.
        return b"" if et == _T_TINYINT else []
    if et == _T_TINYINT:
        n = _wire_i32(r, what + " byte array length")
        if n < 0:
            raise CodecError(f"{what}: bad byte array length {n} at offset {r.pos - 4}")
        _wire_need(r, n, what + " byte array")
        r.pos += n
        return PyBytes_FromStringAndSize(<const char *>(r.p + r.pos - n), n)
    if et in (_T_NULL, _WT_VOLTTABLE, _WT_MONEY, _WT_ARRAY) or not (
            et in (_T_SMALLINT, _T_INTEGER, _T_BIGINT, _T_FLOAT, _T_STRING, _T_TIMESTAMP,
                   _T_DECIMAL, _T_VARBINARY, _WT_DATE, _WT_BOOLEAN, _WT_POINT, _WT_GEOGRAPHY)):
        raise CodecError(f"{what}: unsupported array element type {et} at offset {at}")
    n = _wire_i16(r, what + " array count")
    if n < 0:
        raise CodecError(f"{what}: bad array count {n} at offset {r.pos - 2}")
    _wire_need(r, n, what + " array elements")  # every element takes at least one byte
    out = []
    for i in range(n):
        out.append(_wire_value(r, et, what))
    return out


cdef object _wire_param(_wire_rd *r, Py_ssize_t i):
    """Read one typed parameter (type byte then value)."""
    cdef str what = _wire_param_what(i)
    cdef int t = _wire_i8(r, what)
    if t == _WT_ARRAY:
        return _wire_array(r, what)
    if t == _WT_MONEY:
        raise CodecError(f"{what}: unsupported type code 20 (MONEY) at offset {r.pos - 1}")
    return _wire_value(r, t, what)


cdef dict _wire_coltypes = {}


cdef object _wire_column_type(int t):
    """Return the VoltType of a column code, or the int code when VoltType lacks it."""
    ct = _wire_coltypes.get(t)
    if ct is None:
        try:
            ct = _wire_types().VoltType(t)
        except ValueError:
            ct = t
        _wire_coltypes[t] = ct
    return ct


cdef dict _wire_table_whats_cache = {}
_WIRE_RESULT_WHATS = tuple(f"result {i}" for i in range(64))


cdef tuple _wire_table_whats(str what):
    """Return the field names a table read under what uses in its error messages.

    Built once per prefix: a table read makes a dozen of them, and building them per call
    cost more than the read itself.
    """
    w = _wire_table_whats_cache.get(what)
    if w is None:
        w = (what + " table length", what + " table", what + " table header length",
             what + " table status", what + " column count", what + " column header",
             what + " column name", what + " row count", what + " row length", what + " row")
        if len(_wire_table_whats_cache) < 1024:
            _wire_table_whats_cache[what] = w
    return <tuple>w


# Table header bytes (status, column count, types, names) -> (type codes as bytes, tuple of
# Column). Results of one procedure share one header, so its columns are decoded, checked
# and built once; the cache is bounded by clearing it when full.
cdef dict _wire_header_cache = {}
DEF _WIRE_HEADER_CACHE_MAX = 512


cdef tuple _wire_table_header(_wire_rd *sub, Py_ssize_t hlen, str what, tuple whats):
    """Read and check a table header of hlen bytes at sub's cursor; return (codes, columns)."""
    cdef Py_ssize_t hstart = sub.pos, i, ncols
    cdef int t
    cdef list types, names
    key = None
    if 0 <= hlen <= sub.n - sub.pos:
        key = PyBytes_FromStringAndSize(<const char *>(sub.p + hstart), hlen)
        hit = _wire_header_cache.get(key)
        if hit is not None:
            sub.pos += hlen
            return <tuple>hit
    _wire_i8(sub, whats[3])
    ncols = _wire_i16(sub, whats[4])
    if ncols < 1:
        raise CodecError(f"{what}: bad column count {ncols} at offset {sub.pos - 2}")
    _wire_need(sub, ncols * 5, whats[5])
    types = []
    for i in range(ncols):
        types.append(<int8_t>sub.p[sub.pos + i])
    codes = PyBytes_FromStringAndSize(<const char *>(sub.p + sub.pos), ncols)
    sub.pos += ncols
    names = []
    for i in range(ncols):
        names.append(_wire_name(sub, whats[6]))
    if sub.pos - hstart != hlen:
        raise CodecError(f"{what}: table header length {hlen} at offset {hstart - 4} "
                         f"does not match the header's {sub.pos - hstart} bytes")
    for i in range(ncols):
        t = types[i]
        if t == _WT_VOLTTABLE or t == _WT_MONEY or t == _WT_ARRAY or not (
                t == _T_NULL or t == _T_TINYINT or t == _T_SMALLINT or t == _T_INTEGER
                or t == _T_BIGINT or t == _T_FLOAT or t == _T_STRING or t == _T_TIMESTAMP
                or t == _T_DECIMAL or t == _T_VARBINARY or t == _WT_DATE or t == _WT_BOOLEAN
                or t == _WT_POINT or t == _WT_GEOGRAPHY):
            raise CodecError(f"{what}: column {names[i]!r} has unsupported type code {t}")
    _wire_types()
    hit = (codes, tuple([_WIRE_Column(names[i], _wire_column_type(types[i]))
                         for i in range(ncols)]))
    if key is not None:
        if len(_wire_header_cache) >= _WIRE_HEADER_CACHE_MAX:
            _wire_header_cache.clear()
        _wire_header_cache[key] = hit
    return hit


cdef object _wire_table(_wire_rd *r, str what, bint client_values):
    """Read a VoltTable (§8) starting at its i32 total length."""
    cdef tuple whats = _wire_table_whats(what)
    cdef Py_ssize_t at = r.pos
    cdef int32_t total = _wire_i32(r, whats[0])
    cdef int32_t hlen, nrows, rlen
    cdef Py_ssize_t end, rstart, i, j, ncols
    cdef const signed char *types
    cdef list rows
    cdef tuple cols
    if total < 0:
        raise CodecError(f"{what}: bad table length {total} at offset {at}")
    _wire_need(r, total, whats[1])
    end = r.pos + total
    cdef _wire_rd sub
    sub.p = r.p
    sub.n = end
    sub.pos = r.pos
    hlen = _wire_i32(&sub, whats[2])
    codes, cols = _wire_table_header(&sub, hlen, what, whats)
    types = <const signed char *>PyBytes_AS_STRING(codes)
    ncols = PyBytes_GET_SIZE(codes)
    nrows = _wire_i32(&sub, whats[7])
    if nrows < 0 or <int64_t>nrows * 4 > sub.n - sub.pos:
        raise CodecError(f"{what}: bad row count {nrows} at offset {sub.pos - 4} "
                         f"({sub.n - sub.pos} bytes left)")
    rows = []
    tsmod = _wire_types() if client_values else None
    for i in range(nrows):
        rlen = _wire_i32(&sub, whats[8])
        if rlen < 0:
            raise CodecError(f"{what}: bad row length {rlen} at offset {sub.pos - 4}")
        _wire_need(&sub, rlen, whats[9])
        rstart = sub.pos
        row = PyTuple_New(ncols)
        sub.n = rstart + rlen
        j = 0
        try:
            for j in range(ncols):
                v = _wire_value(&sub, types[j], "value")
                if client_values and v is not None and types[j] == _T_TIMESTAMP:
                    v = tsmod.micros_to_datetime(v)
                Py_INCREF(v)
                PyTuple_SET_ITEM(row, j, v)
        except CodecError as e:
            raise CodecError(f"{what} row {i} column {cols[j].name!r}: {e}") from None
        sub.n = end
        if sub.pos != rstart + rlen:
            raise CodecError(f"{what}: row {i} length {rlen} at offset {rstart - 4} "
                             f"does not match its values' {sub.pos - rstart} bytes")
        rows.append(row)
    if sub.pos != end:
        raise CodecError(f"{what}: table length {total} at offset {at} leaves "
                         f"{end - sub.pos} unread bytes")
    r.pos = end
    return _wire_new_table(list(cols), rows)


cdef object _wire_acquire(object buf, Py_buffer *view, _wire_rd *r):
    """Point r at buf's bytes; return True when view must be released."""
    if PyBytes_CheckExact(buf):
        r.p = <const unsigned char *>PyBytes_AS_STRING(buf)
        r.n = PyBytes_GET_SIZE(buf)
        r.pos = 0
        return False
    PyObject_GetBuffer(buf, view, PyBUF_SIMPLE)
    r.p = <const unsigned char *>view.buf
    r.n = view.len
    r.pos = 0
    return True


cdef int _wire_next_frame(_wire_rd *r, Py_ssize_t max_frame_bytes, _wire_rd *body) except -1:
    """Point body at the next complete i32-length-prefixed frame's body at r's cursor
    (offsets relative to the body's start) and move r past the frame: 1. When no complete
    frame is left: 0, r unmoved. A length outside 1..max_frame_bytes raises CodecError."""
    cdef Py_ssize_t start = r.pos
    cdef int32_t n
    if r.n - r.pos < 4:
        return 0
    n = _wire_i32(r, "frame length")
    if n <= 0 or n > max_frame_bytes:
        raise CodecError(f"frame length {n} at offset {start} is outside 1..{max_frame_bytes}")
    if r.n - r.pos < n:
        r.pos = start
        return 0
    body.p = r.p + r.pos
    body.n = n
    body.pos = 0
    r.pos += n
    return 1


def split_frames(buf, Py_ssize_t max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """Split buf into complete i32-length-prefixed frame bodies; return (frames, consumed)."""
    cdef Py_buffer view
    cdef _wire_rd r
    cdef _wire_rd body
    cdef list frames = []
    release = _wire_acquire(buf, &view, &r)
    try:
        while _wire_next_frame(&r, max_frame_bytes, &body):
            frames.append(PyBytes_FromStringAndSize(<const char *>body.p, body.n))
        return frames, r.pos
    finally:
        if release:
            PyBuffer_Release(&view)


def decode_invocation(body):
    """Decode an invocation body (v0/v1/v2) into (procedure, client_handle, params, extensions)."""
    return _wire_decode_invocation(body)


cdef tuple _wire_decode_invocation(object body):
    """decode_invocation() without the Python call."""
    cdef Py_buffer view
    cdef _wire_rd r
    cdef int version, flag, nexts, etype, scode
    cdef Py_ssize_t i, nparams, psize, at
    cdef dict ext = {}
    proc = None
    handle = None
    release = _wire_acquire(body, &view, &r)
    try:
        version = _wire_i8(&r, "invocation version")
        if version == 1:
            flag = _wire_i8(&r, "batch timeout flag")
            if flag == 1:
                ext["batch_timeout"] = _wire_i32(&r, "batch timeout")
            elif flag != -1:
                raise CodecError(f"batch timeout flag {flag} at offset 1 is neither -1 nor 1")
        proc = _wire_name(&r, "procedure name")
        handle = _wire_i64(&r, "client handle")
        if version not in (0, 1, 2):
            raise InvocationError(f"unsupported invocation version {version}", handle, proc)
        try:
            if version == 2:
                at = r.pos
                nexts = _wire_i8(&r, "extension count")
                if nexts < 0:
                    raise CodecError(f"bad extension count {nexts} at offset {at}")
                for i in range(nexts):
                    at = r.pos
                    etype = _wire_i8(&r, "extension type")
                    scode = _wire_i8(&r, "extension size")
                    if scode < 0 or scode > 16:
                        raise CodecError(f"extension {etype}: bad size code {scode} at offset {at + 1}")
                    psize = 0 if scode == 0 else (1 << (scode - 1))
                    _wire_need(&r, psize, f"extension {etype} payload")
                    if etype == EXT_ALL_PARTITION or etype == EXT_BATCH_CALL:
                        ext[_WIRE_EXT_NAMES[etype]] = True
                    elif etype == EXT_PRIORITY:
                        if psize != 1:
                            raise CodecError(f"extension 5 (priority): size {psize} at offset {at} is not 1")
                        ext["priority"] = <int8_t>r.p[r.pos]
                    elif etype == EXT_BATCH_TIMEOUT or etype == EXT_PARTITION_DESTINATION \
                            or etype == EXT_REQUEST_TIMEOUT:
                        if psize != 4:
                            raise CodecError(f"extension {etype} ({_WIRE_EXT_NAMES[etype]}): "
                                             f"size {psize} at offset {at} is not 4")
                        ext[_WIRE_EXT_NAMES[etype]] = _wire_i32(&r, "extension")
                        continue
                    r.pos += psize
            at = r.pos
            nparams = _wire_i16(&r, "parameter count")
            if nparams < 0:
                raise CodecError(f"bad parameter count {nparams} at offset {at}")
            _wire_need(&r, nparams, "parameters")  # at least a type byte each
            plist = []
            for i in range(nparams):
                plist.append(_wire_param(&r, i))
            if r.pos != r.n:
                raise CodecError(f"{r.n - r.pos} trailing bytes after the parameters at offset {r.pos}")
        except InvocationError:
            raise
        except CodecError as e:
            raise InvocationError(f"procedure {proc!r} handle {handle}: {e}", handle, proc) from None
        return proc, handle, tuple(plist), ext
    finally:
        if release:
            PyBuffer_Release(&view)


def decode_volttable(buf, bint client_values=False):
    """Decode exactly one serialized VoltTable (§8) into a types.VoltTable of internal values."""
    cdef Py_buffer view
    cdef _wire_rd r
    release = _wire_acquire(buf, &view, &r)
    try:
        t = _wire_table(&r, "input", client_values)
        if r.pos != r.n:
            raise CodecError(f"{r.n - r.pos} trailing bytes after the table at offset {r.pos}")
        return t
    finally:
        if release:
            PyBuffer_Release(&view)


cdef object _wire_response(_wire_rd *r, bint client_values, int64_t *handle):
    """Read a whole response body (§5) at r's cursor; return a types.ClientResponse."""
    cdef int version, bits, status, app_status, ntables
    cdef int32_t elen
    cdef Py_ssize_t i, at
    cdef int16_t nh
    version = _wire_i8(r, "response version")
    if version != 0:
        raise CodecError(f"unsupported response version {version} at offset 0")
    handle[0] = _wire_i64(r, "client handle")
    bits = _wire_u8(r, "fields-present bits")
    status = _wire_i8(r, "status")
    status_string = None
    app_status_string = None
    if bits & 0x20:
        status_string = _wire_string(r, "status string", True)
    app_status = _wire_i8(r, "app status")
    if bits & 0x80:
        app_status_string = _wire_string(r, "app status string", True)
    _wire_i32(r, "cluster round-trip time")
    if bits & 0x40:
        at = r.pos
        elen = _wire_i32(r, "exception length")
        if elen < 0:
            raise CodecError(f"bad exception length {elen} at offset {at}")
        _wire_need(r, elen, "exception")
        r.pos += elen
    if bits & 0x10:
        at = r.pos
        nh = _wire_i16(r, "hash count")
        if nh < 0:
            raise CodecError(f"bad hash count {nh} at offset {at}")
        _wire_need(r, <Py_ssize_t>nh * 4, "hashes")
        r.pos += <Py_ssize_t>nh * 4
    at = r.pos
    ntables = _wire_i16(r, "table count")
    if ntables < 0 or <Py_ssize_t>ntables * 4 > r.n - r.pos:
        raise CodecError(f"bad table count {ntables} at offset {at}")
    tables = []
    for i in range(ntables):
        tables.append(_wire_table(r, _WIRE_RESULT_WHATS[i] if i < 64 else f"result {i}",
                                  client_values))
    if r.pos != r.n:
        raise CodecError(f"{r.n - r.pos} trailing bytes after the tables at offset {r.pos}")
    return _wire_new_response(status, status_string, app_status, app_status_string, tables)


def decode_response(body, bint with_handle=False, bint client_values=True):
    """Decode a response body (§5) into a types.ClientResponse ((handle, response) if with_handle)."""
    cdef Py_buffer view
    cdef _wire_rd r
    cdef int64_t handle = 0
    release = _wire_acquire(body, &view, &r)
    try:
        resp = _wire_response(&r, client_values, &handle)
        return (handle, resp) if with_handle else resp
    finally:
        if release:
            PyBuffer_Release(&view)


def decode_response_frames(buf, Py_ssize_t max_frame_bytes=DEFAULT_MAX_FRAME_BYTES,
                           bint client_values=True):
    """Decode every complete response frame in buf: return (pairs, consumed, error).

    pairs lists (client_handle, ClientResponse) in order; consumed counts the bytes of
    those frames. A frame whose body does not decode stops the scan: error is its
    CodecError (the frames before it are in pairs), else None. A bad frame length raises
    CodecError at once, as split_frames does.
    """
    return _wire_response_frames(buf, max_frame_bytes, client_values, None, None)


cdef tuple _wire_response_frames(object buf, Py_ssize_t max_frame_bytes, bint client_values,
                                 dict pending, list done):
    """decode_response_frames, and answer_frames (client.pxi) when pending is given: an
    answer whose handle is a key of pending pops that entry into done as (entry,
    response) instead of going to the returned pairs."""
    cdef Py_buffer view
    cdef _wire_rd r
    cdef _wire_rd body
    cdef int64_t handle = 0
    cdef list pairs = []
    cdef Py_ssize_t start
    release = _wire_acquire(buf, &view, &r)
    try:
        while True:
            start = r.pos
            if not _wire_next_frame(&r, max_frame_bytes, &body):
                break
            try:
                resp = _wire_response(&body, client_values, &handle)
            except CodecError as e:
                return pairs, start, e
            key = handle
            entry = None if pending is None else pending.pop(key, None)
            if entry is None:
                pairs.append((key, resp))
            else:
                done.append((entry, resp))
        return pairs, r.pos, None
    finally:
        if release:
            PyBuffer_Release(&view)


def decode_login(body):
    """Decode a login request body into (version, hash_scheme, service, username, digest)."""
    cdef Py_buffer view
    cdef _wire_rd r
    cdef int version, scheme = 0
    release = _wire_acquire(body, &view, &r)
    try:
        version = _wire_i8(&r, "login protocol version")
        if version < 0 or version > 1:
            raise CodecError(f"unsupported login protocol version {version} at offset 0")
        if version >= 1:
            scheme = _wire_i8(&r, "login hash scheme")
        service = _wire_name(&r, "login service")
        user = _wire_name(&r, "login username")
        digest = PyBytes_FromStringAndSize(<const char *>(r.p + r.pos), r.n - r.pos)
        return version, scheme, service, user, digest
    finally:
        if release:
            PyBuffer_Release(&view)


def decode_login_response(body):
    """Decode a login response body into (code, host_id, connection_id, cluster_start_ms, leader_ipv4, build)."""
    cdef Py_buffer view
    cdef _wire_rd r
    cdef int version, code
    release = _wire_acquire(body, &view, &r)
    try:
        version = _wire_i8(&r, "login response version")
        if version != 0:
            raise CodecError(f"unsupported login response version {version} at offset 0")
        code = _wire_i8(&r, "login result code")
        if code != 0:
            if r.pos != r.n:
                raise CodecError(f"{r.n - r.pos} trailing bytes after the login failure code")
            return code, None, None, None, None, None
        host_id = _wire_i32(&r, "host id")
        conn_id = _wire_i64(&r, "connection id")
        start = _wire_i64(&r, "cluster start timestamp")
        leader = <uint32_t>_wire_i32(&r, "leader address")
        build = _wire_name(&r, "build string")
        if r.pos != r.n:
            raise CodecError(f"{r.n - r.pos} trailing bytes after the build string at offset {r.pos}")
        return code, host_id, conn_id, start, leader, build
    finally:
        if release:
            PyBuffer_Release(&view)


# ---------------------------------------------------------------- writing

ctypedef struct _wire_out:
    unsigned char *p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _wire_out_init(_wire_out *w, Py_ssize_t cap) except -1:
    """Allocate the output buffer."""
    w.p = <unsigned char *>malloc(cap)
    if w.p == NULL:
        raise MemoryError()
    w.n = 0
    w.cap = cap
    return 0


cdef int _wire_grow(_wire_out *w, Py_ssize_t extra) except -1:
    """Make room for extra more bytes."""
    cdef Py_ssize_t cap = w.cap
    cdef unsigned char *np
    if extra > (<Py_ssize_t>0x7FFFFFFF) - w.n:
        raise ValueOutOfRangeError(f"message would exceed 2 GiB ({w.n} + {extra} bytes)")
    while cap - w.n < extra:
        cap *= 2
    np = <unsigned char *>realloc(w.p, cap)
    if np == NULL:
        raise MemoryError()
    w.p = np
    w.cap = cap
    return 0


cdef inline int _wire_reserve(_wire_out *w, Py_ssize_t extra) except -1:
    """Ensure extra bytes of room."""
    if w.cap - w.n < extra:
        _wire_grow(w, extra)
    return 0


cdef inline int _wire_put(_wire_out *w, const void *src, Py_ssize_t k) except -1:
    """Append k raw bytes."""
    _wire_reserve(w, k)
    memcpy(w.p + w.n, src, k)
    w.n += k
    return 0


cdef inline void _wire_store(unsigned char *q, uint64_t v, int width) noexcept:
    """Store v big-endian in width bytes."""
    cdef int i
    for i in range(width - 1, -1, -1):
        q[i] = <unsigned char>(v & 0xFF)
        v >>= 8


cdef inline int _wire_put_be(_wire_out *w, uint64_t v, int width) except -1:
    """Append v big-endian in width bytes."""
    _wire_reserve(w, width)
    _wire_store(w.p + w.n, v, width)
    w.n += width
    return 0


cdef inline bytes _wire_out_bytes(_wire_out *w):
    """Return the buffer contents as bytes."""
    return PyBytes_FromStringAndSize(<const char *>w.p, w.n)


cdef int _wire_put_text(_wire_out *w, object s, str what) except -1:
    """Append an i32-length-prefixed UTF-8 string (None -> length -1)."""
    cdef Py_ssize_t n
    cdef const char *c
    if s is None:
        return _wire_put_be(w, <uint32_t>0xFFFFFFFF, 4)
    if not PyUnicode_Check(s):
        raise TypeMismatchError(f"{what}: {type(s).__name__} value {s!r:.40} is not a str")
    c = _wire_utf8(s, &n)
    _wire_put_be(w, <uint64_t>n, 4)
    return _wire_put(w, c, n)


cdef int _wire_put_blob(_wire_out *w, object b, str what) except -1:
    """Append an i32-length-prefixed byte string (None -> length -1)."""
    cdef const unsigned char[::1] mv
    if b is None:
        return _wire_put_be(w, <uint32_t>0xFFFFFFFF, 4)
    if PyBytes_CheckExact(b):
        _wire_put_be(w, <uint64_t>PyBytes_GET_SIZE(b), 4)
        return _wire_put(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
    if isinstance(b, (bytearray, memoryview)):
        mv = memoryview(b).cast("B") if isinstance(b, memoryview) else b
        _wire_put_be(w, <uint64_t>mv.shape[0], 4)
        if mv.shape[0]:
            _wire_put(w, &mv[0], mv.shape[0])
        return 0
    raise TypeMismatchError(f"{what}: {type(b).__name__} value {b!r:.40} is not bytes")


cdef int64_t _wire_int_of(object v, int64_t lo, int64_t hi, str what, str tname) except? -1:
    """Return v as a C integer in lo..hi, raising TypeMismatchError/ValueOutOfRangeError."""
    cdef int overflow = 0
    cdef long long x
    if not PyLong_Check(v):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        elif isinstance(v, _WIRE_Decimal) and v == v.to_integral_value():
            v = int(v)
        else:
            raise TypeMismatchError(f"{what}: {type(v).__name__} value {v!r:.40} is not an integer for {tname}")
    x = _wire_as_ll(v, &overflow)
    if overflow or x < lo or x > hi:
        raise ValueOutOfRangeError(f"{what}: {v} is out of range for {tname} [{lo}, {hi}]")
    return x


cdef int _wire_put_decimal(_wire_out *w, object v, str what) except -1:
    """Append a 16-byte DECIMAL (scale 12; None -> the NULL sentinel)."""
    cdef int64_t hi
    cdef uint64_t lo
    if v is None:
        _wire_put_be(w, 0x8000000000000000ULL, 8)
        return _wire_put_be(w, 0, 8)
    if not isinstance(v, _WIRE_Decimal):
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            try:
                v = _WIRE_Decimal(v)
            except _wire_dec_mod.InvalidOperation:
                raise TypeMismatchError(f"{what}: {v!r:.40} is not a DECIMAL value") from None
        else:
            raise TypeMismatchError(f"{what}: {type(v).__name__} value {v!r:.40} is not a DECIMAL")
    if not v.is_finite():
        raise ValueOutOfRangeError(f"{what}: DECIMAL {v} is not finite")
    unscaled = int(v.quantize(_WIRE_QUANTUM, context=_WIRE_DEC_CTX).scaleb(12, context=_WIRE_DEC_CTX))
    if not -_WIRE_DEC_LIMIT < unscaled < _WIRE_DEC_LIMIT:
        raise ValueOutOfRangeError(f"{what}: DECIMAL {v} has more than 26 digits before the point")
    hi = <int64_t>(unscaled >> 64)
    lo = <uint64_t>(unscaled & _WIRE_MASK64)
    _wire_put_be(w, <uint64_t>hi, 8)
    return _wire_put_be(w, lo, 8)


cdef int64_t _wire_micros(object v, str what) except? -1:
    """Return a TIMESTAMP value (int micros or datetime, naive = UTC) as micros."""
    if PyLong_Check(v) and not PyBool_Check(v):
        return _wire_int_of(v, _wire_i64_min + 1, 9223372036854775807, what, "TIMESTAMP")
    if isinstance(v, _WIRE_datetime):
        return _wire_int_of(_wire_types().timestamp_micros(v), _wire_i64_min + 1,
                            9223372036854775807, what, "TIMESTAMP")
    raise TypeMismatchError(f"{what}: {type(v).__name__} value {v!r:.40} is not a TIMESTAMP")


cdef double _wire_double_of(object v, str what) except? -1.0:
    """Return a FLOAT value as a C double."""
    if PyFloat_Check(v):
        return PyFloat_AS_DOUBLE(v)
    if (PyLong_Check(v) and not PyBool_Check(v)) or isinstance(v, _WIRE_Decimal):
        return float(v)
    raise TypeMismatchError(f"{what}: {type(v).__name__} value {v!r:.40} is not a FLOAT")


cdef int _wire_put_value(_wire_out *w, int t, object v, str what) except -1:
    """Append one value of wire type t without a type byte (None -> the type's NULL)."""
    cdef double d
    cdef uint64_t u
    cdef int64_t x
    if t == _T_STRING:
        return _wire_put_text(w, v, what)
    if t == _T_BIGINT:
        x = _wire_i64_min if v is None else _wire_int_of(v, _wire_i64_min + 1, 9223372036854775807, what, "BIGINT")
        return _wire_put_be(w, <uint64_t>x, 8)
    if t == _T_INTEGER:
        x = -2147483648 if v is None else _wire_int_of(v, -2147483647, 2147483647, what, "INTEGER")
        return _wire_put_be(w, <uint64_t>x, 4)
    if t == _T_SMALLINT:
        x = -32768 if v is None else _wire_int_of(v, -32767, 32767, what, "SMALLINT")
        return _wire_put_be(w, <uint64_t>x, 2)
    if t == _T_TINYINT:
        x = -128 if v is None else _wire_int_of(v, -127, 127, what, "TINYINT")
        return _wire_put_be(w, <uint64_t>x, 1)
    if t == _T_TIMESTAMP:
        x = _wire_i64_min if v is None else _wire_micros(v, what)
        return _wire_put_be(w, <uint64_t>x, 8)
    if t == _T_FLOAT:
        d = -1.7E308 if v is None else _wire_double_of(v, what)
        memcpy(&u, &d, 8)
        return _wire_put_be(w, u, 8)
    if t == _T_VARBINARY or t == _WT_GEOGRAPHY:
        return _wire_put_blob(w, v, what)
    if t == _T_DECIMAL:
        return _wire_put_decimal(w, v, what)
    if t == _T_NULL:
        return 0
    if t == _WT_BOOLEAN:
        return _wire_put_be(w, 127 if v is None else (1 if v else 0), 1)
    if t == _WT_DATE:
        if v is None:
            return _wire_put_be(w, <uint32_t>0x80000000, 4)
        if not isinstance(v, _WIRE_date):
            raise TypeMismatchError(f"{what}: {type(v).__name__} value {v!r:.40} is not a date")
        return _wire_put_be(w, <uint64_t>((v.year << 16) | (v.month << 8) | v.day), 4)
    if t == _WT_POINT:
        if v is None:
            d = 360.0
            memcpy(&u, &d, 8)
            _wire_put_be(w, u, 8)
            return _wire_put_be(w, u, 8)
        if not isinstance(v, (tuple, list)) or len(v) != 2:
            raise TypeMismatchError(f"{what}: {v!r:.40} is not a (longitude, latitude) pair")
        d = _wire_double_of(v[0], what)
        memcpy(&u, &d, 8)
        _wire_put_be(w, u, 8)
        d = _wire_double_of(v[1], what)
        memcpy(&u, &d, 8)
        return _wire_put_be(w, u, 8)
    if t == _WT_VOLTTABLE:
        if v is None:
            raise TypeMismatchError(f"{what}: a VOLTTABLE parameter cannot be NULL")
        return _wire_put_table(w, v, what)
    raise TypeMismatchError(f"{what}: cannot encode type code {t}")


cdef inline void _wire_patch32(_wire_out *w, Py_ssize_t at, Py_ssize_t v) noexcept:
    """Overwrite the i32 at offset at."""
    _wire_store(w.p + at, <uint64_t>v, 4)


cdef int _wire_put_table(_wire_out *w, object table, str what) except -1:
    """Append a full VoltTable (§8) with exact total, header and row lengths."""
    try:
        cols = table.columns
        rows = table.rows
    except AttributeError:
        raise TypeMismatchError(f"{what}: {type(table).__name__} is not a VoltTable") from None
    return _wire_put_table_parts(w, cols, rows, what)


cdef int _wire_put_table_parts(_wire_out *w, object cols, object rows, str what) except -1:
    """Append a VoltTable given as its columns and rows."""
    cdef Py_ssize_t start = w.n, hstart, rstart, ncols, i, j, nrows
    cdef list codes = []
    ncols = len(cols)
    if ncols < 1 or ncols > _WIRE_MAX_COLUMNS:
        raise ValueOutOfRangeError(f"{what}: a VoltTable needs 1..32767 columns, not {ncols}")
    _wire_put_be(w, 0, 4)   # total length, patched below
    _wire_put_be(w, 0, 4)   # header length, patched below
    hstart = w.n
    _wire_put_be(w, 0x80, 1)
    _wire_put_be(w, <uint64_t>ncols, 2)
    for c in cols:
        t = c.type
        codes.append(<int>t if PyLong_Check(t) else int(t))
        _wire_put_be(w, <uint64_t>(<int>codes[-1] & 0xFF), 1)
    name_what = _wire_table_whats(what)[6]
    for c in cols:
        _wire_put_text(w, c.name, name_what)
    _wire_patch32(w, hstart - 4, w.n - hstart)
    nrows = len(rows)
    if nrows > 0x7FFFFFFF:
        raise ValueOutOfRangeError(f"{what}: too many rows ({nrows})")
    _wire_put_be(w, <uint64_t>nrows, 4)
    for row in rows:
        if len(row) != ncols:
            raise ValueOutOfRangeError(f"{what}: a row has {len(row)} values for {ncols} columns")
        _wire_put_be(w, 0, 4)
        rstart = w.n
        j = 0
        try:
            for j in range(ncols):
                _wire_put_value(w, codes[j], row[j], "value")
        except (TypeMismatchError, ValueOutOfRangeError) as e:
            raise type(e)(f"{what} column {cols[j].name!r}: {e}") from None
        _wire_patch32(w, rstart - 4, w.n - rstart)
    _wire_patch32(w, start, w.n - start - 4)
    return 0


def encode_volttable(table):
    """Serialize a types.VoltTable (internal values; TIMESTAMP int micros or datetime) per §8."""
    cdef _wire_out w
    _wire_out_init(&w, 256)
    try:
        _wire_put_table(&w, table, "table")
        return _wire_out_bytes(&w)
    finally:
        free(w.p)


cdef int _wire_put_response(_wire_out *w, int64_t handle, int status, status_string,
                            app_status, app_status_string, tables,
                            int32_t cluster_rtt_ms) except -1:
    """Append one full response frame (length prefix included) at w's end."""
    cdef int aps = -128
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t start = w.n
    if status < -128 or status > 127:
        raise ValueOutOfRangeError(f"status {status} does not fit in an i8")
    if app_status is not None:
        aps = app_status
        if aps < -128 or aps > 127:
            raise ValueOutOfRangeError(f"app status {aps} does not fit in an i8")
    if len(tables) > 32767:
        raise ValueOutOfRangeError(f"too many tables ({len(tables)})")
    _wire_put_response_head(w, handle, status, status_string, aps, app_status_string,
                            cluster_rtt_ms, len(tables))
    for t in tables:
        _wire_put_table(w, t, "result" if i == 0 else f"result {i}")
        i += 1
    _wire_patch32(w, start, w.n - start - 4)
    return 0


cdef int _wire_put_response_head(_wire_out *w, int64_t handle, int status, status_string,
                                 int app_status, app_status_string, int32_t cluster_rtt_ms,
                                 Py_ssize_t ntables) except -1:
    """Append a response frame's length placeholder and its fields up to the table count
    (the caller appends the tables and patches the length)."""
    cdef int bits = 0
    if status_string is not None:
        bits |= 0x20
    if app_status_string is not None:
        bits |= 0x80
    _wire_put_be(w, 0, 4)
    _wire_put_be(w, 0, 1)
    _wire_put_be(w, <uint64_t>handle, 8)
    _wire_put_be(w, <uint64_t>bits, 1)
    _wire_put_be(w, <uint64_t><uint8_t><int8_t>status, 1)
    if bits & 0x20:
        _wire_put_text(w, status_string, "status string")
    _wire_put_be(w, <uint64_t><uint8_t><int8_t>app_status, 1)
    if bits & 0x80:
        _wire_put_text(w, app_status_string, "app status string")
    _wire_put_be(w, <uint64_t>cluster_rtt_ms, 4)
    _wire_put_be(w, <uint64_t>ntables, 2)
    return 0


cdef int _wire_put_item(_wire_out *w, int64_t handle, object item,
                        int32_t cluster_rtt_ms) except -1:
    """Append the response frame of a call result: a ClientResponse, or a (columns, rows)
    tuple for a success with one table (Database.run_many's compiled point calls)."""
    cdef Py_ssize_t start = w.n
    if type(item) is not tuple:
        return _wire_put_response(w, handle, item.status, item.status_string,
                                  item.app_status, item.app_status_string, item.tables,
                                  cluster_rtt_ms)
    if len(<tuple>item) != 2:
        raise ValueError("a result item is a ClientResponse or (columns, rows)")
    # SUCCESS, app status unset, one table
    _wire_put_response_head(w, handle, 1, None, -128, None, cluster_rtt_ms, 1)
    _wire_put_table_parts(w, (<tuple>item)[0], (<tuple>item)[1], "result")
    _wire_patch32(w, start, w.n - start - 4)
    return 0


cdef int _wire_put_answer(_wire_out *w, int64_t handle, object item, int32_t cluster_rtt_ms,
                          object name) except -1:
    """_wire_put_item, or, when the result cannot be encoded, an UNEXPECTED_FAILURE frame
    in its place saying why (naming procedure name unless it is None)."""
    cdef Py_ssize_t start = w.n
    try:
        return _wire_put_item(w, handle, item, cluster_rtt_ms)
    except (VoltError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        w.n = start
        what = "the result" if name is None else f"the result of {name}"
        return _wire_put_response(
            w, handle, -3,  # Status.UNEXPECTED_FAILURE
            f"{what} cannot be serialized: {type(exc).__name__}: {exc}",
            -128, None, (), cluster_rtt_ms)


def encode_response(int64_t handle, int status, status_string=None, app_status=None,
                    app_status_string=None, tables=(), int32_t cluster_rtt_ms=0):
    """Encode a full response frame (length prefix included); bits 4 and 6 are never set."""
    cdef _wire_out w
    _wire_out_init(&w, 256)
    try:
        _wire_put_response(&w, handle, status, status_string, app_status,
                           app_status_string, tables, cluster_rtt_ms)
        return _wire_out_bytes(&w)
    finally:
        free(w.p)


def encode_responses(handles, responses, int32_t cluster_rtt_ms=0):
    """Encode one response frame per (handle, ClientResponse) pair, concatenated in order.

    A response may also be a (columns, rows) tuple: a success with that one table.

    Each frame is what encode_response(handle, r.status, r.status_string, r.app_status,
    r.app_status_string, r.tables, cluster_rtt_ms) returns. Any response that cannot be
    encoded fails the whole call (with encode_response's exception); handles and
    responses of different lengths raise ValueError.
    """
    cdef _wire_out w
    cdef list hs = list(handles)
    cdef list rs = list(responses)
    cdef Py_ssize_t i, n = len(hs)
    if len(rs) != n:
        raise ValueError(f"{n} handles for {len(rs)} responses")
    _wire_out_init(&w, 256 * n + 64)
    try:
        for i in range(n):
            _wire_put_item(&w, hs[i], rs[i], cluster_rtt_ms)
        return _wire_out_bytes(&w)
    finally:
        free(w.p)


def encode_response_list(handles, responses, bint hashes=False, int32_t cluster_rtt_ms=0,
                         names=None):
    """Encode one response frame per (handle, ClientResponse) pair, as a list of frames.

    A response may also be a (columns, rows) tuple: a success with that one table.

    A response that cannot be encoded becomes an UNEXPECTED_FAILURE frame saying why (the
    others are unaffected), naming the procedure when ``names`` (one per response) is
    given. With ``hashes``, returns (frames, crcs): the CRC-32C of each
    frame after its client handle, the same whatever the handle (a cluster leader compares
    its replicas' results by it).
    """
    cdef _wire_out w
    cdef list hs = list(handles)
    cdef list rs = list(responses)
    cdef Py_ssize_t i, start, n = len(hs)
    cdef list frames = []
    cdef list crcs = [] if hashes else None
    if len(rs) != n:
        raise ValueError(f"{n} handles for {len(rs)} responses")
    _wire_out_init(&w, 512)
    try:
        for i in range(n):
            w.n = 0
            _wire_put_answer(&w, hs[i], rs[i], cluster_rtt_ms,
                             None if names is None else names[i])
            frames.append(PyBytes_FromStringAndSize(<const char *>w.p, w.n))
            if hashes:
                start = 13 if w.n > 13 else w.n  # length (4), version (1), handle (8)
                crcs.append(vdb_crc32c(0, w.p + start, <size_t>(w.n - start)))
        return (frames, crcs) if hashes else frames
    finally:
        free(w.p)


cdef int _wire_infer(object v) except -1000:
    """Pick the wire type code of a Python value (encode_invocation without types)."""
    if v is None:
        return _T_NULL
    if PyBool_Check(v):
        return _WT_BOOLEAN
    if PyLong_Check(v):
        return _T_BIGINT
    if PyFloat_Check(v):
        return _T_FLOAT
    if PyUnicode_Check(v):
        return _T_STRING
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _T_VARBINARY
    if isinstance(v, _WIRE_Decimal):
        return _T_DECIMAL
    if isinstance(v, _WIRE_datetime):
        return _T_TIMESTAMP
    if isinstance(v, _WIRE_date):
        return _WT_DATE
    if isinstance(v, (list, tuple)):
        return _WT_ARRAY
    if hasattr(v, "columns") and hasattr(v, "rows"):
        return _WT_VOLTTABLE
    raise TypeMismatchError(f"cannot pick a VoltDB type for {type(v).__name__} value {v!r:.40}")


cdef int _wire_put_array(_wire_out *w, int et, object seq, str what) except -1:
    """Append an ARRAY parameter (marker, element type, count, elements)."""
    cdef Py_ssize_t n = len(seq)
    _wire_put_be(w, <uint64_t><uint8_t><int8_t>_WT_ARRAY, 1)
    _wire_put_be(w, <uint64_t>(et & 0xFF), 1)
    if et == _T_TINYINT:
        if isinstance(seq, (bytes, bytearray, memoryview)):
            return _wire_put_blob(w, seq, what)
        _wire_put_be(w, <uint64_t>n, 4)
        for x in seq:
            if x is None:
                raise TypeMismatchError(f"{what}: a TINYINT array element cannot be NULL")
            _wire_put_be(w, <uint64_t>_wire_int_of(x, -128, 127, what, "TINYINT"), 1)
        return 0
    if et in (_T_NULL, _WT_VOLTTABLE, _WT_ARRAY, _WT_MONEY):
        raise TypeMismatchError(f"{what}: arrays of type code {et} are not allowed")
    if n > 32767:
        raise ValueOutOfRangeError(f"{what}: an array holds at most 32767 elements, not {n}")
    _wire_put_be(w, <uint64_t>n, 2)
    for x in seq:
        _wire_put_value(w, et, x, what)
    return 0


cdef int _wire_array_elem_type(object seq, str what) except -1000:
    """Pick the element type of an untyped list: the type of its first non-None element."""
    cdef int t
    for x in seq:
        if x is not None:
            t = _wire_infer(x)
            if t == _WT_ARRAY or t == _WT_VOLTTABLE:
                raise TypeMismatchError(f"{what}: nested {type(x).__name__} in an array parameter")
            return t
    return _T_BIGINT


def encode_invocation(str procedure, int64_t handle, params=(), types=None, extensions=None):
    """Encode an invocation frame: version 0, or version 2 when extensions are given.

    types: optional list of VoltType/int codes (a list/tuple value, or bytes under a
    non-VARBINARY type, becomes an ARRAY of that type); without it each code is picked from
    the Python value. extensions: dict with keys batch_timeout, all_partition,
    partition_destination, batch_call, priority, request_timeout.
    """
    return _wire_encode_invocation(procedure, handle, params, types, extensions)


cdef bytes _wire_encode_invocation(str procedure, int64_t handle, object params,
                                   object types, object extensions):
    """encode_invocation's body: a C call for the client's compiled router (client.pxi)."""
    cdef _wire_out w
    cdef Py_ssize_t i, n = len(params)
    cdef int t
    cdef str what
    if n > 32767:
        raise ValueOutOfRangeError(f"too many parameters ({n})")
    if types is not None and len(types) != n:
        raise ValueOutOfRangeError(f"{len(types)} types for {n} parameters")
    _wire_out_init(&w, 128)
    try:
        _wire_put_be(&w, 0, 4)
        _wire_put_be(&w, 2 if extensions else 0, 1)
        _wire_put_text(&w, procedure, "procedure name")
        _wire_put_be(&w, <uint64_t>handle, 8)
        if extensions:
            if len(extensions) > 127:
                raise ValueOutOfRangeError("too many extensions")
            _wire_put_be(&w, <uint64_t>len(extensions), 1)
            for k, v in extensions.items():
                code = _WIRE_EXT_CODES.get(k, k)
                if code == EXT_ALL_PARTITION or code == EXT_BATCH_CALL:
                    if not v:
                        raise ValueOutOfRangeError(f"extension {k!r} must be true when given")
                    _wire_put_be(&w, <uint64_t>code, 1)
                    _wire_put_be(&w, 0, 1)
                elif code == EXT_PRIORITY:
                    _wire_put_be(&w, <uint64_t>code, 1)
                    _wire_put_be(&w, 1, 1)
                    _wire_put_be(&w, <uint64_t>_wire_int_of(v, -128, 127, "priority", "i8"), 1)
                elif code in (EXT_BATCH_TIMEOUT, EXT_PARTITION_DESTINATION, EXT_REQUEST_TIMEOUT):
                    _wire_put_be(&w, <uint64_t>code, 1)
                    _wire_put_be(&w, 3, 1)
                    _wire_put_be(&w, <uint64_t>_wire_int_of(v, -2147483648, 2147483647, str(k), "i32"), 4)
                else:
                    raise ValueOutOfRangeError(f"unknown invocation extension {k!r}")
        _wire_put_be(&w, <uint64_t>n, 2)
        for i in range(n):
            v = params[i]
            what = _wire_param_what(i)
            if types is not None:
                t = int(types[i])
                if t == _WT_POINT:
                    is_arr = isinstance(v, (list, tuple)) and not (
                        len(v) == 2 and all(isinstance(c, (int, float)) for c in v))
                elif t == _T_VARBINARY or t == _WT_GEOGRAPHY:
                    is_arr = isinstance(v, (list, tuple))
                else:
                    is_arr = isinstance(v, (list, tuple, bytes, bytearray))
                if is_arr:
                    _wire_put_array(&w, t, v, what)
                    continue
                if t == _WT_ARRAY:
                    raise TypeMismatchError(f"{what}: give the element type, not ARRAY")
                if v is not None and t in (_T_TINYINT, _T_SMALLINT, _T_INTEGER, _T_BIGINT,
                                           _T_FLOAT, _T_STRING, _T_DECIMAL, _T_VARBINARY,
                                           _T_TIMESTAMP):
                    tm = _wire_types()
                    v = tm.coerce(tm.VoltType(t), v, what=what)
            else:
                t = _wire_infer(v)
                if t == _WT_ARRAY:
                    _wire_put_array(&w, _wire_array_elem_type(v, what), v, what)
                    continue
            _wire_put_be(&w, <uint64_t>(t & 0xFF), 1)
            _wire_put_value(&w, t, v, what)
        _wire_patch32(&w, 0, w.n - 4)
        return _wire_out_bytes(&w)
    finally:
        free(w.p)


cdef uint32_t _wire_ipv4(object addr) except? 0:
    """Return an IPv4 address (int or dotted string) as a u32."""
    if isinstance(addr, str):
        parts = addr.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise ValueOutOfRangeError(f"{addr!r} is not a dotted IPv4 address")
        return (int(parts[0]) << 24) | (int(parts[1]) << 16) | (int(parts[2]) << 8) | int(parts[3])
    if not 0 <= addr <= 0xFFFFFFFF:
        raise ValueOutOfRangeError(f"leader address {addr} is not a u32")
    return addr


def encode_login_response(int result_code, int32_t host_id, int64_t connection_id,
                          int64_t cluster_start_ms, leader_ipv4, str build_string):
    """Encode a login success frame (length prefix included); failures use encode_login_failure."""
    cdef _wire_out w
    cdef uint32_t ip = _wire_ipv4(leader_ipv4)
    if result_code != 0:
        return encode_login_failure(result_code)
    _wire_out_init(&w, 64)
    try:
        _wire_put_be(&w, 0, 4)
        _wire_put_be(&w, 0, 1)
        _wire_put_be(&w, 0, 1)
        _wire_put_be(&w, <uint64_t><uint32_t>host_id, 4)
        _wire_put_be(&w, <uint64_t>connection_id, 8)
        _wire_put_be(&w, <uint64_t>cluster_start_ms, 8)
        _wire_put_be(&w, ip, 4)
        _wire_put_text(&w, build_string, "build string")
        _wire_patch32(&w, 0, w.n - 4)
        return _wire_out_bytes(&w)
    finally:
        free(w.p)


def encode_login_failure(int code):
    """Encode a login failure frame: version 0 and the failure code."""
    if code < -128 or code > 127 or code == 0:
        raise ValueOutOfRangeError(f"login failure code {code} must be a non-zero i8")
    return b"\x00\x00\x00\x02\x00" + bytes([code & 0xFF])


def encode_login(str username="", password="", int hash_scheme=1, str service="database",
                 int protocol_version=1):
    """Encode a login request frame; password is hashed (str) or already a digest (bytes)."""
    cdef _wire_out w
    if protocol_version not in (0, 1):
        raise ValueOutOfRangeError(f"login protocol version {protocol_version} is not 0 or 1")
    if protocol_version == 0 and hash_scheme != 0:
        raise ValueOutOfRangeError("login protocol version 0 implies SHA-1 (hash scheme 0)")
    if isinstance(password, str):
        h = _wire_hashlib.sha1 if hash_scheme == 0 else _wire_hashlib.sha256
        if hash_scheme not in (0, 1):
            raise ValueOutOfRangeError(f"unknown hash scheme {hash_scheme}")
        digest = h(password.encode("utf-8")).digest()
    else:
        digest = bytes(password)
    _wire_out_init(&w, 96)
    try:
        _wire_put_be(&w, 0, 4)
        _wire_put_be(&w, <uint64_t>protocol_version, 1)
        if protocol_version >= 1:
            _wire_put_be(&w, <uint64_t>(hash_scheme & 0xFF), 1)
        _wire_put_text(&w, service, "service")
        _wire_put_text(&w, username, "username")
        _wire_put(&w, PyBytes_AS_STRING(digest), len(digest))
        _wire_patch32(&w, 0, w.n - 4)
        return _wire_out_bytes(&w)
    finally:
        free(w.p)

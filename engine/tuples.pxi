# SPDX-License-Identifier: AGPL-3.0-or-later
# Row and key codecs (TupleSchema).
#
# Row format (little-endian; the schema, not the bytes, says what each field is):
#   byte 0              format version, 0x01
#   ceil(ncols/8) bytes NULL bitmap: bit (i % 8) of byte (i // 8) set = column i is NULL;
#                       unused high bits of the last byte are 0
#   then, for each non-NULL column in order:
#     TINYINT 1, SMALLINT 2, INTEGER 4, BIGINT/TIMESTAMP 8 bytes: two's complement
#     FLOAT 8 bytes IEEE-754 double
#     DECIMAL 16 bytes: two's complement of value * 10^12 (low 8 bytes first)
#     VARCHAR/VARBINARY: LEB128 length (at most 3 bytes for 1 MiB), then the bytes
#                       (UTF-8 for VARCHAR)
# Nothing may follow the last field. Decoding checks every length against the buffer and
# every value against its column, so a decoded row is always a valid row of the schema.
#
# Key format (memcomparable, docs/internals.md "LMDB layout"): per value a tag byte 0x00
# NULL / 0x01 value, then integers/TIMESTAMP 8 bytes BE with the sign bit flipped; FLOAT
# 8 bytes BE with negative values inverted and the sign bit of the others set (-0.0 is
# encoded as 0.0, since SQL treats them as equal); DECIMAL 16 bytes BE two's complement of
# value * 10^12 with the sign bit flipped; VARCHAR (UTF-8) / VARBINARY bytes with 0x00
# escaped as 0x00 0xFF and terminated by 0x00 0x00. Keys accept any int64 / any non-NaN
# double so that range bounds outside a column's range can still be encoded.

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.bytes cimport PyBytes_Check, PyBytes_CheckExact
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8, PyUnicode_GET_LENGTH
from cpython.long cimport PyLong_Check
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from cpython.bool cimport PyBool_Check
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.tuple cimport PyTuple_CheckExact
from cpython.ref cimport Py_INCREF, PyObject
from libc.stdlib cimport malloc, realloc, free
from libc.math cimport isfinite, isnan
from libc.string cimport memset

import decimal as _decimal_mod

cdef extern from "Python.h":
    const char* _tu_utf8 "PyUnicode_AsUTF8AndSize"(object s, Py_ssize_t* size) except NULL
    long long _tu_as_ll "PyLong_AsLongLongAndOverflow"(object v, int* overflow) except? -1

DEF _ROW_FORMAT = 1
DEF _MAX_VAR_BYTES = 1048576
DEF _RB_SMALL = 512
DEF _MAX_COLUMNS = 1024

_Decimal = _decimal_mod.Decimal
# Exact arithmetic for 38-digit unscaled values (the default context has 28 digits).
_DEC_CTX = _decimal_mod.Context(prec=80)
_TEN12 = 10 ** 12
_DEC_UNSCALED_LIMIT = 10 ** 38
_MASK64 = (1 << 64) - 1

_KEY_WHATS = tuple(f"key value {i}" for i in range(16))
_TYPE_NAMES = {
    _T_TINYINT: "TINYINT", _T_SMALLINT: "SMALLINT", _T_INTEGER: "INTEGER",
    _T_BIGINT: "BIGINT", _T_FLOAT: "FLOAT", _T_STRING: "VARCHAR",
    _T_TIMESTAMP: "TIMESTAMP", _T_DECIMAL: "DECIMAL", _T_VARBINARY: "VARBINARY",
}


# ---------------------------------------------------------------------------------------
# RowBuf: a growable byte buffer that starts in its own inline storage (no malloc for
# ordinary rows and keys). It must not be copied once initialised.

cdef struct RowBuf:
    unsigned char *data
    Py_ssize_t len
    Py_ssize_t cap
    unsigned char small[_RB_SMALL]


cdef inline void rowbuf_init(RowBuf *b) noexcept:
    b.data = b.small
    b.len = 0
    b.cap = _RB_SMALL


cdef inline void rowbuf_free(RowBuf *b) noexcept:
    if b.data != b.small:
        free(b.data)
    b.data = b.small
    b.len = 0
    b.cap = _RB_SMALL


cdef int rowbuf_grow(RowBuf *b, Py_ssize_t extra) except -1:
    """Make room for extra more bytes."""
    cdef Py_ssize_t need = b.len + extra
    cdef Py_ssize_t cap = b.cap * 2
    cdef unsigned char *p
    if need <= b.cap:
        return 0
    if cap < need:
        cap = need
    if b.data == b.small:
        p = <unsigned char *>malloc(cap)
        if p == NULL:
            raise MemoryError()
        memcpy(p, b.small, b.len)
    else:
        p = <unsigned char *>realloc(b.data, cap)
        if p == NULL:
            raise MemoryError()
    b.data = p
    b.cap = cap
    return 0


cdef inline int rowbuf_reserve(RowBuf *b, Py_ssize_t extra) except -1:
    if b.len + extra > b.cap:
        return rowbuf_grow(b, extra)
    return 0


cdef inline int rowbuf_put(RowBuf *b, const void *src, Py_ssize_t n) except -1:
    rowbuf_reserve(b, n)
    memcpy(b.data + b.len, src, n)
    b.len += n
    return 0


cdef inline int rowbuf_put_byte(RowBuf *b, unsigned char c) except -1:
    rowbuf_reserve(b, 1)
    b.data[b.len] = c
    b.len += 1
    return 0


cdef inline int rowbuf_put_le(RowBuf *b, uint64_t v, int width) except -1:
    cdef int k
    rowbuf_reserve(b, width)
    for k in range(width):
        b.data[b.len + k] = <unsigned char>(v >> (8 * k))
    b.len += width
    return 0


cdef inline int rowbuf_put_be(RowBuf *b, uint64_t v, int width) except -1:
    cdef int k
    rowbuf_reserve(b, width)
    for k in range(width):
        b.data[b.len + k] = <unsigned char>(v >> (8 * (width - 1 - k)))
    b.len += width
    return 0


cdef inline bytes rowbuf_bytes(RowBuf *b):
    return PyBytes_FromStringAndSize(<char *>b.data, b.len)


cdef inline uint64_t _load_le(const unsigned char *p, int width) noexcept:
    cdef uint64_t v = 0
    cdef int k
    for k in range(width):
        v |= (<uint64_t>p[k]) << (8 * k)
    return v


cdef inline uint64_t _load_be(const unsigned char *p, int width) noexcept:
    cdef uint64_t v = 0
    cdef int k
    for k in range(width):
        v = (v << 8) | p[k]
    return v


cdef union _F64Bits:
    double d
    uint64_t u


# ---------------------------------------------------------------------------------------
# Value helpers shared by rows and keys.

cdef str _short_repr(object v):
    cdef str r = repr(v)
    if len(r) > 60:
        return r[:57] + "..."
    return r


cdef str _type_name(int vtype):
    return _TYPE_NAMES.get(vtype, f"type {vtype}")


cdef int64_t _int64_of(object v, int vtype, str what) except? -1:
    """Return v (an int, not a bool) as int64, or raise a typed error naming what."""
    cdef int overflow = 0
    cdef long long x
    if not PyLong_Check(v) or PyBool_Check(v):
        raise TypeMismatchError(
            f"{what}: {type(v).__name__} value {_short_repr(v)} is not an int for {_type_name(vtype)}")
    x = _tu_as_ll(v, &overflow)
    if overflow:
        raise ValueOutOfRangeError(f"{what}: value {_short_repr(v)} is out of range for {_type_name(vtype)}")
    return x


cdef double _double_of(object v, str what) except? -1.0:
    """Return v (a float) as a double, or raise a typed error naming what."""
    if not PyFloat_Check(v):
        raise TypeMismatchError(f"{what}: {type(v).__name__} value {_short_repr(v)} is not a float for FLOAT")
    return PyFloat_AS_DOUBLE(v)


cdef object _decimal_unscaled(object v, str what):
    """Return value * 10^12 of a Decimal as an exact int with abs < 10^38."""
    if not isinstance(v, _Decimal):
        raise TypeMismatchError(
            f"{what}: {type(v).__name__} value {_short_repr(v)} is not a Decimal for DECIMAL")
    if not v.is_finite():
        raise ValueOutOfRangeError(f"{what}: DECIMAL value {_short_repr(v)} is not finite")
    num, den = v.as_integer_ratio()
    q, r = divmod(num * _TEN12, den)
    if r:
        raise ValueOutOfRangeError(f"{what}: DECIMAL value {_short_repr(v)} has more than 12 decimal places")
    if not -_DEC_UNSCALED_LIMIT < q < _DEC_UNSCALED_LIMIT:
        raise ValueOutOfRangeError(
            f"{what}: DECIMAL value {_short_repr(v)} has more than 26 digits before the point")
    return q


cdef object _decimal_from_halves(int64_t hi, uint64_t lo):
    """Return the Decimal (scale 12) whose unscaled value is hi * 2^64 + lo, or None if too large."""
    cdef object q
    if (hi == 0 and lo < (<uint64_t>1 << 63)) or (hi == -1 and lo >= (<uint64_t>1 << 63)):
        q = <int64_t>lo
    else:
        q = ((<object>hi) << 64) | (<object>lo)
        if not -_DEC_UNSCALED_LIMIT < q < _DEC_UNSCALED_LIMIT:
            return None
    return _Decimal(q).scaleb(-12, _DEC_CTX)


cdef const char *_utf8_of(object v, Py_ssize_t *n, str what) except NULL:
    """Return the UTF-8 bytes of str v (cached by CPython, valid while v lives)."""
    if not PyUnicode_Check(v):
        raise TypeMismatchError(f"{what}: {type(v).__name__} value {_short_repr(v)} is not a str for VARCHAR")
    try:
        return _tu_utf8(v, n)
    except UnicodeEncodeError:
        raise ValueOutOfRangeError(f"{what}: VARCHAR value {_short_repr(v)} is not encodable as UTF-8") from None


# ---------------------------------------------------------------------------------------
# Memcomparable keys.

cdef inline int _key_put_escaped(RowBuf *b, const unsigned char *p, Py_ssize_t n) except -1:
    cdef Py_ssize_t i
    cdef unsigned char c
    # Worst case every byte is 0x00 and doubles.
    rowbuf_reserve(b, 2 * n + 2)
    for i in range(n):
        c = p[i]
        b.data[b.len] = c
        b.len += 1
        if c == 0:
            b.data[b.len] = 0xFF
            b.len += 1
    b.data[b.len] = 0
    b.data[b.len + 1] = 0
    b.len += 2
    return 0


cdef int _key_put(RowBuf *b, int vtype, object v, str what) except -1:
    """Append the memcomparable encoding of one value (None = NULL) of type vtype."""
    cdef int64_t x
    cdef _F64Bits f
    cdef Py_ssize_t n
    cdef const char *s
    if v is None:
        return rowbuf_put_byte(b, 0)
    if (vtype == _T_TINYINT or vtype == _T_SMALLINT or vtype == _T_INTEGER
            or vtype == _T_BIGINT or vtype == _T_TIMESTAMP):
        x = _int64_of(v, vtype, what)
        rowbuf_put_byte(b, 1)
        return rowbuf_put_be(b, (<uint64_t>x) ^ (<uint64_t>1 << 63), 8)
    if vtype == _T_FLOAT:
        f.d = _double_of(v, what)
        if isnan(f.d):
            raise ValueOutOfRangeError(f"{what}: FLOAT value nan cannot be a key")
        if f.d == 0.0:
            f.d = 0.0
        if f.u >> 63:
            f.u = ~f.u
        else:
            f.u |= (<uint64_t>1 << 63)
        rowbuf_put_byte(b, 1)
        return rowbuf_put_be(b, f.u, 8)
    if vtype == _T_STRING:
        s = _utf8_of(v, &n, what)
        rowbuf_put_byte(b, 1)
        return _key_put_escaped(b, <const unsigned char *>s, n)
    if vtype == _T_VARBINARY:
        if not PyBytes_Check(v):
            raise TypeMismatchError(
                f"{what}: {type(v).__name__} value {_short_repr(v)} is not bytes for VARBINARY")
        rowbuf_put_byte(b, 1)
        return _key_put_escaped(b, <const unsigned char *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
    if vtype == _T_DECIMAL:
        q = _decimal_unscaled(v, what)
        rowbuf_put_byte(b, 1)
        rowbuf_put_be(b, (<uint64_t><int64_t>(q >> 64)) ^ (<uint64_t>1 << 63), 8)
        return rowbuf_put_be(b, <uint64_t>(q & _MASK64), 8)
    raise TypeMismatchError(f"{what}: unsupported type code {vtype}")


cdef object _key_get(const unsigned char *p, Py_ssize_t n, Py_ssize_t *pos, int vtype, RowBuf *tmp):
    """Decode one key value at p[pos[0]:n], advancing pos; tmp is scratch for var fields."""
    cdef Py_ssize_t i = pos[0]
    cdef unsigned char tag
    cdef uint64_t u
    cdef _F64Bits f
    if i >= n:
        raise CodecError("key is truncated (missing tag byte)")
    tag = p[i]
    i += 1
    if tag == 0:
        pos[0] = i
        return None
    if tag != 1:
        raise CodecError(f"key has an invalid tag byte 0x{tag:02x} at offset {i - 1}")
    if (vtype == _T_TINYINT or vtype == _T_SMALLINT or vtype == _T_INTEGER
            or vtype == _T_BIGINT or vtype == _T_TIMESTAMP):
        if n - i < 8:
            raise CodecError("key is truncated inside an integer")
        u = _load_be(p + i, 8) ^ (<uint64_t>1 << 63)
        pos[0] = i + 8
        return <int64_t>u
    if vtype == _T_FLOAT:
        if n - i < 8:
            raise CodecError("key is truncated inside a FLOAT")
        u = _load_be(p + i, 8)
        if u >> 63:
            f.u = u & ~(<uint64_t>1 << 63)
        else:
            f.u = ~u
        # encode_key never writes NaN or -0.0, so their bytes are not keys.
        if isnan(f.d) or (f.d == 0.0 and f.u >> 63):
            raise CodecError("key holds a NaN or -0.0 FLOAT")
        pos[0] = i + 8
        return f.d
    if vtype == _T_DECIMAL:
        if n - i < 16:
            raise CodecError("key is truncated inside a DECIMAL")
        d = _decimal_from_halves(<int64_t>(_load_be(p + i, 8) ^ (<uint64_t>1 << 63)),
                                 _load_be(p + i + 8, 8))
        if d is None:
            raise CodecError("key holds a DECIMAL with more than 38 digits")
        pos[0] = i + 16
        return d
    if vtype == _T_STRING or vtype == _T_VARBINARY:
        tmp.len = 0
        while True:
            if i >= n:
                raise CodecError("key is truncated inside a VARCHAR/VARBINARY")
            if p[i] != 0:
                rowbuf_put_byte(tmp, p[i])
                i += 1
                continue
            if i + 1 >= n:
                raise CodecError("key is truncated inside an escape")
            if p[i + 1] == 0:
                i += 2
                break
            if p[i + 1] != 0xFF:
                raise CodecError(f"key has an invalid escape 0x00 0x{p[i + 1]:02x} at offset {i}")
            rowbuf_put_byte(tmp, 0)
            i += 2
        pos[0] = i
        if vtype == _T_VARBINARY:
            return PyBytes_FromStringAndSize(<char *>tmp.data, tmp.len)
        try:
            return PyUnicode_DecodeUTF8(<char *>tmp.data, tmp.len, "strict")
        except UnicodeDecodeError:
            raise CodecError("key holds a VARCHAR that is not valid UTF-8") from None
    raise TypeMismatchError(f"unsupported type code {vtype}")


cdef int _check_types(object types) except -1:
    for t in types:
        if not PyLong_Check(t) or PyBool_Check(t) or t not in _TYPE_NAMES:
            raise TypeMismatchError(f"{_short_repr(t)} is not a supported type code")
    return 0


def encode_key(types, values):
    """Memcomparable key of values (a prefix of, or as long as, the type codes in types)."""
    cdef RowBuf b
    cdef Py_ssize_t i, nv
    types = tuple(types)
    values = tuple(values)
    nv = len(values)
    if nv > len(types):
        raise TypeMismatchError(f"{nv} key values for {len(types)} key types")
    _check_types(types)
    rowbuf_init(&b)
    try:
        for i in range(nv):
            _key_put(&b, <int>types[i], values[i],
                     _KEY_WHATS[i] if i < 16 else f"key value {i}")
        return rowbuf_bytes(&b)
    finally:
        rowbuf_free(&b)


cdef tuple _decode_key_at(tuple types, const unsigned char *p, Py_ssize_t n,
                          Py_ssize_t *pos, bint allow_prefix):
    """Decode the values of types from p[pos[0]:n]; with allow_prefix, stop at the end."""
    cdef RowBuf tmp
    cdef Py_ssize_t i, nt = PyTuple_GET_SIZE(types)
    out = []
    rowbuf_init(&tmp)
    try:
        for i in range(nt):
            if allow_prefix and pos[0] == n:
                break
            out.append(_key_get(p, n, pos, <int><object>PyTuple_GET_ITEM(types, i), &tmp))
    finally:
        rowbuf_free(&tmp)
    return tuple(out)


cdef object _as_const_buffer(object buf, const unsigned char **p, Py_ssize_t *n):
    """Point p/n at the bytes of buf; return the object that must stay alive meanwhile."""
    cdef const unsigned char[::1] mv
    if PyBytes_Check(buf):
        p[0] = <const unsigned char *>PyBytes_AS_STRING(buf)
        n[0] = PyBytes_GET_SIZE(buf)
        return buf
    if buf is None:
        raise TypeMismatchError("None is not a bytes buffer")
    try:
        mv = buf
    except (TypeError, ValueError, BufferError) as exc:
        raise TypeMismatchError(f"{type(buf).__name__} is not a contiguous bytes buffer: {exc}") from None
    n[0] = mv.shape[0]
    p[0] = &mv[0] if n[0] else <const unsigned char *>b""
    return mv


def decode_key(types, buf):
    """Values of a key made by encode_key (a prefix of types if the key is shorter)."""
    cdef const unsigned char *p
    cdef Py_ssize_t n, pos = 0
    cdef object keep = None
    types = tuple(types)
    _check_types(types)
    keep = _as_const_buffer(buf, &p, &n)
    out = _decode_key_at(types, p, n, &pos, True)
    if pos != n:
        raise CodecError(f"key has {n - pos} bytes after its last value")
    return out


def decode_key_from(types, buf, Py_ssize_t offset=0):
    """Decode exactly len(types) key values from buf at offset; return (values, end offset)."""
    cdef const unsigned char *p
    cdef Py_ssize_t n, pos = offset
    cdef object keep = None
    types = tuple(types)
    _check_types(types)
    keep = _as_const_buffer(buf, &p, &n)
    if offset < 0 or offset > n:
        raise ValueOutOfRangeError(f"offset {offset} is outside a buffer of {n} bytes")
    out = _decode_key_at(types, p, n, &pos, False)
    return out, pos


# ---------------------------------------------------------------------------------------
# Field location in an encoded row, without Python objects (store and streaming use it to
# build keys from row bytes and to validate rows of a chunk).

DEF _TP_INLINE_COLS = 32

# |unscaled DECIMAL| <= 10^38 - 1, as 128-bit two's complement halves.
DEF _TP_DEC_MAX_HI = 0x4b3b4ca85a86c47a
DEF _TP_DEC_MAX_LO = 0x098a223fffffffff
DEF _TP_DEC_MIN_HI = -0x4b3b4ca85a86c47b
DEF _TP_DEC_MIN_LO = 0xf675ddc000000001


cdef struct _TpFields:
    Py_ssize_t *off     # start of column i's data in the row, -1 if NULL
    Py_ssize_t *len     # its length (VARCHAR/VARBINARY: the bytes after the length prefix)
    Py_ssize_t inline_off[2 * _TP_INLINE_COLS]


cdef inline int _tp_fields_init(_TpFields *f, Py_ssize_t ncols) except -1:
    if ncols <= _TP_INLINE_COLS:
        f.off = f.inline_off
    else:
        f.off = <Py_ssize_t *>malloc(2 * ncols * sizeof(Py_ssize_t))
        if f.off == NULL:
            raise MemoryError()
    f.len = f.off + ncols
    return 0


cdef inline void _tp_fields_free(_TpFields *f) noexcept:
    if f.off != f.inline_off:
        free(f.off)
    f.off = f.inline_off


cdef Py_ssize_t _tp_utf8_chars(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """Number of code points of s if it is UTF-8 as CPython's strict decoder accepts it, else -1."""
    cdef Py_ssize_t i = 0, count = 0
    cdef unsigned char c, c1
    cdef uint64_t w
    while i < n:
        # ASCII runs 8 bytes at a time.
        while i + 8 <= n:
            memcpy(&w, s + i, 8)
            if w & 0x8080808080808080ULL:
                break
            i += 8
            count += 8
        if i >= n:
            break
        c = s[i]
        if c < 0x80:
            i += 1
        elif c < 0xC2:
            return -1
        elif c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return -1
            i += 2
        elif c < 0xF0:
            if i + 2 >= n:
                return -1
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return -1
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F):
                return -1        # overlong, or a surrogate
            i += 3
        elif c < 0xF5:
            if i + 3 >= n:
                return -1
            c1 = s[i + 1]
            if ((c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80):
                return -1
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
                return -1        # overlong, or above U+10FFFF
            i += 4
        else:
            return -1
        count += 1
    return count


cdef inline int64_t _tp_int_at(const unsigned char *p, int w) noexcept:
    """Sign-extended w-byte little-endian two's complement integer at p."""
    cdef int shift = 64 - 8 * w
    return (<int64_t>(_load_le(p, w) << shift)) >> shift


cdef inline int _tp_key_float(RowBuf *b, uint64_t bits) except -1:
    cdef _F64Bits f
    f.u = bits
    if f.d == 0.0:
        f.d = 0.0
    if f.u >> 63:
        f.u = ~f.u
    else:
        f.u |= (<uint64_t>1 << 63)
    rowbuf_put_byte(b, 1)
    return rowbuf_put_be(b, f.u, 8)


# ---------------------------------------------------------------------------------------
# TupleSchema.

cdef struct ColSpec:
    int vtype
    int width           # fixed width in a row, 0 for VARCHAR/VARBINARY
    int64_t lo          # integer range (NULL sentinel excluded)
    int64_t hi
    Py_ssize_t limit    # VARCHAR/VARBINARY limit (chars, or bytes when in_bytes/VARBINARY)
    bint in_bytes
    bint nullable


cdef bint _is_int_type(int vtype) noexcept:
    return (vtype == _T_TINYINT or vtype == _T_SMALLINT or vtype == _T_INTEGER
            or vtype == _T_BIGINT or vtype == _T_TIMESTAMP)


cdef object _plain_int(object v, str what, int64_t lo, int64_t hi):
    if not PyLong_Check(v) or PyBool_Check(v):
        raise TypeMismatchError(f"{what} must be an int, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise ValueOutOfRangeError(f"{what} {v} is outside [{lo}, {hi}]")
    return int(v)


cdef object _plain_bool(object v, str what):
    if not PyLong_Check(v):
        raise TypeMismatchError(f"{what} must be a bool, not {type(v).__name__}")
    if v not in (0, 1):
        raise ValueOutOfRangeError(f"{what} must be a bool, not {v!r}")
    return bool(v)


cdef tuple _positions(object cols, Py_ssize_t ncols, str what):
    if isinstance(cols, (str, bytes)) or not isinstance(cols, (list, tuple)):
        raise TypeMismatchError(f"{what} must be a list of column positions, not {type(cols).__name__}")
    out = tuple(_plain_int(c, f"{what} position", 0, ncols - 1) for c in cols)
    if not out:
        raise ValueOutOfRangeError(f"{what} has no columns")
    if len(set(out)) != len(out):
        raise ValueOutOfRangeError(f"{what} repeats a column: {out}")
    return out


cdef class TupleSchema:
    """A table's row layout: validates and encodes rows, and builds its primary-key and index keys."""

    cdef readonly int table_id
    cdef readonly Py_ssize_t ncols
    cdef readonly tuple types
    cdef readonly tuple columns
    cdef readonly tuple names
    cdef readonly object primary_key
    cdef readonly int partition_column
    cdef readonly bint partitioned
    cdef readonly tuple indexes
    cdef readonly tuple pk_types
    cdef ColSpec *_cols
    cdef Py_ssize_t _bitmap_bytes
    cdef int *_pk_pos
    cdef Py_ssize_t _npk
    # Flat index columns: index k uses _idx_pos[_idx_off[k]:_idx_off[k + 1]].
    cdef int *_idx_pos
    cdef int *_idx_off
    cdef Py_ssize_t _nidx
    cdef tuple _index_types
    cdef tuple _labels
    # Error-message prefixes per column, built once so the encode loop never formats.
    cdef tuple _whats
    # Per index: its id and whether it is unique (C copies of indexes for the store).
    cdef int *_tp_idx_id
    cdef unsigned char *_tp_idx_unique

    def __cinit__(self):
        self._tp_idx_id = NULL
        self._tp_idx_unique = NULL
        self._cols = NULL
        self._pk_pos = NULL
        self._idx_pos = NULL
        self._idx_off = NULL

    def __dealloc__(self):
        free(self._cols)
        free(self._pk_pos)
        free(self._idx_pos)
        free(self._idx_off)
        free(self._tp_idx_id)
        free(self._tp_idx_unique)

    def __init__(self, table_id, columns, primary_key, partition_column, partitioned,
                 indexes, names=None):
        """Check and store the layout; names (optional) label columns in error messages."""
        cdef Py_ssize_t i, j, k
        cdef ColSpec *c
        if self._cols != NULL:
            raise TypeMismatchError("TupleSchema is already initialised")
        self.table_id = _plain_int(table_id, "table_id", 0, 0xFFFE)
        if isinstance(columns, (str, bytes)) or not isinstance(columns, (list, tuple)):
            raise TypeMismatchError(f"columns must be a list, not {type(columns).__name__}")
        cols = tuple(columns)
        self.ncols = len(cols)
        if not 1 <= self.ncols <= _MAX_COLUMNS:
            raise ValueOutOfRangeError(f"a table has 1 to {_MAX_COLUMNS} columns, not {self.ncols}")
        if names is None:
            self.names = None
        else:
            self.names = tuple(names)
            if len(self.names) != self.ncols or not all(isinstance(x, str) for x in self.names):
                raise TypeMismatchError(f"names must be {self.ncols} strings")
        self._labels = tuple(
            f"column {i} ({self.names[i]})" if self.names is not None else f"column {i}"
            for i in range(self.ncols))
        self._whats = tuple(f"table {self.table_id} {lab}" for lab in self._labels)
        self._cols = <ColSpec *>malloc(self.ncols * sizeof(ColSpec))
        if self._cols == NULL:
            raise MemoryError()
        norm = []
        for i in range(self.ncols):
            spec = cols[i]
            if not isinstance(spec, (list, tuple)) or len(spec) != 4:
                raise TypeMismatchError(
                    f"{self._labels[i]}: expected (vtype, size, in_bytes, nullable), got {_short_repr(spec)}")
            vtype = _plain_int(spec[0], f"{self._labels[i]} type code", 0, 255)
            if vtype not in _TYPE_NAMES:
                raise TypeMismatchError(f"{self._labels[i]}: unsupported type code {vtype}")
            size = _plain_int(spec[1], f"{self._labels[i]} size", 0, _MAX_VAR_BYTES)
            in_bytes = _plain_bool(spec[2], f"{self._labels[i]} in_bytes")
            nullable = _plain_bool(spec[3], f"{self._labels[i]} nullable")
            c = &self._cols[i]
            c.vtype = vtype
            c.in_bytes = in_bytes
            c.nullable = nullable
            c.lo = 0
            c.hi = 0
            c.limit = 0
            if vtype == _T_TINYINT:
                c.width, c.lo, c.hi = 1, -127, 127
            elif vtype == _T_SMALLINT:
                c.width, c.lo, c.hi = 2, -32767, 32767
            elif vtype == _T_INTEGER:
                c.width, c.lo, c.hi = 4, -2147483647, 2147483647
            elif vtype == _T_BIGINT or vtype == _T_TIMESTAMP:
                c.width, c.lo, c.hi = 8, -9223372036854775807, 9223372036854775807
            elif vtype == _T_FLOAT:
                c.width = 8
            elif vtype == _T_DECIMAL:
                c.width = 16
            else:
                c.width = 0
                # Size 0 means VoltDB's maximum, 1 MiB; VARBINARY sizes are always bytes.
                if size == 0:
                    c.limit = _MAX_VAR_BYTES
                    c.in_bytes = True
                else:
                    c.limit = size
                    c.in_bytes = in_bytes or vtype == _T_VARBINARY
            norm.append((vtype, size, in_bytes, nullable))
        self.columns = tuple(norm)
        self.types = tuple(x[0] for x in norm)
        self._bitmap_bytes = (self.ncols + 7) // 8

        if primary_key is None:
            self.primary_key = None
            self.pk_types = None
            self._npk = 0
        else:
            self.primary_key = _positions(primary_key, self.ncols, "primary_key")
            self.pk_types = tuple(self.types[p] for p in self.primary_key)
            self._npk = len(self.primary_key)
            self._pk_pos = <int *>malloc(self._npk * sizeof(int))
            if self._pk_pos == NULL:
                raise MemoryError()
            for i in range(self._npk):
                self._pk_pos[i] = self.primary_key[i]

        self.partitioned = _plain_bool(partitioned, "partitioned")
        self.partition_column = _plain_int(partition_column, "partition_column", -1, self.ncols - 1)
        if self.partition_column >= 0:
            if not self.partitioned:
                raise ValueOutOfRangeError("a replicated table has no partition column (use -1)")
            pt = self.types[self.partition_column]
            if pt not in (_T_TINYINT, _T_SMALLINT, _T_INTEGER, _T_BIGINT, _T_STRING, _T_VARBINARY):
                raise TypeMismatchError(
                    f"{self._labels[self.partition_column]}: {_type_name(pt)} cannot be a partition column")

        if isinstance(indexes, (str, bytes)) or not isinstance(indexes, (list, tuple)):
            raise TypeMismatchError(f"indexes must be a list, not {type(indexes).__name__}")
        idx = []
        seen = set()
        for spec in indexes:
            if not isinstance(spec, (list, tuple)) or len(spec) != 3:
                raise TypeMismatchError(f"index: expected (index_id, positions, unique), got {_short_repr(spec)}")
            iid = _plain_int(spec[0], "index_id", 0, 0xFFFE)
            if iid in seen:
                raise ValueOutOfRangeError(f"index_id {iid} is listed twice")
            seen.add(iid)
            idx.append((iid, _positions(spec[1], self.ncols, f"index {iid}"),
                        _plain_bool(spec[2], f"index {iid} unique")))
        self.indexes = tuple(idx)
        self._index_types = tuple(tuple(self.types[p] for p in ix[1]) for ix in idx)
        self._nidx = len(idx)
        total = sum(len(ix[1]) for ix in idx)
        self._idx_off = <int *>malloc((self._nidx + 1) * sizeof(int))
        self._idx_pos = <int *>malloc((total + 1) * sizeof(int))
        if self._idx_off == NULL or self._idx_pos == NULL:
            raise MemoryError()
        k = 0
        for i in range(self._nidx):
            self._idx_off[i] = k
            for j in idx[i][1]:
                self._idx_pos[k] = j
                k += 1
        self._idx_off[self._nidx] = k
        self._tp_idx_id = <int *>malloc((self._nidx + 1) * sizeof(int))
        self._tp_idx_unique = <unsigned char *>malloc(self._nidx + 1)
        if self._tp_idx_id == NULL or self._tp_idx_unique == NULL:
            raise MemoryError()
        for i in range(self._nidx):
            self._tp_idx_id[i] = idx[i][0]
            self._tp_idx_unique[i] = 1 if idx[i][2] else 0

    def __reduce__(self):
        return (TupleSchema, (self.table_id, [list(c) for c in self.columns],
                              None if self.primary_key is None else list(self.primary_key),
                              self.partition_column, self.partitioned,
                              [(i, list(c), u) for i, c, u in self.indexes], self.names))

    def __repr__(self):
        return (f"TupleSchema(table_id={self.table_id}, types={self.types}, "
                f"primary_key={self.primary_key}, partition_column={self.partition_column})")

    def index_types(self, Py_ssize_t index_pos):
        """Type codes of the columns of the index at index_pos."""
        self._check_index_pos(index_pos)
        return self._index_types[index_pos]

    cdef int _check_index_pos(self, Py_ssize_t index_pos) except -1:
        if not 0 <= index_pos < self._nidx:
            raise ValueOutOfRangeError(
                f"table {self.table_id} has no index at position {index_pos} ({self._nidx} indexes)")
        return 0

    # ---- rows ---------------------------------------------------------------------------

    cdef tuple _as_row(self, object row):
        if PyTuple_CheckExact(row):
            t = <tuple>row
        elif isinstance(row, (tuple, list)):
            t = tuple(row)
        else:
            raise TypeMismatchError(f"a row of table {self.table_id} must be a tuple, not {type(row).__name__}")
        if PyTuple_GET_SIZE(t) != self.ncols:
            raise TypeMismatchError(
                f"a row of table {self.table_id} has {self.ncols} values, not {PyTuple_GET_SIZE(t)}")
        return t

    cdef inline str _what(self, Py_ssize_t i):
        return <str>PyTuple_GET_ITEM(self._whats, i)

    cdef int _put_field(self, RowBuf *b, Py_ssize_t i, object v) except -1:
        """Validate v against column i and append its row encoding."""
        cdef ColSpec *c = &self._cols[i]
        cdef int vt = c.vtype
        cdef int64_t x
        cdef double d
        cdef _F64Bits f
        cdef Py_ssize_t n, m
        cdef const char *s
        if _is_int_type(vt):
            x = _int64_of(v, vt, self._what(i))
            if x < c.lo or x > c.hi:
                raise ValueOutOfRangeError(
                    f"{self._what(i)}: value {x} is out of range for {_type_name(vt)} [{c.lo}, {c.hi}]")
            return rowbuf_put_le(b, <uint64_t>x, c.width)
        if vt == _T_FLOAT:
            d = _double_of(v, self._what(i))
            # -1.7E308 is VoltDB's NULL sentinel, so it and anything below are not values.
            if not isfinite(d) or d <= -1.7E308:
                raise ValueOutOfRangeError(
                    f"{self._what(i)}: FLOAT value {v!r} is out of range (finite and > -1.7E308)")
            f.d = d
            return rowbuf_put_le(b, f.u, 8)
        if vt == _T_STRING:
            s = _utf8_of(v, &n, self._what(i))
            m = n if c.in_bytes else PyUnicode_GET_LENGTH(v)
            if m > c.limit:
                raise ValueOutOfRangeError(
                    f"{self._what(i)}: VARCHAR value {_short_repr(v)} has {m} "
                    f"{'bytes' if c.in_bytes else 'characters'}, more than the column's {c.limit}")
            return self._put_var(b, <const unsigned char *>s, n)
        if vt == _T_VARBINARY:
            if not PyBytes_Check(v):
                raise TypeMismatchError(
                    f"{self._what(i)}: {type(v).__name__} value {_short_repr(v)} is not bytes for VARBINARY")
            n = PyBytes_GET_SIZE(v)
            if n > c.limit:
                raise ValueOutOfRangeError(
                    f"{self._what(i)}: VARBINARY value {_short_repr(v)} has {n} bytes, more than the column's {c.limit}")
            return self._put_var(b, <const unsigned char *>PyBytes_AS_STRING(v), n)
        if vt == _T_DECIMAL:
            q = _decimal_unscaled(v, self._what(i))
            rowbuf_put_le(b, <uint64_t>(q & _MASK64), 8)
            return rowbuf_put_le(b, <uint64_t><int64_t>(q >> 64), 8)
        raise TypeMismatchError(f"{self._what(i)}: unsupported type code {vt}")

    cdef inline int _put_var(self, RowBuf *b, const unsigned char *p, Py_ssize_t n) except -1:
        cdef uint64_t u = <uint64_t>n
        rowbuf_reserve(b, n + 5)
        while u >= 0x80:
            b.data[b.len] = <unsigned char>(u & 0x7F) | 0x80
            b.len += 1
            u >>= 7
        b.data[b.len] = <unsigned char>u
        b.len += 1
        memcpy(b.data + b.len, p, n)
        b.len += n
        return 0

    cdef int _encode_into(self, RowBuf *b, object row) except -1:
        """Validate row and append its encoding to b."""
        cdef tuple t = self._as_row(row)
        cdef Py_ssize_t i, start
        cdef object v
        rowbuf_reserve(b, 1 + self._bitmap_bytes)
        b.data[b.len] = _ROW_FORMAT
        start = b.len + 1
        memset(b.data + start, 0, self._bitmap_bytes)
        b.len = start + self._bitmap_bytes
        for i in range(self.ncols):
            v = <object>PyTuple_GET_ITEM(t, i)
            if v is None:
                if not self._cols[i].nullable:
                    raise ConstraintError(f"{self._what(i)} is NOT NULL")
                # b.data may move as fields are appended, so index it afresh each time.
                b.data[start + (i >> 3)] |= <unsigned char>(1 << (i & 7))
            else:
                self._put_field(b, i, v)
        return 0

    cdef bytes _encode_row(self, object row):
        cdef RowBuf b
        rowbuf_init(&b)
        try:
            self._encode_into(&b, row)
            return rowbuf_bytes(&b)
        finally:
            rowbuf_free(&b)

    def encode_row(self, row):
        """Validate row (a tuple of internal values) and return its encoding.

        :raises TypeMismatchError: wrong arity or a value of the wrong Python type.
        :raises ValueOutOfRangeError: a value outside its type's range or column size.
        :raises ConstraintError: None in a NOT NULL column.
        """
        return self._encode_row(row)

    def encode_rows(self, rows):
        """encode_row of each row, as a list."""
        cdef RowBuf b
        out = []
        rowbuf_init(&b)
        try:
            for row in rows:
                b.len = 0
                self._encode_into(&b, row)
                out.append(rowbuf_bytes(&b))
        finally:
            rowbuf_free(&b)
        return out

    cdef tuple _decode_ptr(self, const unsigned char *p, Py_ssize_t n):
        """Decode a row from n bytes at p; CodecError if malformed or invalid for the schema."""
        cdef Py_ssize_t i, pos, bm = self._bitmap_bytes, m
        cdef ColSpec *c
        cdef int vt, w, shift
        cdef uint64_t u, ln
        cdef int64_t x
        cdef _F64Bits f
        cdef tuple out
        cdef object v
        if n < 1 + bm:
            raise CodecError(f"row of table {self.table_id} is truncated ({n} bytes)")
        if p[0] != _ROW_FORMAT:
            raise CodecError(f"row of table {self.table_id} has unknown format version {p[0]}")
        if self.ncols & 7 and p[bm] >> (self.ncols & 7):
            raise CodecError(f"row of table {self.table_id} has NULL bits past its last column")
        pos = 1 + bm
        out = PyTuple_New(self.ncols)
        for i in range(self.ncols):
            c = &self._cols[i]
            vt = c.vtype
            if p[1 + (i >> 3)] & (1 << (i & 7)):
                if not c.nullable:
                    raise CodecError(f"row of table {self.table_id}: NULL in NOT NULL {self._labels[i]}")
                v = None
            elif c.width:
                w = c.width
                if n - pos < w:
                    raise CodecError(f"row of table {self.table_id} is truncated in {self._labels[i]}")
                if _is_int_type(vt):
                    u = _load_le(p + pos, w)
                    # Sign-extend the w-byte two's complement field.
                    shift = 64 - 8 * w
                    x = (<int64_t>(u << shift)) >> shift
                    if x < c.lo or x > c.hi:
                        raise CodecError(
                            f"row of table {self.table_id}: {self._labels[i]} holds {x}, "
                            f"out of range for {_type_name(vt)}")
                    v = x
                elif vt == _T_FLOAT:
                    f.u = _load_le(p + pos, 8)
                    if not isfinite(f.d) or f.d <= -1.7E308:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} holds FLOAT {f.d!r}")
                    v = f.d
                else:
                    v = _decimal_from_halves(<int64_t>_load_le(p + pos + 8, 8), _load_le(p + pos, 8))
                    if v is None:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} holds a too large DECIMAL")
                pos += w
            else:
                ln = 0
                shift = 0
                while True:
                    if pos >= n:
                        raise CodecError(f"row of table {self.table_id} is truncated in {self._labels[i]}")
                    if shift > 21:
                        raise CodecError(f"row of table {self.table_id}: bad length in {self._labels[i]}")
                    ln |= (<uint64_t>(p[pos] & 0x7F)) << shift
                    shift += 7
                    pos += 1
                    if not (p[pos - 1] & 0x80):
                        break
                # One encoding per length, so decode(encode(x)) and encode(decode(b)) agree.
                if shift > 7 and p[pos - 1] == 0:
                    raise CodecError(f"row of table {self.table_id}: overlong length in {self._labels[i]}")
                if ln > <uint64_t>(n - pos):
                    raise CodecError(f"row of table {self.table_id} is truncated in {self._labels[i]}")
                if vt == _T_VARBINARY:
                    if ln > <uint64_t>c.limit:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} is too long")
                    v = PyBytes_FromStringAndSize(<const char *>(p + pos), <Py_ssize_t>ln)
                else:
                    if c.in_bytes and ln > <uint64_t>c.limit:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} is too long")
                    try:
                        v = PyUnicode_DecodeUTF8(<const char *>(p + pos), <Py_ssize_t>ln, "strict")
                    except UnicodeDecodeError:
                        raise CodecError(
                            f"row of table {self.table_id}: {self._labels[i]} is not valid UTF-8") from None
                    if not c.in_bytes and PyUnicode_GET_LENGTH(v) > c.limit:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} is too long")
                pos += <Py_ssize_t>ln
            Py_INCREF(v)
            PyTuple_SET_ITEM(out, i, v)
        if pos != n:
            raise CodecError(f"row of table {self.table_id} has {n - pos} bytes after its last column")
        return out

    def decode_row(self, buf):
        """Decode an encoded row (bytes or any contiguous buffer) into a tuple.

        :raises CodecError: the bytes are not a valid row of this schema.
        """
        cdef const unsigned char *p
        cdef Py_ssize_t n
        cdef object keep = None
        keep = _as_const_buffer(buf, &p, &n)
        return self._decode_ptr(p, n)

    def decode_rows(self, bufs):
        """decode_row of each buffer, as a list."""
        cdef const unsigned char *p
        cdef Py_ssize_t n
        cdef object keep = None
        out = []
        for buf in bufs:
            keep = _as_const_buffer(buf, &p, &n)
            out.append(self._decode_ptr(p, n))
            keep = None
        return out

    # ---- keys ---------------------------------------------------------------------------

    cdef int _pk_into(self, RowBuf *b, tuple row) except -1:
        """Append the memcomparable primary-key values of a full row to b."""
        cdef Py_ssize_t k
        cdef int col
        if self._npk == 0:
            raise TypeMismatchError(f"table {self.table_id} has no primary key")
        for k in range(self._npk):
            col = self._pk_pos[k]
            _key_put(b, self._cols[col].vtype, <object>PyTuple_GET_ITEM(row, col), self._what(col))
        return 0

    cdef int _index_into(self, RowBuf *b, Py_ssize_t index_pos, tuple row) except -1:
        """Append the index key of a full row to b; return 1 if it holds a NULL, else 0."""
        cdef int k, col, has_null = 0
        cdef object v
        for k in range(self._idx_off[index_pos], self._idx_off[index_pos + 1]):
            col = self._idx_pos[k]
            v = <object>PyTuple_GET_ITEM(row, col)
            if v is None:
                has_null = 1
            _key_put(b, self._cols[col].vtype, v, self._what(col))
        return has_null

    cdef int32_t _row_token(self, tuple row) except? -1:
        """Token of the partition-column value of a full row (0 if none or NULL)."""
        cdef object v
        if self.partition_column < 0:
            return 0
        v = <object>PyTuple_GET_ITEM(row, self.partition_column)
        if v is None:
            return 0
        return _token_for(self._cols[self.partition_column].vtype, v)

    def pk_suffix(self, row):
        """Memcomparable encoding of the primary-key values of a full row."""
        cdef RowBuf b
        cdef tuple t = self._as_row(row)
        rowbuf_init(&b)
        try:
            self._pk_into(&b, t)
            return rowbuf_bytes(&b)
        finally:
            rowbuf_free(&b)

    def encode_pk(self, pk_values):
        """Memcomparable encoding of primary-key values given in primary-key order."""
        cdef RowBuf b
        cdef Py_ssize_t k
        cdef int col
        if self._npk == 0:
            raise TypeMismatchError(f"table {self.table_id} has no primary key")
        vals = tuple(pk_values)
        if len(vals) != self._npk:
            raise TypeMismatchError(f"table {self.table_id} has {self._npk} primary-key columns, not {len(vals)}")
        rowbuf_init(&b)
        try:
            for k in range(self._npk):
                col = self._pk_pos[k]
                _key_put(&b, self._cols[col].vtype, vals[k], self._what(col))
            return rowbuf_bytes(&b)
        finally:
            rowbuf_free(&b)

    def decode_pk(self, buf):
        """Primary-key values of a pk_suffix/encode_pk key."""
        if self._npk == 0:
            raise TypeMismatchError(f"table {self.table_id} has no primary key")
        out = decode_key(self.pk_types, buf)
        if len(out) != self._npk:
            raise CodecError(f"primary key of table {self.table_id} is truncated")
        return out

    def index_key(self, Py_ssize_t index_pos, row):
        """(memcomparable key of the index at index_pos for a full row, whether it holds a NULL)."""
        cdef RowBuf b
        cdef int has_null
        cdef tuple t = self._as_row(row)
        self._check_index_pos(index_pos)
        rowbuf_init(&b)
        try:
            has_null = self._index_into(&b, index_pos, t)
            return rowbuf_bytes(&b), bool(has_null)
        finally:
            rowbuf_free(&b)

    def encode_index_prefix(self, Py_ssize_t index_pos, values):
        """Memcomparable key of leading values of the index at index_pos (for range bounds)."""
        cdef RowBuf b
        cdef Py_ssize_t k, nv, base
        cdef int col
        self._check_index_pos(index_pos)
        vals = tuple(values)
        nv = len(vals)
        base = self._idx_off[index_pos]
        if nv > self._idx_off[index_pos + 1] - base:
            raise TypeMismatchError(
                f"index {self.indexes[index_pos][0]} has {self._idx_off[index_pos + 1] - base} columns, not {nv}")
        rowbuf_init(&b)
        try:
            for k in range(nv):
                col = self._idx_pos[base + k]
                _key_put(&b, self._cols[col].vtype, vals[k], self._what(col))
            return rowbuf_bytes(&b)
        finally:
            rowbuf_free(&b)

    # ---- fields and keys straight from row bytes (no Python values) -------------------

    cdef int _tp_split(self, const unsigned char *p, Py_ssize_t n, _TpFields *f,
                       bint check) except -1:
        """Locate each column's field in the n-byte row at p; bounds are always checked.

        With check, also enforce every rule decode_row enforces, so a row that passes
        decodes without error.
        """
        cdef Py_ssize_t i, pos, bm = self._bitmap_bytes, m
        cdef ColSpec *c
        cdef int w, shift
        cdef uint64_t ln, lo
        cdef int64_t x, hi
        cdef _F64Bits fb
        if n < 1 + bm:
            raise CodecError(f"row of table {self.table_id} is truncated ({n} bytes)")
        if p[0] != _ROW_FORMAT:
            raise CodecError(f"row of table {self.table_id} has unknown format version {p[0]}")
        if self.ncols & 7 and p[bm] >> (self.ncols & 7):
            raise CodecError(f"row of table {self.table_id} has NULL bits past its last column")
        pos = 1 + bm
        for i in range(self.ncols):
            c = &self._cols[i]
            if p[1 + (i >> 3)] & (1 << (i & 7)):
                if check and not c.nullable:
                    raise CodecError(f"row of table {self.table_id}: NULL in NOT NULL {self._labels[i]}")
                f.off[i] = -1
                f.len[i] = 0
                continue
            w = c.width
            if w:
                if n - pos < w:
                    raise CodecError(f"row of table {self.table_id} is truncated in {self._labels[i]}")
                if check:
                    if _is_int_type(c.vtype):
                        x = _tp_int_at(p + pos, w)
                        if x < c.lo or x > c.hi:
                            raise CodecError(
                                f"row of table {self.table_id}: {self._labels[i]} holds {x}, "
                                f"out of range for {_type_name(c.vtype)}")
                    elif c.vtype == _T_FLOAT:
                        fb.u = _load_le(p + pos, 8)
                        if not isfinite(fb.d) or fb.d <= -1.7E308:
                            raise CodecError(
                                f"row of table {self.table_id}: {self._labels[i]} holds FLOAT {fb.d!r}")
                    else:
                        lo = _load_le(p + pos, 8)
                        hi = <int64_t>_load_le(p + pos + 8, 8)
                        if (hi > _TP_DEC_MAX_HI or (hi == _TP_DEC_MAX_HI and lo > <uint64_t>_TP_DEC_MAX_LO)
                                or hi < _TP_DEC_MIN_HI
                                or (hi == _TP_DEC_MIN_HI and lo < <uint64_t>_TP_DEC_MIN_LO)):
                            raise CodecError(
                                f"row of table {self.table_id}: {self._labels[i]} holds a too large DECIMAL")
                f.off[i] = pos
                f.len[i] = w
                pos += w
                continue
            ln = 0
            shift = 0
            while True:
                if pos >= n:
                    raise CodecError(f"row of table {self.table_id} is truncated in {self._labels[i]}")
                if shift > 21:
                    raise CodecError(f"row of table {self.table_id}: bad length in {self._labels[i]}")
                ln |= (<uint64_t>(p[pos] & 0x7F)) << shift
                shift += 7
                pos += 1
                if not (p[pos - 1] & 0x80):
                    break
            if shift > 7 and p[pos - 1] == 0:
                raise CodecError(f"row of table {self.table_id}: overlong length in {self._labels[i]}")
            if ln > <uint64_t>(n - pos):
                raise CodecError(f"row of table {self.table_id} is truncated in {self._labels[i]}")
            if check:
                if c.vtype == _T_VARBINARY or c.in_bytes:
                    if ln > <uint64_t>c.limit:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} is too long")
                if c.vtype == _T_STRING:
                    m = _tp_utf8_chars(p + pos, <Py_ssize_t>ln)
                    if m < 0:
                        raise CodecError(
                            f"row of table {self.table_id}: {self._labels[i]} is not valid UTF-8")
                    if not c.in_bytes and m > c.limit:
                        raise CodecError(f"row of table {self.table_id}: {self._labels[i]} is too long")
            f.off[i] = pos
            f.len[i] = <Py_ssize_t>ln
            pos += <Py_ssize_t>ln
        if pos != n:
            raise CodecError(f"row of table {self.table_id} has {n - pos} bytes after its last column")
        return 0

    cdef int _tp_key_field(self, RowBuf *b, const unsigned char *p, _TpFields *f,
                           int col) except -1:
        """Append the memcomparable key of column col's field; return 1 if it is NULL."""
        cdef Py_ssize_t off = f.off[col]
        cdef int vt = self._cols[col].vtype
        if off < 0:
            rowbuf_put_byte(b, 0)
            return 1
        if _is_int_type(vt):
            rowbuf_put_byte(b, 1)
            rowbuf_put_be(b, (<uint64_t>_tp_int_at(p + off, self._cols[col].width))
                          ^ (<uint64_t>1 << 63), 8)
        elif vt == _T_FLOAT:
            _tp_key_float(b, _load_le(p + off, 8))
        elif vt == _T_DECIMAL:
            rowbuf_put_byte(b, 1)
            rowbuf_put_be(b, _load_le(p + off + 8, 8) ^ (<uint64_t>1 << 63), 8)
            rowbuf_put_be(b, _load_le(p + off, 8), 8)
        else:
            rowbuf_put_byte(b, 1)
            _key_put_escaped(b, p + off, f.len[col])
        return 0

    cdef int32_t _tp_token(self, const unsigned char *p, _TpFields *f) noexcept:
        """Token of the partition-column field (0 if none or NULL), as row_token gives it."""
        cdef int pc = self.partition_column
        cdef Py_ssize_t off
        if pc < 0:
            return 0
        off = f.off[pc]
        if off < 0:
            return 0
        if _is_int_type(self._cols[pc].vtype):
            return vdb_murmur3_token_int64(_tp_int_at(p + off, self._cols[pc].width))
        return vdb_murmur3_token(p + off, <size_t>f.len[pc])

    cdef int _tp_row_key(self, RowBuf *b, const unsigned char *p, _TpFields *f) except -1:
        """Append u16 table id | u32 token ^ 0x80000000 | PK suffix (no suffix without a PK)."""
        cdef Py_ssize_t k
        rowbuf_put_be(b, <uint64_t>self.table_id, 2)
        rowbuf_put_be(b, (<uint32_t>self._tp_token(p, f)) ^ 0x80000000u, 4)
        for k in range(self._npk):
            self._tp_key_field(b, p, f, self._pk_pos[k])
        return 0

    cdef int _tp_index_key(self, RowBuf *b, const unsigned char *p, _TpFields *f,
                           Py_ssize_t index_pos) except -1:
        """Append u16 index id | index key of the index at index_pos; return 1 if it holds a NULL."""
        cdef int k, has_null = 0
        rowbuf_put_be(b, <uint64_t>self._tp_idx_id[index_pos], 2)
        for k in range(self._idx_off[index_pos], self._idx_off[index_pos + 1]):
            has_null |= self._tp_key_field(b, p, f, self._idx_pos[k])
        return has_null

    cdef int _tp_pk_key(self, RowBuf *b, object pk_values) except -1:
        """Append u16 table id | token | PK suffix of primary-key values (PK order).

        Only for tables whose token follows from the PK (no partition column, or one in
        the PK); a NULL partition value has token 0, as in row_token.
        """
        cdef tuple vals
        cdef Py_ssize_t k
        cdef int col, pc = self.partition_column
        cdef int32_t token = 0
        cdef object v
        if self._npk == 0:
            raise TypeMismatchError(f"table {self.table_id} has no primary key")
        vals = pk_values if PyTuple_CheckExact(pk_values) else tuple(pk_values)
        if PyTuple_GET_SIZE(vals) != self._npk:
            raise TypeMismatchError(
                f"table {self.table_id}: primary key has {self._npk} columns, "
                f"{PyTuple_GET_SIZE(vals)} values given")
        if pc >= 0:
            for k in range(self._npk):
                if self._pk_pos[k] == pc:
                    v = <object>PyTuple_GET_ITEM(vals, k)
                    if v is not None:
                        token = _token_for(self._cols[pc].vtype, v)
                    break
        rowbuf_put_be(b, <uint64_t>self.table_id, 2)
        rowbuf_put_be(b, (<uint32_t>token) ^ 0x80000000u, 4)
        for k in range(self._npk):
            col = self._pk_pos[k]
            _key_put(b, self._cols[col].vtype, <object>PyTuple_GET_ITEM(vals, k), self._what(col))
        return 0

    def check_row(self, buf):
        """Validate an encoded row without decoding it; CodecError exactly when decode_row fails."""
        cdef const unsigned char *p
        cdef Py_ssize_t n
        cdef _TpFields f
        cdef object keep = _as_const_buffer(buf, &p, &n)
        _tp_fields_init(&f, self.ncols)
        try:
            self._tp_split(p, n, &f, True)
        finally:
            _tp_fields_free(&f)

    def encoded_keys(self, buf):
        """(token, PK suffix or None, [(index key, has NULL)...]) of an encoded row.

        Built from the row bytes; equal to (row_token, pk_suffix, index_key...) of the
        decoded row. CodecError if buf is not a valid row.
        """
        cdef const unsigned char *p
        cdef Py_ssize_t n, i
        cdef _TpFields f
        cdef RowBuf b
        cdef int has_null
        cdef object keep = _as_const_buffer(buf, &p, &n)
        cdef list idx = []
        _tp_fields_init(&f, self.ncols)
        rowbuf_init(&b)
        try:
            self._tp_split(p, n, &f, True)
            self._tp_row_key(&b, p, &f)
            token = <int32_t>(<uint32_t>_load_be(b.data + 2, 4) ^ 0x80000000u)
            pk = PyBytes_FromStringAndSize(<char *>b.data + 6, b.len - 6) if self._npk else None
            for i in range(self._nidx):
                b.len = 0
                has_null = self._tp_index_key(&b, p, &f, i)
                idx.append((PyBytes_FromStringAndSize(<char *>b.data + 2, b.len - 2), bool(has_null)))
            return token, pk, idx
        finally:
            rowbuf_free(&b)
            _tp_fields_free(&f)

    def row_token(self, row):
        """Token of the partition-column value of a full row (0 if no partition column or NULL)."""
        return self._row_token(self._as_row(row))


# The name docs/internals.md uses for the same class.
TableSchema = TupleSchema

# SPDX-License-Identifier: AGPL-3.0-or-later
# Partition stores over LMDB (docs/internals.md, "LMDB layout" and "Engine API").
#
# Keys inside one partition DB (all big-endian):
#   row:          u16 table_id | u32 token ^ 0x80000000 | pk suffix (memcomparable) or u64 rowid
#   index entry:  u16 index_id | memcomparable index key | row key without table id  -> b""
#   metadata:     u16 0xFFFF | 0x01                         -> u64 rowid counter
#                 u16 0xFFFF | 0x02 | u16 table_id          -> u64 row count of the table
# A "rowkey" handed to callers is the full LMDB key of the row (table id included).

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE

from cpython.bytes cimport PyBytes_CheckExact
from libc.stdint cimport INT64_MAX, INT64_MIN

import lmdb as _lmdb

DEF _META_ID = 0xFFFF
DEF _ST_INLINE_IDX = 16

cdef bytes _META_ROWID_KEY = b"\xff\xff\x01"
cdef bytes _META_COUNT_PREFIX = b"\xff\xff\x02"
cdef bytes _EMPTY = b""


cdef inline bytes _u16(unsigned int v):
    cdef unsigned char b[2]
    b[0] = (v >> 8) & 0xFF
    b[1] = v & 0xFF
    return PyBytes_FromStringAndSize(<char *>b, 2)


cdef inline bytes _u64(uint64_t v):
    cdef unsigned char b[8]
    cdef int i
    for i in range(8):
        b[7 - i] = (v >> (8 * i)) & 0xFF
    return PyBytes_FromStringAndSize(<char *>b, 8)


cdef inline uint64_t _read_u64(bytes buf) except? 0:
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(buf)
    cdef uint64_t v = 0
    cdef int i
    if PyBytes_GET_SIZE(buf) != 8:
        raise StorageError("corrupt store counter (not 8 bytes)")
    for i in range(8):
        v = (v << 8) | p[i]
    return v


cdef inline bytes _token_bytes(int32_t token):
    cdef uint32_t u = (<uint32_t>token) ^ 0x80000000u
    cdef unsigned char b[4]
    b[0] = (u >> 24) & 0xFF
    b[1] = (u >> 16) & 0xFF
    b[2] = (u >> 8) & 0xFF
    b[3] = u & 0xFF
    return PyBytes_FromStringAndSize(<char *>b, 4)


cdef inline int32_t _key_token(bytes key, Py_ssize_t off) except? -1:
    """The signed token stored at key[off:off+4]."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(key)
    if PyBytes_GET_SIZE(key) < off + 4:
        raise CodecError("row key too short for a token")
    cdef uint32_t u = ((<uint32_t>p[off] << 24) | (<uint32_t>p[off + 1] << 16)
                       | (<uint32_t>p[off + 2] << 8) | <uint32_t>p[off + 3])
    return <int32_t>(u ^ 0x80000000u)


cdef object _succ(bytes key):
    """Smallest byte string greater than every string starting with key (None if none)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(key)
    while n > 0 and p[n - 1] == 0xFF:
        n -= 1
    if n == 0:
        return None
    cdef bytearray out = bytearray(key[:n])
    out[n - 1] = p[n - 1] + 1
    return bytes(out)


cdef inline bytes _as_bytes(object buf):
    if type(buf) is bytes:
        return <bytes>buf
    return bytes(buf)


cdef class _TableInfo:
    """What the store derives once from a TupleSchema (prefixes, index layout)."""
    cdef readonly object schema
    cdef TupleSchema ts
    cdef readonly int table_id
    cdef readonly bytes prefix            # u16 table id
    cdef readonly bytes count_key
    cdef readonly bint has_pk
    cdef readonly bint pk_gives_token     # the row key can be built from the PK values
    cdef readonly int pk_index_pos        # position of the PK's index in indexes, or -1
    cdef readonly bint pk_only            # keys follow from the PK alone: row key, PK index
    cdef long long count_last             # the row count this store last wrote (a guess)
    cdef bint count_known
    cdef readonly int ncols
    cdef readonly list pk_cols
    cdef readonly list idx_prefix         # per index: u16 index id bytes
    cdef readonly list idx_ids
    cdef readonly list idx_unique
    cdef readonly list idx_types          # per index: list of column type codes
    cdef readonly int nidx

    def __init__(self, schema):
        cdef int i
        if not isinstance(schema, TupleSchema):
            raise TypeMismatchError(f"a table schema must be a TupleSchema, not {type(schema).__name__}")
        self.schema = schema
        self.ts = <TupleSchema>schema
        self.table_id = schema.table_id
        if not 0 <= self.table_id < _META_ID:
            raise ValueOutOfRangeError(f"table id {self.table_id} out of range 0..65534")
        self.prefix = _u16(self.table_id)
        self.count_key = _META_COUNT_PREFIX + self.prefix
        types = list(schema.types)
        self.ncols = len(types)
        pk = schema.primary_key
        self.has_pk = pk is not None and len(pk) > 0
        self.pk_cols = list(pk) if self.has_pk else []
        pc = schema.partition_column
        self.pk_gives_token = self.has_pk and (
            not schema.partitioned or pc is None or pc < 0 or pc in self.pk_cols)
        self.pk_index_pos = -1
        self.idx_prefix = []
        self.idx_ids = []
        self.idx_unique = []
        self.idx_types = []
        for i, (iid, cols, unique) in enumerate(schema.indexes):
            if not 0 <= iid < _META_ID:
                raise ValueOutOfRangeError(f"index id {iid} out of range 0..65534")
            self.idx_prefix.append(_u16(iid))
            self.idx_ids.append(iid)
            self.idx_unique.append(bool(unique))
            self.idx_types.append([types[c] for c in cols])
            if self.has_pk and unique and list(cols) == self.pk_cols and self.pk_index_pos < 0:
                self.pk_index_pos = i
        self.nidx = len(self.idx_ids)
        self.pk_only = self.pk_gives_token and (
            self.nidx == 0 or (self.nidx == 1 and self.pk_index_pos == 0))

    cdef int index_pos(self, int index_id) except -2:
        cdef int i
        for i in range(self.nidx):
            if self.idx_ids[i] == index_id:
                return i
        raise ValueOutOfRangeError(f"table {self.table_id} has no index {index_id}")


# ---------------------------------------------------------------------------------------
# The keys of one row, built in C from its encoded bytes: the row key and, back to back,
# "u16 index id | index key" of every index (an index entry is that plus the row key
# without its table id).

cdef struct _StKeys:
    RowBuf key
    RowBuf ix
    Py_ssize_t *ends        # index i is ix.data[ends[i]:ends[i + 1]]
    unsigned char *nulls    # 1 if index i's key holds a NULL
    Py_ssize_t inline_ends[_ST_INLINE_IDX + 1]
    unsigned char inline_nulls[_ST_INLINE_IDX]


cdef int _st_keys_init(_StKeys *k, Py_ssize_t nidx) except -1:
    rowbuf_init(&k.key)
    rowbuf_init(&k.ix)
    if nidx <= _ST_INLINE_IDX:
        k.ends = k.inline_ends
        k.nulls = k.inline_nulls
    else:
        k.ends = <Py_ssize_t *>malloc((nidx + 1) * sizeof(Py_ssize_t))
        k.nulls = <unsigned char *>malloc(nidx)
        if k.ends == NULL or k.nulls == NULL:
            free(k.ends)
            free(k.nulls)
            k.ends = k.inline_ends
            k.nulls = k.inline_nulls
            raise MemoryError()
    k.ends[0] = 0
    return 0


cdef void _st_keys_free(_StKeys *k) noexcept:
    rowbuf_free(&k.key)
    rowbuf_free(&k.ix)
    if k.ends != k.inline_ends:
        free(k.ends)
        free(k.nulls)
    k.ends = k.inline_ends
    k.nulls = k.inline_nulls


cdef int _st_build(TupleSchema ts, const unsigned char *p, Py_ssize_t n, _StKeys *k,
                   bint check) except -1:
    """Fill k with the keys of the encoded row p[:n] (no row id yet for a table without PK)."""
    cdef _TpFields f
    cdef Py_ssize_t i
    _tp_fields_init(&f, ts.ncols)
    try:
        ts._tp_split(p, n, &f, check)
        k.key.len = 0
        ts._tp_row_key(&k.key, p, &f)
        k.ix.len = 0
        for i in range(ts._nidx):
            k.nulls[i] = <unsigned char>ts._tp_index_key(&k.ix, p, &f, i)
            k.ends[i + 1] = k.ix.len
    finally:
        _tp_fields_free(&f)
    return 0


cdef inline bint _st_same_ix(_StKeys *a, _StKeys *b, Py_ssize_t i) noexcept:
    cdef Py_ssize_t n = a.ends[i + 1] - a.ends[i]
    return (n == b.ends[i + 1] - b.ends[i]
            and memcmp(a.ix.data + a.ends[i], b.ix.data + b.ends[i], n) == 0)


cdef bytes _st_entry(_StKeys *k, Py_ssize_t i, const unsigned char *tail, Py_ssize_t ntail,
                     RowBuf *tmp):
    """Index entry key of index i: u16 index id | index key | tail (row key without table id)."""
    tmp.len = 0
    rowbuf_put(tmp, k.ix.data + k.ends[i], k.ends[i + 1] - k.ends[i])
    rowbuf_put(tmp, tail, ntail)
    return rowbuf_bytes(tmp)


cdef inline bint _st_has_prefix(const unsigned char *p, Py_ssize_t n, const unsigned char *pre,
                                Py_ssize_t npre) noexcept:
    return n >= npre and memcmp(p, pre, npre) == 0


cdef tuple _st_pk_values(_TableInfo inf, row):
    """The primary-key values of a full row, in primary-key order."""
    return tuple([row[c] for c in inf.pk_cols])


cdef class PartitionStore:
    """Tables and indexes of one partition (or of the replicated tables) in one named DB.

    Every method takes the py-lmdb Transaction first; rows are tuples of internal values.
    Failed writes raise before anything is written.
    """
    cdef readonly int partition_id
    cdef readonly object dbi
    cdef uint64_t rowid_base
    cdef dict _infos
    cdef object _last_schema
    cdef _TableInfo _last_info

    def __init__(self, int partition_id, dbi):
        """partition_id: 0..65534, or -1 (or 0xFFFF) for the replicated tables' store."""
        if partition_id == -1:
            partition_id = _META_ID
        if not 0 <= partition_id <= _META_ID:
            raise ValueOutOfRangeError(f"partition id {partition_id} out of range")
        self.partition_id = partition_id
        self.dbi = dbi
        self.rowid_base = (<uint64_t>partition_id) << 48
        self._infos = {}

    # ------------------------------------------------------------------ helpers
    cdef _TableInfo info(self, schema):
        cdef _TableInfo inf
        if schema is self._last_schema:
            return self._last_info
        inf = self._infos.get(schema.table_id)
        if inf is None or inf.schema is not schema:
            inf = _TableInfo(schema)
            self._infos[inf.table_id] = inf
        self._last_schema = schema
        self._last_info = inf
        return inf

    cdef object cursor(self, txn):
        try:
            return txn.cursor(self.dbi)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    cdef object _st_error(self, exc):
        return StorageError(f"partition {self.partition_id}: {exc}")

    cdef bytes next_rowid(self, txn):
        v = txn.get(_META_ROWID_KEY, None, self.dbi)
        cdef uint64_t n = 0 if v is None else _read_u64(_as_bytes(v))
        n += 1
        if n >= (<uint64_t>1 << 48):
            raise StorageError(f"partition {self.partition_id}: row id counter exhausted")
        txn.put(_META_ROWID_KEY, _u64(n), True, True, False, self.dbi)
        return _u64(self.rowid_base | n)

    cdef int add_count(self, txn, _TableInfo inf, long long delta) except -1:
        """Add delta to the table's exact row counter.

        The counter is read and written in one LMDB call when the value this store last
        wrote is still there (the usual case): the guess last + delta is written with
        replace(), which returns the value it overwrote. Any other old value (an aborted
        transaction, another writer, a truncate) is corrected with a second put, so the
        stored count is always old + delta.
        """
        cdef long long n, guess
        cdef object v
        if delta == 0:
            return 0
        guess = inf.count_last + delta
        if inf.count_known and guess >= 0:
            v = txn.replace(inf.count_key, _u64(<uint64_t>guess), self.dbi)
            if v is None:
                n = 0
            else:
                try:
                    n = <long long>_read_u64(_as_bytes(v))
                except StorageError:
                    txn.put(inf.count_key, v, True, True, False, self.dbi)
                    raise
            if n == inf.count_last:
                inf.count_last = guess
                return 0
            if n + delta < 0:
                if v is None:
                    txn.delete(inf.count_key, _EMPTY, self.dbi)
                else:
                    txn.put(inf.count_key, v, True, True, False, self.dbi)
                raise StorageError(f"row counter of table {inf.table_id} went negative")
        else:
            v = txn.get(inf.count_key, None, self.dbi)
            n = 0 if v is None else <long long>_read_u64(_as_bytes(v))
            if n + delta < 0:
                raise StorageError(f"row counter of table {inf.table_id} went negative")
        n += delta
        txn.put(inf.count_key, _u64(<uint64_t>n), True, True, False, self.dbi)
        inf.count_last = n
        inf.count_known = True
        return 0

    cdef int _st_check_unique(self, txn, _TableInfo inf, _StKeys *k,
                              const unsigned char *own_tail, Py_ssize_t ntail,
                              _StKeys *old) except -1:
        """Raise ConstraintError if a unique index already holds one of k's keys for another row.

        own_tail[:ntail]: row key without table id of the row being updated (entries of that
        row do not conflict), or NULL. old: that row's current keys (unchanged keys need no
        check), or NULL.
        """
        cdef TupleSchema ts = inf.ts
        cdef Py_ssize_t i, npre, nk
        cdef const unsigned char *kp
        cdef bytes pre
        cdef object cur = None, keep
        for i in range(inf.nidx):
            if not ts._tp_idx_unique[i] or k.nulls[i]:
                continue
            if old != NULL and _st_same_ix(k, old, i):
                continue
            if i == inf.pk_index_pos and inf.pk_gives_token and own_tail == NULL:
                continue          # checked exactly through the row key
            npre = k.ends[i + 1] - k.ends[i]
            pre = PyBytes_FromStringAndSize(<char *>k.ix.data + k.ends[i], npre)
            if cur is None:
                cur = txn.cursor(self.dbi)
            if cur.set_range(pre):
                keep = _as_const_buffer(cur.key(), &kp, &nk)
                if _st_has_prefix(kp, nk, <const unsigned char *>PyBytes_AS_STRING(pre), npre):
                    if (own_tail == NULL or nk - npre != ntail
                            or memcmp(kp + npre, own_tail, ntail) != 0):
                        self.raise_conflict(inf, i)
        return 0

    cdef raise_conflict(self, _TableInfo inf, int pos):
        kind = "PRIMARY KEY" if pos == inf.pk_index_pos else "UNIQUE"
        raise ConstraintError(
            f"{kind} constraint violation: index {inf.idx_ids[pos]} of table {inf.table_id} "
            f"(partition {self.partition_id})")

    cdef int _st_put_entries(self, txn, _TableInfo inf, _StKeys *k, bytes rowkey) except -1:
        cdef Py_ssize_t i
        cdef RowBuf tmp
        rowbuf_init(&tmp)
        try:
            for i in range(inf.nidx):
                txn.put(_st_entry(k, i, <const unsigned char *>PyBytes_AS_STRING(rowkey) + 2,
                                  PyBytes_GET_SIZE(rowkey) - 2, &tmp),
                        _EMPTY, True, True, False, self.dbi)
        finally:
            rowbuf_free(&tmp)
        return 0

    cdef int _st_del_entries(self, txn, _TableInfo inf, _StKeys *k, bytes rowkey) except -1:
        cdef Py_ssize_t i
        cdef RowBuf tmp
        rowbuf_init(&tmp)
        try:
            for i in range(inf.nidx):
                txn.delete(_st_entry(k, i, <const unsigned char *>PyBytes_AS_STRING(rowkey) + 2,
                                     PyBytes_GET_SIZE(rowkey) - 2, &tmp),
                           _EMPTY, self.dbi)
        finally:
            rowbuf_free(&tmp)
        return 0

    cdef int _st_keys_of_value(self, _TableInfo inf, object val, _StKeys *k) except -1:
        """Keys of a stored row value (bytes or an LMDB buffer)."""
        cdef const unsigned char *p
        cdef Py_ssize_t n
        cdef object keep = _as_const_buffer(val, &p, &n)
        return _st_build(inf.ts, p, n, k, False)

    cdef object decode(self, _TableInfo inf, object val):
        cdef const unsigned char *p
        cdef Py_ssize_t n
        cdef object keep = _as_const_buffer(val, &p, &n)
        return inf.ts._decode_ptr(p, n)

    cdef bytes pk_row_key(self, txn, _TableInfo inf, pk_values):
        """Row key of the row with primary key pk_values, or None."""
        cdef RowBuf b
        cdef bytes pre
        cdef const unsigned char *kp
        cdef Py_ssize_t nk
        if not inf.has_pk:
            raise TypeMismatchError(f"table {inf.table_id} has no primary key")
        if inf.pk_gives_token:
            rowbuf_init(&b)
            try:
                inf.ts._tp_pk_key(&b, pk_values)
                return rowbuf_bytes(&b)
            finally:
                rowbuf_free(&b)
        pk_values = tuple(pk_values)
        if len(pk_values) != len(inf.pk_cols):
            raise TypeMismatchError(
                f"table {inf.table_id}: primary key has {len(inf.pk_cols)} columns, "
                f"{len(pk_values)} values given")
        if inf.pk_index_pos < 0:
            raise TypeMismatchError(f"table {inf.table_id} has no index on its primary key")
        pre = <bytes>inf.idx_prefix[inf.pk_index_pos] + inf.schema.encode_index_prefix(
            inf.pk_index_pos, pk_values)
        cur = txn.cursor(self.dbi)
        if cur.set_range(pre):
            keep = _as_const_buffer(cur.key(), &kp, &nk)
            if _st_has_prefix(kp, nk, <const unsigned char *>PyBytes_AS_STRING(pre), len(pre)):
                return inf.prefix + PyBytes_FromStringAndSize(<char *>kp + len(pre), nk - len(pre))
        return None

    cdef int check_rowkey(self, _TableInfo inf, bytes rowkey) except -1:
        if PyBytes_GET_SIZE(rowkey) < 6 or not rowkey.startswith(inf.prefix):
            raise ValueOutOfRangeError(f"row key {rowkey!r} is not a key of table {inf.table_id}")
        return 0

    # ------------------------------------------------------------------ writes
    # Every write encodes its row once and builds all keys from those bytes in C; the old
    # row of an update or delete is never decoded, its keys are built from its bytes too.

    cdef bytes _st_insert(self, txn, _TableInfo inf, object row, bint count):
        """Validate and write row with its index entries (counter too if count); its row key."""
        cdef RowBuf val
        cdef _StKeys k
        rowbuf_init(&val)
        _st_keys_init(&k, inf.nidx)
        try:
            inf.ts._encode_into(&val, row)
            _st_build(inf.ts, val.data, val.len, &k, False)
            return self._st_insert_built(txn, inf, &k, rowbuf_bytes(&val), count)
        finally:
            _st_keys_free(&k)
            rowbuf_free(&val)

    cdef bytes _st_insert_built(self, txn, _TableInfo inf, _StKeys *k, bytes vb, bint count):
        """Write the encoded row vb whose keys are k (checked first); its row key."""
        cdef bytes rk
        if inf.has_pk:
            rk = rowbuf_bytes(&k.key)
            try:
                self._st_check_unique(txn, inf, k, NULL, 0, NULL)
            except ConstraintError:
                # A duplicate primary key is the violation to report.
                if txn.get(rk, None, self.dbi) is not None:
                    self.raise_pk(inf)
                raise
            if not txn.put(rk, vb, True, False, False, self.dbi):
                self.raise_pk(inf)
        else:
            self._st_check_unique(txn, inf, k, NULL, 0, NULL)
            rowbuf_put(&k.key, PyBytes_AS_STRING(self.next_rowid(txn)), 8)
            rk = rowbuf_bytes(&k.key)
            if not txn.put(rk, vb, True, False, False, self.dbi):
                raise ConstraintError(f"row id already present in table {inf.table_id} "
                                      f"(partition {self.partition_id})")
        self._st_put_entries(txn, inf, k, rk)
        if count:
            self.add_count(txn, inf, 1)
        return rk

    cdef raise_pk(self, _TableInfo inf):
        where = f"index {inf.idx_ids[inf.pk_index_pos]} of " if inf.pk_index_pos >= 0 else ""
        raise ConstraintError(
            f"PRIMARY KEY constraint violation: {where}table {inf.table_id} "
            f"(partition {self.partition_id})")

    cdef bytes _st_insert_row(self, txn, _TableInfo inf, object row):
        """insert() without the Python call: LMDB errors become StorageError."""
        try:
            return self._st_insert(txn, inf, row, True)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc

    def insert(self, txn, schema, row):
        """Insert row; return its row key. ConstraintError on a duplicate PK/unique key."""
        return self._st_insert_row(txn, self.info(schema), row)

    def insert_many(self, txn, schema, rows):
        """Insert each row of rows (each checked as by insert); return the number inserted.

        If a row fails, the rows before it stay written (and counted).
        """
        cdef _TableInfo inf = self.info(schema)
        cdef long long n = 0
        try:
            try:
                for row in rows:
                    self._st_insert(txn, inf, row, False)
                    n += 1
            finally:
                if n:
                    self.add_count(txn, inf, n)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        return n

    cdef bytes _st_update(self, txn, _TableInfo inf, bytes rowkey, _StKeys *old, new_row):
        """Replace the row at rowkey (whose keys are old) by new_row; its new row key."""
        cdef RowBuf val
        cdef _StKeys k
        rowbuf_init(&val)
        _st_keys_init(&k, inf.nidx)
        try:
            inf.ts._encode_into(&val, new_row)
            _st_build(inf.ts, val.data, val.len, &k, False)
            return self._st_update_built(txn, inf, rowkey, old, &k, rowbuf_bytes(&val))
        finally:
            _st_keys_free(&k)
            rowbuf_free(&val)

    cdef bytes _st_update_built(self, txn, _TableInfo inf, bytes rowkey, _StKeys *old,
                                _StKeys *k, bytes vb):
        """Replace the row at rowkey (keys old) by the encoded row vb (keys k); its row key."""
        cdef RowBuf tmp
        cdef bytes new_key
        cdef Py_ssize_t i
        cdef const unsigned char *tail = <const unsigned char *>PyBytes_AS_STRING(rowkey) + 2
        cdef Py_ssize_t ntail = PyBytes_GET_SIZE(rowkey) - 2
        if not inf.has_pk:
            rowbuf_put(&k.key, PyBytes_AS_STRING(rowkey) + 6, PyBytes_GET_SIZE(rowkey) - 6)
        if k.key.len == ntail + 2 and memcmp(k.key.data, PyBytes_AS_STRING(rowkey), k.key.len) == 0:
            self._st_check_unique(txn, inf, k, tail, ntail, old)
            txn.put(rowkey, vb, True, True, False, self.dbi)
            rowbuf_init(&tmp)
            try:
                for i in range(inf.nidx):
                    if not _st_same_ix(k, old, i):
                        txn.delete(_st_entry(old, i, tail, ntail, &tmp), _EMPTY, self.dbi)
                        txn.put(_st_entry(k, i, tail, ntail, &tmp),
                                _EMPTY, True, True, False, self.dbi)
            finally:
                rowbuf_free(&tmp)
            return rowkey
        new_key = rowbuf_bytes(&k.key)
        if txn.get(new_key, None, self.dbi) is not None:
            self.raise_pk(inf)
        self._st_check_unique(txn, inf, k, tail, ntail, NULL)
        self._st_del_entries(txn, inf, old, rowkey)
        txn.delete(rowkey, _EMPTY, self.dbi)
        txn.put(new_key, vb, True, True, False, self.dbi)
        self._st_put_entries(txn, inf, k, new_key)
        return new_key

    cdef bytes _st_update_stored(self, txn, _TableInfo inf, bytes rowkey, object v, new_row):
        cdef _StKeys old
        _st_keys_init(&old, inf.nidx)
        try:
            self._st_keys_of_value(inf, v, &old)
            return self._st_update(txn, inf, rowkey, &old, new_row)
        finally:
            _st_keys_free(&old)

    cdef bytes _st_update_stored_built(self, txn, _TableInfo inf, bytes rowkey, object v,
                                       _StKeys *k, bytes vb):
        cdef _StKeys old
        _st_keys_init(&old, inf.nidx)
        try:
            self._st_keys_of_value(inf, v, &old)
            return self._st_update_built(txn, inf, rowkey, &old, k, vb)
        finally:
            _st_keys_free(&old)

    def update(self, txn, schema, rowkey, new_row):
        """Replace the row at rowkey by new_row; return its (possibly new) row key.

        Raises ConstraintError (nothing written) if new_row collides with another row;
        returns None (nothing written) if there is no row at rowkey.
        """
        cdef _TableInfo inf = self.info(schema)
        cdef bytes rk = _as_bytes(rowkey)
        self.check_rowkey(inf, rk)
        try:
            if inf.pk_only:
                return self._st_update_pk_only(txn, inf, rk, new_row)
            v = txn.get(rk, None, self.dbi)
            if v is None:
                return None
            return self._st_update_stored(txn, inf, rk, v, new_row)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc

    cdef object _st_update_pk_only(self, txn, _TableInfo inf, bytes rk, new_row):
        """update() of a table whose only index is its primary key's."""
        cdef RowBuf val
        cdef _StKeys k
        cdef bytes vb
        rowbuf_init(&val)
        _st_keys_init(&k, inf.nidx)
        try:
            try:
                inf.ts._encode_into(&val, new_row)
            except VoltError:
                # No row at rk: nothing to update, whatever new_row holds.
                if txn.get(rk, None, self.dbi) is None:
                    return None
                raise
            _st_build(inf.ts, val.data, val.len, &k, False)
            vb = rowbuf_bytes(&val)
            if k.key.len == PyBytes_GET_SIZE(rk) and memcmp(k.key.data, PyBytes_AS_STRING(rk),
                                                            k.key.len) == 0:
                # Same primary key: every key stays, so write first and learn from the
                # old value (one B-tree descent) whether there was a row to update.
                if txn.replace(rk, vb, self.dbi) is None:
                    txn.delete(rk, _EMPTY, self.dbi)
                    return None
                return rk
            v = txn.get(rk, None, self.dbi)
            if v is None:
                return None
            return self._st_update_stored_built(txn, inf, rk, v, &k, vb)
        finally:
            _st_keys_free(&k)
            rowbuf_free(&val)

    cdef bytes _st_upsert(self, txn, _TableInfo inf, object row):
        """upsert() without the Python call: LMDB errors become StorageError."""
        cdef RowBuf val
        cdef _StKeys k
        cdef bytes rowkey, vb
        if not inf.has_pk:
            raise TypeMismatchError(f"UPSERT needs a primary key; table {inf.table_id} has none")
        rowbuf_init(&val)
        _st_keys_init(&k, inf.nidx)
        try:
            inf.ts._encode_into(&val, row)
            _st_build(inf.ts, val.data, val.len, &k, False)
            rowkey = rowbuf_bytes(&k.key)
            vb = rowbuf_bytes(&val)
            if inf.pk_only:
                # The only index is the primary key's: an existing row keeps every key, and
                # a new one can only collide on its row key. So write first and learn from
                # the old value (one B-tree descent) whether this was an insert.
                if txn.replace(rowkey, vb, self.dbi) is None:
                    self._st_put_entries(txn, inf, &k, rowkey)
                    self.add_count(txn, inf, 1)
                return rowkey
            v = txn.get(rowkey, None, self.dbi)
            if v is None:
                if not inf.pk_gives_token and inf.pk_index_pos >= 0:
                    # Same PK under another token: update that row (key changes).
                    old_key = self.pk_row_key(txn, inf, _st_pk_values(inf, row))
                    if old_key is not None:
                        v = txn.get(old_key, None, self.dbi)
                        return self._st_update_stored_built(txn, inf, old_key, v, &k, vb)
                return self._st_insert_built(txn, inf, &k, vb, True)
            return self._st_update_stored_built(txn, inf, rowkey, v, &k, vb)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        finally:
            _st_keys_free(&k)
            rowbuf_free(&val)

    def upsert(self, txn, schema, row):
        """Update the row with row's primary key, or insert row; return the row key."""
        return self._st_upsert(txn, self.info(schema), row)

    cdef bint _st_delete_popped(self, txn, _TableInfo inf, bytes rowkey, object v) except -1:
        """Finish deleting the row whose value v was just popped from rowkey: entries, count.

        If v's keys cannot be built, v is put back before the error propagates.
        """
        cdef _StKeys k
        _st_keys_init(&k, inf.nidx)
        try:
            try:
                self._st_keys_of_value(inf, v, &k)
            except BaseException:
                txn.put(rowkey, v, True, True, False, self.dbi)
                raise
            self._st_del_entries(txn, inf, &k, rowkey)
        finally:
            _st_keys_free(&k)
        self.add_count(txn, inf, -1)
        return True

    cdef object _delete(self, txn, _TableInfo inf, bytes rowkey):
        # pop: one B-tree descent finds, returns and removes the row.
        v = txn.pop(rowkey, self.dbi)
        if v is None:
            return None
        try:
            old = self.decode(inf, v)
        except BaseException:
            txn.put(rowkey, v, True, True, False, self.dbi)
            raise
        self._st_delete_popped(txn, inf, rowkey, v)
        return old

    cdef bint _st_delete_pk(self, txn, _TableInfo inf, pk_values) except -1:
        """Delete the row with primary key pk_values without decoding it; whether one was."""
        try:
            rk = self.pk_row_key(txn, inf, pk_values)
            if rk is None:
                return False
            v = txn.pop(rk, self.dbi)
            if v is None:
                return False
            return self._st_delete_popped(txn, inf, <bytes>rk, v)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc

    def delete(self, txn, schema, rowkey):
        """Delete the row at rowkey with its index entries; return it (None if absent)."""
        cdef _TableInfo inf = self.info(schema)
        cdef bytes rk = _as_bytes(rowkey)
        self.check_rowkey(inf, rk)
        try:
            return self._delete(txn, inf, rk)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc

    def truncate(self, txn, schema):
        """Delete every row of the table and its index entries; return the number deleted."""
        cdef _TableInfo inf = self.info(schema)
        cdef long long n
        cdef int i
        try:
            cur = self.cursor(txn)
            n = _delete_prefix(cur, inf.prefix)
            for i in range(inf.nidx):
                _delete_prefix(cur, inf.idx_prefix[i])
            if cur.set_key(inf.count_key):
                cur.delete()
            return n
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc

    # ------------------------------------------------------------------ reads
    cdef object _st_get(self, txn, _TableInfo inf, pk_values):
        """get() without the Python call."""
        cdef const unsigned char *p
        cdef Py_ssize_t n
        try:
            rk = self.pk_row_key(txn, inf, pk_values)
            if rk is None:
                return None
            v = txn.get(rk, None, self.dbi)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        if v is None:
            return None
        if PyBytes_CheckExact(v):
            return inf.ts._decode_ptr(<const unsigned char *>PyBytes_AS_STRING(v),
                                      PyBytes_GET_SIZE(v))
        keep = _as_const_buffer(v, &p, &n)
        return inf.ts._decode_ptr(p, n)

    def get(self, txn, schema, pk_values):
        """The row with primary key pk_values (a tuple in PK column order), or None."""
        return self._st_get(txn, self.info(schema), pk_values)

    def get_key(self, txn, schema, pk_values):
        """(rowkey, row) of the row with primary key pk_values, or None."""
        cdef _TableInfo inf = self.info(schema)
        try:
            rk = self.pk_row_key(txn, inf, pk_values)
            if rk is None:
                return None
            v = txn.get(rk, None, self.dbi)
            return None if v is None else (rk, self.decode(inf, v))
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc

    def get_by_rowkey(self, txn, schema, rowkey):
        """The row at rowkey, or None."""
        cdef _TableInfo inf = self.info(schema)
        cdef bytes rk = _as_bytes(rowkey)
        self.check_rowkey(inf, rk)
        try:
            v = txn.get(rk, None, self.dbi)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        return None if v is None else self.decode(inf, v)

    def count(self, txn, schema):
        """Number of rows of the table (an exact counter kept by every write path)."""
        cdef _TableInfo inf = self.info(schema)
        try:
            v = txn.get(inf.count_key, None, self.dbi)
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        return 0 if v is None else <long long>_read_u64(_as_bytes(v))

    cpdef long long scan_count(self, txn, schema) except -1:
        """Number of rows of the table, counted by walking its row keys (count() reads a counter)."""
        cdef _TableInfo inf = self.info(schema)
        cdef long long n = 0
        cdef const unsigned char *kp
        cdef Py_ssize_t nk
        cdef unsigned char pre[2]
        pre[0] = (inf.table_id >> 8) & 0xFF
        pre[1] = inf.table_id & 0xFF
        try:
            cur = txn.cursor(self.dbi)
            if not cur.set_range(inf.prefix):
                return 0
            for k in cur.iternext(True, False):
                if PyBytes_CheckExact(k):
                    kp = <const unsigned char *>PyBytes_AS_STRING(k)
                    nk = PyBytes_GET_SIZE(k)
                else:
                    keep = _as_const_buffer(k, &kp, &nk)
                if nk < 2 or kp[0] != pre[0] or kp[1] != pre[1]:
                    break
                n += 1
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        return n

    cpdef object scan_aggregate(self, txn, schema, int column, str op):
        """COUNT, SUM, MIN or MAX (op) of one column over the table's rows, NULLs skipped.

        Decodes only that column from each row. COUNT gives an int; SUM/MIN/MAX give a
        value of the column's type (SUM of integers: an exact int; of DECIMAL: an exact
        Decimal), or None when no row has a non-NULL value. SUM needs a numeric column.
        """
        cdef _TableInfo inf = self.info(schema)
        cdef TupleSchema ts = inf.ts
        cdef _StAgg agg
        cdef long long expect, seen = 0
        cdef const unsigned char *p
        cdef Py_ssize_t n
        if not 0 <= column < ts.ncols:
            raise ValueOutOfRangeError(f"table {inf.table_id} has no column {column}")
        agg = _StAgg(ts, column, op)
        try:
            v = txn.get(inf.count_key, None, self.dbi)
            expect = 0 if v is None else <long long>_read_u64(_as_bytes(v))
            if expect == 0:
                return agg.result()
            cur = txn.cursor(self.dbi)
            if not cur.set_range(inf.prefix):
                raise StorageError(f"row counter of table {inf.table_id} disagrees with its rows")
            # The table's rows are exactly the next `expect` values (the counter is exact),
            # so values alone are read; both ends are checked against the table prefix.
            for v in cur.iternext(False, True):
                if PyBytes_CheckExact(v):
                    p = <const unsigned char *>PyBytes_AS_STRING(v)
                    n = PyBytes_GET_SIZE(v)
                else:
                    keep = _as_const_buffer(v, &p, &n)
                try:
                    agg.add(p, n)
                except CodecError:
                    if not _st_key_in(cur.key(), inf.prefix):
                        raise StorageError(
                            f"row counter of table {inf.table_id} disagrees with its rows") from None
                    raise
                seen += 1
                if seen == expect:
                    break
            if seen != expect or not _st_key_in(cur.key(), inf.prefix) or (
                    cur.next() and _st_key_in(cur.key(), inf.prefix)):
                raise StorageError(f"row counter of table {inf.table_id} disagrees with its rows")
        except _lmdb.Error as exc:
            raise self._st_error(exc) from exc
        return agg.result()

    def scan(self, txn, schema):
        """Iterator of (rowkey, row) of the table in key order (token, then primary key)."""
        cdef _TableInfo inf = self.info(schema)
        return _RowIter(self, txn, inf, inf.prefix, _succ(inf.prefix), False, -1)

    def scan_tokens(self, txn, schema, int token_lo, int token_hi):
        """Iterator of (rowkey, row) of the rows whose token is in [token_lo, token_hi]."""
        cdef _TableInfo inf = self.info(schema)
        lo = inf.prefix + _token_bytes(token_lo)
        hi = _succ(inf.prefix + _token_bytes(token_hi))
        return _RowIter(self, txn, inf, lo, hi, False, -1)

    def index_scan(self, txn, schema, int index_id, lo=None, bint lo_inclusive=True, hi=None,
                   bint hi_inclusive=True, bint reverse=False):
        """Iterator of (rowkey, row) in index order between bounds on a prefix of the columns.

        lo/hi: tuples of values for the first len(lo)/len(hi) index columns, or None for no
        bound. Equality on a prefix: lo == hi, both inclusive.
        """
        cdef _TableInfo inf = self.info(schema)
        cdef int pos = inf.index_pos(index_id)
        cdef bytes ipre = inf.idx_prefix[pos]
        if lo is None or len(lo) == 0:
            start = ipre
        else:
            start = ipre + inf.schema.encode_index_prefix(pos, tuple(lo))
            if not lo_inclusive:
                start = _succ(start)
        if hi is None or len(hi) == 0:
            end = _succ(ipre)
        else:
            end = ipre + inf.schema.encode_index_prefix(pos, tuple(hi))
            if hi_inclusive:
                end = _succ(end)
        if start is None or (end is not None and start >= end):
            return iter(())
        return _RowIter(self, txn, inf, start, end, reverse, pos)


cdef bint _st_key_in(object key, bytes prefix) except -1:
    """key (bytes or an LMDB buffer) starts with prefix."""
    cdef const unsigned char *kp
    cdef Py_ssize_t nk
    cdef object keep = _as_const_buffer(key, &kp, &nk)
    return _st_has_prefix(kp, nk, <const unsigned char *>PyBytes_AS_STRING(prefix),
                          PyBytes_GET_SIZE(prefix))


DEF _ST_COUNT = 0
DEF _ST_SUM = 1
DEF _ST_MIN = 2
DEF _ST_MAX = 3


cdef class _StAgg:
    """Running COUNT/SUM/MIN/MAX of one column, fed with encoded rows."""
    cdef TupleSchema ts
    cdef int col, op, vtype
    cdef long long n              # non-NULL values seen
    cdef int64_t isum             # SUM of integers: isum + big
    cdef object big
    cdef int64_t ibest
    cdef double dsum, dbest
    cdef int64_t hbest            # DECIMAL MIN/MAX: high and low halves
    cdef uint64_t lbest
    cdef RowBuf vbest             # VARCHAR/VARBINARY MIN/MAX bytes

    def __cinit__(self, TupleSchema ts, int col, str op):
        rowbuf_init(&self.vbest)
        self.ts = ts
        self.col = col
        self.vtype = ts._cols[col].vtype
        self.big = 0
        op_u = op.upper() if op is not None else None
        if op_u == "COUNT":
            self.op = _ST_COUNT
        elif op_u == "SUM":
            self.op = _ST_SUM
            if not (self.vtype == _T_TINYINT or self.vtype == _T_SMALLINT or self.vtype == _T_INTEGER
                    or self.vtype == _T_BIGINT or self.vtype == _T_FLOAT or self.vtype == _T_DECIMAL):
                raise TypeMismatchError(f"SUM of a {_type_name(self.vtype)} column")
        elif op_u == "MIN":
            self.op = _ST_MIN
        elif op_u == "MAX":
            self.op = _ST_MAX
        else:
            raise ValueOutOfRangeError(f"aggregate must be COUNT, SUM, MIN or MAX, not {op!r}")

    def __dealloc__(self):
        rowbuf_free(&self.vbest)

    cdef int add(self, const unsigned char *p, Py_ssize_t n) except -1:
        cdef _TpFields f
        cdef Py_ssize_t off, ln, m
        cdef int64_t x, h
        cdef uint64_t l
        cdef _F64Bits fb
        cdef int c, vt = self.vtype
        _tp_fields_init(&f, self.ts.ncols)
        try:
            self.ts._tp_split(p, n, &f, False)
            off = f.off[self.col]
            ln = f.len[self.col]
        finally:
            _tp_fields_free(&f)
        if off < 0:
            return 0
        self.n += 1
        if self.op == _ST_COUNT:
            return 0
        p += off
        if _is_int_type(vt):
            x = _tp_int_at(p, self.ts._cols[self.col].width)
            if self.op == _ST_SUM:
                if (x > 0 and self.isum > INT64_MAX - x) or (x < 0 and self.isum < INT64_MIN - x):
                    self.big += self.isum
                    self.isum = 0
                self.isum += x
            elif self.n == 1 or (x < self.ibest if self.op == _ST_MIN else x > self.ibest):
                self.ibest = x
        elif vt == _T_FLOAT:
            fb.u = _load_le(p, 8)
            if self.op == _ST_SUM:
                self.dsum += fb.d
            elif self.n == 1 or (fb.d < self.dbest if self.op == _ST_MIN else fb.d > self.dbest):
                self.dbest = fb.d
        elif vt == _T_DECIMAL:
            l = _load_le(p, 8)
            h = <int64_t>_load_le(p + 8, 8)
            if self.op == _ST_SUM:
                self.big += ((<object>h) << 64) | (<object>l)
            elif self.n == 1 or (
                    (h < self.hbest or (h == self.hbest and l < self.lbest)) if self.op == _ST_MIN
                    else (h > self.hbest or (h == self.hbest and l > self.lbest))):
                self.hbest = h
                self.lbest = l
        else:
            if self.n > 1:
                m = ln if ln < self.vbest.len else self.vbest.len
                c = memcmp(p, self.vbest.data, m)
                if c == 0:
                    c = (ln > self.vbest.len) - (ln < self.vbest.len)
                if (c >= 0) if self.op == _ST_MIN else (c <= 0):
                    return 0
            self.vbest.len = 0
            rowbuf_put(&self.vbest, p, ln)
        return 0

    cdef object result(self):
        cdef int vt = self.vtype
        if self.op == _ST_COUNT:
            return self.n
        if self.n == 0:
            return None
        if _is_int_type(vt):
            return self.big + self.isum if self.op == _ST_SUM else self.ibest
        if vt == _T_FLOAT:
            return self.dsum if self.op == _ST_SUM else self.dbest
        if vt == _T_DECIMAL:
            if self.op == _ST_SUM:
                return _Decimal(self.big).scaleb(-12, _DEC_CTX)
            return _decimal_from_halves(self.hbest, self.lbest)
        if vt == _T_VARBINARY:
            return rowbuf_bytes(&self.vbest)
        try:
            return PyUnicode_DecodeUTF8(<char *>self.vbest.data, self.vbest.len, "strict")
        except UnicodeDecodeError:
            raise CodecError(f"row of table {self.ts.table_id}: a VARCHAR is not valid UTF-8") from None


cdef long long _delete_prefix(cur, bytes prefix) except -1:
    """Delete every key starting with prefix; return how many."""
    cdef long long n = 0
    if not cur.set_range(prefix):
        return 0
    while True:
        k = cur.key()
        if not _as_bytes(k).startswith(prefix):
            break
        if not cur.delete():
            break
        n += 1
        if not cur.key():       # deleted the last key of the DB
            break
    return n


cdef Py_ssize_t _st_skip_key(TupleSchema ts, Py_ssize_t index_pos, const unsigned char *p,
                             Py_ssize_t n, Py_ssize_t off) except -1:
    """Offset just past the index key (of the index at index_pos) that starts at p[off]."""
    cdef int k, vt
    for k in range(ts._idx_off[index_pos], ts._idx_off[index_pos + 1]):
        vt = ts._cols[ts._idx_pos[k]].vtype
        if off >= n:
            raise CodecError("index entry shorter than its key")
        if p[off] == 0x00:
            off += 1
            continue
        if p[off] != 0x01:
            raise CodecError("bad tag byte in an index key")
        off += 1
        if vt == _T_DECIMAL:
            off += 16
        elif vt == _T_STRING or vt == _T_VARBINARY:
            while True:
                if off + 1 >= n:
                    raise CodecError("unterminated string in an index key")
                if p[off] == 0x00:
                    off += 2
                    if p[off - 1] == 0x00:
                        break
                else:
                    off += 1
        else:
            off += 8
    if off > n:
        raise CodecError("index entry shorter than its key")
    return off


cdef class _RowIter:
    """(rowkey, row) over [start, end) of the table rows or of one index, either direction."""
    cdef PartitionStore store
    cdef object txn
    cdef object cur
    cdef object it
    cdef _TableInfo inf
    cdef TupleSchema ts
    cdef bytes start
    cdef object end
    cdef bint reverse
    cdef int pos
    cdef bint done

    def __cinit__(self, PartitionStore store, txn, _TableInfo inf, bytes start, end,
                  bint reverse, int pos):
        self.store = store
        self.txn = txn
        self.inf = inf
        self.ts = inf.ts
        self.start = start
        self.end = end
        self.reverse = reverse
        self.pos = pos
        self.done = False
        try:
            self.cur = txn.cursor(store.dbi)
            if not reverse:
                if self.cur.set_range(start):
                    self.it = self.cur.iternext(True, pos < 0)
                else:
                    self.done = True
            else:
                if end is None:
                    ok = self.cur.last()
                elif self.cur.set_range(end):
                    ok = self.cur.prev()
                else:
                    ok = self.cur.last()
                if ok:
                    self.it = self.cur.iterprev(True, pos < 0)
                else:
                    self.done = True
        except _lmdb.Error as exc:
            raise store._st_error(exc) from exc

    def __iter__(self):
        return self

    def __next__(self):
        cdef const unsigned char *kp
        cdef const unsigned char *vp
        cdef const unsigned char *bp
        cdef Py_ssize_t nk, nv, nb, off, m
        cdef object k, v, kv, keep
        cdef bytes kb, rk
        cdef int c
        if self.done:
            raise StopIteration
        try:
            item = next(self.it, None)
            if item is None:
                self.done = True
                raise StopIteration
            if self.pos < 0:
                k = <object>PyTuple_GET_ITEM(item, 0)
                v = <object>PyTuple_GET_ITEM(item, 1)
            else:
                k = item
            kb = <bytes>k if PyBytes_CheckExact(k) else bytes(k)
            kp = <const unsigned char *>PyBytes_AS_STRING(kb)
            nk = PyBytes_GET_SIZE(kb)
            # Range check with memcmp (bytes order == LMDB's default key order).
            if self.reverse:
                bp = <const unsigned char *>PyBytes_AS_STRING(self.start)
                nb = PyBytes_GET_SIZE(self.start)
                m = nk if nk < nb else nb
                c = memcmp(kp, bp, m)
                if c < 0 or (c == 0 and nk < nb):
                    self.done = True
                    raise StopIteration
            elif self.end is not None:
                bp = <const unsigned char *>PyBytes_AS_STRING(<bytes>self.end)
                nb = PyBytes_GET_SIZE(<bytes>self.end)
                m = nk if nk < nb else nb
                c = memcmp(kp, bp, m)
                if c > 0 or (c == 0 and nk >= nb):
                    self.done = True
                    raise StopIteration
            if self.pos < 0:
                if PyBytes_CheckExact(v):
                    return (kb, self.ts._decode_ptr(<const unsigned char *>PyBytes_AS_STRING(v),
                                                    PyBytes_GET_SIZE(v)))
                keep = _as_const_buffer(v, &vp, &nv)
                return (kb, self.ts._decode_ptr(vp, nv))
            off = _st_skip_key(self.ts, self.pos, kp, nk, 2)
            rk = self.inf.prefix + PyBytes_FromStringAndSize(<char *>kp + off, nk - off)
            v = self.txn.get(rk, None, self.store.dbi)
            if v is None:
                raise StorageError(
                    f"index {self.inf.idx_ids[self.pos]} of table {self.inf.table_id} "
                    f"points at a missing row")
            keep = _as_const_buffer(v, &vp, &nv)
            return (rk, self.ts._decode_ptr(vp, nv))
        except _lmdb.Error as exc:
            self.done = True
            raise self.store._st_error(exc) from exc

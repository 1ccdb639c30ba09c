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

import lmdb as _lmdb

DEF _META_ID = 0xFFFF
DEF _SCAN_BATCH = 256

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


cdef Py_ssize_t _skip_key_values(bytes key, Py_ssize_t off, list col_types) except -1:
    """Offset just past the memcomparable encodings of len(col_types) values at key[off:]."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(key)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key)
    cdef int vt
    for t in col_types:
        vt = t
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
                    if p[off + 1] == 0x00:
                        off += 2
                        break
                    off += 2          # escaped 0x00 0xFF
                else:
                    off += 1
        else:
            off += 8
    if off > n:
        raise CodecError("index entry shorter than its key")
    return off


cdef class _TableInfo:
    """What the store derives once from a TupleSchema (prefixes, index layout)."""
    cdef readonly object schema
    cdef readonly int table_id
    cdef readonly bytes prefix            # u16 table id
    cdef readonly bytes count_key
    cdef readonly bint has_pk
    cdef readonly bint pk_gives_token     # the row key can be built from the PK values
    cdef readonly int pk_index_pos        # position of the PK's index in indexes, or -1
    cdef readonly int ncols
    cdef readonly list pk_cols
    cdef readonly list idx_prefix         # per index: u16 index id bytes
    cdef readonly list idx_ids
    cdef readonly list idx_unique
    cdef readonly list idx_types          # per index: list of column type codes
    cdef readonly int nidx

    def __init__(self, schema):
        cdef int i
        self.schema = schema
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

    cdef int index_pos(self, int index_id) except -2:
        cdef int i
        for i in range(self.nidx):
            if self.idx_ids[i] == index_id:
                return i
        raise ValueOutOfRangeError(f"table {self.table_id} has no index {index_id}")


cdef class PartitionStore:
    """Tables and indexes of one partition (or of the replicated tables) in one named DB.

    Every method takes the py-lmdb Transaction first; rows are tuples of internal values.
    Failed writes raise before anything is written.
    """
    cdef readonly int partition_id
    cdef readonly object dbi
    cdef uint64_t rowid_base
    cdef dict _infos

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
        cdef _TableInfo inf = self._infos.get(schema.table_id)
        if inf is None or inf.schema is not schema:
            inf = _TableInfo(schema)
            self._infos[inf.table_id] = inf
        return inf

    cdef object cursor(self, txn):
        try:
            return txn.cursor(db=self.dbi)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    cdef bytes row_key(self, _TableInfo inf, row, object rowid):
        """Row key of row; rowid (bytes) is used for tables without a primary key."""
        cdef int32_t token = inf.schema.row_token(row)
        if inf.has_pk:
            return inf.prefix + _token_bytes(token) + inf.schema.pk_suffix(row)
        return inf.prefix + _token_bytes(token) + rowid

    cdef bytes next_rowid(self, cur):
        v = cur.get(_META_ROWID_KEY)
        cdef uint64_t n = 0 if v is None else _read_u64(_as_bytes(v))
        n += 1
        if n >= (<uint64_t>1 << 48):
            raise StorageError(f"partition {self.partition_id}: row id counter exhausted")
        cur.put(_META_ROWID_KEY, _u64(n))
        return _u64(self.rowid_base | n)

    cdef int add_count(self, cur, _TableInfo inf, long long delta) except -1:
        if delta == 0:
            return 0
        v = cur.get(inf.count_key)
        cdef long long n = 0 if v is None else <long long>_read_u64(_as_bytes(v))
        n += delta
        if n < 0:
            raise StorageError(f"row counter of table {inf.table_id} went negative")
        cur.put(inf.count_key, _u64(<uint64_t>n))
        return 0

    cdef list index_keys(self, _TableInfo inf, row):
        """[(index key bytes, has_null)] of row for each index of the table."""
        cdef int i
        cdef list out = []
        sch = inf.schema
        for i in range(inf.nidx):
            out.append(sch.index_key(i, row))
        return out

    cdef int check_unique(self, cur, _TableInfo inf, list ikeys, bytes own_tail,
                          list old_ikeys) except -1:
        """Raise ConstraintError if a unique index already holds one of ikeys for another row.

        own_tail: row key without table id of the row being updated (entries of that row do
        not conflict), or None. old_ikeys: that row's current index keys (unchanged keys
        need no check), or None.
        """
        cdef int i
        cdef bytes ik, pre, k
        for i in range(inf.nidx):
            if not inf.idx_unique[i]:
                continue
            ik, has_null = ikeys[i]
            if has_null:
                continue
            if old_ikeys is not None and old_ikeys[i][0] == ik:
                continue
            if i == inf.pk_index_pos and inf.pk_gives_token and own_tail is None:
                continue          # checked exactly through the row key
            pre = <bytes>inf.idx_prefix[i] + ik
            if cur.set_range(pre):
                k = _as_bytes(cur.key())
                if k.startswith(pre) and (own_tail is None or k[len(pre):] != own_tail):
                    self.raise_conflict(inf, i)
        return 0

    cdef raise_conflict(self, _TableInfo inf, int pos):
        kind = "PRIMARY KEY" if pos == inf.pk_index_pos else "UNIQUE"
        raise ConstraintError(
            f"{kind} constraint violation: index {inf.idx_ids[pos]} of table {inf.table_id} "
            f"(partition {self.partition_id})")

    cdef int put_index_entries(self, cur, _TableInfo inf, list ikeys, bytes tail) except -1:
        cdef int i
        for i in range(inf.nidx):
            cur.put(<bytes>inf.idx_prefix[i] + <bytes>ikeys[i][0] + tail, _EMPTY)
        return 0

    cdef int del_index_entries(self, cur, _TableInfo inf, list ikeys, bytes tail) except -1:
        cdef int i
        cdef bytes k
        for i in range(inf.nidx):
            k = <bytes>inf.idx_prefix[i] + <bytes>ikeys[i][0] + tail
            if cur.set_key(k):
                cur.delete()
        return 0

    cdef object decode(self, _TableInfo inf, object val):
        return inf.schema.decode_row(val)

    cdef bytes pk_row_key(self, cur, _TableInfo inf, pk_values):
        """Row key of the row with primary key pk_values, or None."""
        cdef list fake
        cdef int i
        cdef bytes pre, k
        if not inf.has_pk:
            raise TypeMismatchError(f"table {inf.table_id} has no primary key")
        pk_values = tuple(pk_values)
        if len(pk_values) != len(inf.pk_cols):
            raise TypeMismatchError(
                f"table {inf.table_id}: primary key has {len(inf.pk_cols)} columns, "
                f"{len(pk_values)} values given")
        if inf.pk_gives_token:
            fake = [None] * inf.ncols
            for i in range(len(inf.pk_cols)):
                fake[inf.pk_cols[i]] = pk_values[i]
            return (inf.prefix + _token_bytes(inf.schema.row_token(tuple(fake)))
                    + inf.schema.encode_pk(pk_values))
        if inf.pk_index_pos < 0:
            raise TypeMismatchError(f"table {inf.table_id} has no index on its primary key")
        pre = <bytes>inf.idx_prefix[inf.pk_index_pos] + inf.schema.encode_index_prefix(
            inf.pk_index_pos, pk_values)
        if cur.set_range(pre):
            k = _as_bytes(cur.key())
            if k.startswith(pre):
                return inf.prefix + k[len(pre):]
        return None

    cdef int check_rowkey(self, _TableInfo inf, bytes rowkey) except -1:
        if PyBytes_GET_SIZE(rowkey) < 6 or not rowkey.startswith(inf.prefix):
            raise ValueOutOfRangeError(f"row key {rowkey!r} is not a key of table {inf.table_id}")
        return 0

    # ------------------------------------------------------------------ writes
    cdef bytes _insert(self, cur, _TableInfo inf, row, bint check):
        cdef bytes val = inf.schema.encode_row(row)
        cdef list ikeys = self.index_keys(inf, row)
        cdef bytes rowkey
        if inf.has_pk:
            rowkey = self.row_key(inf, row, None)
            if check and cur.get(rowkey) is not None:
                self.raise_pk(inf)
            if check:
                self.check_unique(cur, inf, ikeys, None, None)
        else:
            if check:
                self.check_unique(cur, inf, ikeys, None, None)
            rowkey = self.row_key(inf, row, self.next_rowid(cur))
        cur.put(rowkey, val)
        self.put_index_entries(cur, inf, ikeys, rowkey[2:])
        self.add_count(cur, inf, 1)
        return rowkey

    cdef raise_pk(self, _TableInfo inf):
        where = f"index {inf.idx_ids[inf.pk_index_pos]} of " if inf.pk_index_pos >= 0 else ""
        raise ConstraintError(
            f"PRIMARY KEY constraint violation: {where}table {inf.table_id} "
            f"(partition {self.partition_id})")

    def insert(self, txn, schema, row):
        """Insert row; return its row key. ConstraintError on a duplicate PK/unique key."""
        cdef _TableInfo inf = self.info(schema)
        try:
            return self._insert(self.cursor(txn), inf, row, True)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    def insert_many(self, txn, schema, rows):
        """Insert each row of rows (each checked as by insert); return the number inserted."""
        cdef _TableInfo inf = self.info(schema)
        cdef long long n = 0
        try:
            cur = self.cursor(txn)
            for row in rows:
                self._insert(cur, inf, row, True)
                n += 1
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc
        return n

    cdef bytes _update(self, cur, _TableInfo inf, bytes rowkey, old_row, new_row):
        cdef bytes val = inf.schema.encode_row(new_row)
        cdef list old_ikeys = self.index_keys(inf, old_row)
        cdef list new_ikeys = self.index_keys(inf, new_row)
        cdef bytes old_tail = rowkey[2:]
        cdef bytes new_key
        cdef int i
        if inf.has_pk:
            new_key = self.row_key(inf, new_row, None)
        else:
            new_key = self.row_key(inf, new_row, rowkey[6:])
        if new_key == rowkey:
            self.check_unique(cur, inf, new_ikeys, old_tail, old_ikeys)
            cur.put(rowkey, val)
            for i in range(inf.nidx):
                if old_ikeys[i][0] != new_ikeys[i][0]:
                    if cur.set_key(<bytes>inf.idx_prefix[i] + <bytes>old_ikeys[i][0] + old_tail):
                        cur.delete()
                    cur.put(<bytes>inf.idx_prefix[i] + <bytes>new_ikeys[i][0] + old_tail, _EMPTY)
            return rowkey
        if cur.get(new_key) is not None:
            self.raise_pk(inf)
        self.check_unique(cur, inf, new_ikeys, old_tail, None)
        self.del_index_entries(cur, inf, old_ikeys, old_tail)
        if cur.set_key(rowkey):
            cur.delete()
        cur.put(new_key, val)
        self.put_index_entries(cur, inf, new_ikeys, new_key[2:])
        return new_key

    def update(self, txn, schema, rowkey, new_row):
        """Replace the row at rowkey by new_row; return its (possibly new) row key.

        Raises ConstraintError (nothing written) if new_row collides with another row;
        returns None (nothing written) if there is no row at rowkey.
        """
        cdef _TableInfo inf = self.info(schema)
        cdef bytes rk = _as_bytes(rowkey)
        self.check_rowkey(inf, rk)
        try:
            cur = self.cursor(txn)
            v = cur.get(rk)
            if v is None:
                return None
            return self._update(cur, inf, rk, self.decode(inf, v), new_row)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    def upsert(self, txn, schema, row):
        """Update the row with row's primary key, or insert row; return the row key."""
        cdef _TableInfo inf = self.info(schema)
        if not inf.has_pk:
            raise TypeMismatchError(f"UPSERT needs a primary key; table {inf.table_id} has none")
        try:
            cur = self.cursor(txn)
            rowkey = self.row_key(inf, row, None)
            v = cur.get(rowkey)
            if v is None:
                if not inf.pk_gives_token and inf.pk_index_pos >= 0:
                    # Same PK under another token: update that row (key changes).
                    old_key = self.pk_row_key(cur, inf, tuple(row[c] for c in inf.pk_cols))
                    if old_key is not None:
                        v = cur.get(old_key)
                        return self._update(cur, inf, old_key, self.decode(inf, v), row)
                return self._insert(cur, inf, row, True)
            return self._update(cur, inf, rowkey, self.decode(inf, v), row)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    cdef object _delete(self, cur, _TableInfo inf, bytes rowkey):
        v = cur.get(rowkey)
        if v is None:
            return None
        old = self.decode(inf, v)
        self.del_index_entries(cur, inf, self.index_keys(inf, old), rowkey[2:])
        if cur.set_key(rowkey):
            cur.delete()
        self.add_count(cur, inf, -1)
        return old

    def delete(self, txn, schema, rowkey):
        """Delete the row at rowkey with its index entries; return it (None if absent)."""
        cdef _TableInfo inf = self.info(schema)
        cdef bytes rk = _as_bytes(rowkey)
        self.check_rowkey(inf, rk)
        try:
            return self._delete(self.cursor(txn), inf, rk)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

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
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    # ------------------------------------------------------------------ reads
    def get(self, txn, schema, pk_values):
        """The row with primary key pk_values (a tuple in PK column order), or None."""
        cdef _TableInfo inf = self.info(schema)
        try:
            cur = self.cursor(txn)
            rk = self.pk_row_key(cur, inf, pk_values)
            if rk is None:
                return None
            v = cur.get(rk)
            return None if v is None else self.decode(inf, v)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    def get_key(self, txn, schema, pk_values):
        """(rowkey, row) of the row with primary key pk_values, or None."""
        cdef _TableInfo inf = self.info(schema)
        try:
            cur = self.cursor(txn)
            rk = self.pk_row_key(cur, inf, pk_values)
            if rk is None:
                return None
            v = cur.get(rk)
            return None if v is None else (rk, self.decode(inf, v))
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc

    def get_by_rowkey(self, txn, schema, rowkey):
        """The row at rowkey, or None."""
        cdef _TableInfo inf = self.info(schema)
        cdef bytes rk = _as_bytes(rowkey)
        self.check_rowkey(inf, rk)
        try:
            v = txn.get(rk, db=self.dbi)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc
        return None if v is None else self.decode(inf, v)

    def count(self, txn, schema):
        """Number of rows of the table (an exact counter kept by every write path)."""
        cdef _TableInfo inf = self.info(schema)
        try:
            v = txn.get(inf.count_key, db=self.dbi)
        except _lmdb.Error as exc:
            raise StorageError(f"partition {self.partition_id}: {exc}") from exc
        return 0 if v is None else <long long>_read_u64(_as_bytes(v))

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


cdef class _RowIter:
    """(rowkey, row) over [start, end) of the table rows or of one index, either direction."""
    cdef PartitionStore store
    cdef object txn
    cdef object cur
    cdef object it
    cdef _TableInfo inf
    cdef bytes start
    cdef object end
    cdef bint reverse
    cdef int pos
    cdef list types
    cdef Py_ssize_t skip_from
    cdef bint done

    def __cinit__(self, PartitionStore store, txn, _TableInfo inf, bytes start, end,
                  bint reverse, int pos):
        self.store = store
        self.txn = txn
        self.inf = inf
        self.start = start
        self.end = end
        self.reverse = reverse
        self.pos = pos
        self.done = False
        if pos >= 0:
            self.types = inf.idx_types[pos]
        try:
            self.cur = txn.cursor(db=store.dbi)
            if not reverse:
                if self.cur.set_range(start):
                    self.it = self.cur.iternext(keys=True, values=pos < 0)
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
                    self.it = self.cur.iterprev(keys=True, values=pos < 0)
                else:
                    self.done = True
        except _lmdb.Error as exc:
            raise StorageError(f"partition {store.partition_id}: {exc}") from exc

    def __iter__(self):
        return self

    def __next__(self):
        cdef bytes k, rk
        cdef Py_ssize_t off
        if self.done:
            raise StopIteration
        try:
            item = next(self.it, None)
            if item is None:
                self.done = True
                raise StopIteration
            if self.pos < 0:
                k = _as_bytes(item[0])
                v = item[1]
            else:
                k = _as_bytes(item)
            if self.reverse:
                if k < self.start:
                    self.done = True
                    raise StopIteration
            elif self.end is not None and k >= <bytes>self.end:
                self.done = True
                raise StopIteration
            if self.pos < 0:
                return (k, self.inf.schema.decode_row(v))
            off = _skip_key_values(k, 2, self.types)
            rk = self.inf.prefix + k[off:]
            v = self.txn.get(rk, db=self.store.dbi)
            if v is None:
                raise StorageError(
                    f"index {self.inf.idx_ids[self.pos]} of table {self.inf.table_id} "
                    f"points at a missing row")
            return (rk, self.inf.schema.decode_row(v))
        except _lmdb.Error as exc:
            self.done = True
            raise StorageError(f"partition {self.store.partition_id}: {exc}") from exc

# SPDX-License-Identifier: AGPL-3.0-or-later
# Token-range streaming: export a token range of a partition store as chunks, import chunks
# into another store, delete a range (docs/internals.md, "Engine API", Streaming).
#
# Chunk format (version 1), all integers big-endian:
#   u8 version (1)
#   sections, table ids ascending:  u16 table_id | u32 row count |
#       rows: u16 n | row key without table id (n bytes) | u32 m | encoded row (m bytes)
#   u32 CRC-32 (zlib) of every byte before it
# Resume cursor: u8 version (1) | full LMDB key of the next row to export.

from zlib import crc32 as _crc32
from libc.stdlib cimport qsort

DEF _CHUNK_VERSION = 1
DEF _DEL_BATCH = 1024

cdef inline void _put_be(unsigned char *p, uint64_t v, int width) noexcept:
    cdef int i
    for i in range(width):
        p[width - 1 - i] = (v >> (8 * i)) & 0xFF


cdef inline uint64_t _get_be(const unsigned char *p, int width) noexcept:
    cdef uint64_t v = 0
    cdef int i
    for i in range(width):
        v = (v << 8) | p[i]
    return v


cdef bytes _be(uint64_t v, int width):
    cdef unsigned char b[8]
    _put_be(b, v, width)
    return PyBytes_FromStringAndSize(<char *>b, width)


cdef int _check_range(token_lo, token_hi) except -1:
    if not (-2147483648 <= token_lo <= 2147483647 and -2147483648 <= token_hi <= 2147483647):
        raise ValueOutOfRangeError(f"tokens must be signed int32: [{token_lo}, {token_hi}]")
    if token_lo > token_hi:
        raise ValueOutOfRangeError(f"empty token range [{token_lo}, {token_hi}]")
    return 0


cdef list _sorted_infos(PartitionStore store, schemas):
    infos = [store.info(s) for s in schemas]
    infos.sort(key=lambda i: (<_TableInfo>i).table_id)
    cdef int prev = -1
    for i in infos:
        if (<_TableInfo>i).table_id == prev:
            raise ValueOutOfRangeError(f"table {prev} listed twice")
        prev = (<_TableInfo>i).table_id
    return infos


cdef inline int _sm_key_before(const unsigned char *kp, Py_ssize_t nk, object hi) noexcept:
    """1 if key kp[:nk] sorts before hi (None = no bound)."""
    cdef Py_ssize_t nb, m
    cdef int c
    if hi is None:
        return 1
    nb = PyBytes_GET_SIZE(<bytes>hi)
    m = nk if nk < nb else nb
    c = memcmp(kp, PyBytes_AS_STRING(<bytes>hi), m)
    return c < 0 or (c == 0 and nk < nb)


cdef bytes _sm_finish(RowBuf *out):
    """The chunk: out's bytes followed by their CRC-32."""
    cdef bytes res
    cdef unsigned char *q
    rowbuf_reserve(out, 4)
    res = PyBytes_FromStringAndSize(<char *>out.data, out.len + 4)
    q = <unsigned char *>PyBytes_AS_STRING(res)
    # res is new and not yet shared, so its last 4 bytes may still be filled in.
    _put_be(q + out.len, _crc32(memoryview(res)[:out.len]) & 0xFFFFFFFF, 4)
    return res


def export_range(txn, PartitionStore store not None, schemas, int token_lo, int token_hi,
                 Py_ssize_t chunk_bytes, resume=None):
    """Encode the rows of schemas' tables whose token is in [token_lo, token_hi] (inclusive).

    Returns (chunk, resume): chunk holds at most about chunk_bytes (always at least one row
    when any is left); pass resume back to continue, None means the range is done. All the
    calls of one export should use one read transaction for a consistent snapshot.
    """
    cdef list infos
    cdef _TableInfo inf
    cdef bytes start_key = None
    cdef bytes lo
    cdef object hi, k, v, keep_k, keep_v
    cdef RowBuf out
    cdef Py_ssize_t hdr, nrows, total_rows = 0, klen, vlen, nk, nv
    cdef const unsigned char *kp
    cdef const unsigned char *vp
    _check_range(token_lo, token_hi)
    if chunk_bytes <= 0:
        raise ValueOutOfRangeError("chunk_bytes must be > 0")
    infos = _sorted_infos(store, schemas)
    if resume is not None:
        rb = _as_bytes(resume)
        if len(rb) < 7 or rb[0] != _CHUNK_VERSION:
            raise CodecError("malformed resume cursor")
        start_key = rb[1:]
        rt = _key_token(start_key, 2)
        if not token_lo <= rt <= token_hi:
            raise CodecError("resume cursor outside the token range")
    rowbuf_init(&out)
    try:
        rowbuf_put_byte(&out, _CHUNK_VERSION)
        cur = store.cursor(txn)
        for i in infos:
            inf = <_TableInfo>i
            lo = inf.prefix + _token_bytes(token_lo)
            hi = _succ(inf.prefix + _token_bytes(token_hi))
            if start_key is not None:
                if hi is not None and start_key >= <bytes>hi:
                    continue
                if start_key > lo:
                    lo = start_key
            if not cur.set_range(lo):
                continue
            hdr = -1
            nrows = 0
            # Raw key/value bytes are copied as they are; rows are not decoded.
            for item in cur.iternext(True, True):
                k = <object>PyTuple_GET_ITEM(item, 0)
                v = <object>PyTuple_GET_ITEM(item, 1)
                if PyBytes_CheckExact(k):
                    kp = <const unsigned char *>PyBytes_AS_STRING(k)
                    nk = PyBytes_GET_SIZE(k)
                else:
                    keep_k = _as_const_buffer(k, &kp, &nk)
                if not _sm_key_before(kp, nk, hi):
                    break
                if PyBytes_CheckExact(v):
                    vp = <const unsigned char *>PyBytes_AS_STRING(v)
                    nv = PyBytes_GET_SIZE(v)
                else:
                    keep_v = _as_const_buffer(v, &vp, &nv)
                klen = nk - 2
                vlen = nv
                if total_rows > 0 and out.len + klen + vlen + 6 + 6 + 4 > chunk_bytes:
                    if hdr >= 0:
                        _put_be(out.data + hdr + 2, nrows, 4)
                    res = _sm_finish(&out)
                    out.len = 0
                    rowbuf_put_byte(&out, _CHUNK_VERSION)
                    rowbuf_put(&out, kp, nk)
                    return res, rowbuf_bytes(&out)
                if hdr < 0:
                    hdr = out.len
                    rowbuf_put(&out, kp, 2)
                    rowbuf_put_be(&out, 0, 4)
                rowbuf_reserve(&out, 6 + klen + vlen)
                _put_be(out.data + out.len, klen, 2)
                memcpy(out.data + out.len + 2, kp + 2, klen)
                out.len += 2 + klen
                _put_be(out.data + out.len, vlen, 4)
                memcpy(out.data + out.len + 4, vp, vlen)
                out.len += 4 + vlen
                nrows += 1
                total_rows += 1
            if hdr >= 0:
                _put_be(out.data + hdr + 2, nrows, 4)
        return _sm_finish(&out), None
    except _lmdb.Error as exc:
        raise StorageError(f"partition {store.partition_id}: {exc}") from exc
    finally:
        rowbuf_free(&out)


def snapshot_stream(txn, PartitionStore store not None, schemas, Py_ssize_t chunk_bytes):
    """Generator of the chunks of the full token range of schemas' tables, read in txn.

    Keep txn (a read transaction) open until the generator is exhausted: the stream is the
    snapshot that txn sees, whatever other transactions write meanwhile.
    """
    resume = None
    while True:
        chunk, resume = export_range(txn, store, schemas, -2147483648, 2147483647,
                                     chunk_bytes, resume)
        yield chunk
        if resume is None:
            return



# ---------------------------------------------------------------------------------------
# Import: parse and check the whole chunk in C (rows validated without decoding, keys built
# from the row bytes), then write each section with two putmulti calls (rows, then every
# index entry sorted).

cdef struct _SmRow:
    Py_ssize_t koff         # row key without table id: chunk[koff:koff + klen]
    Py_ssize_t klen
    Py_ssize_t voff
    Py_ssize_t vlen


cdef struct _SmEnt:
    const unsigned char *p  # u16 index id | index key | row key tail
    Py_ssize_t n
    Py_ssize_t npre         # length of u16 index id | index key
    int ipos                # index position in the table
    int check               # 1: a unique key to look up (unique, no NULL, not implied)


cdef int _sm_cmp_ent(const void *a, const void *b) noexcept nogil:
    cdef const _SmEnt *x = <const _SmEnt *>a
    cdef const _SmEnt *y = <const _SmEnt *>b
    cdef Py_ssize_t m = x.n if x.n < y.n else y.n
    cdef int c = memcmp(x.p, y.p, m)
    if c:
        return c
    return (x.n > y.n) - (x.n < y.n)


cdef class _SmSection:
    """One table's rows in a chunk: row records and its index entries (arena + records)."""
    cdef _TableInfo inf
    cdef RowBuf rows        # _SmRow records
    cdef RowBuf arena       # index entry bytes
    cdef RowBuf ents        # _SmEnt records (p filled once the arena stops moving)
    cdef Py_ssize_t nrows
    cdef Py_ssize_t nents

    def __cinit__(self):
        rowbuf_init(&self.rows)
        rowbuf_init(&self.arena)
        rowbuf_init(&self.ents)

    def __dealloc__(self):
        rowbuf_free(&self.rows)
        rowbuf_free(&self.arena)
        rowbuf_free(&self.ents)

    cdef inline _SmRow *row(self, Py_ssize_t j) noexcept:
        return (<_SmRow *>self.rows.data) + j

    cdef inline _SmEnt *ent(self, Py_ssize_t j) noexcept:
        return (<_SmEnt *>self.ents.data) + j


cdef list _sm_parse(PartitionStore store, dict schemas_by_id, bytes chunk):
    """[_SmSection...] of a chunk, every row validated and its keys checked; CodecError if not."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(chunk)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(chunk)
    cdef Py_ssize_t pos = 1, end, klen, vlen, i, j, pk_off
    cdef Py_ssize_t prev_k = -1, prev_n = 0, m
    cdef uint64_t nrows, r
    cdef int tid, prev_tid = -1, c
    cdef _TableInfo inf
    cdef TupleSchema ts
    cdef _SmSection sec
    cdef _SmRow rec
    cdef _SmEnt ent
    cdef _StKeys k
    cdef list sections = []
    if n < 5:
        raise CodecError("chunk too short")
    if p[0] != _CHUNK_VERSION:
        raise CodecError(f"unknown chunk version {p[0]}")
    end = n - 4
    if <uint64_t>(_crc32(memoryview(chunk)[:end]) & 0xFFFFFFFF) != _get_be(p + end, 4):
        raise CodecError("chunk checksum mismatch")
    while pos < end:
        if end - pos < 6:
            raise CodecError("truncated section header")
        tid = <int>_get_be(p + pos, 2)
        nrows = _get_be(p + pos + 2, 4)
        pos += 6
        if tid <= prev_tid:
            raise CodecError("chunk sections out of order")
        prev_tid = tid
        schema = schemas_by_id.get(tid)
        if schema is None:
            raise CodecError(f"chunk holds rows of unknown table {tid}")
        inf = store.info(schema)
        ts = inf.ts
        if nrows == 0:
            raise CodecError("empty section in chunk")
        # Each row takes at least 2 + 4 + 4 bytes: a row count beyond that is a lie.
        if nrows > <uint64_t>((end - pos) // 10):
            raise CodecError("truncated row key length")
        sec = _SmSection()
        sec.inf = inf
        prev_k = -1
        _st_keys_init(&k, inf.nidx)
        try:
            for r in range(nrows):
                if end - pos < 2:
                    raise CodecError("truncated row key length")
                klen = <Py_ssize_t>_get_be(p + pos, 2)
                pos += 2
                if klen < 4 or end - pos < klen + 4:
                    raise CodecError("truncated row key")
                rec.koff = pos
                rec.klen = klen
                pos += klen
                vlen = <Py_ssize_t>_get_be(p + pos, 4)
                pos += 4
                if end - pos < vlen:
                    raise CodecError("truncated row")
                rec.voff = pos
                rec.vlen = vlen
                pos += vlen
                # Keys ascend strictly inside a section.
                if prev_k >= 0:
                    m = klen if klen < prev_n else prev_n
                    c = memcmp(p + prev_k, p + rec.koff, m)
                    if c > 0 or (c == 0 and prev_n >= klen):
                        raise CodecError("chunk rows out of key order")
                prev_k = rec.koff
                prev_n = klen
                _st_build(ts, p + rec.voff, vlen, &k, True)
                # The row key must be the one the row maps to (token, PK or a row id).
                if memcmp(k.key.data + 2, p + rec.koff, 4) != 0:
                    raise CodecError(f"row key token does not match the row (table {tid})")
                if inf.has_pk:
                    if k.key.len - 2 != klen or memcmp(k.key.data + 6, p + rec.koff + 4, klen - 4) != 0:
                        raise CodecError(f"row key does not match the row's primary key (table {tid})")
                elif klen != 12:
                    raise CodecError(f"row key of table {tid} is not token + row id")
                rowbuf_put(&sec.rows, &rec, sizeof(_SmRow))
                for i in range(inf.nidx):
                    ent.p = NULL
                    ent.n = sec.arena.len     # offset until the arena is final
                    ent.npre = k.ends[i + 1] - k.ends[i]
                    ent.ipos = <int>i
                    ent.check = (ts._tp_idx_unique[i] and not k.nulls[i]
                                 and not (i == inf.pk_index_pos and inf.pk_gives_token))
                    rowbuf_put(&sec.arena, k.ix.data + k.ends[i], ent.npre)
                    rowbuf_put(&sec.arena, p + rec.koff, klen)
                    rowbuf_put(&sec.ents, &ent, sizeof(_SmEnt))
        finally:
            _st_keys_free(&k)
        sec.nrows = <Py_ssize_t>nrows
        sec.nents = sec.ents.len // sizeof(_SmEnt)
        # Offsets -> pointers (each entry ends where the next starts), then sort.
        for j in range(sec.nents):
            sec.ent(j).p = sec.arena.data + sec.ent(j).n
        for j in range(sec.nents):
            sec.ent(j).n = (sec.ent(j + 1).p if j + 1 < sec.nents else sec.arena.data + sec.arena.len) - sec.ent(j).p
        if sec.nents > 1:
            qsort(sec.ents.data, sec.nents, sizeof(_SmEnt), _sm_cmp_ent)
        sections.append(sec)
    if pos != end:
        raise CodecError("trailing bytes in chunk")
    return sections


cdef int _sm_check_section(PartitionStore store, cur, _SmSection sec, const unsigned char *chunk) except -1:
    """ConstraintError if a row key or unique key of sec exists in the store or repeats in sec.

    Keys are sorted, so one seek answers for every key up to the key it lands on: an import
    into an empty range costs one seek per index, not one per row.
    """
    cdef _TableInfo inf = sec.inf
    cdef RowBuf kb
    cdef Py_ssize_t j, nf = 0
    cdef const unsigned char *fp = NULL
    cdef object found = None, keep = None
    cdef bint have = False, more = True
    cdef _SmRow *rw
    cdef _SmEnt *e
    cdef _SmEnt *prev = NULL
    cdef Py_ssize_t m
    cdef int c
    rowbuf_init(&kb)
    try:
        for j in range(sec.nrows):
            rw = sec.row(j)
            kb.len = 0
            rowbuf_put(&kb, PyBytes_AS_STRING(inf.prefix), 2)
            rowbuf_put(&kb, chunk + rw.koff, rw.klen)
            if have:
                m = kb.len if kb.len < nf else nf
                c = memcmp(fp, kb.data, m)
                if c < 0 or (c == 0 and nf < kb.len):
                    have = False
            if not have:
                if not more:
                    break
                if not cur.set_range(rowbuf_bytes(&kb)):
                    more = False
                    break
                found = cur.key()
                keep = _as_const_buffer(found, &fp, &nf)
                if not PyBytes_CheckExact(found):
                    found = bytes(found)
                    keep = _as_const_buffer(found, &fp, &nf)
                have = True
            if nf == kb.len and memcmp(fp, kb.data, nf) == 0:
                if inf.has_pk:
                    store.raise_pk(inf)
                _raise_dup_rowid(store, inf)
        have = False
        more = True
        for j in range(sec.nents):
            e = sec.ent(j)
            if not e.check:
                continue
            if prev != NULL and prev.npre == e.npre and memcmp(prev.p, e.p, e.npre) == 0:
                store.raise_conflict(inf, e.ipos)
            prev = e
            if have:
                m = e.npre if e.npre < nf else nf
                c = memcmp(fp, e.p, m)
                if c < 0 or (c == 0 and nf < e.npre):
                    have = False
            if not have:
                if not more:
                    continue
                if not cur.set_range(PyBytes_FromStringAndSize(<char *>e.p, e.npre)):
                    more = False
                    continue
                found = cur.key()
                if not PyBytes_CheckExact(found):
                    found = bytes(found)
                keep = _as_const_buffer(found, &fp, &nf)
                have = True
            if nf >= e.npre and memcmp(fp, e.p, e.npre) == 0:
                store.raise_conflict(inf, e.ipos)
    finally:
        rowbuf_free(&kb)
    return 0


def import_chunk(txn, PartitionStore store not None, dict schemas_by_id not None, chunk,
                 on_row=None):
    """Write the rows of chunk (keeping their row keys) with their index entries.

    Everything is checked first: CodecError for a malformed chunk, ConstraintError for a row
    key or unique key that already exists (or repeats in the chunk); nothing is written then.
    on_row(table_id, row) is called for each row after the writes; if it raises, the caller
    must abort txn. Returns the number of rows imported.
    """
    cdef bytes data = _as_bytes(chunk)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef list sections = _sm_parse(store, schemas_by_id, data)
    cdef _SmSection sec
    cdef _SmRow *rw
    cdef _SmEnt *e
    cdef RowBuf kb
    cdef Py_ssize_t j, total = 0
    cdef list items
    try:
        cur = store.cursor(txn)
        for s in sections:
            _sm_check_section(store, cur, <_SmSection>s, p)
        rowbuf_init(&kb)
        try:
            for s in sections:
                sec = <_SmSection>s
                items = []
                for j in range(sec.nrows):
                    rw = sec.row(j)
                    kb.len = 0
                    rowbuf_put(&kb, PyBytes_AS_STRING(sec.inf.prefix), 2)
                    rowbuf_put(&kb, p + rw.koff, rw.klen)
                    items.append((rowbuf_bytes(&kb),
                                  PyBytes_FromStringAndSize(<char *>p + rw.voff, rw.vlen)))
                cur.putmulti(items, False, True)
                if sec.nents:
                    items = []
                    for j in range(sec.nents):
                        e = sec.ent(j)
                        items.append((PyBytes_FromStringAndSize(<char *>e.p, e.n), _EMPTY))
                    cur.putmulti(items, False, True)
                store.add_count(txn, sec.inf, sec.nrows)
                total += sec.nrows
        finally:
            rowbuf_free(&kb)
    except _lmdb.Error as exc:
        raise StorageError(f"partition {store.partition_id}: {exc}") from exc
    if on_row is not None:
        for s in sections:
            sec = <_SmSection>s
            for j in range(sec.nrows):
                rw = sec.row(j)
                on_row(sec.inf.table_id, sec.inf.ts._decode_ptr(p + rw.voff, rw.vlen))
    return total


cdef _raise_dup_rowid(PartitionStore store, _TableInfo inf):
    raise ConstraintError(f"row id already present in table {inf.table_id} "
                          f"(partition {store.partition_id})")


def delete_range(txn, PartitionStore store not None, schemas, int token_lo, int token_hi,
                 on_row=None):
    """Delete the rows (and index entries) of schemas' tables with token in [lo, hi].

    Calls on_row(table_id, row) for each deleted row. Returns the number deleted.
    """
    cdef list infos
    cdef _TableInfo inf
    cdef bytes lo, kb
    cdef object hi, k, v, keep
    cdef list batch
    cdef Py_ssize_t total = 0, n_table, j, nk
    cdef const unsigned char *kp
    cdef _StKeys keys
    _check_range(token_lo, token_hi)
    infos = _sorted_infos(store, schemas)
    try:
        cur = store.cursor(txn)
        for i in infos:
            inf = <_TableInfo>i
            lo = inf.prefix + _token_bytes(token_lo)
            hi = _succ(inf.prefix + _token_bytes(token_hi))
            n_table = 0
            _st_keys_init(&keys, inf.nidx)
            try:
                while True:
                    batch = []
                    if not cur.set_range(lo):
                        break
                    for item in cur.iternext(True, True):
                        k = <object>PyTuple_GET_ITEM(item, 0)
                        keep = _as_const_buffer(k, &kp, &nk)
                        if not _sm_key_before(kp, nk, hi):
                            break
                        v = <object>PyTuple_GET_ITEM(item, 1)
                        # Copies: LMDB buffers do not survive the deletes below.
                        batch.append(_as_bytes(k))
                        batch.append(_as_bytes(v))
                        if len(batch) >= 2 * _DEL_BATCH:
                            break
                    if not batch:
                        break
                    for j in range(0, len(batch), 2):
                        kb = <bytes>batch[j]
                        v = batch[j + 1]
                        store._st_keys_of_value(inf, v, &keys)
                        store._st_del_entries(txn, inf, &keys, kb)
                        txn.delete(kb, _EMPTY, store.dbi)
                        if on_row is not None:
                            on_row(inf.table_id, store.decode(inf, v))
                    n_table += len(batch) // 2
                    if len(batch) < 2 * _DEL_BATCH:
                        break
                    lo = (<bytes>batch[len(batch) - 2]) + b"\x00"
            finally:
                _st_keys_free(&keys)
            store.add_count(txn, inf, -n_table)
            total += n_table
    except _lmdb.Error as exc:
        raise StorageError(f"partition {store.partition_id}: {exc}") from exc
    return total

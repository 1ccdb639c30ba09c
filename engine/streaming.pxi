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
    cdef bytes lo, k, tail
    cdef object hi
    cdef bytearray out = bytearray()
    cdef Py_ssize_t hdr, nrows, total_rows = 0, klen, vlen
    cdef unsigned char b[6]
    cdef bint have_start
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
    out.append(_CHUNK_VERSION)
    try:
        cur = store.cursor(txn)
        for i in infos:
            inf = <_TableInfo>i
            lo = inf.prefix + _token_bytes(token_lo)
            hi = _succ(inf.prefix + _token_bytes(token_hi))
            if start_key is not None:
                if start_key >= <bytes>hi:
                    continue
                if start_key > lo:
                    lo = start_key
            if not cur.set_range(lo):
                continue
            hdr = -1
            nrows = 0
            for kv, v in cur.iternext(keys=True, values=True):
                k = _as_bytes(kv)
                if hi is not None and k >= <bytes>hi:
                    break
                klen = PyBytes_GET_SIZE(k) - 2
                vlen = len(v)
                if total_rows > 0 and len(out) + klen + vlen + 6 + 6 + 4 > chunk_bytes:
                    if hdr >= 0:
                        _put_be(b, nrows, 4)
                        out[hdr + 2:hdr + 6] = PyBytes_FromStringAndSize(<char *>b, 4)
                    out += _be(_crc32(out), 4)
                    return bytes(out), bytes([_CHUNK_VERSION]) + k
                if hdr < 0:
                    hdr = len(out)
                    out += inf.prefix
                    out += b"\x00\x00\x00\x00"
                _put_be(b, klen, 2)
                out += PyBytes_FromStringAndSize(<char *>b, 2)
                out += k[2:]
                _put_be(b, vlen, 4)
                out += PyBytes_FromStringAndSize(<char *>b, 4)
                out += v
                nrows += 1
                total_rows += 1
            if hdr >= 0:
                _put_be(b, nrows, 4)
                out[hdr + 2:hdr + 6] = PyBytes_FromStringAndSize(<char *>b, 4)
    except _lmdb.Error as exc:
        raise StorageError(f"partition {store.partition_id}: {exc}") from exc
    out += _be(_crc32(out), 4)
    return bytes(out), None


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


cdef list _parse_chunk(PartitionStore store, dict schemas_by_id, bytes chunk):
    """[(inf, [(rowkey, value bytes, row)...])...] of a chunk; CodecError if malformed."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(chunk)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(chunk)
    cdef Py_ssize_t pos = 1, end, klen, vlen
    cdef uint64_t nrows, j
    cdef int tid, prev_tid = -1
    cdef _TableInfo inf
    cdef list sections = []
    cdef list rows
    cdef bytes rk, val
    if n < 5:
        raise CodecError("chunk too short")
    if p[0] != _CHUNK_VERSION:
        raise CodecError(f"unknown chunk version {p[0]}")
    end = n - 4
    if <uint64_t>(_crc32(chunk[:end]) & 0xFFFFFFFF) != _get_be(p + end, 4):
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
        rows = []
        for j in range(nrows):
            if end - pos < 2:
                raise CodecError("truncated row key length")
            klen = <Py_ssize_t>_get_be(p + pos, 2)
            pos += 2
            if klen < 4 or end - pos < klen + 4:
                raise CodecError("truncated row key")
            rk = inf.prefix + chunk[pos:pos + klen]
            pos += klen
            vlen = <Py_ssize_t>_get_be(p + pos, 4)
            pos += 4
            if end - pos < vlen:
                raise CodecError("truncated row")
            val = chunk[pos:pos + vlen]
            pos += vlen
            try:
                row = inf.schema.decode_row(val)
            except CodecError:
                raise
            except VoltError as exc:
                raise CodecError(f"bad row in chunk for table {tid}: {exc}") from exc
            _check_row_key(inf, rk, row)
            rows.append((rk, val, row))
        if not rows:
            raise CodecError("empty section in chunk")
        for j in range(1, len(rows)):
            if <bytes>rows[j - 1][0] >= <bytes>rows[j][0]:
                raise CodecError("chunk rows out of key order")
        sections.append((inf, rows))
    if pos != end:
        raise CodecError("trailing bytes in chunk")
    return sections


cdef int _check_row_key(_TableInfo inf, bytes rk, row) except -1:
    """The row key must be the one the row maps to (token, primary key or a row id)."""
    cdef int32_t tok = _key_token(rk, 2)
    if tok != <int32_t>inf.schema.row_token(row):
        raise CodecError(f"row key token does not match the row (table {inf.table_id})")
    if inf.has_pk:
        if rk[6:] != inf.schema.pk_suffix(row):
            raise CodecError(f"row key does not match the row's primary key (table {inf.table_id})")
    elif PyBytes_GET_SIZE(rk) != 14:
        raise CodecError(f"row key of table {inf.table_id} is not token + row id")
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
    cdef list sections = _parse_chunk(store, schemas_by_id, data)
    cdef _TableInfo inf
    cdef list writes = []
    cdef list all_ikeys
    cdef list ikeys
    cdef bytes rk, pre, tail, ipre
    cdef int i
    cdef Py_ssize_t total = 0
    try:
        cur = store.cursor(txn)
        # Pass 1: every check, no write. Row keys ascend strictly inside a section (checked
        # by the parser), so a PK index that follows from the row key needs no check.
        plan = []
        for inf, rows in sections:
            seen_unique = [set() for _ in range(inf.nidx)]
            all_ikeys = []
            for rk, val, row in rows:
                if cur.get(rk) is not None:
                    store.raise_pk(inf) if inf.has_pk else _raise_dup_rowid(store, inf)
                ikeys = store.index_keys(inf, row)
                for i in range(inf.nidx):
                    if not inf.idx_unique[i] or ikeys[i][1]:
                        continue
                    if i == inf.pk_index_pos and inf.pk_gives_token:
                        continue
                    pre = <bytes>inf.idx_prefix[i] + <bytes>ikeys[i][0]
                    if pre in seen_unique[i]:
                        store.raise_conflict(inf, i)
                    (<set>seen_unique[i]).add(pre)
                    if cur.set_range(pre) and _as_bytes(cur.key()).startswith(pre):
                        store.raise_conflict(inf, i)
                all_ikeys.append(ikeys)
            plan.append((inf, rows, all_ikeys))
        # Pass 2: rows in key order, then each index's entries sorted, then counters.
        for inf, rows, all_ikeys in plan:
            cur.putmulti([(r[0], r[1]) for r in rows], dupdata=False, overwrite=True)
            for i in range(inf.nidx):
                ipre = <bytes>inf.idx_prefix[i]
                entries = [ipre + <bytes>(<list>all_ikeys[j])[i][0] + (<bytes>rows[j][0])[2:]
                           for j in range(len(rows))]
                entries.sort()
                cur.putmulti([(e, _EMPTY) for e in entries], dupdata=False, overwrite=True)
            store.add_count(cur, inf, len(rows))
            total += len(rows)
    except _lmdb.Error as exc:
        raise StorageError(f"partition {store.partition_id}: {exc}") from exc
    if on_row is not None:
        for inf, rows in sections:
            for rk, val, row in rows:
                on_row(inf.table_id, row)
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
    cdef bytes lo, k
    cdef object hi
    cdef list batch
    cdef Py_ssize_t total = 0, n_table
    _check_range(token_lo, token_hi)
    infos = _sorted_infos(store, schemas)
    try:
        cur = store.cursor(txn)
        for i in infos:
            inf = <_TableInfo>i
            lo = inf.prefix + _token_bytes(token_lo)
            hi = _succ(inf.prefix + _token_bytes(token_hi))
            n_table = 0
            while True:
                batch = []
                if not cur.set_range(lo):
                    break
                for kv, v in cur.iternext(keys=True, values=True):
                    k = _as_bytes(kv)
                    if hi is not None and k >= <bytes>hi:
                        break
                    batch.append((k, inf.schema.decode_row(v)))
                    if len(batch) >= _DEL_BATCH:
                        break
                if not batch:
                    break
                for k, row in batch:
                    store.del_index_entries(cur, inf, store.index_keys(inf, row), k[2:])
                    if cur.set_key(k):
                        cur.delete()
                    if on_row is not None:
                        on_row(inf.table_id, row)
                n_table += len(batch)
                if len(batch) < _DEL_BATCH:
                    break
                lo = (<bytes>batch[-1][0]) + b"\x00"
            store.add_count(cur, inf, -n_table)
            total += n_table
    except _lmdb.Error as exc:
        raise StorageError(f"partition {store.partition_id}: {exc}") from exc
    return total

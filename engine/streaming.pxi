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
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.ref cimport PyObject

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


# CRC-32 of a chunk (zlib.crc32's value): folded with PCLMULQDQ where the CPU has it (about
# 3x zlib's table code on the build machine), bit by bit for the last bytes; elsewhere zlib.
cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <emmintrin.h>
    #include <smmintrin.h>
    #include <wmmintrin.h>
    /* CRC-32 (zlib's polynomial, reflected) of len bytes (len >= 64, a multiple of 16) folded
     * with PCLMULQDQ (Intel, "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ").
     * crc: the running CRC before its final inversion (start: 0xFFFFFFFF). */
    __attribute__((target("pclmul,sse4.1")))
    static uint32_t _sm_crc32_clmul(const unsigned char *buf, size_t len, uint32_t crc) {
        static const uint64_t __attribute__((aligned(16))) k1k2[] = {0x0154442bd4, 0x01c6e41596};
        static const uint64_t __attribute__((aligned(16))) k3k4[] = {0x01751997d0, 0x00ccaa009e};
        static const uint64_t __attribute__((aligned(16))) k5k0[] = {0x0163cd6124, 0x0000000000};
        static const uint64_t __attribute__((aligned(16))) poly[] = {0x01db710641, 0x01f7011641};
        __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
        x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
        x0 = _mm_load_si128((const __m128i *)k1k2);
        buf += 64;
        len -= 64;
        while (len >= 64) {
            x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
            x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
            x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
            x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
            x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
            x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
            x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
            x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
            y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
            y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
            y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
            y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
            x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
            x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
            x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
            buf += 64;
            len -= 64;
        }
        x0 = _mm_load_si128((const __m128i *)k3k4);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
        while (len >= 16) {
            x2 = _mm_loadu_si128((const __m128i *)buf);
            x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
            x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
            buf += 16;
            len -= 16;
        }
        x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
        x3 = _mm_setr_epi32(~0, 0, ~0, 0);
        x1 = _mm_srli_si128(x1, 8);
        x1 = _mm_xor_si128(x1, x2);
        x0 = _mm_loadl_epi64((const __m128i *)k5k0);
        x2 = _mm_srli_si128(x1, 4);
        x1 = _mm_and_si128(x1, x3);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        x0 = _mm_load_si128((const __m128i *)poly);
        x2 = _mm_and_si128(x1, x3);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
        x2 = _mm_and_si128(x2, x3);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        return (uint32_t)_mm_extract_epi32(x1, 1);
    }
    static int _sm_crc32_clmul_ok(void) {
        static int ok = -1;
        if (ok < 0) {
            __builtin_cpu_init();
            ok = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
        }
        return ok;
    }
    #else
    static uint32_t _sm_crc32_clmul(const unsigned char *buf, size_t len, uint32_t crc) { (void)buf; (void)len; return crc; }
    static int _sm_crc32_clmul_ok(void) { return 0; }
    #endif
    /* Bit by bit: the tail (under 16 bytes) and short inputs. */
    static uint32_t _sm_crc32_bytes(const unsigned char *p, size_t n, uint32_t crc) {
        size_t i; int k;
        for (i = 0; i < n; i++) { crc ^= p[i]; for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1))); }
        return crc;
    }
    static uint32_t _sm_crc32_c(const unsigned char *p, size_t n) {
        uint32_t crc = 0xFFFFFFFFu;
        if (n >= 64 && _sm_crc32_clmul_ok()) {
            size_t m = n & ~(size_t)15;
            crc = _sm_crc32_clmul(p, m, crc);
            p += m; n -= m;
        }
        return _sm_crc32_bytes(p, n, crc) ^ 0xFFFFFFFFu;
    }

    """
    uint32_t _sm_crc32_c(const unsigned char *p, size_t n) nogil
    int _sm_crc32_clmul_ok() nogil


cdef uint32_t _sm_crc32(const unsigned char *p, Py_ssize_t n, object owner) except? 0xFFFFFFFF:
    """CRC-32 of p[:n] (owner: a bytes-like object holding them, for the zlib fallback)."""
    if n >= 64 and _sm_crc32_clmul_ok():
        return _sm_crc32_c(p, <size_t>n)
    return <uint32_t>(_crc32(memoryview(owner)[:n]) & 0xFFFFFFFF)


def _sm_crc32_check(data):
    """CRC-32 of data as chunks are checked (tests compare it with zlib.crc32)."""
    cdef bytes b = _as_bytes(data)
    return _sm_crc32(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), b)


cdef bytes _sm_finish(RowBuf *out):
    """The chunk: out's bytes followed by their CRC-32."""
    cdef bytes res
    cdef unsigned char *q
    rowbuf_reserve(out, 4)
    res = PyBytes_FromStringAndSize(<char *>out.data, out.len + 4)
    q = <unsigned char *>PyBytes_AS_STRING(res)
    # res is new and not yet shared, so its last 4 bytes may still be filled in.
    _put_be(q + out.len, _sm_crc32(q, out.len, res), 4)
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
# Import: parse and check the whole chunk in C (rows validated without decoding, every row
# key and index entry built from the row bytes into per-section arenas, index entries
# sorted in C), then write everything with one putmulti over a C array of (key, value)
# pointers: no Python bytes or tuple is made per row (see _SmItems).

cdef struct _SmRow:
    Py_ssize_t koff         # full row key (u16 table id | key in chunk): keys.data[koff:]
    Py_ssize_t klen
    Py_ssize_t voff         # encoded row: chunk[voff:voff + vlen]
    Py_ssize_t vlen


cdef struct _SmEnt:
    const unsigned char *p  # u16 index id | index key | row key tail
    Py_ssize_t n
    Py_ssize_t npre         # length of u16 index id | index key
    int ipos                # index position in the table
    int check               # 1: a unique key to look up (unique, no NULL, not implied)


cdef struct _SmSk:
    uint64_t k0             # first 16 bytes of the entry, big-endian, zero-padded: most
    uint64_t k1             # comparisons end on these two integers
    _SmEnt *e


cdef struct _SmKV:
    const unsigned char *kp
    Py_ssize_t kn
    const unsigned char *vp
    Py_ssize_t vn


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline uint64_t _sm_load_be64(const unsigned char *p) {
        uint64_t v;
        memcpy(&v, p, 8);
    #if defined(__GNUC__) || defined(__clang__)
    #  if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
    #  endif
    #else
        { const unsigned char *q = p; int i; v = 0; for (i = 0; i < 8; i++) v = (v << 8) | q[i]; }
    #endif
        return v;
    }
    """
    uint64_t _sm_load_be64(const unsigned char *p) noexcept nogil
    Py_ssize_t _sm_refcnt "Py_REFCNT"(PyObject *o)


cdef inline void _sm_sk_fill(_SmSk *r, _SmEnt *e) noexcept nogil:
    cdef unsigned char b[16]
    r.e = e
    if e.n >= 16:
        r.k0 = _sm_load_be64(e.p)
        r.k1 = _sm_load_be64(e.p + 8)
        return
    memset(b, 0, 16)
    memcpy(b, e.p, e.n)
    r.k0 = _sm_load_be64(b)
    r.k1 = _sm_load_be64(b + 8)


cdef inline int _sm_sk_cmp(const _SmSk *x, const _SmSk *y) noexcept nogil:
    """memcmp order of the entries' bytes (shorter first on a common prefix)."""
    cdef Py_ssize_t m
    cdef int c
    if x.k0 != y.k0:
        return -1 if x.k0 < y.k0 else 1
    if x.k1 != y.k1:
        return -1 if x.k1 < y.k1 else 1
    # The first min(16, n) bytes of both are equal (zero padding compares equal too).
    m = x.e.n if x.e.n < y.e.n else y.e.n
    if m > 16:
        c = memcmp(x.e.p + 16, y.e.p + 16, m - 16)
        if c:
            return c
    return (x.e.n > y.e.n) - (x.e.n < y.e.n)


DEF _SM_RUN = 16

cdef void _sm_merge_sort(_SmSk *a, _SmSk *tmp, Py_ssize_t n) noexcept nogil:
    """Stable bottom-up merge sort by _sm_sk_cmp (O(n log n) whatever the input)."""
    cdef Py_ssize_t lo, mid, hi, i, j, k, width
    cdef _SmSk t
    cdef _SmSk *src = a
    cdef _SmSk *dst = tmp
    cdef _SmSk *sw
    lo = 0
    while lo < n:
        hi = lo + _SM_RUN if lo + _SM_RUN < n else n
        for i in range(lo + 1, hi):
            if _sm_sk_cmp(&a[i - 1], &a[i]) <= 0:
                continue
            t = a[i]
            j = i
            while j > lo and _sm_sk_cmp(&a[j - 1], &t) > 0:
                a[j] = a[j - 1]
                j -= 1
            a[j] = t
        lo = hi
    width = _SM_RUN
    while width < n:
        lo = 0
        while lo < n:
            mid = lo + width if lo + width < n else n
            hi = lo + 2 * width if lo + 2 * width < n else n
            if mid >= hi or _sm_sk_cmp(&src[mid - 1], &src[mid]) <= 0:
                memcpy(dst + lo, src + lo, (hi - lo) * sizeof(_SmSk))
            else:
                i = lo
                j = mid
                k = lo
                while i < mid and j < hi:
                    if _sm_sk_cmp(&src[j], &src[i]) < 0:
                        dst[k] = src[j]
                        j += 1
                    else:
                        dst[k] = src[i]
                        i += 1
                    k += 1
                if i < mid:
                    memcpy(dst + k, src + i, (mid - i) * sizeof(_SmSk))
                elif j < hi:
                    memcpy(dst + k, src + j, (hi - j) * sizeof(_SmSk))
            lo = hi
        sw = src
        src = dst
        dst = sw
        width *= 2
    if src != a:
        memcpy(a, src, n * sizeof(_SmSk))


DEF _SM_RADIX_MIN = 64

cdef void _sm_sort_keys(_SmSk *a, _SmSk *tmp, Py_ssize_t n) noexcept nogil:
    """Sort by _sm_sk_cmp: LSD radix sort on the 16 prefix bytes (bytes equal in every
    record skipped), then a merge sort of each run whose 16 prefix bytes tie."""
    cdef uint32_t cnt[16][256]
    cdef uint32_t off[256]
    cdef Py_ssize_t i, j, b, sum, v, nvar
    cdef uint64_t d0, d1
    cdef int var[16]
    cdef int sh
    cdef _SmSk *src = a
    cdef _SmSk *dst = tmp
    cdef _SmSk *sw
    if n < _SM_RADIX_MIN:
        _sm_merge_sort(a, tmp, n)
        return
    # Only the bytes that differ somewhere need a pass (and a histogram).
    d0 = 0
    d1 = 0
    for i in range(1, n):
        d0 |= a[i].k0 ^ a[0].k0
        d1 |= a[i].k1 ^ a[0].k1
    nvar = 0
    for b in range(16):
        sh = 8 * (b & 7)
        if ((d1 if b < 8 else d0) >> sh) & 0xFF:
            var[nvar] = <int>b
            nvar += 1
    memset(cnt, 0, nvar * sizeof(cnt[0]))
    for i in range(n):
        for j in range(nvar):
            b = var[j]
            sh = 8 * (b & 7)
            cnt[j][((a[i].k1 if b < 8 else a[i].k0) >> sh) & 0xFF] += 1
    for v in range(nvar):
        b = var[v]
        sum = 0
        for j in range(256):
            off[j] = <uint32_t>sum
            sum += cnt[v][j]
        sh = 8 * (b & 7)
        if b < 8:
            for i in range(n):
                j = (src[i].k1 >> sh) & 0xFF
                dst[off[j]] = src[i]
                off[j] += 1
        else:
            for i in range(n):
                j = (src[i].k0 >> sh) & 0xFF
                dst[off[j]] = src[i]
                off[j] += 1
        sw = src
        src = dst
        dst = sw
    if src != a:
        memcpy(a, src, n * sizeof(_SmSk))
    # Records whose 16 prefix bytes tie are ordered by the rest of their bytes.
    i = 0
    while i < n:
        j = i + 1
        while j < n and a[j].k0 == a[i].k0 and a[j].k1 == a[i].k1:
            j += 1
        if j - i > 1:
            _sm_merge_sort(a + i, tmp, j - i)
        i = j


cdef int _sm_sort_section(RowBuf *ents, Py_ssize_t n) except -1:
    """Sort n _SmEnt records of ents in memcmp order of their bytes."""
    cdef RowBuf keys, tmp, out
    cdef _SmSk *sk
    cdef _SmEnt *src = <_SmEnt *>ents.data
    cdef _SmEnt *dst
    cdef Py_ssize_t j
    rowbuf_init(&keys)
    rowbuf_init(&tmp)
    rowbuf_init(&out)
    try:
        rowbuf_reserve(&keys, n * sizeof(_SmSk))
        rowbuf_reserve(&tmp, n * sizeof(_SmSk))
        rowbuf_reserve(&out, n * sizeof(_SmEnt))
        sk = <_SmSk *>keys.data
        for j in range(n):
            _sm_sk_fill(&sk[j], &src[j])
        _sm_sort_keys(sk, <_SmSk *>tmp.data, n)
        dst = <_SmEnt *>out.data
        for j in range(n):
            dst[j] = sk[j].e[0]
        memcpy(ents.data, out.data, n * sizeof(_SmEnt))
    finally:
        rowbuf_free(&keys)
        rowbuf_free(&tmp)
        rowbuf_free(&out)
    return 0


cdef class _SmSection:
    """One table's rows in a chunk: row records, row keys and index entries (arenas)."""
    cdef _TableInfo inf
    cdef RowBuf rows        # _SmRow records
    cdef RowBuf keys        # full row keys, back to back
    cdef RowBuf arena       # index entry bytes
    cdef RowBuf ents        # _SmEnt records (p filled once the arena stops moving), sorted
    cdef Py_ssize_t nrows
    cdef Py_ssize_t nents

    def __cinit__(self):
        rowbuf_init(&self.rows)
        rowbuf_init(&self.keys)
        rowbuf_init(&self.arena)
        rowbuf_init(&self.ents)

    def __dealloc__(self):
        rowbuf_free(&self.rows)
        rowbuf_free(&self.keys)
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
    cdef Py_ssize_t pos = 1, end, klen, vlen, i, j, koff, ne, per_row
    cdef Py_ssize_t prev_k = -1, prev_n = 0, m
    cdef uint64_t nrows, r
    cdef int tid, prev_tid = -1, c
    cdef _TableInfo inf
    cdef TupleSchema ts
    cdef _SmSection sec
    cdef _SmRow *rec
    cdef _SmEnt *ent
    cdef _SmEnt *ents
    cdef _StKeys k
    cdef list sections = []
    if n < 5:
        raise CodecError("chunk too short")
    if p[0] != _CHUNK_VERSION:
        raise CodecError(f"unknown chunk version {p[0]}")
    end = n - 4
    if _sm_crc32(p, end, chunk) != _get_be(p + end, 4):
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
        # Sized once: the record arrays exactly, the byte arenas from the first row.
        rowbuf_reserve(&sec.rows, <Py_ssize_t>nrows * sizeof(_SmRow))
        rowbuf_reserve(&sec.ents, <Py_ssize_t>nrows * inf.nidx * sizeof(_SmEnt))
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
                koff = pos
                pos += klen
                vlen = <Py_ssize_t>_get_be(p + pos, 4)
                pos += 4
                if end - pos < vlen:
                    raise CodecError("truncated row")
                # Keys ascend strictly inside a section.
                if prev_k >= 0:
                    m = klen if klen < prev_n else prev_n
                    c = memcmp(p + prev_k, p + koff, m)
                    if c > 0 or (c == 0 and prev_n >= klen):
                        raise CodecError("chunk rows out of key order")
                prev_k = koff
                prev_n = klen
                _st_build(ts, p + pos, vlen, &k, True)
                # The row key must be the one the row maps to (token, PK or a row id).
                if memcmp(k.key.data + 2, p + koff, 4) != 0:
                    raise CodecError(f"row key token does not match the row (table {tid})")
                if inf.has_pk:
                    if k.key.len - 2 != klen or memcmp(k.key.data + 6, p + koff + 4, klen - 4) != 0:
                        raise CodecError(f"row key does not match the row's primary key (table {tid})")
                elif klen != 12:
                    raise CodecError(f"row key of table {tid} is not token + row id")
                if r == 0:
                    per_row = 2 + klen
                    rowbuf_reserve(&sec.keys, <Py_ssize_t>nrows * per_row + 64)
                    per_row = k.ix.len + inf.nidx * klen
                    rowbuf_reserve(&sec.arena, <Py_ssize_t>nrows * per_row + per_row // 4 + 64)
                rowbuf_reserve(&sec.rows, sizeof(_SmRow))
                rec = <_SmRow *>(sec.rows.data + sec.rows.len)
                rec.koff = sec.keys.len
                rec.klen = 2 + klen
                rec.voff = pos
                rec.vlen = vlen
                sec.rows.len += sizeof(_SmRow)
                rowbuf_put(&sec.keys, PyBytes_AS_STRING(inf.prefix), 2)
                rowbuf_put(&sec.keys, p + koff, klen)
                pos += vlen
                rowbuf_reserve(&sec.ents, inf.nidx * sizeof(_SmEnt))
                for i in range(inf.nidx):
                    ent = <_SmEnt *>(sec.ents.data + sec.ents.len)
                    ent.p = NULL
                    ent.n = sec.arena.len     # offset until the arena is final
                    ent.npre = k.ends[i + 1] - k.ends[i]
                    ent.ipos = <int>i
                    ent.check = (ts._tp_idx_unique[i] and not k.nulls[i]
                                 and not (i == inf.pk_index_pos and inf.pk_gives_token))
                    sec.ents.len += sizeof(_SmEnt)
                    rowbuf_put(&sec.arena, k.ix.data + k.ends[i], ent.npre)
                    rowbuf_put(&sec.arena, p + koff, klen)
        finally:
            _st_keys_free(&k)
        sec.nrows = <Py_ssize_t>nrows
        ne = sec.ents.len // sizeof(_SmEnt)
        sec.nents = ne
        ents = <_SmEnt *>sec.ents.data
        # Offsets -> pointers (each entry ends where the next starts), then sort.
        for j in range(ne):
            ents[j].p = sec.arena.data + ents[j].n
        for j in range(ne):
            ents[j].n = (ents[j + 1].p if j + 1 < ne else sec.arena.data + sec.arena.len) - ents[j].p
        if ne > 1:
            _sm_sort_section(&sec.ents, ne)
        sections.append(sec)
    if pos != end:
        raise CodecError("trailing bytes in chunk")
    return sections


cdef inline int _sm_before_found(const unsigned char *fp, Py_ssize_t nf,
                                 const unsigned char *kp, Py_ssize_t nk) noexcept:
    """1 if the found key fp[:nf] sorts before kp[:nk]."""
    cdef Py_ssize_t m = nk if nk < nf else nf
    cdef int c = memcmp(fp, kp, m)
    return c < 0 or (c == 0 and nf < nk)


cdef int _sm_check_section(PartitionStore store, cur, _SmSection sec) except -1:
    """ConstraintError if a row key or unique key of sec exists in the store or repeats in sec.

    Keys are sorted, so one seek answers for every key up to the key it lands on: an import
    into an empty range costs one seek per index, not one per row.
    """
    cdef _TableInfo inf = sec.inf
    cdef Py_ssize_t j, nf = 0, nk
    cdef const unsigned char *fp = NULL
    cdef const unsigned char *kp
    cdef object found = None, keep = None
    cdef bint have = False, more = True
    cdef _SmRow *rw
    cdef _SmEnt *e
    cdef _SmEnt *prev = NULL
    for j in range(sec.nrows):
        rw = sec.row(j)
        kp = sec.keys.data + rw.koff
        nk = rw.klen
        if have and _sm_before_found(fp, nf, kp, nk):
            have = False
        if not have:
            if not more:
                break
            if not cur.set_range(PyBytes_FromStringAndSize(<char *>kp, nk)):
                more = False
                break
            found = cur.key()
            if not PyBytes_CheckExact(found):
                found = bytes(found)
            keep = _as_const_buffer(found, &fp, &nf)
            have = True
        if nf == nk and memcmp(fp, kp, nf) == 0:
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
        if have and _sm_before_found(fp, nf, e.p, e.npre):
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
    return 0


cdef class _SmBuf:
    """A read-only buffer over memory that its owner (_SmItems) keeps alive; repointed per item."""
    cdef const unsigned char *p
    cdef Py_ssize_t n

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, <void *>self.p, self.n, 1, flags)


cdef class _SmItems:
    """Iterator of (key, value) 2-tuples over a _SmKV array, for one Cursor.putmulti call.

    putmulti reads each tuple's two buffers, writes them and drops the tuple before asking
    for the next; so while nobody else holds the tuple or its buffers, the same tuple and
    buffers are handed out again, repointed (the enumerate/zip tuple-reuse idea, with the
    tuple itself never mutated). Anyone keeping an item gets fresh objects from then on.
    Index entries (vp NULL) come as (buffer, b"").
    """
    cdef RowBuf kvs         # _SmKV records
    cdef Py_ssize_t n
    cdef Py_ssize_t i
    cdef object owners      # keeps the chunk and the sections (the memory pointed to) alive
    cdef tuple item         # (kb, vb): a row
    cdef _SmBuf kb
    cdef _SmBuf vb
    cdef tuple eitem        # (eb, b""): an index entry
    cdef _SmBuf eb

    def __cinit__(self):
        rowbuf_init(&self.kvs)

    def __dealloc__(self):
        rowbuf_free(&self.kvs)

    cdef int reserve(self, Py_ssize_t count) except -1:
        return rowbuf_reserve(&self.kvs, count * sizeof(_SmKV))

    cdef inline void add(self, const unsigned char *kp, Py_ssize_t kn, const unsigned char *vp,
                         Py_ssize_t vn) noexcept:
        """Append one pair (room reserved first); vp NULL: an index entry (empty value)."""
        cdef _SmKV *r = (<_SmKV *>self.kvs.data) + self.n
        r.kp = kp
        r.kn = kn
        r.vp = vp
        r.vn = vn
        self.n += 1
        self.kvs.len += sizeof(_SmKV)

    def __iter__(self):
        return self

    def __next__(self):
        cdef _SmKV *r
        if self.i >= self.n:
            raise StopIteration
        r = (<_SmKV *>self.kvs.data) + self.i
        self.i += 1
        if r.vp == NULL:
            if (self.eitem is None or _sm_refcnt(<PyObject *>self.eitem) != 1
                    or _sm_refcnt(<PyObject *>self.eb) != 2):
                self.eb = _SmBuf()
                self.eitem = (self.eb, _EMPTY)
            self.eb.p = r.kp
            self.eb.n = r.kn
            return self.eitem
        if (self.item is None or _sm_refcnt(<PyObject *>self.item) != 1
                or _sm_refcnt(<PyObject *>self.kb) != 2 or _sm_refcnt(<PyObject *>self.vb) != 2):
            self.kb = _SmBuf()
            self.vb = _SmBuf()
            self.item = (self.kb, self.vb)
        self.kb.p = r.kp
        self.kb.n = r.kn
        self.vb.p = r.vp
        self.vb.n = r.vn
        return self.item


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
    cdef _SmItems items
    cdef Py_ssize_t j, total = 0
    if not sections:
        return 0
    items = _SmItems()
    items.owners = (data, sections)
    try:
        cur = store.cursor(txn)
        for s in sections:
            _sm_check_section(store, cur, <_SmSection>s)
        for s in sections:
            total += (<_SmSection>s).nrows + (<_SmSection>s).nents
        items.reserve(total)
        total = 0
        # Rows that land in front of existing keys go in descending order: each then lands
        # just before the previous one, inside the page LMDB's cursor is on, where ascending
        # keys would each fall after the last key of a page and cost LMDB a descent from
        # the root. Rows after every key (an empty store) go in ascending order.
        last = cur.key() if cur.last() else None
        if last is not None and not PyBytes_CheckExact(last):
            last = bytes(last)
        for s in sections:
            sec = <_SmSection>s
            rw = sec.row(0)
            if last is not None and not _sm_before_found(
                    <const unsigned char *>PyBytes_AS_STRING(last), PyBytes_GET_SIZE(last),
                    sec.keys.data + rw.koff, rw.klen):
                for j in range(sec.nrows - 1, -1, -1):
                    rw = sec.row(j)
                    items.add(sec.keys.data + rw.koff, rw.klen, p + rw.voff, rw.vlen)
            else:
                for j in range(sec.nrows):
                    rw = sec.row(j)
                    items.add(sec.keys.data + rw.koff, rw.klen, p + rw.voff, rw.vlen)
            for j in range(sec.nents):
                e = sec.ent(j)
                items.add(e.p, e.n, NULL, 0)
            total += sec.nrows
        # Every key is new (checked above).
        cur.putmulti(items, False, True)
        for s in sections:
            sec = <_SmSection>s
            store.add_count(txn, sec.inf, sec.nrows)
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


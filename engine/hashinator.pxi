# SPDX-License-Identifier: AGPL-3.0-or-later
# MurmurHash3 tokens, CRC32C signatures and the ElasticHashinator ring lookup
# (voltdb-internals.md section 1).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdlib cimport malloc, free

cdef extern from "vdb_murmur3.h" nogil:
    void vdb_murmur3_x64_128(const void *data, size_t len, uint32_t seed, uint64_t out[2])
    int32_t vdb_murmur3_token(const void *data, size_t len)
    int32_t vdb_murmur3_token_int64(int64_t value)

cdef extern from "vdb_crc32c.h" nogil:
    uint32_t vdb_crc32c(uint32_t crc, const unsigned char *data, size_t len)

cdef extern from "vdb_ring.h" nogil:
    int VDB_RING_OK
    size_t vdb_ring_floor_index(const int32_t *tokens, size_t n, int32_t token)
    int32_t vdb_ring_lookup(const int32_t *tokens, const int32_t *partitions, size_t n,
                            int32_t token)
    void vdb_ring_lookup_batch(const int32_t *tokens, const int32_t *partitions, size_t n,
                               const int32_t *hashes, size_t count, int32_t *out)
    int vdb_ring_parse_raw(const unsigned char *buf, size_t len, int32_t *tokens,
                           int32_t *partitions, size_t cap, size_t *n, size_t *bad_index)
    const char *vdb_ring_strerror(int status)
    unsigned vdb_ring_index_bits(size_t n)
    void vdb_ring_index_build(const int32_t *tokens, size_t n, unsigned bits, uint32_t *slots)
    size_t vdb_ring_index_floor(const int32_t *tokens, const uint32_t *slots, unsigned bits,
                                int32_t token)
    void vdb_ring_index_owners(const int32_t *partitions, unsigned bits, const uint32_t *slots,
                               int16_t *owners)
    int32_t vdb_ring_index_lookup(const int32_t *tokens, const int32_t *partitions,
                                  const uint32_t *slots, const int16_t *owners, unsigned bits,
                                  int32_t token)


def murmur3_x64_128(const unsigned char[::1] data not None, uint32_t seed=0):
    """Return (h1, h2) of MurmurHash3_x64_128 over data, as unsigned 64-bit ints."""
    cdef uint64_t out[2]
    cdef size_t n = data.shape[0]
    vdb_murmur3_x64_128(&data[0] if n else NULL, n, seed, out)
    return (out[0], out[1])


def crc32c(const unsigned char[::1] data not None, uint32_t crc=0):
    """CRC-32C (Castagnoli) of data, continuing from crc (0 to start); VoltDB's config signature."""
    cdef size_t n = data.shape[0]
    with nogil:
        crc = vdb_crc32c(crc, &data[0] if n else NULL, n)
    return crc


cdef inline bint _hz_is_int_type(int vtype):
    return (vtype == _T_TINYINT or vtype == _T_SMALLINT or vtype == _T_INTEGER
            or vtype == _T_BIGINT)


cdef inline bytes _hz_key_bytes(object key):
    """key as an immutable bytes object (bytes, bytearray, memoryview...); str is rejected."""
    if type(key) is bytes:
        return <bytes>key
    if isinstance(key, str):
        raise TypeMismatchError("a hash key must be bytes, not str (encode it as UTF-8)")
    try:
        # memoryview() rather than bytes(): bytes(5) would silently make five zero bytes.
        return bytes(memoryview(key))
    except TypeError:
        raise TypeMismatchError(
            f"a hash key must be bytes-like, not {type(key).__name__}") from None


cdef inline int32_t _hz_token_of_key(object key) except? -1:
    cdef bytes b = _hz_key_bytes(key)
    return vdb_murmur3_token(PyBytes_AS_STRING(b), <size_t>PyBytes_GET_SIZE(b))


cdef int32_t _token_of_bytes(const unsigned char[::1] data):
    cdef size_t n = data.shape[0]
    return vdb_murmur3_token(&data[0] if n else NULL, n)


cdef inline int64_t _hz_as_int64(int vtype, object value) except? -1:
    if not isinstance(value, int):
        raise TypeMismatchError(
            f"type code {vtype} needs an int partitioning value, not {type(value).__name__}")
    try:
        return <int64_t>value
    except OverflowError:
        raise ValueOutOfRangeError(
            f"partitioning value {value} does not fit in a signed 64-bit integer") from None


cdef inline bytes _hz_value_bytes(int vtype, object value):
    """The bytes VoltDB hashes for a non-NULL VARCHAR/VARBINARY value."""
    if isinstance(value, str):
        if vtype == _T_VARBINARY:
            raise TypeMismatchError("a VARBINARY partitioning value must be bytes, not str")
        try:
            return (<str>value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise TypeMismatchError(f"VARCHAR value is not encodable as UTF-8: {exc}") from None
    # VoltDB hashes a byte[] raw for either type (TheHashinator.valueToBytes).
    return _hz_key_bytes(value)


cdef int32_t _token_for(int vtype, object value) except? -1:
    """Token of a non-NULL partitioning value of type vtype (VoltDB's hashing rules)."""
    cdef bytes b
    if _hz_is_int_type(vtype):
        return vdb_murmur3_token_int64(_hz_as_int64(vtype, value))
    if vtype == _T_STRING or vtype == _T_VARBINARY:
        if value is None:
            raise TypeMismatchError("NULL has no token (it always goes to partition 0)")
        b = _hz_value_bytes(vtype, value)
        return vdb_murmur3_token(PyBytes_AS_STRING(b), <size_t>PyBytes_GET_SIZE(b))
    raise TypeMismatchError(f"type code {vtype} cannot be a partitioning value")


cdef inline bint _hz_is_null(int vtype, object value) except -1:
    """True when value is NULL for a column of type vtype: None or the type's NULL sentinel."""
    if value is None:
        return True
    if type(value) is not int:
        return False
    # VoltDB reserves each integer type's minimum for NULL; judged by the column type.
    if vtype == _T_TINYINT:
        return value == -128
    if vtype == _T_SMALLINT:
        return value == -32768
    if vtype == _T_INTEGER:
        return value == -2147483648
    if vtype == _T_BIGINT:
        return value == -9223372036854775808
    return False


def token_for(int vtype, value):
    """Token of a non-NULL partitioning value: integers as 8 LE bytes, VARCHAR as UTF-8."""
    return _token_for(vtype, value)


def tokens_for(int vtype, values):
    """[token_for(vtype, v) for v in values], in one call."""
    return [_token_for(vtype, v) for v in values]


def hash_key(key):
    """Token (signed int32) of raw key bytes: upper 32 bits of MurmurHash3_x64_128 h1, seed 0."""
    return _hz_token_of_key(key)


cdef class _HzKeyBatch:
    """Raw keys pinned as bytes with C pointer/length arrays, for hashing without the GIL."""
    cdef list keys
    cdef const char **ptrs
    cdef size_t *lens
    cdef int32_t *tokens
    cdef Py_ssize_t n

    def __cinit__(self, keys, bint none_is_null=False):
        cdef Py_ssize_t i
        cdef object k
        self.keys = list(keys)
        self.n = len(self.keys)
        cdef size_t alloc = <size_t>(self.n if self.n > 0 else 1)
        self.ptrs = <const char **>malloc(alloc * sizeof(const char *))
        self.lens = <size_t *>malloc(alloc * sizeof(size_t))
        self.tokens = <int32_t *>malloc(alloc * sizeof(int32_t))
        if self.ptrs == NULL or self.lens == NULL or self.tokens == NULL:
            raise MemoryError()
        for i in range(self.n):
            k = self.keys[i]
            if k is None and none_is_null:
                self.ptrs[i] = NULL
                self.lens[i] = 0
                continue
            if type(k) is not bytes:
                k = _hz_key_bytes(k)
                # Keep the copy alive (and immutable) for as long as the pointer is used.
                self.keys[i] = k
            self.ptrs[i] = PyBytes_AS_STRING(k)
            self.lens[i] = <size_t>PyBytes_GET_SIZE(k)

    def __dealloc__(self):
        free(self.ptrs)
        free(self.lens)
        free(self.tokens)

    cdef void hash_all(self) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(self.n):
            self.tokens[i] = vdb_murmur3_token(self.ptrs[i], self.lens[i])


def hash_keys(keys):
    """[hash_key(k) for k in keys], hashed in one C loop without the GIL."""
    cdef _HzKeyBatch batch = _HzKeyBatch(keys)
    cdef Py_ssize_t i
    with nogil:
        batch.hash_all()
    return [batch.tokens[i] for i in range(batch.n)]


cdef inline int32_t _hz_as_token(object token) except? -1:
    if not isinstance(token, int):
        raise TypeMismatchError(f"a token must be an int, not {type(token).__name__}")
    if token < -2147483648 or token > 2147483647:
        raise ValueOutOfRangeError(f"token {token} is outside the signed 32-bit ring")
    return <int32_t>token


cdef class Hashinator:
    """An ElasticHashinator ring, built once from raw config bytes, that maps values to partitions.

    The raw config is VoltDB's: big-endian int32 count, then count x (int32 token, int32
    partition); tokens strictly increasing, the first at INT32_MIN, partition ids >= 0.
    """
    cdef int32_t *_tokens
    cdef int32_t *_partitions
    cdef size_t _n
    cdef uint32_t *_slots   # the slice index of the ring (vdb_ring_index_build)
    cdef int16_t *_owners   # each slice's one owner, or -1 (vdb_ring_index_owners)
    cdef unsigned _bits
    cdef bytes _config
    cdef uint32_t _signature
    cdef tuple _partition_ids

    def __cinit__(self, config):
        cdef const unsigned char[::1] view
        cdef size_t length, cap, bad = 0, n = 0
        cdef int status
        if isinstance(config, str) or config is None:
            raise TypeMismatchError("a hashinator config must be bytes")
        self._config = _hz_key_bytes(config)
        view = self._config
        length = <size_t>view.shape[0]
        # Capacity from the length, not the claimed count: a lying count cannot make us allocate.
        cap = (length - 4) // 8 if length >= 4 else 0
        self._tokens = <int32_t *>malloc((cap if cap else 1) * sizeof(int32_t))
        self._partitions = <int32_t *>malloc((cap if cap else 1) * sizeof(int32_t))
        if self._tokens == NULL or self._partitions == NULL:
            raise MemoryError()
        status = vdb_ring_parse_raw(&view[0] if length else NULL, length, self._tokens,
                                    self._partitions, cap, &n, &bad)
        if status != VDB_RING_OK:
            msg = vdb_ring_strerror(status).decode("ascii")
            if n and bad < n:
                msg += f" (entry {bad}: token {self._tokens[bad]}, partition {self._partitions[bad]})"
            raise CodecError(f"bad hashinator config ({length} bytes): {msg}")
        self._n = n
        self._bits = vdb_ring_index_bits(n)
        self._slots = <uint32_t *>malloc(((<size_t>1 << self._bits) + 1) * sizeof(uint32_t))
        self._owners = <int16_t *>malloc((<size_t>1 << self._bits) * sizeof(int16_t))
        if self._slots == NULL or self._owners == NULL:
            raise MemoryError()
        vdb_ring_index_build(self._tokens, n, self._bits, self._slots)
        vdb_ring_index_owners(self._partitions, self._bits, self._slots, self._owners)
        self._signature = vdb_crc32c(0, &view[0], length)
        self._partition_ids = tuple(sorted({self._partitions[i] for i in range(n)}))

    def __dealloc__(self):
        free(self._tokens)
        free(self._partitions)
        free(self._slots)
        free(self._owners)

    def __reduce__(self):
        return (Hashinator, (self._config,))

    def __repr__(self):
        return (f"<Hashinator {self._n} tokens, {len(self._partition_ids)} partitions, "
                f"signature {self._signature}>")

    def __eq__(self, other):
        if not isinstance(other, Hashinator):
            return NotImplemented
        return self._config == (<Hashinator>other)._config

    def __hash__(self):
        return hash(self._config)

    @property
    def partition_count(self):
        """Number of distinct partitions owning at least one token."""
        return len(self._partition_ids)

    @property
    def token_count(self):
        """Number of tokens on the ring."""
        return self._n

    @property
    def config(self):
        """The raw config bytes this ring was built from."""
        return self._config

    @property
    def signature(self):
        """CRC32C of the raw config (VoltDB's computeConfigurationSignature)."""
        return self._signature

    def partitions(self):
        """Sorted list of the partition ids on the ring."""
        return list(self._partition_ids)

    def ring(self):
        """The ring as a list of (token, partition), ascending by token."""
        cdef size_t i
        return [(self._tokens[i], self._partitions[i]) for i in range(self._n)]

    def ranges(self, int partition):
        """Inclusive (start, end) token ranges owned by partition, ascending; adjacent runs merged."""
        cdef size_t i
        cdef list out = []
        cdef int64_t start = 0
        cdef bint open_range = False
        for i in range(self._n):
            if self._partitions[i] == partition:
                if not open_range:
                    start = self._tokens[i]
                    open_range = True
            elif open_range:
                out.append((start, <int64_t>self._tokens[i] - 1))
                open_range = False
        if open_range:
            out.append((start, 2147483647))
        return out

    cdef inline int32_t _lookup(self, int32_t token) noexcept nogil:
        return vdb_ring_index_lookup(self._tokens, self._partitions, self._slots,
                                     self._owners, self._bits, token)

    def partition_for_token(self, token):
        """Partition owning token: the one of the greatest ring token <= token."""
        return self._lookup(_hz_as_token(token))

    def partitions_for_tokens(self, tokens):
        """[partition_for_token(t) for t in tokens], in one call."""
        cdef list seq = list(tokens)
        cdef Py_ssize_t i, n = len(seq)
        cdef int32_t *buf = <int32_t *>malloc((n if n else 1) * sizeof(int32_t))
        if buf == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                buf[i] = _hz_as_token(seq[i])
            with nogil:
                for i in range(n):
                    buf[i] = self._lookup(buf[i])
            return [buf[i] for i in range(n)]
        finally:
            free(buf)

    def partition_for_key(self, key):
        """Partition of raw key bytes (VoltDB hashinateBytes); None is NULL and goes to 0."""
        if key is None:
            return 0
        return self._lookup(_hz_token_of_key(key))

    def partitions_for_keys(self, keys):
        """[partition_for_key(k) for k in keys], hashed and looked up in C without the GIL."""
        cdef _HzKeyBatch batch = _HzKeyBatch(keys, True)
        cdef Py_ssize_t i
        with nogil:
            for i in range(batch.n):
                if batch.ptrs[i] == NULL:
                    batch.tokens[i] = 0
                else:
                    batch.tokens[i] = self._lookup(vdb_murmur3_token(batch.ptrs[i], batch.lens[i]))
        return [batch.tokens[i] for i in range(batch.n)]

    def partition_for_value(self, int vtype, value):
        """Partition of a partitioning value of type vtype; NULL (None or the sentinel) goes to 0."""
        if _hz_is_null(vtype, value):
            return 0
        return self._lookup(_token_for(vtype, value))

    def partitions_for_values(self, int vtype, values):
        """[partition_for_value(vtype, v) for v in values], in one call."""
        cdef list out = []
        cdef object v
        if vtype == _T_STRING or vtype == _T_VARBINARY:
            return self.partitions_for_keys(
                [None if v is None else _hz_value_bytes(vtype, v) for v in values])
        for v in values:
            if _hz_is_null(vtype, v):
                out.append(0)
            else:
                out.append(self._lookup(_token_for(vtype, v)))
        return out

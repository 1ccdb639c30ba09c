# SPDX-License-Identifier: AGPL-3.0-or-later
# MurmurHash3 tokens and the ElasticHashinator ring lookup.

cdef extern from "vdb_murmur3.h" nogil:
    void vdb_murmur3_x64_128(const void *data, size_t len, uint32_t seed, uint64_t out[2])
    int32_t vdb_murmur3_token(const void *data, size_t len)
    int32_t vdb_murmur3_token_int64(int64_t value)


def murmur3_x64_128(const unsigned char[::1] data not None, uint32_t seed=0):
    """Return (h1, h2) of MurmurHash3_x64_128 over data, as unsigned 64-bit ints."""
    cdef uint64_t out[2]
    cdef size_t n = data.shape[0]
    vdb_murmur3_x64_128(&data[0] if n else NULL, n, seed, out)
    return (out[0], out[1])


cdef int32_t _token_of_bytes(const unsigned char[::1] data):
    cdef size_t n = data.shape[0]
    return vdb_murmur3_token(&data[0] if n else NULL, n)


cdef int32_t _token_for(int vtype, object value) except? -1:
    """Token of a non-NULL partitioning value of type vtype (VoltDB's hashing rules)."""
    if vtype == _T_TINYINT or vtype == _T_SMALLINT or vtype == _T_INTEGER or vtype == _T_BIGINT:
        return vdb_murmur3_token_int64(<int64_t>value)
    if vtype == _T_STRING:
        return _token_of_bytes((<str>value).encode("utf-8"))
    if vtype == _T_VARBINARY:
        return _token_of_bytes(bytes(value))
    raise TypeMismatchError(f"type code {vtype} cannot be a partitioning value")


def token_for(int vtype, value):
    """Token of a non-NULL partitioning value: integers as 8 LE bytes, VARCHAR as UTF-8."""
    return _token_for(vtype, value)

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "vdb_ring.h"
#include "vdb_endian.h"

/* The floor index of token within [lo, hi), given tokens[lo] <= token and that every
 * index >= hi holds a token > token (the invariant the search keeps). */
static size_t floor_between(const int32_t *tokens, size_t lo, size_t hi, int32_t token) {
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tokens[mid] <= token) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

size_t vdb_ring_floor_index(const int32_t *tokens, size_t n, int32_t token) {
    VDB_ASSERT(n >= 1 && tokens[0] == INT32_MIN);
    return floor_between(tokens, 0, n, token);
}

int32_t vdb_ring_lookup(const int32_t *tokens, const int32_t *partitions, size_t n,
                        int32_t token) {
    return partitions[vdb_ring_floor_index(tokens, n, token)];
}

void vdb_ring_lookup_batch(const int32_t *tokens, const int32_t *partitions, size_t n,
                           const int32_t *hashes, size_t count, int32_t *out) {
    size_t i;
    for (i = 0; i < count; i++) {
        out[i] = partitions[vdb_ring_floor_index(tokens, n, hashes[i])];
    }
}

/* The unsigned position of a token on the ring: INT32_MIN -> 0, INT32_MAX -> 2^32 - 1
 * (order preserving). */
static uint32_t ring_position(int32_t token) {
    return (uint32_t)token ^ 0x80000000u;
}

unsigned vdb_ring_index_bits(size_t n) {
    unsigned bits = 1;
    while (bits < VDB_RING_INDEX_MAX_BITS && ((size_t)1 << bits) < n) {
        bits++;
    }
    return bits;
}

void vdb_ring_index_build(const int32_t *tokens, size_t n, unsigned bits, uint32_t *slots) {
    size_t slices = (size_t)1 << bits, s, i = 0;
    VDB_ASSERT(n >= 1 && tokens[0] == INT32_MIN && bits >= 1 &&
               bits <= VDB_RING_INDEX_MAX_BITS);
    for (s = 0; s < slices; s++) {
        uint32_t start = (uint32_t)s << (32 - bits);
        /* tokens are strictly increasing, so i only moves forward: O(n + slices) */
        while (i + 1 < n && ring_position(tokens[i + 1]) <= start) {
            i++;
        }
        slots[s] = (uint32_t)i;
    }
    slots[slices] = (uint32_t)(n - 1);
}

size_t vdb_ring_index_floor(const int32_t *tokens, const uint32_t *slots, unsigned bits,
                            int32_t token) {
    size_t s = ring_position(token) >> (32 - bits);
    /* tokens[slots[s]] <= token (the slice's start has its floor there), and the index
     * after slots[s + 1] (the next slice's start's floor) holds a token > token. */
    return floor_between(tokens, slots[s], (size_t)slots[s + 1] + 1, token);
}

void vdb_ring_index_owners(const int32_t *partitions, unsigned bits, const uint32_t *slots,
                           int16_t *owners) {
    size_t slices = (size_t)1 << bits, s, i;
    for (s = 0; s < slices; s++) {
        /* The floors of slice s's tokens lie in [slots[s], slots[s + 1]]: one partition
         * over all of them owns the slice (the last may lie past the slice: -1 is then
         * merely cautious). */
        int32_t p = partitions[slots[s]];
        for (i = (size_t)slots[s] + 1; i <= slots[s + 1] && p >= 0; i++) {
            if (partitions[i] != p) {
                p = -1;
            }
        }
        owners[s] = (int16_t)(p >= 0 && p <= INT16_MAX ? p : -1);
    }
}

int32_t vdb_ring_index_lookup(const int32_t *tokens, const int32_t *partitions,
                              const uint32_t *slots, const int16_t *owners, unsigned bits,
                              int32_t token) {
    int16_t owner = owners[ring_position(token) >> (32 - bits)];
    if (owner >= 0) {
        return owner;
    }
    return partitions[vdb_ring_index_floor(tokens, slots, bits, token)];
}

int vdb_ring_validate(const int32_t *tokens, const int32_t *partitions, size_t n,
                      size_t *bad_index) {
    size_t i;
    if (n == 0) {
        return VDB_RING_EEMPTY;
    }
    for (i = 0; i < n; i++) {
        int status = VDB_RING_OK;
        if (i == 0 && tokens[0] != INT32_MIN) {
            status = VDB_RING_EFIRST;
        } else if (i > 0 && tokens[i] <= tokens[i - 1]) {
            status = VDB_RING_EORDER;
        } else if (partitions[i] < 0) {
            status = VDB_RING_EPARTITION;
        }
        if (status != VDB_RING_OK) {
            if (bad_index != NULL) {
                *bad_index = i;
            }
            return status;
        }
    }
    return VDB_RING_OK;
}

int vdb_ring_raw_count(const unsigned char *buf, size_t len, size_t *count) {
    int32_t c;
    if (len < 4) {
        return VDB_RING_ETRUNCATED;
    }
    c = (int32_t)vdb_load_be32(buf);
    if (c <= 0) {
        return VDB_RING_EEMPTY;
    }
    *count = (size_t)c;
    return VDB_RING_OK;
}

int vdb_ring_parse_raw(const unsigned char *buf, size_t len, int32_t *tokens,
                       int32_t *partitions, size_t cap, size_t *n, size_t *bad_index) {
    size_t count = 0, i;
    int status = vdb_ring_raw_count(buf, len, &count);
    if (status != VDB_RING_OK) {
        return status;
    }
    /* count < 2^31, so 8*count + 4 cannot overflow a 64-bit size_t; on 32-bit size_t the
     * division form keeps the comparison exact. */
    if ((len - 4) / 8 < count) {
        return VDB_RING_ETRUNCATED;
    }
    if ((len - 4) % 8 != 0 || (len - 4) / 8 > count) {
        return VDB_RING_ETRAILING;
    }
    if (count > cap) {
        return VDB_RING_ECAPACITY;
    }
    for (i = 0; i < count; i++) {
        tokens[i] = (int32_t)vdb_load_be32(buf + 4 + 8 * i);
        partitions[i] = (int32_t)vdb_load_be32(buf + 8 + 8 * i);
    }
    *n = count;
    return vdb_ring_validate(tokens, partitions, count, bad_index);
}

const char *vdb_ring_strerror(int status) {
    switch (status) {
    case VDB_RING_OK: return "ok";
    case VDB_RING_ETRUNCATED: return "config is shorter than its entry count says";
    case VDB_RING_ETRAILING: return "config has bytes after its last entry";
    case VDB_RING_EEMPTY: return "entry count is zero or negative";
    case VDB_RING_EFIRST: return "first token is not INT32_MIN (-2147483648)";
    case VDB_RING_EORDER: return "tokens are not strictly increasing";
    case VDB_RING_EPARTITION: return "partition id is negative";
    case VDB_RING_ECAPACITY: return "more entries than the output arrays hold";
    default: return "unknown ring status";
    }
}

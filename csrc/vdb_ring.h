/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef VDB_RING_H
#define VDB_RING_H

#include "vdb_common.h"

/* The ElasticHashinator token ring: n (token, partition) pairs held as two parallel arrays,
 * tokens strictly increasing, tokens[0] == INT32_MIN (VoltDB requires a token at
 * Integer.MIN_VALUE, so every hash has a floor and no wrap-around is needed). */

/* Status codes of the ring functions. */
#define VDB_RING_OK 0
#define VDB_RING_ETRUNCATED 1  /* buffer shorter than its count says, or than 4 bytes */
#define VDB_RING_ETRAILING 2   /* bytes left over after count entries */
#define VDB_RING_EEMPTY 3      /* count <= 0 */
#define VDB_RING_EFIRST 4      /* first token is not INT32_MIN */
#define VDB_RING_EORDER 5      /* tokens not strictly increasing */
#define VDB_RING_EPARTITION 6  /* a partition id is negative */
#define VDB_RING_ECAPACITY 7   /* more entries than the caller's arrays hold */

/* Index of the greatest token <= token (floor). Precondition: n >= 1, tokens sorted and
 * tokens[0] == INT32_MIN; then the result is always in [0, n). */
size_t vdb_ring_floor_index(const int32_t *tokens, size_t n, int32_t token);

/* Partition owning token: partitions[vdb_ring_floor_index(tokens, n, token)].
 * Same preconditions as vdb_ring_floor_index. */
int32_t vdb_ring_lookup(const int32_t *tokens, const int32_t *partitions, size_t n,
                        int32_t token);

/* out[i] = vdb_ring_lookup(tokens, partitions, n, hashes[i]) for i in [0, count).
 * out must not overlap the inputs. */
void vdb_ring_lookup_batch(const int32_t *tokens, const int32_t *partitions, size_t n,
                           const int32_t *hashes, size_t count, int32_t *out);

/* A slice index over a ring, for lookups in O(1) when the tokens are spread out (as
 * VoltDB's are: 16384 evenly spaced). The token space is cut into 2^bits equal slices;
 * slots[s] is the floor index of slice s's first token and slots[2^bits] is n - 1, so a
 * token of slice s has its floor in [slots[s], slots[s + 1]]: usually one entry. */
#define VDB_RING_INDEX_MAX_BITS 16

/* The number of bits of the index of a ring of n tokens: the least b >= 1 with 2^b >= n,
 * at most VDB_RING_INDEX_MAX_BITS. slots then needs 2^bits + 1 entries. */
unsigned vdb_ring_index_bits(size_t n);

/* Fills slots (2^bits + 1 entries) for a valid ring of n tokens. 1 <= bits <= 16. */
void vdb_ring_index_build(const int32_t *tokens, size_t n, unsigned bits, uint32_t *slots);

/* vdb_ring_floor_index through the index built by vdb_ring_index_build (same result). */
size_t vdb_ring_index_floor(const int32_t *tokens, const uint32_t *slots, unsigned bits,
                            int32_t token);

/* Fills owners (2^bits entries) for a ring indexed by vdb_ring_index_build: owners[s] is
 * the partition of every token of slice s when one partition owns the whole slice (and
 * its id fits in an int16_t), else -1. */
void vdb_ring_index_owners(const int32_t *partitions, unsigned bits, const uint32_t *slots,
                           int16_t *owners);

/* The partition owning token (as vdb_ring_lookup), through the index and its owners:
 * one read of owners for most tokens, a search within the slice for the rest. */
int32_t vdb_ring_index_lookup(const int32_t *tokens, const int32_t *partitions,
                              const uint32_t *slots, const int16_t *owners, unsigned bits,
                              int32_t token);

/* Checks the ring invariants on tokens/partitions (n entries). Returns VDB_RING_OK,
 * VDB_RING_EEMPTY, VDB_RING_EFIRST, VDB_RING_EORDER or VDB_RING_EPARTITION; on failure
 * *bad_index (if not NULL) is the offending entry. */
int vdb_ring_validate(const int32_t *tokens, const int32_t *partitions, size_t n,
                      size_t *bad_index);

/* Reads the entry count of a raw config (big-endian int32 at buf[0..4)).
 * Returns VDB_RING_OK and *count, or VDB_RING_ETRUNCATED / VDB_RING_EEMPTY. */
int vdb_ring_raw_count(const unsigned char *buf, size_t len, size_t *count);

/* Parses a raw config: big-endian int32 count, then count x (int32 token, int32 partition),
 * all big-endian (ElasticHashinator.toBytes). Writes the entries to tokens/partitions (each
 * holding cap entries), sets *n, then validates as vdb_ring_validate. The buffer must hold
 * exactly 4 + 8*count bytes. Returns a VDB_RING_* status; *bad_index (if not NULL) names the
 * offending entry for EFIRST/EORDER/EPARTITION. */
int vdb_ring_parse_raw(const unsigned char *buf, size_t len, int32_t *tokens,
                       int32_t *partitions, size_t cap, size_t *n, size_t *bad_index);

/* Short English description of a VDB_RING_* status (static storage). */
const char *vdb_ring_strerror(int status);

#endif

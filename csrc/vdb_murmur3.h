/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef VDB_MURMUR3_H
#define VDB_MURMUR3_H

#include "vdb_common.h"

/* MurmurHash3_x64_128 (Austin Appleby's public-domain algorithm) of len bytes at data.
 * Blocks are read little-endian and tail bytes as unsigned, as VoltDB's Java and C++ copies do.
 * out[0] = h1, out[1] = h2. data may be NULL when len == 0. */
void vdb_murmur3_x64_128(const void *data, size_t len, uint32_t seed, uint64_t out[2]);

/* VoltDB's ElasticHashinator token of a byte string: the signed upper 32 bits of h1, seed 0. */
int32_t vdb_murmur3_token(const void *data, size_t len);

/* Token of a signed 64-bit integer: its 8 little-endian bytes hashed (VoltDB widens every
 * integer type to 8 bytes before hashing). */
int32_t vdb_murmur3_token_int64(int64_t value);

#endif

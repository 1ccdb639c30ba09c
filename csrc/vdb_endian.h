/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Explicit-byte-order loads and stores; every pointer may be unaligned. */
#ifndef VDB_ENDIAN_H
#define VDB_ENDIAN_H

#include "vdb_common.h"

VDB_INLINE uint16_t vdb_load_be16(const unsigned char *p) {
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}
VDB_INLINE uint32_t vdb_load_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
VDB_INLINE uint64_t vdb_load_be64(const unsigned char *p) {
    return ((uint64_t)vdb_load_be32(p) << 32) | vdb_load_be32(p + 4);
}
VDB_INLINE void vdb_store_be16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v;
}
VDB_INLINE void vdb_store_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
VDB_INLINE void vdb_store_be64(unsigned char *p, uint64_t v) {
    vdb_store_be32(p, (uint32_t)(v >> 32)); vdb_store_be32(p + 4, (uint32_t)v);
}
VDB_INLINE uint32_t vdb_load_le32(const unsigned char *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}
VDB_INLINE uint64_t vdb_load_le64(const unsigned char *p) {
    return ((uint64_t)vdb_load_le32(p + 4) << 32) | vdb_load_le32(p);
}
VDB_INLINE void vdb_store_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
VDB_INLINE void vdb_store_le64(unsigned char *p, uint64_t v) {
    vdb_store_le32(p, (uint32_t)v); vdb_store_le32(p + 4, (uint32_t)(v >> 32));
}

#endif

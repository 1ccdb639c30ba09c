/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef VDB_CRC32C_H
#define VDB_CRC32C_H

#include "vdb_common.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), software table.
 * Continues a running CRC: pass crc = 0 to start, and the previous result to append more bytes,
 * so vdb_crc32c(vdb_crc32c(0, a, na), b, nb) == CRC32C of a followed by b. The pre- and
 * post-inversion happen inside (zlib's crc32 convention). data may be NULL when len == 0.
 * VoltDB's hashinator configuration signature (TheHashinator.computeConfigurationSignature,
 * PureJavaCrc32C) is vdb_crc32c(0, raw_config, raw_len). */
uint32_t vdb_crc32c(uint32_t crc, const unsigned char *data, size_t len);

#endif

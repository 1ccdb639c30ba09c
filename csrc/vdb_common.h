/* SPDX-License-Identifier: AGPL-3.0-or-later */
#ifndef VDB_COMMON_H
#define VDB_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define VDB_INLINE static inline

#ifdef VDB_DEBUG
#include <assert.h>
#define VDB_ASSERT(x) assert(x)
#else
#define VDB_ASSERT(x) ((void)0)
#endif

#endif

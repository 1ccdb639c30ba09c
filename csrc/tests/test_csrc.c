/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Standalone test of csrc/: murmur3, token ring, CRC32C. Exit status is the failure count.
 * Murmur3 vectors were computed with the mmh3 package (hash64, seed 0 unless noted); the
 * CRC32C check value of "123456789" is the standard one; the default-ring signatures are
 * from voltdb-internals.md section 1.8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdb_crc32c.h"
#include "vdb_endian.h"
#include "vdb_murmur3.h"
#include "vdb_ring.h"

static int failures = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

typedef struct {
    const char *hex;
    uint64_t h1, h2;
    int32_t token;
} murmur_vector;

static size_t unhex(const char *hex, unsigned char *out) {
    size_t n = strlen(hex) / 2, i;
    for (i = 0; i < n; i++) {
        unsigned int b = 0;
        sscanf(hex + 2 * i, "%2x", &b);
        out[i] = (unsigned char)b;
    }
    return n;
}

static void test_murmur3(void) {
    static const murmur_vector vectors[] = {
        {"", 0x0ULL, 0x0ULL, 0},
        {"68656c6c6f", 0xcbd8a7b341bd9b02ULL, 0x5b1e906a48ae1d19ULL, -874993741},
        {"566f6c744442", 0xde97bc94fd6889c8ULL, 0x792040cf05e4c48fULL, -560481132},
        {"0000000000000000", 0x28df63b7cc57c3cbULL, 0xf2557dfcc4e8fe52ULL, 685728695},
        {"0100000000000000", 0x4403b7fb05c44aULL, 0x3d8acdb4d36d9c06ULL, 4457399},
        {"ffffffffffffffff", 0xa0e4b27a1abaed73ULL, 0x692112c96b4a46afULL, -1595624838},
        {"2a00000000000000", 0xb6acc39989d27df8ULL, 0x24b917fb96f22f80ULL, -1230191719},
        {"000102030405060708090a0b0c0d0e0f", 0x444924b591903f30ULL, 0xab906456762fe845ULL,
         1145644213},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
         0x53dd3e1a32cd094ULL, 0x9ee59aefb4005490ULL, 87938017},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
         0x7d41281bfaba4612ULL, 0x55ac8073a7d6a30bULL, 2101422107},
        {"010203", 0x1a643eef0e1337a9ULL, 0x494e4a403c239a65ULL, 442777327},
        {"68c3a96c6c6f2077c3b6726c64", 0x6b757453f10a333bULL, 0x4432d052f7788963ULL,
         1802859603},
    };
    size_t i;
    unsigned char buf[64];
    uint64_t out[2];
    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t n = unhex(vectors[i].hex, buf);
        vdb_murmur3_x64_128(n ? buf : NULL, n, 0, out);
        CHECK(out[0] == vectors[i].h1);
        CHECK(out[1] == vectors[i].h2);
        CHECK(vdb_murmur3_token(n ? buf : NULL, n) == vectors[i].token);
    }
    /* Integer tokens hash 8 little-endian bytes. */
    CHECK(vdb_murmur3_token_int64(0) == 685728695);
    CHECK(vdb_murmur3_token_int64(1) == 4457399);
    CHECK(vdb_murmur3_token_int64(-1) == -1595624838);
    CHECK(vdb_murmur3_token_int64(42) == -1230191719);
    /* Non-zero seed (mmh3.hash64(b"hello", 42)). */
    vdb_murmur3_x64_128("hello", 5, 42, out);
    CHECK(out[0] == 14175277504640544520ULL);
    CHECK(out[1] == 2536855305735617658ULL);
}

static void test_ring_min_max(void) {
    /* VoltDB's TestMinMaxToken ring: {MIN -> 0, 0 -> 1, MAX -> 2}. */
    static const int32_t tokens[] = {INT32_MIN, 0, INT32_MAX};
    static const int32_t parts[] = {0, 1, 2};
    static const int32_t hashes[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX};
    static const int32_t expect[] = {0, 0, 0, 1, 1, 1, 2};
    int32_t out[7];
    size_t i;
    for (i = 0; i < 7; i++) {
        CHECK(vdb_ring_lookup(tokens, parts, 3, hashes[i]) == expect[i]);
    }
    vdb_ring_lookup_batch(tokens, parts, 3, hashes, 7, out);
    CHECK(memcmp(out, expect, sizeof out) == 0);
    CHECK(vdb_ring_floor_index(tokens, 3, INT32_MAX) == 2);
    CHECK(vdb_ring_floor_index(tokens, 3, INT32_MIN) == 0);
    CHECK(vdb_ring_validate(tokens, parts, 3, NULL) == VDB_RING_OK);
}

static void test_ring_single_and_even(void) {
    static const int32_t one_t[] = {INT32_MIN};
    static const int32_t one_p[] = {7};
    static const int32_t four_t[] = {INT32_MIN, -100, 100, 200};
    static const int32_t four_p[] = {3, 2, 1, 0};
    CHECK(vdb_ring_lookup(one_t, one_p, 1, INT32_MIN) == 7);
    CHECK(vdb_ring_lookup(one_t, one_p, 1, 0) == 7);
    CHECK(vdb_ring_lookup(one_t, one_p, 1, INT32_MAX) == 7);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, -101) == 3);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, -100) == 2);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, 99) == 2);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, 100) == 1);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, 199) == 1);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, 200) == 0);
    CHECK(vdb_ring_lookup(four_t, four_p, 4, INT32_MAX) == 0);
}

/* The slice index gives the same floor as the binary search, for rings of every shape:
 * evenly spaced (VoltDB's), clustered in one slice, random, and of one token. */
static uint32_t lcg_state = 12345u;
static uint32_t lcg(void) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state;
}

static int cmp_int32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* partitions of a test ring: runs of `run` tokens per partition, over 7 partitions */
static int32_t test_parts[20000];

static void check_index_with(const int32_t *tokens, size_t n, size_t run) {
    unsigned bits = vdb_ring_index_bits(n);
    uint32_t *slots = malloc((((size_t)1 << bits) + 1) * sizeof(uint32_t));
    int16_t *owners = malloc(((size_t)1 << bits) * sizeof(int16_t));
    size_t i;
    int d;
    CHECK(slots != NULL && owners != NULL);
    if (slots == NULL || owners == NULL) {
        free(slots);
        free(owners);
        return;
    }
    for (i = 0; i < n; i++) {
        test_parts[i] = (int32_t)((i / run) % 7);
    }
    CHECK(bits >= 1 && bits <= VDB_RING_INDEX_MAX_BITS);
    vdb_ring_index_build(tokens, n, bits, slots);
    vdb_ring_index_owners(test_parts, bits, slots, owners);
    for (i = 0; i < n; i++) {
        for (d = -1; d <= 1; d++) {
            int64_t t = (int64_t)tokens[i] + d;
            if (t >= INT32_MIN && t <= INT32_MAX) {
                CHECK(vdb_ring_index_floor(tokens, slots, bits, (int32_t)t) ==
                      vdb_ring_floor_index(tokens, n, (int32_t)t));
                CHECK(vdb_ring_index_lookup(tokens, test_parts, slots, owners, bits,
                                            (int32_t)t) ==
                      vdb_ring_lookup(tokens, test_parts, n, (int32_t)t));
            }
        }
    }
    for (i = 0; i < 20000; i++) {
        int32_t t = (int32_t)lcg();
        CHECK(vdb_ring_index_floor(tokens, slots, bits, t) ==
              vdb_ring_floor_index(tokens, n, t));
        CHECK(vdb_ring_index_lookup(tokens, test_parts, slots, owners, bits, t) ==
              vdb_ring_lookup(tokens, test_parts, n, t));
    }
    CHECK(vdb_ring_index_floor(tokens, slots, bits, INT32_MAX) == n - 1);
    CHECK(vdb_ring_index_floor(tokens, slots, bits, INT32_MIN) == 0);
    free(slots);
    free(owners);
}

static void check_index(const int32_t *tokens, size_t n) {
    check_index_with(tokens, n, 1);     /* the owner changes at every token */
    check_index_with(tokens, n, 1000);  /* long runs: most slices have one owner */
}

static void test_ring_index(void) {
    static int32_t tokens[20000];
    size_t n, i, k;
    /* one token; VoltDB's 16384 evenly spaced tokens; a ring past 2^16 slices' worth */
    tokens[0] = INT32_MIN;
    check_index(tokens, 1);
    for (i = 0; i < 16384; i++) {
        tokens[i] = (int32_t)((uint32_t)i * 262144u ^ 0x80000000u);
    }
    CHECK(vdb_ring_index_bits(16384) == 14);
    check_index(tokens, 16384);
    CHECK(vdb_ring_index_bits(100000) == VDB_RING_INDEX_MAX_BITS);
    /* clustered: 500 consecutive tokens just above 0, and at both ends of the ring */
    tokens[0] = INT32_MIN;
    for (i = 1; i <= 500; i++) {
        tokens[i] = (int32_t)i;
    }
    check_index(tokens, 501);
    for (i = 1; i <= 300; i++) {
        tokens[i] = INT32_MIN + (int32_t)i;
    }
    for (i = 301; i <= 600; i++) {
        tokens[i] = INT32_MAX - 600 + (int32_t)i;
    }
    check_index(tokens, 601);
    /* random rings of several sizes */
    for (k = 0; k < 6; k++) {
        size_t m = 1;
        n = (size_t)(lcg() % 19999) + 1;
        tokens[0] = INT32_MIN;
        for (i = 1; i < n; i++) {
            tokens[i] = (int32_t)lcg();
        }
        qsort(tokens, n, sizeof(int32_t), cmp_int32);
        for (i = 1; i < n; i++) {  /* drop duplicates and a second INT32_MIN */
            if (tokens[i] != tokens[m - 1]) {
                tokens[m++] = tokens[i];
            }
        }
        check_index(tokens, m);
    }
}

static void test_ring_validate(void) {
    static const int32_t no_min[] = {INT32_MIN + 1, 5};
    static const int32_t dup[] = {INT32_MIN, 5, 5};
    static const int32_t ok3[] = {INT32_MIN, 5, 6};
    static const int32_t parts[] = {0, 1, 2};
    static const int32_t neg[] = {0, -1, 2};
    size_t bad = 99;
    CHECK(vdb_ring_validate(ok3, parts, 0, NULL) == VDB_RING_EEMPTY);
    CHECK(vdb_ring_validate(no_min, parts, 2, &bad) == VDB_RING_EFIRST && bad == 0);
    CHECK(vdb_ring_validate(dup, parts, 3, &bad) == VDB_RING_EORDER && bad == 2);
    CHECK(vdb_ring_validate(ok3, neg, 3, &bad) == VDB_RING_EPARTITION && bad == 1);
    CHECK(strcmp(vdb_ring_strerror(VDB_RING_EORDER), "tokens are not strictly increasing") == 0);
}

static void test_ring_parse_raw(void) {
    /* The example raw config of voltdb-internals.md section 1.7. */
    static const char *hex = "00000003800000000000000000000000000000017fffffff00000002";
    unsigned char buf[64];
    int32_t tokens[4], parts[4];
    size_t n = 0, count = 0, bad = 0, len = unhex(hex, buf);
    CHECK(len == 28);
    CHECK(vdb_ring_raw_count(buf, len, &count) == VDB_RING_OK && count == 3);
    CHECK(vdb_ring_parse_raw(buf, len, tokens, parts, 4, &n, &bad) == VDB_RING_OK);
    CHECK(n == 3 && tokens[0] == INT32_MIN && tokens[1] == 0 && tokens[2] == INT32_MAX);
    CHECK(parts[0] == 0 && parts[1] == 1 && parts[2] == 2);
    CHECK(vdb_ring_parse_raw(buf, len, tokens, parts, 2, &n, &bad) == VDB_RING_ECAPACITY);
    CHECK(vdb_ring_parse_raw(buf, 3, tokens, parts, 4, &n, &bad) == VDB_RING_ETRUNCATED);
    CHECK(vdb_ring_parse_raw(buf, len - 1, tokens, parts, 4, &n, &bad) == VDB_RING_ETRUNCATED);
    buf[len] = 0;
    CHECK(vdb_ring_parse_raw(buf, len + 1, tokens, parts, 4, &n, &bad) == VDB_RING_ETRAILING);
    buf[0] = 0x80; /* negative count */
    CHECK(vdb_ring_parse_raw(buf, len, tokens, parts, 4, &n, &bad) == VDB_RING_EEMPTY);
    buf[0] = 0;
    buf[3] = 0;
    CHECK(vdb_ring_parse_raw(buf, 4, tokens, parts, 4, &n, &bad) == VDB_RING_EEMPTY);
    buf[3] = 3;
    buf[8 + 4 + 3] = 0x01; /* token 1 := 0x00000001 ... still increasing */
    CHECK(vdb_ring_parse_raw(buf, len, tokens, parts, 4, &n, &bad) == VDB_RING_OK);
    buf[20] = 0x00; /* token 2 := 0x00ffffff ... still increasing */
    CHECK(vdb_ring_parse_raw(buf, len, tokens, parts, 4, &n, &bad) == VDB_RING_OK);
    buf[20] = 0x80; /* token 2 := negative, below token 1 */
    CHECK(vdb_ring_parse_raw(buf, len, tokens, parts, 4, &n, &bad) == VDB_RING_EORDER && bad == 2);
}

static void test_crc32c(void) {
    static const unsigned char check[] = "123456789";
    unsigned char zeros[32];
    CHECK(vdb_crc32c(0, check, 9) == 0xE3069283U);
    CHECK(vdb_crc32c(0, NULL, 0) == 0);
    /* Chaining equals one pass. */
    CHECK(vdb_crc32c(vdb_crc32c(0, check, 4), check + 4, 5) == 0xE3069283U);
    /* RFC 3720 B.4: 32 bytes of zeros. */
    memset(zeros, 0, sizeof zeros);
    CHECK(vdb_crc32c(0, zeros, 32) == 0x8A9136AAU);
}

/* Default ring of P=1 and P=2 (Buckets, 16384 tokens, interval 262143): P=2 gives the lowest
 * 8192 tokens to partition 1. Their signatures are regression vectors from section 1.8. */
static void test_default_ring_signatures(void) {
    const size_t count = 16384;
    const size_t len = 4 + 8 * count;
    unsigned char *raw = malloc(len);
    int32_t *tokens = malloc(count * sizeof *tokens);
    int32_t *parts = malloc(count * sizeof *parts);
    size_t i, n = 0, bad = 0;
    int p;
    CHECK(raw != NULL && tokens != NULL && parts != NULL);
    if (raw == NULL || tokens == NULL || parts == NULL) {
        free(raw); free(tokens); free(parts);
        return;
    }
    for (p = 1; p <= 2; p++) {
        vdb_store_be32(raw, (uint32_t)count);
        for (i = 0; i < count; i++) {
            int64_t token = (int64_t)INT32_MIN + (int64_t)i * 262143;
            int32_t part = (p == 2 && i < count / 2) ? 1 : 0;
            vdb_store_be32(raw + 4 + 8 * i, (uint32_t)(int32_t)token);
            vdb_store_be32(raw + 8 + 8 * i, (uint32_t)part);
        }
        CHECK(vdb_crc32c(0, raw, len) == (p == 1 ? 1600123435U : 3577471628U));
        CHECK(vdb_ring_parse_raw(raw, len, tokens, parts, count, &n, &bad) == VDB_RING_OK);
        CHECK(n == count && tokens[count - 1] == 2147205121);
        if (p == 2) {
            /* p1 owns [MIN, -8193], p0 owns [-8192, MAX]. */
            CHECK(vdb_ring_lookup(tokens, parts, n, -8193) == 1);
            CHECK(vdb_ring_lookup(tokens, parts, n, -8192) == 0);
            CHECK(vdb_ring_lookup(tokens, parts, n, INT32_MIN) == 1);
            CHECK(vdb_ring_lookup(tokens, parts, n, INT32_MAX) == 0);
            CHECK(vdb_ring_lookup(tokens, parts, n, vdb_murmur3_token_int64(-1)) == 1);
            CHECK(vdb_ring_lookup(tokens, parts, n, vdb_murmur3_token_int64(0)) == 0);
        }
    }
    free(raw);
    free(tokens);
    free(parts);
}

int main(void) {
    test_murmur3();
    test_ring_min_max();
    test_ring_single_and_even();
    test_ring_index();
    test_ring_validate();
    test_ring_parse_raw();
    test_crc32c();
    test_default_ring_signatures();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
    } else {
        printf("csrc: all checks passed\n");
    }
    return failures ? 1 : 0;
}

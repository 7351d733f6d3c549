/*
 * Generates tests/unit/data/fnv1a_sarama_vectors.json: (key, partition count, partition)
 * computed the way Sarama's NewHashPartitioner (Go Goka's default) does it, written
 * independently of goka/partitioner.py with C fixed-width integer arithmetic:
 *
 *     partition = int32(fnv1a32(key)) % numPartitions   (Go and C99 % truncate toward zero)
 *     if partition < 0 { partition = -partition }
 *
 * Keys are deterministic (xorshift32 pseudo-random bytes of length 0..40, plus ASCII keys),
 * and one key is searched for whose hash is exactly 0x80000000 (INT32_MIN), the corner case
 * of the absolute value.
 *
 * Regenerate:
 *     cc -std=c99 -O2 -Wall -o /tmp/gen tests/unit/data/gen_fnv1a_sarama_vectors.c
 *     /tmp/gen > tests/unit/data/fnv1a_sarama_vectors.json
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t fnv1a32(const unsigned char *data, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 16777619u;
    }
    return h;
}

static int32_t sarama_partition(const unsigned char *key, size_t len, int32_t n) {
    uint32_t h = fnv1a32(key, len);
    int32_t signed_h; /* two's complement reinterpretation, as Go's int32(uint32) */
    memcpy(&signed_h, &h, sizeof h);
    int32_t p = signed_h % n; /* INT32_MIN % n is defined for n >= 1 except n == -1 */
    if (p < 0) p = -p;
    return p;
}

static uint32_t rng = 0x2545F491u;
static uint32_t xorshift32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const int32_t counts[] = {1, 2, 3, 4, 5, 7, 8, 10, 12, 16, 24, 31, 32, 50, 64, 100,
                                 128, 1000, 65537, 2147483647};
#define NCOUNTS (sizeof(counts) / sizeof(counts[0]))

static int first = 1;

static void emit(const unsigned char *key, size_t len, int32_t n) {
    printf("%s\n  {\"key\": \"", first ? "" : ",");
    first = 0;
    for (size_t i = 0; i < len; i++) printf("%02x", key[i]);
    printf("\", \"partitions\": %" PRId32 ", \"hash\": %" PRIu32 ", \"partition\": %" PRId32 "}",
           n, fnv1a32(key, len), sarama_partition(key, len, n));
}

int main(void) {
    unsigned char key[64];
    printf("[");

    /* 300 pseudo-random binary keys, each with one partition count */
    for (int i = 0; i < 300; i++) {
        size_t len = xorshift32() % 41;
        for (size_t j = 0; j < len; j++) key[j] = (unsigned char)xorshift32();
        emit(key, len, counts[xorshift32() % NCOUNTS]);
    }

    /* 100 ASCII keys, each with every partition count of a small set */
    static const int32_t small[] = {1, 3, 8, 10, 24, 100};
    for (int i = 0; i < 100; i++) {
        int len = snprintf((char *)key, sizeof key, "user-%d", i * 7919);
        for (size_t c = 0; c < sizeof small / sizeof small[0]; c++) emit(key, (size_t)len, small[c]);
    }

    /* a key hashing to exactly 0x80000000: FNV-1a's last step is h = (h ^ b) * prime, and
     * 0x80000000 * (odd prime) == 0x80000000 mod 2**32, so any prefix whose hash has the
     * top 24 bits 0x800000, followed by the byte (hash & 0xff), hashes to 0x80000000. */
    for (uint32_t x = 0;; x++) {
        if (x == 94u * 94u * 94u * 94u) {
            fprintf(stderr, "no key hashing to 0x80000000 found\n");
            return 1;
        }
        unsigned char prefix[9] = "goka";
        uint32_t y = x;
        for (int j = 4; j < 8; j++) {
            prefix[j] = (unsigned char)(' ' + 1 + y % 94); /* printable, no space */
            y /= 94;
        }
        uint32_t h = fnv1a32(prefix, 8);
        if ((h >> 8) == 0x800000u) {
            memcpy(key, prefix, 8);
            key[8] = (unsigned char)(h & 0xff);
            for (size_t c = 0; c < NCOUNTS; c++) emit(key, 9, counts[c]);
            break;
        }
    }
    printf("\n]\n");
    return 0;
}

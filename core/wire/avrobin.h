/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avrobin.h: a writer of Avro's binary encoding (Avro 1.11 specification,
 * "Binary Encoding") for records whose schema is known when the code is
 * written: the Results and Events the consumer writes for every task,
 * and a reader of the Tasks it reads (after codec.c's validating walk).
 *
 * DESIGN
 *   Encoding a Result or an Event through avro-c's generic values cost
 *   about a fifth of the consumer's CPU under a backlog (docs/benchmarks.md,
 *   issue 14): every field is a lookup, a wrapped buffer and a virtual
 *   call, and avro_value_write() walks the schema again. The primitives
 *   below write the same bytes directly: an int or a long is its zigzag
 *   value in a little-endian base-128 varint; strings and bytes are a long
 *   length and the bytes; an enum symbol and a union branch are their
 *   index as a long; null is nothing; a record is its fields in order.
 *   (An int written as a long is the same bytes: zigzag of a 32-bit value
 *   is the same number in 32 or 64 bits.)
 *
 *   No bounds checks while writing: the caller reserves the most the
 *   record can take first (SQ_AVROBIN_VARINT_MAX per number, that plus the
 *   length per string), which is cheap to add up and never too small.
 *   Header-only, like list.h: each call is a few instructions, inlined.
 *   tests/unit/test_avrobin.c checks the codec's records, written this
 *   way, byte for byte against avro-c's writer, and the tasks read this
 *   way field by field against avro-c's reader.
 */
#ifndef SQ_AVROBIN_H
#define SQ_AVROBIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** The most bytes a long (or an int, an enum or union index) takes. */
#define SQ_AVROBIN_VARINT_MAX 10

/**
 * @brief Writes @p val as a zigzag varint (Avro int, long, enum index,
 *        union branch, string and bytes lengths).
 * @param p where to write; at least SQ_AVROBIN_VARINT_MAX bytes of room.
 * @returns the byte after the last one written.
 */
static inline unsigned char *sq_avrobin_long(unsigned char *p, int64_t val) {
        /* (val << 1) ^ (val >> 63), without shifting a negative value. */
        uint64_t u = ((uint64_t)val << 1) ^ (0 - ((uint64_t)val >> 63));

        while (u >= 0x80) {
                *p++ = (unsigned char)(u | 0x80);
                u >>= 7;
        }
        *p++ = (unsigned char)u;
        return p;
}

/**
 * @brief Writes Avro bytes (or a string): the length, then the bytes.
 * @param buf borrowed, @p len bytes (may be NULL when @p len is 0).
 * @param p at least @p len + SQ_AVROBIN_VARINT_MAX bytes of room.
 * @returns the byte after the last one written.
 */
static inline unsigned char *sq_avrobin_bytes(unsigned char *p, const void *buf,
                                              size_t len) {
        p = sq_avrobin_long(p, (int64_t)len);
        if (len)
                memcpy(p, buf, len);
        return p + len;
}

/**
 * @brief Writes an Avro string of @p len bytes (no terminating NUL is
 *        written; Avro strings carry their length).
 */
static inline unsigned char *sq_avrobin_string(unsigned char *p,
                                               const char *str, size_t len) {
        return sq_avrobin_bytes(p, str, len);
}

/**
 * @brief Writes a ["null", "string"] union: branch 0 for NULL (and no
 *        value), else branch 1 and the string of @p len bytes.
 */
static inline unsigned char *sq_avrobin_optstring(unsigned char *p,
                                                  const char *str, size_t len) {
        if (!str) {
                *p++ = 0; /* branch 0: zigzag(0) */
                return p;
        }
        *p++ = 2; /* branch 1: zigzag(1) */
        return sq_avrobin_string(p, str, len);
}

/*
 * Reading, for bodies the codec's validating walk has accepted (every
 * length within the record, every varint at most 10 bytes, union and enum
 * indexes in range): the readers below check nothing.
 */

/** @brief Reads a zigzag varint; advances *@p pp past it. */
static inline int64_t sq_avrobin_read_long(const unsigned char **pp) {
        const unsigned char *p = *pp;
        uint64_t u             = 0;
        int shift              = 0;
        unsigned char b;

        do {
                b = *p++;
                u |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
        } while (b & 0x80);
        *pp = p;
        return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/**
 * @brief Reads the length of a string or bytes value and steps over it.
 * @returns the value's first byte (borrowed from the body), its length in
 *          *@p lenp.
 */
static inline const unsigned char *
sq_avrobin_read_span(const unsigned char **pp, size_t *lenp) {
        const unsigned char *start;

        *lenp = (size_t)sq_avrobin_read_long(pp);
        start = *pp;
        *pp += *lenp;
        return start;
}

#endif /* SQ_AVROBIN_H */

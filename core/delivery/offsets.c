/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offsets.c: the per-partition completed-offset tracker and the
 * completed-offset map codec (see offsets.h for the design, the map's
 * format and the invariants).
 */
#include "offsets.h"
#include "hash.h"

#include <string.h>

typedef struct offset_entry_s {
        int64_t offset;
        bool done;
} offset_entry_t;

struct sq_offsets_s {
        offset_entry_t *ring; /* capacity entries, power of two */
        size_t capacity;
        size_t head; /* index of the oldest held entry */
        size_t cnt;  /* entries held */
        size_t in_flight;
        size_t transitions;    /* neighbours held with different status */
        int64_t last_admitted; /* -1 when none since reset */
        /* The previous owner's done intervals, [inh[2i], inh[2i+1]); those
         * from inh_pos on may still lie above last_admitted. */
        int64_t *inh;
        size_t inh_cnt;
        size_t inh_pos;
};

#define RING_INITIAL_CAPACITY 64

sq_offsets_t *sq_offsets_new(void) {
        sq_offsets_t *offsets = sq_calloc(1, sizeof(*offsets));
        offsets->capacity     = RING_INITIAL_CAPACITY;
        offsets->ring = sq_calloc(offsets->capacity, sizeof(*offsets->ring));
        offsets->last_admitted = -1;
        return offsets;
}

void sq_offsets_destroy(sq_offsets_t *offsets) {
        if (!offsets)
                return;
        sq_free(offsets->ring);
        sq_free(offsets->inh);
        sq_free(offsets);
}

static offset_entry_t *entry_at(const sq_offsets_t *offsets, size_t i) {
        return &offsets->ring[(offsets->head + i) & (offsets->capacity - 1)];
}

static void grow(sq_offsets_t *offsets) {
        size_t new_capacity  = offsets->capacity * 2;
        offset_entry_t *ring = sq_calloc(new_capacity, sizeof(*ring));
        size_t i;

        for (i = 0; i < offsets->cnt; i++)
                ring[i] = *entry_at(offsets, i);
        sq_free(offsets->ring);
        offsets->ring     = ring;
        offsets->capacity = new_capacity;
        offsets->head     = 0;
}

/* Is @p offset inside an inherited done interval? Advances past intervals
 * below it: offsets are asked about in increasing order. */
static bool inherited_done(sq_offsets_t *offsets, int64_t offset) {
        while (offsets->inh_pos < offsets->inh_cnt &&
               offsets->inh[2 * offsets->inh_pos + 1] <= offset)
                offsets->inh_pos++;
        return offsets->inh_pos < offsets->inh_cnt &&
               offsets->inh[2 * offsets->inh_pos] <= offset;
}

sq_err_t sq_offsets_admit(sq_offsets_t *offsets, int64_t offset, bool *donep) {
        offset_entry_t *entry;
        bool done;

        if (donep)
                *donep = false;
        if (offset < 0 || offset <= offsets->last_admitted)
                return SQ_ERR_INVALID_ARG;
        done                   = inherited_done(offsets, offset);
        offsets->last_admitted = offset;
        if (done) {
                if (donep)
                        *donep = true;
                if (offsets->cnt == 0)
                        return SQ_OK; /* the prefix simply moves past it */
        }
        if (offsets->cnt == offsets->capacity)
                grow(offsets);
        if (offsets->cnt > 0 &&
            entry_at(offsets, offsets->cnt - 1)->done != done)
                offsets->transitions++;
        entry         = entry_at(offsets, offsets->cnt);
        entry->offset = offset;
        entry->done   = done;
        offsets->cnt++;
        if (!done)
                offsets->in_flight++;
        return SQ_OK;
}

sq_err_t sq_offsets_mark_done(sq_offsets_t *offsets, int64_t offset) {
        size_t lo = 0, hi = offsets->cnt;
        offset_entry_t *entry;

        /* Entries are sorted by offset: binary search. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (entry_at(offsets, mid)->offset < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == offsets->cnt)
                return SQ_ERR_NOT_FOUND;
        entry = entry_at(offsets, lo);
        if (entry->offset != offset || entry->done)
                return SQ_ERR_NOT_FOUND;
        /* Each neighbour pair flips between transition and not. */
        if (lo > 0) {
                if (entry_at(offsets, lo - 1)->done)
                        offsets->transitions--;
                else
                        offsets->transitions++;
        }
        if (lo + 1 < offsets->cnt) {
                if (entry_at(offsets, lo + 1)->done)
                        offsets->transitions--;
                else
                        offsets->transitions++;
        }
        entry->done = true;
        offsets->in_flight--;

        /* Pop the done prefix: what remains starts at the first not done. */
        while (offsets->cnt > 0 && entry_at(offsets, 0)->done) {
                if (offsets->cnt > 1 && !entry_at(offsets, 1)->done)
                        offsets->transitions--;
                offsets->head = (offsets->head + 1) & (offsets->capacity - 1);
                offsets->cnt--;
        }
        return SQ_OK;
}

int64_t sq_offsets_committable(const sq_offsets_t *offsets) {
        if (offsets->cnt > 0)
                return entry_at(offsets, 0)->offset;
        if (offsets->last_admitted < 0)
                return -1;
        return offsets->last_admitted + 1;
}

size_t sq_offsets_in_flight(const sq_offsets_t *offsets) {
        return offsets->in_flight;
}

size_t sq_offsets_held(const sq_offsets_t *offsets) {
        return offsets->cnt;
}

void sq_offsets_reset(sq_offsets_t *offsets) {
        offsets->head          = 0;
        offsets->cnt           = 0;
        offsets->in_flight     = 0;
        offsets->transitions   = 0;
        offsets->last_admitted = -1;
        sq_free(offsets->inh);
        offsets->inh     = NULL;
        offsets->inh_cnt = 0;
        offsets->inh_pos = 0;
}

void sq_offsets_inherit(sq_offsets_t *offsets, const sq_offsets_map_t *map) {
        sq_free(offsets->inh);
        offsets->inh     = NULL;
        offsets->inh_cnt = 0;
        offsets->inh_pos = 0;
        if (!map->ranges_cnt)
                return;
        offsets->inh =
            sq_memdup(map->ranges, map->ranges_cnt * 2 * sizeof(*map->ranges));
        offsets->inh_cnt = map->ranges_cnt;
}

/*
 * The map codec
 */

#define MAP_MAGIC     "SQ1"
#define MAP_MAGIC_LEN 3
#define MAP_CHECK_LEN 4
#define MAP_FIXED_LEN (MAP_MAGIC_LEN + 1 + MAP_CHECK_LEN)
#define VLQ_MAX_LEN   13 /* 63 bits, 5 per character */
#define VLQ_CONTINUE  32

/* The map's digits: the URL-safe base64 alphabet (common.c), which
 * survives every tool that shows commit metadata. */
static char b64(unsigned v) {
        return sq_base64_digit(v, SQ_BASE64_URL);
}

static int b64_value(char c) {
        return sq_base64_value((unsigned char)c, SQ_BASE64_URL);
}

static size_t vlq_len(uint64_t v) {
        size_t n = 1;
        while (v >= 32) {
                v >>= 5;
                n++;
        }
        return n;
}

static size_t vlq_put(char *out, uint64_t v) {
        size_t n = 0;
        do {
                unsigned digit = (unsigned)(v & 31);
                v >>= 5;
                out[n++] = b64(digit | (v ? VLQ_CONTINUE : 0));
        } while (v);
        return n;
}

static void check_put(char *out, const char *s, size_t len) {
        uint32_t h = sq_hash_fnv1a32(s, len, SQ_HASH_FNV32_BASIS) & 0xffffff;
        int i;
        for (i = 0; i < MAP_CHECK_LEN; i++)
                out[i] = b64((h >> (6 * i)) & 63);
}

/* Runs above the base, alternating not done (even index) and done (odd),
 * always ending with a done run. */
typedef struct runs_s {
        int64_t base;
        int64_t *len;
        size_t cnt;
        size_t cap;
} runs_t;

static void runs_push(runs_t *runs, bool done, int64_t len) {
        if (len <= 0)
                return;
        /* runs_build() starts with an empty not-done run: cnt >= 1. */
        if (runs->cnt > 0 && ((runs->cnt - 1) & 1) == (done ? 1u : 0u)) {
                runs->len[runs->cnt - 1] += len;
                return;
        }
        if (runs->cnt == runs->cap) {
                runs->cap = runs->cap ? runs->cap * 2 : 16;
                runs->len =
                    sq_realloc(runs->len, runs->cap * sizeof(*runs->len));
        }
        runs->len[runs->cnt++] = len;
}

/* Builds the runs of the current state; runs->cnt is 0 when there is
 * nothing done above the committable offset. */
static void runs_build(const sq_offsets_t *offsets, runs_t *runs) {
        int64_t cur;
        size_t i;

        memset(runs, 0, sizeof(*runs));
        runs->base = sq_offsets_committable(offsets);
        if (runs->base < 0)
                return;
        /* The first run (not done, from the base) may be empty. */
        runs->cap    = 16;
        runs->len    = sq_malloc(runs->cap * sizeof(*runs->len));
        runs->len[0] = 0;
        runs->cnt    = 1;
        cur          = runs->base;
        for (i = 0; i < offsets->cnt; i++) {
                const offset_entry_t *entry = entry_at(offsets, i);
                /* Offsets never admitted between two admitted ones take
                 * the next admitted one's status. */
                runs_push(runs, entry->done, entry->offset + 1 - cur);
                cur = entry->offset + 1;
        }
        for (i = offsets->inh_pos; i < offsets->inh_cnt; i++) {
                int64_t start = offsets->inh[2 * i],
                        end   = offsets->inh[2 * i + 1];
                if (end <= cur)
                        continue;
                if (start < cur)
                        start = cur;
                runs_push(runs, false, start - cur);
                runs_push(runs, true, end - start);
                cur = end;
        }
        if (runs->cnt & 1) /* ends with a not-done run: drop it */
                runs->cnt--;
        if (runs->cnt < 2)
                runs->cnt = 0;
}

/* Length of the run-length map holding the first @p done_runs done runs. */
static size_t rle_len(const runs_t *runs, size_t done_runs) {
        size_t n =
            MAP_FIXED_LEN + vlq_len((uint64_t)runs->base) + vlq_len(done_runs);
        size_t i;
        for (i = 0; i < 2 * done_runs; i++)
                n += vlq_len((uint64_t)(i ? runs->len[i] - 1 : runs->len[i]));
        return n;
}

static size_t bits_len(const runs_t *runs, int64_t nbits) {
        return MAP_FIXED_LEN + vlq_len((uint64_t)runs->base) +
               vlq_len((uint64_t)nbits) + (size_t)((nbits + 5) / 6);
}

/* The last done offset + 1 - base among the first @p nbits, or 0. */
static int64_t bits_trim(const runs_t *runs, int64_t nbits) {
        int64_t pos = 0, end = 0;
        size_t i;
        for (i = 0; i < runs->cnt && pos < nbits; i++) {
                int64_t run_end = pos + runs->len[i];
                if (i & 1)
                        end = SQ_MIN(run_end, nbits);
                pos = run_end;
        }
        return end;
}

static size_t finish(char *buf, size_t n) {
        check_put(buf + n, buf, n);
        n += MAP_CHECK_LEN;
        buf[n] = '\0';
        return n;
}

static size_t write_rle(const runs_t *runs, size_t done_runs, char *buf) {
        size_t n = 0, i;
        memcpy(buf, MAP_MAGIC "R", MAP_MAGIC_LEN + 1);
        n = MAP_MAGIC_LEN + 1;
        n += vlq_put(buf + n, (uint64_t)runs->base);
        n += vlq_put(buf + n, done_runs);
        for (i = 0; i < 2 * done_runs; i++)
                n += vlq_put(buf + n,
                             (uint64_t)(i ? runs->len[i] - 1 : runs->len[i]));
        return finish(buf, n);
}

static size_t write_bits(const runs_t *runs, int64_t nbits, char *buf) {
        size_t n, nchars = (size_t)((nbits + 5) / 6), i;
        int64_t pos = 0;

        memcpy(buf, MAP_MAGIC "B", MAP_MAGIC_LEN + 1);
        n = MAP_MAGIC_LEN + 1;
        n += vlq_put(buf + n, (uint64_t)runs->base);
        n += vlq_put(buf + n, (uint64_t)nbits);
        {
                unsigned char *sextets = sq_calloc(nchars ? nchars : 1, 1);
                for (i = 0; i < runs->cnt && pos < nbits; i++) {
                        int64_t end = SQ_MIN(pos + runs->len[i], nbits), o;
                        if (i & 1)
                                for (o = pos; o < end; o++)
                                        sextets[o / 6] |=
                                            (unsigned char)(1u << (o % 6));
                        pos += runs->len[i];
                }
                for (i = 0; i < nchars; i++)
                        buf[n++] = b64(sextets[i]);
                sq_free(sextets);
        }
        return finish(buf, n);
}

/* Largest number of bits whose bitset map fits @p budget. */
static int64_t bits_fit(const runs_t *runs, int64_t total, size_t budget) {
        int64_t nbits = total;
        int i;
        /* vlq_len(nbits) shrinks with nbits: two rounds settle it. */
        for (i = 0; i < 3; i++) {
                size_t fixed = MAP_FIXED_LEN + vlq_len((uint64_t)runs->base) +
                               vlq_len((uint64_t)nbits);
                int64_t room;
                if (fixed >= budget)
                        return 0;
                room  = (int64_t)(budget - fixed) * 6;
                nbits = SQ_MIN(total, room);
        }
        return bits_len(runs, nbits) <= budget ? nbits : 0;
}

/* Done offsets among the first @p nbits above the base. */
static int64_t done_upto(const runs_t *runs, int64_t nbits) {
        int64_t pos = 0, done = 0;
        size_t i;
        for (i = 0; i < runs->cnt && pos < nbits; i++) {
                if (i & 1)
                        done += SQ_MIN(pos + runs->len[i], nbits) - pos;
                pos += runs->len[i];
        }
        return done;
}

size_t sq_offsets_map_encode(const sq_offsets_t *offsets, size_t budget,
                             char *buf, size_t *fullp, int64_t *donep) {
        size_t rle_full, bits_full, done_runs = 0, m, rle_n;
        int64_t total = 0, nbits, rle_cover = 0, bits_cover, cover = 0;
        runs_t runs;
        size_t n = 0, i;

        if (fullp)
                *fullp = 0;
        if (budget > 0)
                buf[0] = '\0';
        runs_build(offsets, &runs);
        if (runs.cnt == 0)
                goto done;
        for (i = 0; i < runs.cnt; i++)
                total += runs.len[i];
        rle_full  = rle_len(&runs, runs.cnt / 2);
        bits_full = bits_len(&runs, total);
        if (fullp)
                *fullp = SQ_MIN(rle_full, bits_full);
        if (budget < SQ_OFFSETS_MAP_MIN_BUDGET)
                goto done;

        if (rle_full <= budget || bits_full <= budget) {
                n = rle_full <= bits_full ? write_rle(&runs, runs.cnt / 2, buf)
                                          : write_bits(&runs, total, buf);
                cover = total;
                goto done;
        }
        /* Too big: keep the kind that covers more within the budget. */
        rle_n = MAP_FIXED_LEN + vlq_len((uint64_t)runs.base);
        for (m = 1; m <= runs.cnt / 2; m++) {
                size_t add =
                    vlq_len((uint64_t)(m == 1 ? runs.len[0]
                                              : runs.len[2 * m - 2] - 1)) +
                    vlq_len((uint64_t)runs.len[2 * m - 1] - 1);
                rle_n += add;
                if (rle_n + vlq_len(m) > budget)
                        break;
                done_runs = m;
                rle_cover += runs.len[2 * m - 2] + runs.len[2 * m - 1];
        }
        nbits      = bits_trim(&runs, bits_fit(&runs, total, budget));
        bits_cover = nbits;
        if (done_runs == 0 && bits_cover == 0)
                goto done;
        if (rle_cover >= bits_cover) {
                n     = write_rle(&runs, done_runs, buf);
                cover = rle_cover;
        } else {
                n     = write_bits(&runs, nbits, buf);
                cover = bits_cover;
        }
done:
        if (donep)
                *donep = n > 0 ? done_upto(&runs, cover) : 0;
        sq_free(runs.len);
        return n;
}

size_t sq_offsets_map_bound(const sq_offsets_t *offsets) {
        int64_t base = sq_offsets_committable(offsets), end;
        size_t runs, inh_left;

        if (base < 0)
                return 0;
        inh_left = offsets->inh_cnt - offsets->inh_pos;
        end      = offsets->last_admitted + 1;
        if (inh_left > 0)
                end = SQ_MAX(end, offsets->inh[2 * offsets->inh_cnt - 1]);
        if (offsets->cnt == 0 && inh_left == 0)
                return 0;
        /* Held runs, plus up to two per inherited interval, plus a
         * possible empty first run. */
        runs = offsets->transitions + 1 + 2 * inh_left + 1;
        return SQ_MIN(MAP_FIXED_LEN + VLQ_MAX_LEN + vlq_len(runs) +
                          runs * vlq_len((uint64_t)(end - base)),
                      MAP_FIXED_LEN + VLQ_MAX_LEN +
                          vlq_len((uint64_t)(end - base)) +
                          (size_t)((end - base + 5) / 6));
}

/*
 * Decoding
 */

typedef struct reader_s {
        const char *s;
        size_t len;
        size_t pos;
} reader_t;

static sq_err_t vlq_get(reader_t *rd, const char *what, uint64_t *valp,
                        char *errstr, size_t errstr_size) {
        uint64_t v     = 0;
        unsigned shift = 0;
        size_t start   = rd->pos;

        for (;;) {
                int d;
                if (rd->pos >= rd->len) {
                        sq_errstr_set(errstr, errstr_size,
                                      "%s at byte %zu is cut short", what,
                                      start);
                        return SQ_ERR_DECODE;
                }
                if ((d = b64_value(rd->s[rd->pos])) < 0) {
                        sq_errstr_set(errstr, errstr_size,
                                      "unexpected byte 0x%02x at byte %zu in "
                                      "%s",
                                      (unsigned char)rd->s[rd->pos], rd->pos,
                                      what);
                        return SQ_ERR_DECODE;
                }
                rd->pos++;
                if (shift >= 63 || (shift == 60 && (d & 31) > 7)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "%s at byte %zu overflows 63 bits", what,
                                      start);
                        return SQ_ERR_DECODE;
                }
                v |= (uint64_t)(d & 31) << shift;
                shift += 5;
                if (!(d & VLQ_CONTINUE))
                        break;
        }
        *valp = v;
        return SQ_OK;
}

static void map_add(sq_offsets_map_t *map, size_t *cap, int64_t start,
                    int64_t end) {
        if (map->ranges_cnt > 0 &&
            map->ranges[2 * map->ranges_cnt - 1] == start) {
                map->ranges[2 * map->ranges_cnt - 1] = end;
        } else {
                if (map->ranges_cnt == *cap) {
                        *cap        = *cap ? *cap * 2 : 8;
                        map->ranges = sq_realloc(
                            map->ranges, *cap * 2 * sizeof(*map->ranges));
                }
                map->ranges[2 * map->ranges_cnt]     = start;
                map->ranges[2 * map->ranges_cnt + 1] = end;
                map->ranges_cnt++;
        }
        map->done_cnt += end - start;
}

sq_err_t sq_offsets_map_decode(const char *str, size_t len,
                               sq_offsets_map_t *map, char *errstr,
                               size_t errstr_size) {
        reader_t rd = {str, 0, MAP_MAGIC_LEN + 1};
        uint64_t base, n, i;
        char kind, check[MAP_CHECK_LEN];
        size_t cap = 0;
        int64_t cur;
        sq_err_t err;

        memset(map, 0, sizeof(*map));
        if (len < MAP_MAGIC_LEN || memcmp(str, MAP_MAGIC, MAP_MAGIC_LEN) != 0)
                return SQ_ERR_NOT_FOUND;
        if (len < MAP_FIXED_LEN + 2) {
                sq_errstr_set(errstr, errstr_size,
                              "completed-offset map of %zu bytes is too short",
                              len);
                return SQ_ERR_DECODE;
        }
        check_put(check, str, len - MAP_CHECK_LEN);
        if (memcmp(check, str + len - MAP_CHECK_LEN, MAP_CHECK_LEN) != 0) {
                sq_errstr_set(errstr, errstr_size,
                              "completed-offset map checksum mismatch (%zu "
                              "bytes): corrupt or cut short",
                              len);
                return SQ_ERR_DECODE;
        }
        rd.len = len - MAP_CHECK_LEN;
        kind   = str[MAP_MAGIC_LEN];
        if (kind != 'R' && kind != 'B') {
                sq_errstr_set(errstr, errstr_size,
                              "unknown completed-offset map kind '%c' at byte "
                              "%d",
                              kind >= 32 && kind < 127 ? kind : '?',
                              MAP_MAGIC_LEN);
                return SQ_ERR_DECODE;
        }
        if ((err =
                 vlq_get(&rd, "the base offset", &base, errstr, errstr_size)) ||
            (err = vlq_get(&rd, kind == 'R' ? "the run count" : "the bit count",
                           &n, errstr, errstr_size)))
                goto fail;
        map->base = (int64_t)base;
        cur       = map->base;
        if (kind == 'R') {
                /* Every run takes at least one character. */
                if (n > (rd.len - rd.pos) / 2 || n == 0) {
                        sq_errstr_set(errstr, errstr_size,
                                      "run count %llu does not match the %zu "
                                      "bytes left",
                                      (unsigned long long)n, rd.len - rd.pos);
                        err = SQ_ERR_DECODE;
                        goto fail;
                }
                for (i = 0; i < 2 * n; i++) {
                        uint64_t run;
                        if ((err = vlq_get(&rd, "a run length", &run, errstr,
                                           errstr_size)))
                                goto fail;
                        if (i)
                                run++;
                        if (run > (uint64_t)(INT64_MAX - cur)) {
                                sq_errstr_set(errstr, errstr_size,
                                              "run at byte %zu goes past the "
                                              "largest offset",
                                              rd.pos);
                                err = SQ_ERR_DECODE;
                                goto fail;
                        }
                        if (i & 1)
                                map_add(map, &cap, cur, cur + (int64_t)run);
                        cur += (int64_t)run;
                }
        } else {
                uint64_t nchars = (n + 5) / 6;
                if (n == 0 || nchars != rd.len - rd.pos ||
                    n > (uint64_t)(INT64_MAX - cur)) {
                        sq_errstr_set(errstr, errstr_size,
                                      "bit count %llu does not match the %zu "
                                      "bytes left",
                                      (unsigned long long)n, rd.len - rd.pos);
                        err = SQ_ERR_DECODE;
                        goto fail;
                }
                for (i = 0; i < n; i++) {
                        int d = b64_value(rd.s[rd.pos + i / 6]);
                        if (d < 0) {
                                sq_errstr_set(
                                    errstr, errstr_size,
                                    "unexpected byte 0x%02x at byte "
                                    "%zu in the bitset",
                                    (unsigned char)rd.s[rd.pos + i / 6],
                                    (size_t)(rd.pos + i / 6));
                                err = SQ_ERR_DECODE;
                                goto fail;
                        }
                        if (d & (1 << (i % 6)))
                                map_add(map, &cap, cur + (int64_t)i,
                                        cur + (int64_t)i + 1);
                }
                rd.pos += (size_t)nchars;
        }
        if (rd.pos != rd.len) {
                sq_errstr_set(errstr, errstr_size,
                              "%zu unexpected bytes after the map at byte %zu",
                              rd.len - rd.pos, rd.pos);
                err = SQ_ERR_DECODE;
                goto fail;
        }
        return SQ_OK;

fail:
        sq_offsets_map_clear(map);
        return err;
}

void sq_offsets_map_clear(sq_offsets_map_t *map) {
        sq_free(map->ranges);
        memset(map, 0, sizeof(*map));
}

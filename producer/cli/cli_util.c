/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_util.c: utilities of the swarmq-producer commands: the progress
 * line, a string-keyed counter map, a bounded line reader and random ids.
 *
 * DESIGN
 *   Single-threaded (the CLI's main thread). The progress line is drawn
 *   with "\r" and erased with "\r\033[K" on a terminal only; it redraws at
 *   most 10 times a second so it never costs the hot loop more than a clock
 *   read. The map is open addressing with linear probing and FNV-1a
 *   (core/base/hash.c); it grows at 70 % load and never shrinks (a CLI run
 *   is short).
 */
#include "cli.h"
#include "config.h"
#include "hash.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_INTERVAL_US 100000 /* 10 redraws a second at most */
#define PROGRESS_BAR_WIDTH   10

void sq_progress_init(sq_progress_t *prog, bool want, uint64_t total,
                      const char *unit) {
        memset(prog, 0, sizeof(*prog));
        prog->enabled  = want && isatty(STDERR_FILENO);
        prog->total    = total;
        prog->unit     = unit;
        prog->start_us = sq_clock_us();
}

void sq_progress_update(sq_progress_t *prog, uint64_t done, bool force) {
        char bar[PROGRESS_BAR_WIDTH + 1];
        int64_t now;
        double secs, rate;
        int i, filled;

        if (!prog->enabled)
                return;
        now = sq_clock_us();
        if (!force && prog->drawn && now - prog->last_us < PROGRESS_INTERVAL_US)
                return;
        prog->last_us = now;
        prog->drawn   = true;
        secs          = (double)(now - prog->start_us) / 1e6;
        rate          = secs > 0 ? (double)done / secs : 0;
        if (!prog->total) {
                fprintf(stderr, "\r%" PRIu64 " %s %.0f %s/s\033[K", done,
                        prog->unit, rate, prog->unit);
                return;
        }
        filled =
            (int)(SQ_MIN(done, prog->total) * PROGRESS_BAR_WIDTH / prog->total);
        for (i = 0; i < PROGRESS_BAR_WIDTH; i++)
                bar[i] = i < filled ? '#' : '.';
        bar[PROGRESS_BAR_WIDTH] = '\0';
        fprintf(stderr, "\r[%s] %" PRIu64 "/%" PRIu64 " %d%% %.0f %s/s\033[K",
                bar, done, prog->total,
                (int)(SQ_MIN(done, prog->total) * 100 / prog->total), rate,
                prog->unit);
}

void sq_progress_clear(sq_progress_t *prog) {
        if (!prog->enabled || !prog->drawn)
                return;
        fputs("\r\033[K", stderr);
        prog->drawn = false;
}

/* ------------------------------------------------------------------ */

void sq_strmap_init(sq_strmap_t *map) {
        memset(map, 0, sizeof(*map));
}

void sq_strmap_term(sq_strmap_t *map) {
        size_t i;
        for (i = 0; i < map->cap; i++)
                sq_free(map->slots[i].key);
        sq_free(map->slots);
        memset(map, 0, sizeof(*map));
}

/* The slot holding @p key, or the empty slot where it would go. */
static sq_strmap_entry_t *find_slot(const sq_strmap_t *map, const char *key) {
        size_t i = (size_t)sq_hash_fnv1a64_str(key, SQ_HASH_FNV64_BASIS) &
                   (map->cap - 1);
        while (map->slots[i].key && strcmp(map->slots[i].key, key))
                i = (i + 1) & (map->cap - 1);
        return &map->slots[i];
}

static void grow(sq_strmap_t *map) {
        sq_strmap_entry_t *old = map->slots;
        size_t old_cap         = map->cap, i;

        map->cap   = old_cap ? old_cap * 2 : 64;
        map->slots = sq_calloc(map->cap, sizeof(*map->slots));
        for (i = 0; i < old_cap; i++) {
                if (old[i].key)
                        *find_slot(map, old[i].key) = old[i];
        }
        sq_free(old);
}

uint64_t *sq_strmap_get(const sq_strmap_t *map, const char *key) {
        sq_strmap_entry_t *e;
        if (!map->cap)
                return NULL;
        e = find_slot(map, key);
        return e->key ? &e->value : NULL;
}

uint64_t *sq_strmap_put(sq_strmap_t *map, const char *key, bool *createdp) {
        sq_strmap_entry_t *e;

        if ((map->cnt + 1) * 10 > map->cap * 7)
                grow(map);
        e = find_slot(map, key);
        if (createdp)
                *createdp = !e->key;
        if (!e->key) {
                e->key   = sq_strdup(key);
                e->value = 0;
                map->cnt++;
        }
        return &e->value;
}

/* ------------------------------------------------------------------ */

int sq_cli_read_line(FILE *fp, char **bufp, size_t *capp, size_t *lenp,
                     size_t max) {
        size_t len   = 0;
        bool toolong = false;
        int c;

        errno = 0;
        while ((c = getc_unlocked(fp)) != EOF && c != '\n') {
                if (toolong)
                        continue;
                if (len >= max) {
                        toolong = true;
                        continue;
                }
                if (len + 1 >= *capp) {
                        *capp = *capp ? SQ_MIN(*capp * 2, max + 1) : 256;
                        *bufp = sq_realloc(*bufp, *capp);
                }
                (*bufp)[len++] = (char)c;
        }
        if (c == EOF && ferror(fp))
                return -2;
        if (c == EOF && len == 0 && !toolong)
                return 0;
        if (toolong)
                return -1;
        if (len > 0 && (*bufp)[len - 1] == '\r')
                len--;
        if (!*bufp) {
                *capp = 256;
                *bufp = sq_malloc(*capp);
        }
        (*bufp)[len] = '\0';
        *lenp        = len;
        return 1;
}

char *sq_cli_random_hex(char *buf, size_t nbytes) {
        static const char hex[] = "0123456789abcdef";
        unsigned char b[32];
        size_t i;

        sq_assert(nbytes <= sizeof(b));
        if (RAND_bytes(b, (int)nbytes) != 1) {
                /* Unique enough for a run prefix or a group id. */
                uint64_t x =
                    (uint64_t)sq_clock_us() ^ ((uint64_t)getpid() << 32);
                for (i = 0; i < nbytes; i++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        b[i] = (unsigned char)x;
                }
        }
        for (i = 0; i < nbytes; i++) {
                buf[2 * i]     = hex[b[i] >> 4];
                buf[2 * i + 1] = hex[b[i] & 15];
        }
        buf[2 * nbytes] = '\0';
        return buf;
}

const char *sq_cli_plural(uint64_t n, const char *one, const char *many) {
        return n == 1 ? one : many;
}

char *sq_cli_option_hint(const char *word, const struct option *longopts,
                         char *buf, size_t size) {
        const char *names[128], *best;
        char name[128];
        size_t i, n = 0, len;

        buf[0] = '\0';
        if (strncmp(word, "--", 2))
                return buf; /* a short option: too short to guess */
        word += 2;
        len = strcspn(word, "=");
        if (len >= sizeof(name))
                return buf;
        memcpy(name, word, len);
        name[len] = '\0';
        for (i = 0; longopts[i].name && n < SQ_ARRAY_SIZE(names); i++)
                names[n++] = longopts[i].name;
        best = sq_config_suggest(name, names, n, sizeof(names[0]));
        if (best)
                snprintf(buf, size, " (did you mean --%s?)", best);
        return buf;
}

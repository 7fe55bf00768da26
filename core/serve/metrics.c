/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c: the Prometheus registry and its text exposition renderer
 * (format 0.0.4).
 *
 * DESIGN
 *   The registry is two append-only singly linked lists: families in
 *   registration order, and under each family its children in creation
 *   order. Both lists grow under the registry mutex (sq_metrics_family(),
 *   sq_metrics_child()) and are walked under it by sq_metrics_render();
 *   nothing is removed before sq_metrics_destroy(), so a family or child
 *   pointer stays valid for the registry's life and the hot path
 *   (sq_metric_add/set/observe) touches only the child's atomics, never
 *   the mutex.
 *
 *   Values are doubles stored bit-for-bit in _Atomic uint64_t; an add is a
 *   relaxed compare-and-swap loop, a set a relaxed store. A histogram keeps
 *   one non-cumulative counter per bucket plus one for the implied +Inf
 *   bucket, and its sum as an atomic double. The renderer accumulates the
 *   buckets and prints the total as both le="+Inf" and _count, so those
 *   two always agree in one scrape, as Prometheus requires; the sum may be
 *   a hair ahead or behind, as the header allows.
 *
 *   Collector families have no children: the renderer emits their HELP and
 *   TYPE lines, then drops the registry mutex while it calls the callback
 *   (which may take its owner's locks), and takes it again to continue the
 *   walk. The output is a bounded buffer (RENDER_MAX bytes): past it the
 *   sample line being written is dropped whole, the rest of the scrape is
 *   skipped and a warning is logged, so a scrape is always well-formed.
 *
 *   Process collectors read /proc/self at scrape time (no state, no
 *   thread): the standard process_* names of the Prometheus client
 *   libraries, so dashboards and alerts written for any exporter work, and
 *   the allocator's figures (allocator.h: glibc's mallinfo2(), or
 *   jemalloc's statistics in a binary linked with it) as swarmq_malloc_*:
 *   RSS far above the allocator's in-use bytes means memory held by free
 *   lists (fragmentation), not by live tasks. Reading them may walk every
 *   arena under its lock (milliseconds on a fragmented glibc heap): once
 *   per scrape for the five families, never on a hot path.
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "allocator.h"
#include "log.h"

/* A whole scrape is bounded: past this the render is truncated. */
#define RENDER_MAX (16 * 1024 * 1024)

/* Integers below this print without an exponent (exact in a double). */
#define EXACT_INT_MAX 9007199254740992.0 /* 2^53 */

struct sq_metric_s {
        sq_mfamily_t *family; /* borrowed back-pointer */
        char **label_values;  /* family->label_cnt entries, owned */
        sq_metric_t *next;    /* creation order; set under the mutex */
        /* Counter and gauge: the value as double bits. */
        _Atomic uint64_t value;
        /* Histogram: buckets_cnt + 1 non-cumulative counts (the last is
         * the +Inf bucket) and the sum as double bits. */
        _Atomic uint64_t *buckets;
        _Atomic uint64_t sum;
};

struct sq_mfamily_s {
        sq_metrics_t *metrics; /* borrowed back-pointer */
        char *name;
        char *help;
        sq_metric_type_t type;
        char **label_names; /* label_cnt entries, owned */
        size_t label_cnt;
        double *buckets; /* buckets_cnt ascending upper bounds, owned */
        size_t buckets_cnt;
        sq_metrics_collect_cb_t *cb; /* collector families only */
        void *opaque;
        sq_metric_t *children; /* under metrics->lock */
        sq_metric_t **children_tail;
        sq_mfamily_t *next; /* registration order; set under the mutex */
};

struct sq_metrics_s {
        pthread_mutex_t lock; /* the two lists, never the values */
        sq_mfamily_t *families;
        sq_mfamily_t **families_tail;
};

/* The render buffer handed to collectors as `void *out`. */
typedef struct render_buf_s {
        char *buf;   /* NUL-terminated, sq_malloc()ed */
        size_t len;  /* bytes used, without the NUL */
        size_t size; /* bytes allocated */
        size_t max;  /* hard limit on len */
        size_t mark; /* len at the start of the current line */
        bool truncated;
        /* glibc's allocator figures, read once per render by the first
         * swarmq_malloc_* collector and shared by the others. */
        bool have_alloc_stats;
        sq_alloc_stats_t alloc_stats;
} render_buf_t;

const double sq_metrics_buckets_selection[] = {
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 1e-4, 1e-3, 1e-2,
};
const size_t sq_metrics_buckets_selection_cnt =
    SQ_ARRAY_SIZE(sq_metrics_buckets_selection);

/* 7 s is an alert threshold: keep it a bucket edge. */
const double sq_metrics_buckets_duration[] = {
    1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1, 2.5, 5, 7, 10, 30, 60, 120,
};
const size_t sq_metrics_buckets_duration_cnt =
    SQ_ARRAY_SIZE(sq_metrics_buckets_duration);

/*
 * Atomic doubles
 */

static uint64_t d2u(double d) {
        uint64_t u;
        memcpy(&u, &d, sizeof(u));
        return u;
}

static double u2d(uint64_t u) {
        double d;
        memcpy(&d, &u, sizeof(d));
        return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double delta) {
        uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(
            p, &old, d2u(u2d(old) + delta), memory_order_relaxed,
            memory_order_relaxed))
                ;
}

static double atomic_load_double(const _Atomic uint64_t *p) {
        return u2d(atomic_load_explicit(p, memory_order_relaxed));
}

/*
 * Registry
 */

sq_metrics_t *sq_metrics_new(void) {
        sq_metrics_t *metrics = sq_calloc(1, sizeof(*metrics));

        pthread_mutex_init(&metrics->lock, NULL);
        metrics->families_tail = &metrics->families;
        return metrics;
}

static void strv_free(char **strv, size_t cnt) {
        size_t i;

        if (!strv)
                return;
        for (i = 0; i < cnt; i++)
                sq_free(strv[i]);
        sq_free(strv);
}

static void child_destroy(sq_metric_t *metric) {
        strv_free(metric->label_values, metric->family->label_cnt);
        sq_free((void *)metric->buckets);
        sq_free(metric);
}

static void family_destroy(sq_mfamily_t *family) {
        sq_metric_t *metric, *next;

        for (metric = family->children; metric; metric = next) {
                next = metric->next;
                child_destroy(metric);
        }
        strv_free(family->label_names, family->label_cnt);
        sq_free(family->buckets);
        sq_free(family->name);
        sq_free(family->help);
        sq_free(family);
}

void sq_metrics_destroy(sq_metrics_t *metrics) {
        sq_mfamily_t *family, *next;

        if (!metrics)
                return;
        for (family = metrics->families; family; family = next) {
                next = family->next;
                family_destroy(family);
        }
        pthread_mutex_destroy(&metrics->lock);
        sq_free(metrics);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, no ':' for label names. */
static bool name_valid(const char *name, bool colon_ok) {
        const char *p;

        if (!name || !*name || (*name >= '0' && *name <= '9'))
                return false;
        for (p = name; *p; p++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' ||
                      (colon_ok && c == ':')))
                        return false;
        }
        return true;
}

/* Appends @p family to the registry; the name must be new. */
static void family_append(sq_metrics_t *metrics, sq_mfamily_t *family) {
        sq_mfamily_t *other;

        pthread_mutex_lock(&metrics->lock);
        for (other = metrics->families; other; other = other->next)
                sq_assert(strcmp(other->name, family->name) != 0);
        *metrics->families_tail = family;
        metrics->families_tail  = &family->next;
        pthread_mutex_unlock(&metrics->lock);
}

static sq_metric_t *child_new(sq_mfamily_t *family,
                              const char *const *label_values) {
        sq_metric_t *metric = sq_calloc(1, sizeof(*metric));
        size_t i;

        metric->family = family;
        if (family->label_cnt > 0) {
                metric->label_values =
                    sq_calloc(family->label_cnt, sizeof(char *));
                for (i = 0; i < family->label_cnt; i++)
                        metric->label_values[i] = sq_strdup(label_values[i]);
        }
        if (family->type == SQ_METRIC_HISTOGRAM)
                metric->buckets = sq_calloc(family->buckets_cnt + 1,
                                            sizeof(*metric->buckets));
        atomic_init(&metric->value, d2u(0.0));
        atomic_init(&metric->sum, d2u(0.0));
        return metric;
}

/* Caller holds the registry mutex. */
static void child_append(sq_mfamily_t *family, sq_metric_t *metric) {
        *family->children_tail = metric;
        family->children_tail  = &metric->next;
}

sq_mfamily_t *sq_metrics_family(sq_metrics_t *metrics, const char *name,
                                const char *help, sq_metric_type_t type,
                                const char *const *label_names,
                                const double *buckets, size_t buckets_cnt) {
        sq_mfamily_t *family = sq_calloc(1, sizeof(*family));
        size_t i, cnt = 0;

        sq_assert(name_valid(name, true));
        sq_assert(type == SQ_METRIC_COUNTER || type == SQ_METRIC_GAUGE ||
                  type == SQ_METRIC_HISTOGRAM);
        sq_assert((type == SQ_METRIC_HISTOGRAM) == (buckets_cnt > 0));
        sq_assert(!buckets_cnt || buckets);

        family->metrics       = metrics;
        family->name          = sq_strdup(name);
        family->help          = sq_strdup(help ? help : "");
        family->type          = type;
        family->children_tail = &family->children;

        while (label_names && label_names[cnt])
                cnt++;
        if (cnt > 0) {
                family->label_names = sq_calloc(cnt, sizeof(char *));
                for (i = 0; i < cnt; i++) {
                        sq_assert(name_valid(label_names[i], false));
                        sq_assert(strncmp(label_names[i], "__", 2) != 0);
                        /* "le" is the histogram's own bucket label. */
                        sq_assert(type != SQ_METRIC_HISTOGRAM ||
                                  strcmp(label_names[i], "le") != 0);
                        family->label_names[i] = sq_strdup(label_names[i]);
                }
                family->label_cnt = cnt;
        }
        if (buckets_cnt > 0) {
                for (i = 0; i < buckets_cnt; i++)
                        sq_assert(isfinite(buckets[i]) &&
                                  (i == 0 || buckets[i] > buckets[i - 1]));
                family->buckets = sq_malloc(buckets_cnt * sizeof(double));
                memcpy(family->buckets, buckets, buckets_cnt * sizeof(double));
                family->buckets_cnt = buckets_cnt;
        }
        /* Without labels the one child exists from the start, so the
         * family renders a sample at 0 before its first update. */
        if (cnt == 0)
                child_append(family, child_new(family, NULL));

        family_append(metrics, family);
        return family;
}

sq_metric_t *sq_metrics_child(sq_mfamily_t *family,
                              const char *const *label_values) {
        sq_metrics_t *metrics = family->metrics;
        sq_metric_t *metric;
        size_t i;

        sq_assert(!family->cb);
        if (family->label_cnt == 0)
                return family->children; /* created with the family */

        sq_assert(label_values);
        for (i = 0; i < family->label_cnt; i++)
                sq_assert(label_values[i]);

        pthread_mutex_lock(&metrics->lock);
        for (metric = family->children; metric; metric = metric->next) {
                for (i = 0; i < family->label_cnt; i++)
                        if (strcmp(metric->label_values[i], label_values[i]))
                                break;
                if (i == family->label_cnt)
                        goto done;
        }
        metric = child_new(family, label_values);
        child_append(family, metric);
done:
        pthread_mutex_unlock(&metrics->lock);
        return metric;
}

/*
 * Hot path: atomics only
 */

void sq_metric_add(sq_metric_t *metric, double delta) {
        sq_assert(metric->family->type != SQ_METRIC_HISTOGRAM);
        atomic_add_double(&metric->value, delta);
}

void sq_metric_set(sq_metric_t *metric, double value) {
        sq_assert(metric->family->type != SQ_METRIC_HISTOGRAM);
        atomic_store_explicit(&metric->value, d2u(value), memory_order_relaxed);
}

void sq_metric_observe(sq_metric_t *metric, double value) {
        const sq_mfamily_t *family = metric->family;
        size_t lo = 0, hi = family->buckets_cnt;

        sq_assert(family->type == SQ_METRIC_HISTOGRAM);
        /* First bucket whose bound is >= value ("le"); NaN compares false
         * everywhere and lands in +Inf, like the Go client. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (family->buckets[mid] >= value)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        atomic_fetch_add_explicit(&metric->buckets[lo], 1,
                                  memory_order_relaxed);
        atomic_add_double(&metric->sum, value);
}

/**
 * @brief A counter or gauge's value; for a histogram, its sum.
 */
double sq_metric_value(const sq_metric_t *metric) {
        if (metric->family->type == SQ_METRIC_HISTOGRAM)
                return atomic_load_double(&metric->sum);
        return atomic_load_double(&metric->value);
}

double sq_metric_sum(const sq_metric_t *metric) {
        if (metric->family->type != SQ_METRIC_HISTOGRAM)
                return 0;
        return atomic_load_double(&metric->sum);
}

uint64_t sq_metric_count(const sq_metric_t *metric) {
        const sq_mfamily_t *family = metric->family;
        uint64_t count             = 0;
        size_t i;

        if (family->type != SQ_METRIC_HISTOGRAM)
                return 0;
        for (i = 0; i <= family->buckets_cnt; i++)
                count += atomic_load_explicit(&metric->buckets[i],
                                              memory_order_relaxed);
        return count;
}

/*
 * Render buffer: bounded, line-atomic.
 */

static void buf_init(render_buf_t *out, size_t max) {
        out->size             = 4096;
        out->buf              = sq_malloc(out->size);
        out->buf[0]           = '\0';
        out->len              = 0;
        out->max              = max;
        out->mark             = 0;
        out->truncated        = false;
        out->have_alloc_stats = false;
}

/* Starts a line: an overflow inside it drops the whole line. */
static void buf_line(render_buf_t *out) {
        out->mark = out->len;
}

static void buf_append(render_buf_t *out, const char *data, size_t len) {
        if (out->truncated)
                return;
        if (len > out->max - out->len) {
                out->truncated     = true;
                out->len           = out->mark;
                out->buf[out->len] = '\0';
                SQ_LOG(SQ_LOG_WARNING, "METRICS",
                       "metrics render truncated at %zu bytes (limit %zu): "
                       "the rest of the scrape is dropped",
                       out->len, out->max);
                return;
        }
        if (out->len + len + 1 > out->size) {
                size_t size = out->size;
                while (size < out->len + len + 1)
                        size *= 2;
                if (size > out->max + 1)
                        size = out->max + 1;
                out->buf  = sq_realloc(out->buf, size);
                out->size = size;
        }
        memcpy(out->buf + out->len, data, len);
        out->len += len;
        out->buf[out->len] = '\0';
}

static void buf_puts(render_buf_t *out, const char *str) {
        buf_append(out, str, strlen(str));
}

/* Escapes backslash, newline and, for label values, double quote. */
static void buf_escaped(render_buf_t *out, const char *str, bool quote) {
        const char *p, *run = str;

        for (p = str; *p; p++) {
                const char *esc = NULL;
                if (*p == '\\')
                        esc = "\\\\";
                else if (*p == '\n')
                        esc = "\\n";
                else if (quote && *p == '"')
                        esc = "\\\"";
                if (!esc)
                        continue;
                buf_append(out, run, (size_t)(p - run));
                buf_append(out, esc, 2);
                run = p + 1;
        }
        buf_append(out, run, (size_t)(p - run));
}

/*
 * Numbers as Prometheus parses them: integers below 2^53 plainly, other
 * values with the fewest significant digits from 15 to 17 that read back
 * to the same double ("0.1", "2.5e-07", "0.30000000000000004"; 17 always
 * does), and the special values spelled +Inf, -Inf and NaN.
 */
static void format_value(char *dst, size_t dst_size, double value) {
        int prec;

        if (isnan(value)) {
                sq_strlcpy(dst, "NaN", dst_size);
        } else if (isinf(value)) {
                sq_strlcpy(dst, value > 0 ? "+Inf" : "-Inf", dst_size);
        } else if (value == floor(value) && fabs(value) < EXACT_INT_MAX) {
                snprintf(dst, dst_size, "%" PRId64, (int64_t)value);
        } else {
                for (prec = 15; prec < 17; prec++) {
                        snprintf(dst, dst_size, "%.*g", prec, value);
                        if (strtod(dst, NULL) == value)
                                return;
                }
                snprintf(dst, dst_size, "%.17g", value);
        }
}

static void buf_value(render_buf_t *out, double value) {
        char num[32];

        format_value(num, sizeof(num), value);
        buf_puts(out, num);
}

/* Writes `a="x",b="y"` for a child's labels (nothing when unlabelled). */
static void buf_labels(render_buf_t *out, const sq_metric_t *metric) {
        const sq_mfamily_t *family = metric->family;
        size_t i;

        for (i = 0; i < family->label_cnt; i++) {
                if (i > 0)
                        buf_puts(out, ",");
                buf_puts(out, family->label_names[i]);
                buf_puts(out, "=\"");
                buf_escaped(out, metric->label_values[i], true);
                buf_puts(out, "\"");
        }
}

/* One sample line: name[suffix]{labels[,le="x"]} value */
static void buf_sample(render_buf_t *out, const sq_metric_t *metric,
                       const char *suffix, const char *le, double value) {
        bool braces = metric->family->label_cnt > 0 || le;

        buf_line(out);
        buf_puts(out, metric->family->name);
        buf_puts(out, suffix);
        if (braces)
                buf_puts(out, "{");
        buf_labels(out, metric);
        if (le) {
                if (metric->family->label_cnt > 0)
                        buf_puts(out, ",");
                buf_puts(out, "le=\"");
                buf_puts(out, le);
                buf_puts(out, "\"");
        }
        if (braces)
                buf_puts(out, "}");
        buf_puts(out, " ");
        buf_value(out, value);
        buf_puts(out, "\n");
}

static void render_histogram(render_buf_t *out, const sq_metric_t *metric) {
        const sq_mfamily_t *family = metric->family;
        uint64_t cumulative        = 0;
        char le[32];
        size_t i;

        for (i = 0; i <= family->buckets_cnt; i++) {
                cumulative += atomic_load_explicit(&metric->buckets[i],
                                                   memory_order_relaxed);
                if (i < family->buckets_cnt)
                        format_value(le, sizeof(le), family->buckets[i]);
                else
                        sq_strlcpy(le, "+Inf", sizeof(le));
                buf_sample(out, metric, "_bucket", le, (double)cumulative);
        }
        buf_sample(out, metric, "_sum", NULL, atomic_load_double(&metric->sum));
        buf_sample(out, metric, "_count", NULL, (double)cumulative);
}

static const char *type_name(sq_metric_type_t type) {
        switch (type) {
        case SQ_METRIC_COUNTER:
                return "counter";
        case SQ_METRIC_GAUGE:
                return "gauge";
        case SQ_METRIC_HISTOGRAM:
                return "histogram";
        }
        return "untyped";
}

static void render_header(render_buf_t *out, const sq_mfamily_t *family) {
        buf_line(out);
        buf_puts(out, "# HELP ");
        buf_puts(out, family->name);
        buf_puts(out, " ");
        buf_escaped(out, family->help, false);
        buf_puts(out, "\n");
        buf_line(out);
        buf_puts(out, "# TYPE ");
        buf_puts(out, family->name);
        buf_puts(out, " ");
        buf_puts(out, type_name(family->type));
        buf_puts(out, "\n");
}

static bool family_wanted(const sq_mfamily_t *family, const char *const *names,
                          size_t names_cnt) {
        size_t i;
        if (!names)
                return true;
        for (i = 0; i < names_cnt; i++)
                if (!strcmp(family->name, names[i]))
                        return true;
        return false;
}

/* Renders the families @p names lists, or all of them (NULL). */
static char *render(sq_metrics_t *metrics, const char *const *names,
                    size_t names_cnt, size_t *lenp) {
        render_buf_t out;
        sq_mfamily_t *family;
        sq_metric_t *metric;

        buf_init(&out, RENDER_MAX);
        pthread_mutex_lock(&metrics->lock);
        for (family = metrics->families; family && !out.truncated;
             family = family->next) {
                if (!family_wanted(family, names, names_cnt))
                        continue;
                render_header(&out, family);
                if (family->cb) {
                        /* Families are never removed: @family stays valid
                         * while the callback runs without the mutex. */
                        pthread_mutex_unlock(&metrics->lock);
                        family->cb(family->opaque, metrics, &out);
                        pthread_mutex_lock(&metrics->lock);
                        continue;
                }
                for (metric = family->children; metric; metric = metric->next) {
                        if (family->type == SQ_METRIC_HISTOGRAM)
                                render_histogram(&out, metric);
                        else
                                buf_sample(&out, metric, "", NULL,
                                           atomic_load_double(&metric->value));
                }
        }
        pthread_mutex_unlock(&metrics->lock);
        if (lenp)
                *lenp = out.len;
        return out.buf;
}

/**
 * @brief Renders the registry (see metrics.h).
 * @locks takes the registry mutex, dropped around collect callbacks.
 */
char *sq_metrics_render(sq_metrics_t *metrics, size_t *lenp) {
        return render(metrics, NULL, 0, lenp);
}

char *sq_metrics_render_only(sq_metrics_t *metrics, const char *const *names,
                             size_t names_cnt, size_t *lenp) {
        return render(metrics, names, names_cnt, lenp);
}

/*
 * Collectors
 */

void sq_metrics_collector(sq_metrics_t *metrics, const char *name,
                          const char *help, sq_metric_type_t type,
                          sq_metrics_collect_cb_t *cb, void *opaque) {
        sq_mfamily_t *family = sq_calloc(1, sizeof(*family));

        sq_assert(name_valid(name, true));
        sq_assert(cb);
        family->metrics       = metrics;
        family->name          = sq_strdup(name);
        family->help          = sq_strdup(help ? help : "");
        family->type          = type;
        family->cb            = cb;
        family->opaque        = opaque;
        family->children_tail = &family->children;
        family_append(metrics, family);
}

void sq_metrics_emit(void *out, const char *name, const char *labels,
                     double value) {
        render_buf_t *buf = out;

        buf_line(buf);
        buf_puts(buf, name);
        if (labels && *labels) {
                buf_puts(buf, "{");
                buf_puts(buf, labels);
                buf_puts(buf, "}");
        }
        buf_puts(buf, " ");
        buf_value(buf, value);
        buf_puts(buf, "\n");
}

void sq_metrics_escape_label(char *dst, size_t dst_size, const char *value) {
        size_t len = 0;
        const char *p;

        if (dst_size == 0)
                return;
        for (p = value; *p; p++) {
                char esc = 0;
                if (*p == '\\')
                        esc = '\\';
                else if (*p == '"')
                        esc = '"';
                else if (*p == '\n')
                        esc = 'n';
                /* Never split an escape pair at the truncation point. */
                if (len + (esc ? 2 : 1) > dst_size - 1)
                        break;
                if (esc) {
                        dst[len++] = '\\';
                        dst[len++] = esc;
                } else {
                        dst[len++] = *p;
                }
        }
        dst[len] = '\0';
}

/*
 * Process collectors (Linux /proc, glibc malloc)
 */

/* Reads a small /proc file whole into @p buf (NUL-terminated). */
static ssize_t proc_read(const char *path, char *buf, size_t size) {
        ssize_t len = 0, r;
        int fd;

        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return -1;
        while ((size_t)len < size - 1) {
                r = read(fd, buf + len, size - 1 - (size_t)len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                len += r;
        }
        close(fd);
        buf[len] = '\0';
        return len;
}

sq_err_t sq_metrics_read_rss(uint64_t *rssp) {
        char buf[256], *end;
        unsigned long long size, resident;
        long page = sysconf(_SC_PAGESIZE);

        if (proc_read("/proc/self/statm", buf, sizeof(buf)) <= 0 || page <= 0)
                return SQ_ERR_IO;
        size = strtoull(buf, &end, 10);
        (void)size;
        resident = strtoull(end, &end, 10);
        if (end == buf)
                return SQ_ERR_IO;
        *rssp = (uint64_t)resident * (uint64_t)page;
        return SQ_OK;
}

/* The figures of /proc/self/stat we export (proc(5) field numbers). */
typedef struct proc_stat_s {
        unsigned long long utime;     /* 14, clock ticks */
        unsigned long long stime;     /* 15, clock ticks */
        unsigned long long starttime; /* 22, clock ticks after boot */
        unsigned long long vsize;     /* 23, bytes */
        long long rss;                /* 24, pages */
} proc_stat_t;

static bool proc_stat_read(proc_stat_t *st) {
        char buf[2048], *p, *end;
        int field;

        if (proc_read("/proc/self/stat", buf, sizeof(buf)) <= 0)
                return false;
        /* Field 2 (comm) is in parentheses and may hold spaces or ')':
         * the fields after it start after the last ')'. */
        if (!(p = strrchr(buf, ')')))
                return false;
        p++;
        memset(st, 0, sizeof(*st));
        for (field = 3; field <= 24; field++) {
                unsigned long long v;
                while (*p == ' ')
                        p++;
                if (field == 3) { /* state: one character */
                        if (!*p)
                                return false;
                        p++;
                        continue;
                }
                /* Signed fields (priority, nice) parse too; we skip them. */
                v = strtoull(p, &end, 10);
                if (end == p)
                        return false;
                p = end;
                switch (field) {
                case 14:
                        st->utime = v;
                        break;
                case 15:
                        st->stime = v;
                        break;
                case 22:
                        st->starttime = v;
                        break;
                case 23:
                        st->vsize = v;
                        break;
                case 24:
                        st->rss = (long long)v;
                        break;
                default:
                        break;
                }
        }
        return true;
}

/* The boot time in seconds since the epoch ("btime" in /proc/stat). */
static bool boot_time(double *btimep) {
        char line[256];
        bool at_line_start = true, found = false;
        FILE *fp = fopen("/proc/stat", "re");

        if (!fp)
                return false;
        /* Lines may be longer than the buffer (intr): only a chunk that
         * starts a line can be the btime line. */
        while (fgets(line, sizeof(line), fp)) {
                size_t len = strlen(line);
                if (at_line_start && !strncmp(line, "btime ", 6)) {
                        char *end;
                        unsigned long long v = strtoull(line + 6, &end, 10);
                        if (end != line + 6) {
                                *btimep = (double)v;
                                found   = true;
                        }
                        break;
                }
                at_line_start = len > 0 && line[len - 1] == '\n';
        }
        fclose(fp);
        return found;
}

static void collect_cpu(void *opaque, sq_metrics_t *metrics, void *out) {
        long ticks = sysconf(_SC_CLK_TCK);
        proc_stat_t st;
        (void)opaque;
        (void)metrics;
        if (ticks > 0 && proc_stat_read(&st))
                sq_metrics_emit(out, "process_cpu_seconds_total", NULL,
                                (double)(st.utime + st.stime) / (double)ticks);
}

static void collect_rss(void *opaque, sq_metrics_t *metrics, void *out) {
        uint64_t rss;
        (void)opaque;
        (void)metrics;
        if (sq_metrics_read_rss(&rss) == SQ_OK)
                sq_metrics_emit(out, "process_resident_memory_bytes", NULL,
                                (double)rss);
}

static void collect_vsize(void *opaque, sq_metrics_t *metrics, void *out) {
        proc_stat_t st;
        (void)opaque;
        (void)metrics;
        if (proc_stat_read(&st))
                sq_metrics_emit(out, "process_virtual_memory_bytes", NULL,
                                (double)st.vsize);
}

static void collect_start_time(void *opaque, sq_metrics_t *metrics, void *out) {
        long ticks = sysconf(_SC_CLK_TCK);
        double btime;
        proc_stat_t st;
        (void)opaque;
        (void)metrics;
        if (ticks > 0 && proc_stat_read(&st) && boot_time(&btime))
                sq_metrics_emit(out, "process_start_time_seconds", NULL,
                                btime + (double)st.starttime / (double)ticks);
}

static void collect_open_fds(void *opaque, sq_metrics_t *metrics, void *out) {
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *de;
        long cnt = 0;
        (void)opaque;
        (void)metrics;
        if (!dir)
                return;
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        cnt++;
        closedir(dir);
        /* Not counting the descriptor opendir() itself holds. */
        sq_metrics_emit(out, "process_open_fds", NULL, (double)(cnt - 1));
}

static void collect_max_fds(void *opaque, sq_metrics_t *metrics, void *out) {
        struct rlimit rl;
        (void)opaque;
        (void)metrics;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                sq_metrics_emit(out, "process_max_fds", NULL,
                                (double)rl.rlim_cur);
}

/* One figure of the allocator's (allocator.h) per family; a collector's
 * opaque is the figure. */
typedef enum {
        MALLOC_HEAP,
        MALLOC_MMAP,
        MALLOC_IN_USE,
        MALLOC_FREE,
        MALLOC_RELEASABLE,
        MALLOC_CNT,
} malloc_figure_t;

static const struct {
        const char *name;
        const char *help;
} malloc_families[MALLOC_CNT] = {
    [MALLOC_HEAP]       = {"swarmq_malloc_heap_bytes",
                           "Bytes the allocator got from the system for its "
                                 "heaps (glibc: mallinfo2 arena; jemalloc: "
                                 "stats.mapped)"},
    [MALLOC_MMAP]       = {"swarmq_malloc_mmap_bytes",
                           "Bytes in large allocations served by mmap "
                                 "(glibc: mallinfo2 hblkhd; jemalloc: 0, "
                                 "they are in its heap bytes)"},
    [MALLOC_IN_USE]     = {"swarmq_malloc_in_use_bytes",
                           "Bytes allocated and not freed (glibc: mallinfo2 "
                               "uordblks + hblkhd; jemalloc: "
                               "stats.allocated)"},
    [MALLOC_FREE]       = {"swarmq_malloc_free_bytes",
                           "Bytes free in the allocator's heaps, not returned "
                                 "to the system (glibc: mallinfo2 fordblks; "
                                 "jemalloc: stats.mapped - stats.allocated)"},
    [MALLOC_RELEASABLE] = {"swarmq_malloc_releasable_bytes",
                           "Free bytes the allocator could return to the "
                           "system now (glibc: mallinfo2 keepcost, the top "
                           "of the main heap; jemalloc: its dirty pages)"},
};

/* The allocator's figures may walk its heaps under their locks (glibc's
 * mallinfo2(): a few milliseconds on a fragmented heap): one call per
 * render serves the five families. */
static void collect_malloc(void *opaque, sq_metrics_t *metrics, void *out) {
        malloc_figure_t fig = (malloc_figure_t)(uintptr_t)opaque;
        render_buf_t *buf   = out;
        const sq_alloc_stats_t *st;
        double value = 0;
        (void)metrics;
        if (!buf->have_alloc_stats) {
                sq_allocator_stats(&buf->alloc_stats);
                buf->have_alloc_stats = true;
        }
        st = &buf->alloc_stats;
        switch (fig) {
        case MALLOC_HEAP:
                value = (double)st->heap;
                break;
        case MALLOC_MMAP:
                value = (double)st->mmap;
                break;
        case MALLOC_IN_USE:
                value = (double)st->in_use;
                break;
        case MALLOC_FREE:
                value = (double)st->free;
                break;
        case MALLOC_RELEASABLE:
        case MALLOC_CNT:
                value = (double)st->releasable;
                break;
        }
        sq_metrics_emit(out, malloc_families[fig].name, NULL, value);
}

void sq_metrics_register_process(sq_metrics_t *metrics) {
        int fig;

        sq_metrics_collector(metrics, "process_cpu_seconds_total",
                             "Total user and system CPU time spent in "
                             "seconds",
                             SQ_METRIC_COUNTER, collect_cpu, NULL);
        sq_metrics_collector(metrics, "process_resident_memory_bytes",
                             "Resident memory size in bytes", SQ_METRIC_GAUGE,
                             collect_rss, NULL);
        sq_metrics_collector(metrics, "process_virtual_memory_bytes",
                             "Virtual memory size in bytes", SQ_METRIC_GAUGE,
                             collect_vsize, NULL);
        sq_metrics_collector(metrics, "process_start_time_seconds",
                             "Start time of the process since unix epoch in "
                             "seconds",
                             SQ_METRIC_GAUGE, collect_start_time, NULL);
        sq_metrics_collector(metrics, "process_open_fds",
                             "Number of open file descriptors", SQ_METRIC_GAUGE,
                             collect_open_fds, NULL);
        sq_metrics_collector(metrics, "process_max_fds",
                             "Maximum number of open file descriptors",
                             SQ_METRIC_GAUGE, collect_max_fds, NULL);
        for (fig = 0; fig < MALLOC_CNT; fig++)
                sq_metrics_collector(metrics, malloc_families[fig].name,
                                     malloc_families[fig].help, SQ_METRIC_GAUGE,
                                     collect_malloc, (void *)(uintptr_t)fig);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h: a small Prometheus registry: counters, gauges and histograms
 * with fixed label sets, rendered in the Prometheus text exposition format
 * (version 0.0.4) for GET /metrics.
 *
 * DESIGN
 *   Families are registered at start-up (before threads run) by the module
 *   that owns the numbers; each labelled child is created once and its
 *   handle kept, so the hot path is one relaxed atomic add on a pointer,
 *   with no lookup and no lock. Children may also be added later (a new
 *   agent after a reload) under the registry mutex, which rendering also
 *   takes; updates never take it. Values that live elsewhere (consumer lag
 *   per partition, queue depths) are exported by a collect callback that
 *   the registry calls while rendering and that emits sample lines itself.
 *   Histograms have fixed buckets; observations are atomic per bucket, so a
 *   scrape may see a sum a hair ahead of a count, as Prometheus allows.
 */
#ifndef SQ_METRICS_H
#define SQ_METRICS_H

#include "common.h"

typedef struct sq_metrics_s sq_metrics_t;
typedef struct sq_metric_s sq_metric_t;   /* one labelled child */
typedef struct sq_mfamily_s sq_mfamily_t; /* a named family */

typedef enum {
        SQ_METRIC_COUNTER   = 0,
        SQ_METRIC_GAUGE     = 1,
        SQ_METRIC_HISTOGRAM = 2,
} sq_metric_type_t;

/** @returns a new empty registry (caller owns, sq_metrics_destroy()). */
sq_metrics_t *sq_metrics_new(void);
/** @brief Frees the registry and every family and child; NULL no-op. */
void sq_metrics_destroy(sq_metrics_t *metrics);

/**
 * @brief Registers a family.
 * @param name a valid Prometheus metric name ("swarmq_tasks_total").
 * @param label_names NULL-terminated list of label names, or NULL.
 * @param buckets histogram upper bounds (ascending, +Inf implied), with
 *        @p buckets_cnt entries; NULL/0 for counters and gauges.
 * @returns the family, owned by the registry.
 */
sq_mfamily_t *sq_metrics_family(sq_metrics_t *metrics, const char *name,
                                const char *help, sq_metric_type_t type,
                                const char *const *label_names,
                                const double *buckets, size_t buckets_cnt);

/**
 * @brief Returns the child with these label values, creating it at 0 on
 *        first use. @p label_values has as many entries as the family has
 *        label names (NULL when none).
 * @returns the child, owned by the registry; keep it for the hot path.
 */
sq_metric_t *sq_metrics_child(sq_mfamily_t *family,
                              const char *const *label_values);

/** @brief Counter += @p delta (counters only go up). */
void sq_metric_add(sq_metric_t *metric, double delta);
/** @brief Gauge = @p value. */
void sq_metric_set(sq_metric_t *metric, double value);
/** @brief Histogram observation (in the family's unit, e.g. seconds). */
void sq_metric_observe(sq_metric_t *metric, double value);
/** @returns a counter or gauge's current value (tests, /status). */
double sq_metric_value(const sq_metric_t *metric);
/** @returns a histogram's sum of observations (0 for other types). */
double sq_metric_sum(const sq_metric_t *metric);
/** @returns a histogram's observation count. */
uint64_t sq_metric_count(const sq_metric_t *metric);

/**
 * @brief A collect callback: called while rendering, it appends sample
 *        lines through sq_metrics_emit(). Used for values owned by another
 *        thread (lag per partition) that are read from a snapshot.
 */
typedef void(sq_metrics_collect_cb_t)(void *opaque, sq_metrics_t *metrics,
                                      void *out);
/**
 * @brief Registers a gauge family whose samples come from @p cb.
 */
void sq_metrics_collector(sq_metrics_t *metrics, const char *name,
                          const char *help, sq_metric_type_t type,
                          sq_metrics_collect_cb_t *cb, void *opaque);
/**
 * @brief Emits one sample from inside a collect callback.
 * @param labels pre-rendered label pairs without braces, e.g.
 *        `topic="t",partition="3"` (values escaped by the caller with
 *        sq_metrics_escape_label()), or NULL.
 */
void sq_metrics_emit(void *out, const char *name, const char *labels,
                     double value);

/**
 * @brief Escapes a label value (backslash, double quote, newline) into
 *        @p dst (NUL-terminated, truncated to @p dst_size).
 */
void sq_metrics_escape_label(char *dst, size_t dst_size, const char *value);

/**
 * @brief Renders the whole registry in the text exposition format.
 * @returns a new string (caller owns, sq_free()); *@p lenp its length.
 */
char *sq_metrics_render(sq_metrics_t *metrics, size_t *lenp);

/**
 * @brief Renders only the families named in @p names (@p names_cnt of
 *        them; names not registered are skipped), as the Prometheus
 *        client libraries do for GET /metrics?name[]=...: a probe that
 *        reads two counters does not pay for every collector (the
 *        allocator figures walk the heap).
 * @returns a new string (caller owns, sq_free()); *@p lenp its length.
 */
char *sq_metrics_render_only(sq_metrics_t *metrics, const char *const *names,
                             size_t names_cnt, size_t *lenp);

/**
 * @brief Registers the process collectors: process_cpu_seconds_total,
 *        process_resident_memory_bytes, process_virtual_memory_bytes,
 *        process_start_time_seconds, process_open_fds, process_max_fds
 *        (the names every Prometheus client library uses, read from
 *        /proc at scrape time), and glibc's allocator statistics
 *        (mallinfo2) as swarmq_malloc_*. Where /proc is missing the
 *        families render with no samples.
 */
void sq_metrics_register_process(sq_metrics_t *metrics);

/**
 * @brief Reads this process's resident set size (/proc/self/statm).
 * @param rssp set to the RSS in bytes on success.
 * @returns SQ_OK, or SQ_ERR_IO when /proc cannot be read.
 */
sq_err_t sq_metrics_read_rss(uint64_t *rssp);

/** Bucket sets shared by the daemon's histograms (seconds). */
extern const double sq_metrics_buckets_selection[]; /* 100 ns .. 10 ms */
extern const size_t sq_metrics_buckets_selection_cnt;
extern const double sq_metrics_buckets_duration[]; /* 100 us .. 120 s */
extern const size_t sq_metrics_buckets_duration_cnt;

#endif /* SQ_METRICS_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * variants.c: the feature flags' variants as a label on task metrics, so
 * two strategies rolled out side by side (flag.ranked_selection=50%:
 * ranked vs least-loaded selection) can be compared on a dashboard:
 *   swarmq_flag_tasks_total{flag,variant,status}
 *   swarmq_flag_task_duration_seconds{flag,variant}
 *
 * DESIGN
 *   A task's variant of a flag is the one sq_flags_enabled() gives its id
 *   (stable: the same on every instance and attempt), read again when
 *   the task finishes: a reload that moves a rollout between a task's
 *   selection and its end can count that task under the other variant.
 *   Every flag is labelled while any one is partial, so the variants of
 *   one flag can also be split by another's. The children are looked up
 *   once at start (variants_int.h); see docs/configuration.md, "Feature
 *   flags".
 */
#include "daemon_int.h"

void sq_variants_register(sq_daemon_t *daemon) {
        static const char *const labels[] = {"flag", "variant", "status", NULL};
        static const char *const dur_labels[]    = {"flag", "variant", NULL};
        static const char *const variant_names[] = {"off", "on"};
        sq_variants_t *v                         = &daemon->variants;
        sq_mfamily_t *tasks, *duration;
        int f, on, s;

        tasks = sq_metrics_family(
            daemon->metrics, "swarmq_flag_tasks_total",
            "Finished task attempts by the variant each feature flag gave "
            "them, while a flag is in a partial rollout (A/B comparison)",
            SQ_METRIC_COUNTER, labels, NULL, 0);
        duration = sq_metrics_family(
            daemon->metrics, "swarmq_flag_task_duration_seconds",
            "Task run time by the variant each feature flag gave the task, "
            "while a flag is in a partial rollout",
            SQ_METRIC_HISTOGRAM, dur_labels, sq_metrics_buckets_duration,
            sq_metrics_buckets_duration_cnt);
        for (f = 0; f < SQ_FLAG_CNT; f++) {
                for (on = 0; on < 2; on++) {
                        const char *dv[]   = {sq_flag_name((sq_flag_t)f),
                                              variant_names[on]};
                        v->duration[f][on] = sq_metrics_child(duration, dv);
                        for (s = 0; s < SQ_STATUS_CNT; s++) {
                                const char *tv[] = {
                                    sq_flag_name((sq_flag_t)f),
                                    variant_names[on],
                                    sq_status_name((sq_status_t)s)};
                                v->tasks[f][on][s] =
                                    sq_metrics_child(tasks, tv);
                        }
                }
        }
}

void sq_variants_observe(sq_daemon_t *daemon, const sq_task_t *task,
                         sq_status_t status, double duration_s) {
        sq_variants_t *v = &daemon->variants;
        int bp[SQ_FLAG_CNT], f;
        bool partial = false;

        for (f = 0; f < SQ_FLAG_CNT; f++) {
                bp[f] = sq_flags_rollout(&daemon->flags, (sq_flag_t)f);
                partial |= bp[f] > 0 && bp[f] < SQ_FLAG_ON;
        }
        if (!partial)
                return; /* every task takes the same path: nothing to tell */
        for (f = 0; f < SQ_FLAG_CNT; f++) {
                int on = bp[f] >= SQ_FLAG_ON ||
                         (bp[f] > 0 &&
                          sq_flag_bucket((sq_flag_t)f, task->id) < bp[f]);
                sq_metric_add(v->tasks[f][on][status], 1);
                if (duration_s >= 0)
                        sq_metric_observe(v->duration[f][on], duration_s);
        }
}

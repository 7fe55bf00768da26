/* SPDX-License-Identifier: Apache-2.0 */
/*
 * builtins.h: the in-process task handlers of `builtin` agents: noop,
 * echo, sleep, sha256, fail, cpu. For tests, demos and benchmarks.
 *
 * DESIGN
 *   A handler runs on an executor thread with a run context: the task
 *   (borrowed), a deadline and a cancel flag it must honour if it can run
 *   long (sleep, cpu), and an output buffer it fills (owned by the run
 *   context, freed by its owner). Handlers are pure functions of the task:
 *   no shared state, so any number run at once.
 */
#ifndef SQ_BUILTINS_H
#define SQ_BUILTINS_H

#include <stdatomic.h>

#include "cancels.h"
#include "common.h"
#include "task.h"

/** Hard cap on a builtin's output, like curl's dynbuf maximum. */
#define SQ_BUILTIN_MAX_OUTPUT (1024 * 1024)

typedef struct sq_run_s {
        const sq_task_t *task;     /**< borrowed */
        int64_t deadline_us;       /**< sq_clock_us() deadline; 0 = none */
        const atomic_bool *cancel; /**< set when the instance stops */
        sq_cancels_t *cancels;     /**< task ids cancelled, or NULL */
        unsigned char *output;     /**< sq_malloc()ed, owner frees */
        size_t output_len;
        char error[256]; /**< set on FAILED / TIMED_OUT */
} sq_run_t;

typedef sq_status_t(sq_builtin_fn_t)(sq_run_t *run);

/** @returns the handler named @p name, or NULL. */
sq_builtin_fn_t *sq_builtin_lookup(const char *name);

#endif /* SQ_BUILTINS_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.h: `exec` agents: one child process per task, run from the I/O
 * loop; and the process spawning both exec and pool agents use.
 *
 * DESIGN
 *   A task is submitted from any thread and started on the I/O loop
 *   thread, which forks the child and watches it: the payload is written
 *   to its stdin, stdout and stderr are read into bounded buffers, and a
 *   pidfd tells when it exits. Nothing blocks per child: every pipe is
 *   non-blocking and served by the loop. The done callback runs on the
 *   loop thread exactly once per submitted task.
 *
 *   The child: argv from the config (never a shell), its own process
 *   group, PR_SET_PDEATHSIG(SIGKILL) (tied to the loop thread, which lives
 *   as long as the instance), every signal unblocked and reset to its
 *   default, an environment scrubbed to the allow-list plus the agent's
 *   own variables, optional rlimits and working directory, and every fd
 *   but 0, 1, 2 closed on exec. Exec errors come back through a CLOEXEC
 *   pipe: EOF means the exec succeeded, a record names the failed step.
 *
 *   Ending: when the command exits, what it wrote is read, then whatever
 *   is left of its process group is killed with SIGKILL (before the exit
 *   is reaped, so the group id cannot have been reused). On its deadline
 *   the group gets SIGTERM, then SIGKILL after kill.grace.ms.
 *
 *   Ownership: the task is borrowed until the done callback; the outcome's
 *   buffers pass to the callback.
 */
#ifndef SQ_EXEC_H
#define SQ_EXEC_H

#include <sys/types.h>

#include "common.h"
#include "config.h"
#include "ioloop.h"
#include "task.h"

/** How an out-of-process task ended. */
typedef struct sq_outcome_s {
        sq_status_t status;
        unsigned char *output; /**< sq_malloc()ed or NULL; callee frees */
        size_t output_len;
        char *error;    /**< sq_malloc()ed or NULL; callee frees */
        bool cancelled; /**< cut short by shutdown: not the task's result
                         * (a task cancelled by its id has status
                         * CANCELLED instead) */
} sq_outcome_t;

/**
 * Called on the I/O loop thread, once per submitted task. Takes
 * ownership of @p outcome's output and error (free with sq_free()).
 */
typedef void(sq_outcome_cb_t)(void *opaque, sq_outcome_t *outcome);

/** What to run, built once per agent from its config. */
typedef struct sq_spawn_spec_s sq_spawn_spec_t;

/** A started child process: its pid, pidfd and our ends of its pipes. */
typedef struct sq_child_s {
        pid_t pid;
        int pidfd;
        int in_fd;  /**< its stdin (write end), non-blocking */
        int out_fd; /**< its stdout (read end), non-blocking */
        int err_fd; /**< its stderr (read end), or -1 when inherited */
} sq_child_t;

/**
 * @brief Builds a spawn spec from an exec or pool agent's config and
 *        the environment to take allow-listed variables from.
 * @param envp borrowed (NULL-terminated, like environ).
 * @returns the spec (caller owns, sq_spawn_spec_destroy()).
 */
sq_spawn_spec_t *sq_spawn_spec_new(const sq_agent_conf_t *aconf,
                                   char *const *envp);
/** @brief Frees a spec; NULL is a no-op. */
void sq_spawn_spec_destroy(sq_spawn_spec_t *spec);

/**
 * @brief Starts a child. Blocks only until the child has exec'ed (or
 *        failed to). I/O loop thread (PR_SET_PDEATHSIG follows the
 *        thread that forks).
 * @param capture_stderr give the child a stderr pipe; else it inherits
 *        swarmq's stderr.
 * @returns SQ_OK with @p child filled, or SQ_ERR_IO with @p errstr naming
 *          the program and the step that failed ("cannot execute
 *          \"/bin/x\": No such file or directory").
 */
sq_err_t sq_spawn(const sq_spawn_spec_t *spec, bool capture_stderr,
                  sq_child_t *child, char *errstr, size_t errstr_size);

/**
 * @brief Closes our ends of a child's pipes and its pidfd (idempotent).
 */
void sq_child_close(sq_child_t *child);

/** An exec agent. */
typedef struct sq_exec_s sq_exec_t;

/**
 * @brief Creates an exec agent that runs its children on @p loop.
 * @param name the agent's name, copied (for logs and errors).
 * @param envp borrowed, read now (allow-listed variables).
 */
sq_exec_t *sq_exec_new(sq_ioloop_t *loop, const sq_agent_conf_t *aconf,
                       char *const *envp);

/**
 * @brief Runs @p task in a new child. Any thread; returns at once.
 * @param task borrowed until @p cb is called.
 * @param deadline_us sq_clock_us() deadline, 0 = none.
 * @param cb called on the loop thread when the task ended.
 */
void sq_exec_submit(sq_exec_t *ex, const sq_task_t *task, int64_t deadline_us,
                    sq_outcome_cb_t *cb, void *opaque);

/**
 * @brief Kills every running child (SIGKILL to its group) and waits until
 *        each one's callback ran (with a cancelled outcome); tasks
 *        submitted afterwards are cancelled at once. Not from the loop
 *        thread.
 */
void sq_exec_shutdown(sq_exec_t *ex);

/**
 * @brief Kills the child running the task with id @p task_id, if any
 *        (SIGKILL to its group); its outcome is CANCELLED. Any thread
 *        but after sq_exec_shutdown(); returns at once (the kill happens
 *        on the loop thread).
 * @param task_id borrowed (copied).
 */
void sq_exec_cancel(sq_exec_t *ex, const char *task_id);

/** @brief Frees the agent; shut it down first. NULL is a no-op. */
void sq_exec_destroy(sq_exec_t *ex);

/** @returns children running right now. */
int sq_exec_running(sq_exec_t *ex);

#endif /* SQ_EXEC_H */

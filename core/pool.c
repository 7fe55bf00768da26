/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c: pool agents (see pool.h). Not wired yet: config rejects
 * kind=pool until this lands.
 */
#include "pool.h"

sq_pool_t *sq_pool_new(sq_ioloop_t *loop, const sq_agent_conf_t *aconf,
                       char *const *envp) {
        (void)loop;
        (void)aconf;
        (void)envp;
        sq_assert(!"pool agents are not available yet");
        return NULL;
}
void sq_pool_start(sq_pool_t *pool) {
        (void)pool;
}
void sq_pool_submit(sq_pool_t *pool, const sq_task_t *task, int64_t deadline_us,
                    sq_outcome_cb_t *cb, void *opaque) {
        (void)pool;
        (void)task;
        (void)deadline_us;
        (void)cb;
        (void)opaque;
}
void sq_pool_shutdown(sq_pool_t *pool) {
        (void)pool;
}
void sq_pool_destroy(sq_pool_t *pool) {
        (void)pool;
}
void sq_pool_stats(sq_pool_t *pool, sq_pool_stats_t *stats) {
        (void)pool;
        (void)stats;
}

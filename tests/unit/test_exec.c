/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_exec.c: exec agents through a real I/O loop and real children,
 * table-driven: the outcome (status, output bytes, error sentence) of a
 * command with a payload; the scrubbed environment, the rlimits and the
 * working directory the child sees; a missing program and a bad working
 * directory named in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "ioloop.h"

typedef struct waiter_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
        sq_outcome_t outcome;
} waiter_t;

static void done_cb(void *opaque, sq_outcome_t *outcome) {
        waiter_t *w = opaque;
        pthread_mutex_lock(&w->lock);
        w->outcome = *outcome; /* takes the buffers */
        w->done    = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

/* Runs one task on an exec agent made of @p argv and @p settings. */
static void run_one(char **argv, const char *payload, int64_t output_max,
                    const char *workdir, int64_t nofile, sq_outcome_t *out) {
        char *allow[] = {"PATH", NULL};
        sq_kv_t env[] = {{"GREETING", "hello world"}};
        sq_agent_conf_t aconf;
        char *envp[] = {"PATH=/usr/bin:/bin", "SECRET_TOKEN=s3cret",
                        "HOME=/root", NULL};
        char errstr[256];
        sq_ioloop_t *loop;
        sq_task_t *task;
        sq_exec_t *ex;
        waiter_t w;
        size_t n = 0;

        while (argv[n])
                n++;
        memset(&aconf, 0, sizeof(aconf));
        aconf.name             = "t";
        aconf.kind             = SQ_AGENT_EXEC;
        aconf.command          = argv;
        aconf.command_cnt      = n;
        aconf.env_allow        = allow;
        aconf.env_allow_cnt    = 1;
        aconf.env              = env;
        aconf.env_cnt          = 1;
        aconf.kill_grace_ms    = 100;
        aconf.output_max_bytes = output_max;
        aconf.stderr_max_bytes = 64;
        aconf.workdir          = (char *)workdir;
        aconf.limit_nofile     = nofile;

        task              = sq_task_new();
        task->id          = sq_strdup("t-1");
        task->type        = sq_strdup("t");
        task->payload     = (unsigned char *)sq_strdup(payload);
        task->payload_len = strlen(payload);

        memset(&w, 0, sizeof(w));
        pthread_mutex_init(&w.lock, NULL);
        pthread_cond_init(&w.cond, NULL);
        loop = sq_ioloop_new(errstr, sizeof(errstr));
        assert_non_null(loop);
        assert_int_equal(sq_ioloop_start(loop, errstr, sizeof(errstr)), SQ_OK);
        ex = sq_exec_new(loop, &aconf, envp);
        sq_exec_submit(ex, task, 0, done_cb, &w);
        pthread_mutex_lock(&w.lock);
        while (!w.done)
                pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        sq_exec_shutdown(ex);
        sq_ioloop_stop(loop);
        sq_exec_destroy(ex);
        sq_ioloop_destroy(loop);
        sq_task_destroy(task);
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.lock);
        *out = w.outcome;
}

static void outcome_free(sq_outcome_t *out) {
        sq_free(out->output);
        sq_free(out->error);
}

static const struct {
        const char *argv[6];
        const char *payload;
        int64_t output_max;
        const char *workdir;
        int64_t nofile;
        sq_status_t status;
        const char *output; /* exact, NULL = empty */
        const char *error;  /* exact, NULL = none */
} cases[] = {
    {{"tr", "a-z", "A-Z", NULL},
     "hello",
     1024,
     NULL,
     0,
     SQ_STATUS_SUCCEEDED,
     "HELLO",
     NULL},
    {{"/bin/sh", "-c", "echo partial; echo 'bad input' >&2; exit 3", NULL},
     "",
     1024,
     NULL,
     0,
     SQ_STATUS_FAILED,
     "partial\n",
     "exited with status 3: bad input"},
    {{"/bin/sh", "-c", "kill -9 $$", NULL},
     "",
     1024,
     NULL,
     0,
     SQ_STATUS_FAILED,
     NULL,
     "killed by signal 9 (Killed)"},
    /* Only PATH inherited, plus the agent's own variable. */
    {{"/bin/sh", "-c", "env | sort", NULL},
     "",
     1024,
     "/",
     0,
     SQ_STATUS_SUCCEEDED,
     "GREETING=hello world\nPATH=/usr/bin:/bin\nPWD=/\n",
     NULL},
    {{"/bin/sh", "-c", "head -c 50 /dev/zero | tr '\\0' x", NULL},
     "",
     10,
     NULL,
     0,
     SQ_STATUS_SUCCEEDED,
     "xxxxxxxxxx",
     "output truncated to 10 bytes (agent.t.output.max.bytes; 40 bytes "
     "dropped)"},
    {{"/bin/sh", "-c", "ulimit -n", NULL},
     "",
     1024,
     NULL,
     64,
     SQ_STATUS_SUCCEEDED,
     "64\n",
     NULL},
    {{"/nonexistent/prog", "-x", NULL},
     "",
     1024,
     NULL,
     0,
     SQ_STATUS_FAILED,
     NULL,
     "cannot execute \"/nonexistent/prog\": No such file or directory"},
    {{"sq-no-such-program", NULL},
     "",
     1024,
     NULL,
     0,
     SQ_STATUS_FAILED,
     NULL,
     "cannot execute \"sq-no-such-program\": not found in PATH=/usr/bin:/bin"},
    {{"/bin/true", NULL},
     "",
     1024,
     "/nonexistent-dir",
     0,
     SQ_STATUS_FAILED,
     NULL,
     "cannot start \"/bin/true\": cannot change to working directory "
     "\"/nonexistent-dir\": No such file or directory"},
    /* A payload bigger than a pipe buffer, through non-blocking stdin. */
    {{"/bin/sh", "-c", "wc -c | tr -d ' '", NULL},
     NULL,
     1024,
     NULL,
     0,
     SQ_STATUS_SUCCEEDED,
     "300000\n",
     NULL},
};

static void test_exec_outcomes(void **state) {
        char *big = malloc(300001);
        size_t i;
        (void)state;

        memset(big, 'p', 300000);
        big[300000] = '\0';
        for (i = 0; i < SQ_ARRAY_SIZE(cases); i++) {
                sq_outcome_t out;
                run_one((char **)cases[i].argv,
                        cases[i].payload ? cases[i].payload : big,
                        cases[i].output_max, cases[i].workdir, cases[i].nofile,
                        &out);
                if (out.status != cases[i].status)
                        fail_msg("case %zu: status %d, want %d (error %s)", i,
                                 out.status, cases[i].status,
                                 out.error ? out.error : "-");
                if (cases[i].output) {
                        assert_non_null(out.output);
                        if (out.output_len != strlen(cases[i].output) ||
                            memcmp(out.output, cases[i].output, out.output_len))
                                fail_msg("case %zu: output \"%.*s\"", i,
                                         (int)out.output_len,
                                         (char *)out.output);
                } else {
                        assert_int_equal(out.output_len, 0);
                }
                if (cases[i].error) {
                        assert_non_null(out.error);
                        assert_string_equal(out.error, cases[i].error);
                } else if (out.error) {
                        fail_msg("case %zu: unexpected error %s", i, out.error);
                }
                assert_false(out.cancelled);
                outcome_free(&out);
        }
        free(big);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_exec_outcomes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

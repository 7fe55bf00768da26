/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 0085-instance-reload: sq_daemon_reload() (what SIGHUP calls) on a
 * running instance, in-process on its embedded broker.
 *
 * Before: agent a1 (echo) has capability alpha, agent s (sleep) has
 * concurrency 1, and nothing can run a task of type beta: it is dead-
 * lettered naming "beta". Six sleep tasks queue on s, one running, the
 * others parked. The reload adds a2 (sha256, capability beta) and raises
 * s to concurrency 3: it returns SQ_OK; the running task finishes; the
 * parked ones are selected again and run up to three at once (their
 * result timings overlap, never more than three); a beta task now
 * succeeds on a2 with the digest of its payload; every task has exactly
 * one result. A reload that adds an exec agent (a3, /bin/cat) starts its
 * runtime: a gamma task succeeds on a3 with its payload as output. One
 * rejected before it loaded (sq_daemon_reload_rejected()) counts in
 * swarmq_config_reloads_total{result="error"} and the running
 * configuration stays (beta still runs on a2).
 */
#include "test.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define N_SLEEP 6

static sq_config_t *conf_new(bool reloaded) {
        if (!reloaded)
                return test_conf_new(
                    NULL, "c1", "embedded.partitions", "1",
                    "retry.max.attempts", "1", "agent.a1.kind", "builtin",
                    "agent.a1.handler", "echo", "agent.a1.capabilities",
                    "alpha", "agent.s.kind", "builtin", "agent.s.handler",
                    "sleep", "agent.s.capabilities", "sleep",
                    "agent.s.concurrency", "1", NULL);
        return test_conf_new(
            NULL, "c1", "embedded.partitions", "1", "retry.max.attempts", "1",
            "agent.a1.kind", "builtin", "agent.a1.handler", "echo",
            "agent.a1.capabilities", "alpha", "agent.s.kind", "builtin",
            "agent.s.handler", "sleep", "agent.s.capabilities", "sleep",
            "agent.s.concurrency", "3", "agent.a2.kind", "builtin",
            "agent.a2.handler", "sha256", "agent.a2.capabilities", "beta",
            NULL);
}

static void produce(rd_kafka_t *rk, const char *id, const char *type,
                    const char *payload) {
        sq_task_t *task = test_task_new(id, type, payload);
        test_produce_task(rk, NULL, "swarmq-tasks", task, NULL);
        sq_task_destroy(task);
        test_producer_flush(rk);
}

static const sq_result_t *result_of(test_reader_t *results, const char *id) {
        const test_entry_t *entry = test_entry(results, id);
        TEST_ASSERT(entry && entry->results == 1, "task %s has %d results", id,
                    entry ? entry->results : 0);
        return entry->result;
}

static void check_beta(test_reader_t *results, const char *id) {
        const sq_result_t *result = result_of(results, id);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0, i;
        char want[2 * EVP_MAX_MD_SIZE + 1];

        EVP_Digest("abc", 3, md, &len, EVP_sha256(), NULL);
        for (i = 0; i < len; i++)
                snprintf(want + 2 * i, 3, "%02x", md[i]);
        TEST_ASSERT(result->status == SQ_STATUS_SUCCEEDED && result->agent &&
                        !strcmp(result->agent, "a2") &&
                        result->output_len == strlen(want) &&
                        !memcmp(result->output, want, result->output_len),
                    "task %s: %s on %s, output \"%.*s\"", id,
                    sq_status_name(result->status),
                    result->agent ? result->agent : "(none)",
                    (int)result->output_len,
                    result->output ? (const char *)result->output : "");
}

typedef struct parked_s {
        sq_daemon_t *daemon;
        double in_flight, parked;
} parked_t;

static bool one_running_rest_parked(void *opaque) {
        parked_t *p = opaque;
        p->in_flight =
            test_metric(p->daemon, "swarmq_agent_in_flight{agent=\"s\"}");
        p->parked = test_metric(p->daemon, "swarmq_agent_parked{agent=\"s\"}");
        return p->in_flight == 1 && p->parked >= 1;
}

int main_0085_instance_reload(int argc, char **argv) {
        static char sleep_ids[N_SLEEP][16];
        int64_t starts[N_SLEEP], ends[N_SLEEP];
        const sq_result_t *result;
        test_reader_t *results;
        sq_daemon_t *daemon;
        char errstr[1024];
        parked_t parked;
        rd_kafka_t *rk;
        int i, j, most = 0;
        sq_err_t err;

        (void)argc;
        (void)argv;
        test_timeout_set(60);

        TEST_PHASE("before the reload");
        daemon = test_instance_start(conf_new(false));
        rk     = test_producer_new(sq_daemon_bootstrap_servers(daemon));
        produce(rk, "alpha-1", "alpha", "x");
        produce(rk, "beta-1", "beta", "abc");
        results = test_reader_new(sq_daemon_bootstrap_servers(daemon),
                                  "swarmq-results");
        test_read_results(results, 2, 30000);
        result = result_of(results, "alpha-1");
        TEST_ASSERT(result->status == SQ_STATUS_SUCCEEDED &&
                        !strcmp(result->agent, "a1") &&
                        result->output_len == 1 && result->output[0] == 'x',
                    "alpha-1: %s on %s", sq_status_name(result->status),
                    result->agent ? result->agent : "(none)");
        result = result_of(results, "beta-1");
        TEST_ASSERT(result->status == SQ_STATUS_DEAD_LETTERED &&
                        !result->agent && result->error &&
                        strstr(result->error, "beta"),
                    "beta-1 with no capable agent: %s on %s, error \"%s\"",
                    sq_status_name(result->status),
                    result->agent ? result->agent : "(none)",
                    result->error ? result->error : "");

        TEST_PHASE("reload with tasks running and parked");
        for (i = 0; i < N_SLEEP; i++) {
                snprintf(sleep_ids[i], sizeof(sleep_ids[i]), "sleep-%d", i);
                produce(rk, sleep_ids[i], "sleep", "400");
        }
        parked.daemon = daemon;
        test_wait_until("one sleep task runs on s and others are parked", 10000,
                        one_running_rest_parked, &parked);
        TEST_SAY("on s: %g running, %g parked", parked.in_flight,
                 parked.parked);
        err = sq_daemon_reload(daemon, conf_new(true), errstr, sizeof(errstr));
        TEST_ASSERT(err == SQ_OK, "sq_daemon_reload: %s", errstr);
        produce(rk, "beta-2", "beta", "abc");
        test_read_results(results, 3 + N_SLEEP, 30000);
        check_beta(results, "beta-2");
        for (i = 0; i < N_SLEEP; i++) {
                result = result_of(results, sleep_ids[i]);
                TEST_ASSERT(result->status == SQ_STATUS_SUCCEEDED &&
                                !strcmp(result->agent, "s"),
                            "%s: %s on %s (%s)", sleep_ids[i],
                            sq_status_name(result->status),
                            result->agent ? result->agent : "(none)",
                            result->error ? result->error : "");
                starts[i] = result->started_at;
                ends[i]   = result->finished_at;
        }
        /* The most sleep tasks running at one instant (at a task's
         * start, those started before it and not yet finished). */
        for (i = 0; i < N_SLEEP; i++) {
                int running = 0;
                for (j = 0; j < N_SLEEP; j++)
                        running +=
                            starts[j] <= starts[i] && ends[j] > starts[i];
                most = SQ_MAX(most, running);
        }
        TEST_SAY("at most %d sleep tasks ran at once", most);
        TEST_ASSERT(most >= 2 && most <= 3,
                    "at most %d sleep tasks ran at once on s, whose "
                    "concurrency went from 1 to 3",
                    most);
        TEST_ASSERT(test_metric(daemon, "swarmq_config_reloads_total{result="
                                        "\"ok\"}") == 1,
                    "swarmq_config_reloads_total{result=\"ok\"} is not 1");

        TEST_PHASE("a reload adding an exec agent, and a refused one");
        {
                sq_config_t *conf = test_conf_new(
                    NULL, "c1", "embedded.partitions", "1",
                    "retry.max.attempts", "1", "agent.a1.kind", "builtin",
                    "agent.a1.handler", "echo", "agent.a1.capabilities",
                    "alpha", "agent.s.kind", "builtin", "agent.s.handler",
                    "sleep", "agent.s.capabilities", "sleep",
                    "agent.s.concurrency", "3", "agent.a2.kind", "builtin",
                    "agent.a2.handler", "sha256", "agent.a2.capabilities",
                    "beta", "agent.a3.kind", "exec", "agent.a3.command",
                    "/bin/cat", "agent.a3.capabilities", "gamma", NULL);
                err = sq_daemon_reload(daemon, conf, errstr, sizeof(errstr));
        }
        TEST_ASSERT(err == SQ_OK, "a reload adding an exec agent: %s: \"%s\"",
                    sq_err2str(err), errstr);
        produce(rk, "gamma-1", "gamma", "xyz");
        sq_daemon_reload_rejected(daemon, "test: the file did not load");
        TEST_ASSERT(test_metric(daemon, "swarmq_config_reloads_total{result="
                                        "\"error\"}") == 1,
                    "swarmq_config_reloads_total{result=\"error\"} is not 1");
        produce(rk, "beta-3", "beta", "abc");
        test_read_results(results, 5 + N_SLEEP, 30000);
        check_beta(results, "beta-3");
        {
                const sq_result_t *gamma = result_of(results, "gamma-1");
                TEST_ASSERT(gamma->status == SQ_STATUS_SUCCEEDED &&
                                gamma->agent && !strcmp(gamma->agent, "a3") &&
                                gamma->output_len == 3 &&
                                !memcmp(gamma->output, "xyz", 3),
                            "gamma-1: %s on %s, output \"%.*s\"",
                            sq_status_name(gamma->status),
                            gamma->agent ? gamma->agent : "(none)",
                            (int)gamma->output_len,
                            gamma->output ? (const char *)gamma->output : "");
        }

        TEST_PHASE("stop");
        test_reader_destroy(results);
        rd_kafka_destroy(rk);
        test_instance_stop(daemon, 15000);
        return 0;
}

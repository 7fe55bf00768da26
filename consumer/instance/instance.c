/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance.c: one swarmq consumer instance: building it, starting its
 * threads, stopping it, waiting for it and destroying it; the accessors of
 * daemon.h. Each of the instance's other concerns has a file of its own:
 *   poll.c              the poll thread's loop and the shutdown sequence
 *   partitions.c        the partition table, jobs, the snapshots
 *   admission.c         admitting records, the retry wait, backpressure
 *   commit.c            offset commits and exactly-once transactions
 *   rebalance.c         assign, revoke, drain, inherited offset maps
 *   registry.c          the current agent registry and its side effects
 *   reload.c            SIGHUP: applying a reloaded configuration
 *   routes.c            the HTTP server, /healthz /readyz /metrics /admin
 *   instance_metrics.c  metric families and collectors
 *   status.c            /status, /events and the live page
 *   schemas.c           the Schema Registry: registration, fetch back-off
 *   control.c           the control topic: cancellations
 *   schedules.c         periodic schedules: the owner fires each tick
 *   ratelimits.c        rate limits: each instance's share, held tasks
 *   variants.c          the feature flags' variants on task metrics (A/B)
 *   executor.c, emit.c, kafka.c, lag.c: running tasks, producing records,
 *   building clients, the lag refresher.
 *
 * DESIGN
 *   Threads and their roles (fixed):
 *   - poll thread (poll.c, with admission.c, commit.c, rebalance.c and
 *     partitions.c running on it): the only caller of consumer poll and
 *     commit. It sleeps in poll(2) on four file descriptors: the consumer
 *     group queue, the critical-lane queue, the producer's delivery-report
 *     queue (all three wired with rd_kafka_queue_io_event_enable) and an
 *     eventfd for stop requests and dropped jobs. On wake-up it serves
 *     delivery reports first (they free window room), then critical
 *     records, then ordinary ones, then commits the completed prefix of
 *     every partition when the commit interval is due. No sleeps, no busy
 *     loops.
 *   - executor threads (executor.c): run tasks on agents, produce results.
 *   - the I/O loop (core/agents/ioloop.c, started by runtimes.c): child
 *     processes and timers of the exec and pool agents.
 *   - the runtime drainer (runtimes.c): shuts down an exec or pool
 *     runtime a reload replaced, once its last run has left it.
 *   - the lag refresher (lag.c): every lag.refresh.interval.ms queries the
 *     high watermarks of the owned partitions (a blocking broker request,
 *     so on no other thread), because librdkafka does not fetch paused
 *     ones; it writes only their atomics and, under snap_lock, their lag.
 *   - the control thread (control.c): reads topic.control, outside the
 *     group; the schedules thread (schedules.c, only with schedules):
 *     joins <group.id>.schedules and, on the instance that owns
 *     topic.schedules, fires the periodic schedules' ticks.
 *   - the rate limit thread (ratelimits.c, only with rate limits): hands
 *     held tasks back to the scheduler when their token is due, and
 *     computes this instance's share after a rebalance.
 *   - librdkafka's own threads, and libmicrohttpd's thread (routes.c,
 *     status.c, the collectors of instance_metrics.c: they read atomics,
 *     the metrics registry and the snapshots only).
 *   - main (consumer/main.c): builds, starts and destroys the instance
 *     (this file); its signal thread calls sq_daemon_stop() and
 *     sq_daemon_reload() (reload.c).
 *
 *   Ownership: the instance owns everything it builds; a failure anywhere
 *   in sq_daemon_new() goes through sq_daemon_destroy(), which stops the
 *   threads first (HTTP, executors and the I/O loop, the lag refresher,
 *   then the Kafka clients) so nothing it frees is still read.
 */
#include "allocator.h"
#include "admission_int.h"
#include "commit_int.h"
#include "daemon_int.h"
#include "instance_metrics_int.h"
#include "lag_int.h"
#include "log.h"
#include "partitions_int.h"
#include "poll_int.h"
#include "registry_int.h"
#include "reload_int.h"
#include "routes_int.h"
#include "status.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

sq_daemon_t *sq_daemon_new(sq_config_t *conf, char *errstr,
                           size_t errstr_size) {
        sq_daemon_t *daemon = sq_calloc(1, sizeof(*daemon));
        unsigned char nonce[8];
        int i;

        daemon->conf       = conf;
        daemon->started_us = sq_clock_us();
        daemon->eos        = conf->guarantee == SQ_GUARANTEE_EXACTLY_ONCE;
        atomic_store(&daemon->starting, "its threads to start");
        pthread_mutex_init(&daemon->snap_lock, NULL);
        sq_lag_init(daemon);
        sq_registry_init(daemon);
        sq_reload_init(daemon);
        sq_commit_init(daemon);
        sq_partitions_init(daemon);
        sq_admission_init(daemon);
        sq_control_init(daemon);
        sq_schedules_init(daemon);
        sq_workflows_init(daemon);
        sq_ratelimits_init(daemon);
        sq_flags_set(&daemon->flags, conf->flag_rollout);
        atomic_store(&daemon->executors.progress_us, daemon->started_us);
        if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
                int64_t t = sq_clock_us() ^ (int64_t)getpid();
                memcpy(nonce, &t, sizeof(nonce));
        }
        for (i = 0; i < 8; i++)
                snprintf(daemon->event_nonce + 2 * i, 3, "%02x", nonce[i]);

        if (sq_schemas_init(daemon, errstr, errstr_size) ||
            sq_poll_init(daemon, errstr, errstr_size))
                goto fail;
        if (sq_registry_load(daemon, errstr, errstr_size))
                goto fail;
        if (sq_runtimes_new(daemon, errstr, errstr_size))
                goto fail;
        daemon->sched =
            sq_sched_new(conf->executor_threads, conf->executor_critical_slots,
                         conf->aging_ms * 1000);
        if (sq_poll_new_codec(daemon, errstr, errstr_size))
                goto fail;
        daemon->metrics = sq_metrics_new();
        daemon->events  = sq_eventring_new((size_t)conf->http_events_buffer);
        sq_eventring_set_notify(daemon->events, sq_status_events_notify,
                                daemon);
        sq_instance_metrics_register(daemon);

        if (conf->embedded_broker) {
                if (sq_kafka_start_embedded(daemon, errstr, errstr_size))
                        goto fail;
        } else {
                const char *bootstrap =
                    sq_config_kafka_get(conf, "bootstrap.servers");
                if (!bootstrap || !*bootstrap) {
                        sq_errstr_set(errstr, errstr_size,
                                      "no Kafka broker configured: pass -b "
                                      "HOST:PORT, set "
                                      "kafka.bootstrap.servers, or run with "
                                      "--embedded-broker");
                        goto fail;
                }
                daemon->bootstrap = sq_strdup(bootstrap);
        }
        if (sq_kafka_new_clients(daemon, errstr, errstr_size) ||
            sq_emit_init(daemon, errstr, errstr_size))
                goto fail;
        sq_poll_watch_queues(daemon);

        if (conf->http_port != 0 &&
            sq_routes_setup(daemon, errstr, errstr_size))
                goto fail;
        return daemon;

fail:
        sq_daemon_destroy(daemon);
        return NULL;
}

sq_err_t sq_daemon_listen(sq_daemon_t *daemon, char *errstr,
                          size_t errstr_size) {
        sq_err_t err;

        if (daemon->listening || !daemon->http)
                return SQ_OK;
        if ((err = sq_http_start(daemon->http, errstr, errstr_size)))
                return err;
        daemon->listening = true;
        return SQ_OK;
}

sq_err_t sq_daemon_start(sq_daemon_t *daemon, char *errstr,
                         size_t errstr_size) {
        const sq_config_t *conf = daemon->conf;
        sq_agents_t *agents;
        int agents_cnt;
        sq_err_t err;

        /* HTTP first: while start-up waits for the brokers (below, up to
         * tens of seconds on a cluster that does not answer), /healthz,
         * /readyz and /status already say what it waits for. */
        if ((err = sq_daemon_listen(daemon, errstr, errstr_size)))
                return err;
        if (!conf->embedded_broker && conf->topics_create) {
                char topics_err[512];
                atomic_store(&daemon->starting,
                             "the Kafka cluster: looking for (and creating) "
                             "the topics");
                /* Not fatal: a cluster that forbids CreateTopics may still
                 * have the topics made by its operators later; one that
                 * does not answer may yet. A refused login is fatal:
                 * librdkafka would retry it for ever, and the instance
                 * would run without ever getting a task. */
                if (sq_kafka_ensure_topics(daemon, topics_err,
                                           sizeof(topics_err))) {
                        if (sq_kafka_login_refused(daemon, errstr, errstr_size))
                                return SQ_ERR_KAFKA;
                        SQ_LOG(SQ_LOG_WARNING, "TOPICS",
                               "%s; create them as README.md describes "
                               "(or set topics.create=false to skip this)",
                               topics_err);
                }
        } else if (!conf->embedded_broker) {
                atomic_store(&daemon->starting,
                             "the Kafka cluster: logging in");
                if ((err = sq_kafka_check_login(daemon, errstr, errstr_size)))
                        return err;
        }
        /* The producer's topic handles only now that the topics exist
         * (a handle's metadata request would have a broker auto-create a
         * missing one with its own defaults: sq_kafka_open_topics()).
         * Subscribed only now that the consumer's metadata shows them:
         * subscribed before, its first join could
         * hand out the partitions of the topics that existed then (an
         * auto-created retry topic, say) while metadata showing the new
         * ones arrived mid-rebalance, and librdkafka 2.0.2 then never
         * rejoined: an instance ready, assigned, and never given a task
         * (tests/broker/0610 under ASan, 800 of 800 results missing). */
        sq_kafka_open_topics(daemon);
        if ((err = sq_kafka_subscribe(daemon, errstr, errstr_size)))
                return err;
        atomic_store(&daemon->starting, "its threads to start");
        if ((err = sq_runtimes_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_executors_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_lag_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_control_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_schedules_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_workflows_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_ratelimits_start(daemon, errstr, errstr_size)))
                return err;
        if ((err = sq_poll_start(daemon, errstr, errstr_size)))
                return err;
        daemon->started = true;
        atomic_store(&daemon->starting, NULL);
        agents     = sq_daemon_agents(daemon);
        agents_cnt = sq_agents_count(agents);
        sq_agents_release_ref(agents);
        SQ_LOG(SQ_LOG_NOTICE, "START",
               "instance=%s group=%s bootstrap.servers=%s executors=%d "
               "agents=%d http=%d allocator=%s",
               daemon->conf->instance_id, daemon->conf->group_id,
               daemon->bootstrap, daemon->conf->executor_threads, agents_cnt,
               sq_daemon_http_port(daemon), sq_allocator_name());
        return SQ_OK;
}

const char *sq_daemon_bootstrap_servers(const sq_daemon_t *daemon) {
        return daemon->bootstrap;
}

int sq_daemon_http_port(const sq_daemon_t *daemon) {
        return daemon->http ? sq_http_port(daemon->http) : 0;
}

void sq_daemon_stop(sq_daemon_t *daemon) {
        if (!atomic_exchange(&daemon->stop_requested, true))
                sq_daemon_wake(daemon);
}

sq_err_t sq_daemon_wait(sq_daemon_t *daemon) {
        if (daemon->started) {
                pthread_join(daemon->poll.thread, NULL);
                daemon->started = false;
                /* Leaves the schedules' group: a standby fires them. */
                sq_schedules_stop(daemon);
                /* And the workflows': the others run them. */
                sq_workflows_stop(daemon);
                sq_ratelimits_stop(daemon);
                SQ_LOG(SQ_LOG_NOTICE, "STOP", "instance stopped");
        }
        /* The producer failed (emit.c) and stopped the instance. */
        if (!daemon->fatal && atomic_load(&daemon->producer_failed))
                daemon->fatal = SQ_ERR_KAFKA;
        return daemon->fatal;
}

void sq_daemon_destroy(sq_daemon_t *daemon) {
        if (!daemon)
                return;
        if (daemon->started) {
                sq_daemon_stop(daemon);
                sq_daemon_wait(daemon);
        }
        sq_routes_destroy(daemon); /* HTTP first: it reads everything */
        sq_schedules_stop(daemon); /* started, but never the poll thread */
        sq_workflows_stop(daemon);
        sq_ratelimits_stop(daemon);
        if (daemon->executors.threads) {
                /* Started executors but never the poll thread. */
                atomic_store(&daemon->partitions.order_closed, true);
                atomic_store(&daemon->cancel, true);
                sq_sched_shutdown(daemon->sched);
                sq_executors_join(daemon);
        }
        sq_runtimes_destroy(daemon);
        sq_lag_stop(daemon); /* started, but never the poll thread */
        sq_kafka_destroy_clients(daemon);
        sq_emit_term(daemon); /* before the partitions its jobs point to */
        sq_partitions_term(daemon);
        sq_admission_term(daemon);
        sq_commit_term(daemon);
        sq_sched_destroy(daemon->sched);
        sq_registry_term(daemon);
        sq_metrics_destroy(daemon->metrics);
        sq_runtimes_free_collectors(daemon);
        sq_eventring_destroy(daemon->events);
        sq_poll_term(daemon);    /* after the clients: they write its pipes */
        sq_schemas_term(daemon); /* after every codec */
        sq_reload_term(daemon);
        pthread_mutex_destroy(&daemon->snap_lock);
        sq_lag_term(daemon);
        sq_control_term(daemon); /* every thread that reads it is gone */
        sq_schedules_term(daemon);
        sq_workflows_term(daemon);
        sq_ratelimits_term(daemon);
        sq_free(daemon->bootstrap);
        sq_config_destroy(daemon->conf);
        sq_free(daemon);
}

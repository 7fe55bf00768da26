/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.h: one swarmq consumer instance: reads tasks from Kafka, runs them
 * on agents, publishes results and events, commits what is done, serves
 * HTTP. consumer/main.c wires it to argv and signals.
 *
 * DESIGN (threads, see instance.c for the full picture)
 *   poll thread   the only caller of consumer poll and commit; decodes and
 *                 admits tasks, serves delivery reports, commits, pauses.
 *   executors     N threads running tasks on agents and producing results.
 *   HTTP thread   libmicrohttpd's; reads atomics and snapshots only.
 *   main          signals and lifecycle (sq_daemon_stop from sigwait).
 */
#ifndef SQ_DAEMON_H
#define SQ_DAEMON_H

#include "common.h"
#include "config.h"

typedef struct sq_daemon_s sq_daemon_t;

/**
 * @brief Builds an instance: Kafka clients (and the embedded mock cluster
 *        when configured), agents, scheduler, metrics, HTTP server.
 * @param conf takes ownership (also on failure); must be finalized.
 * @returns the instance or NULL with @p errstr set.
 */
sq_daemon_t *sq_daemon_new(sq_config_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Starts the HTTP server (when configured), so /healthz, /readyz
 *        and /status answer while start-up still waits for the brokers.
 *        Called by sq_daemon_start() when not yet; idempotent.
 * @returns SQ_OK or an error with errstr (the port is taken, ...).
 */
sq_err_t sq_daemon_listen(sq_daemon_t *daemon, char *errstr,
                          size_t errstr_size);

/**
 * @brief Creates missing topics (topics.create) and starts the threads.
 *        May wait for the brokers (up to about 45 s when none answers);
 *        sq_daemon_stop() from another thread cuts that wait short.
 * @returns SQ_OK or an error with errstr.
 */
sq_err_t sq_daemon_start(sq_daemon_t *daemon, char *errstr, size_t errstr_size);

/** @returns the bootstrap servers in use (borrowed). */
const char *sq_daemon_bootstrap_servers(const sq_daemon_t *daemon);

/** @returns the HTTP port (after listen), or 0 when HTTP is off. */
int sq_daemon_http_port(const sq_daemon_t *daemon);

/**
 * @brief Asks the instance to stop: stop intake, drain, commit, close.
 *        Returns at once; thread-safe and idempotent.
 */
void sq_daemon_stop(sq_daemon_t *daemon);

/**
 * @brief Applies a reloaded configuration (SIGHUP): the agents (with
 *        their breakers), the feature flags, breaker.when.open and
 *        log.level change at once; running tasks finish on the agents
 *        they started on. Other changed keys are logged as ignored until
 *        a restart. Thread-safe; one reload at a time.
 * @param conf takes ownership (also on failure); must be finalized.
 * @returns SQ_OK, or an error with @p errstr (logged and counted in
 *          swarmq_config_reloads_total{result="error"}; the running
 *          configuration stays).
 */
sq_err_t sq_daemon_reload(sq_daemon_t *daemon, sq_config_t *conf, char *errstr,
                          size_t errstr_size);

/**
 * @brief Logs and counts a reload whose configuration did not load
 *        (@p why names the key); the running configuration stays.
 */
void sq_daemon_reload_rejected(sq_daemon_t *daemon, const char *why);

/**
 * @brief Waits until the instance stopped.
 * @returns SQ_OK after a clean stop, or the fatal error that stopped it.
 */
sq_err_t sq_daemon_wait(sq_daemon_t *daemon);

/** @brief Frees the instance (stopping it first if running). */
void sq_daemon_destroy(sq_daemon_t *daemon);

#endif /* SQ_DAEMON_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qthread.c: a thread that reads one consumer of its own (qthread_int.h):
 * the consumer's queue plugged into a pipe, the stop eventfd, the
 * thread's start, sleep and stop, for control.c, schedules.c and
 * workflows.c.
 *
 * DESIGN
 *   librdkafka writes to the pipe when the consumer's queue goes from
 *   empty to not empty (rd_kafka_queue_io_event_enable()), so the thread
 *   sleeps in poll(2) and never polls Kafka on a timer; main wakes it to
 *   stop through an eventfd. What the thread does with its records, and
 *   the rebalance callback, are its module's.
 */
#include "qthread_int.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void sq_qthread_init(sq_qthread_t *qt) {
        memset(qt, 0, sizeof(*qt));
        qt->pipe_fds[0] = qt->pipe_fds[1] = -1;
        qt->stop_fd                       = -1;
}

sq_err_t sq_qthread_start(sq_qthread_t *qt, const char *key, const char *topic,
                          const char *what, void *(*thread_main)(void *),
                          void *arg, char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_resp_err_t rkerr;
        int rc;

        rd_kafka_poll_set_consumer(qt->rk);
        qt->rkq = rd_kafka_queue_get_consumer(qt->rk);
        if (pipe2(qt->pipe_fds, O_CLOEXEC | O_NONBLOCK) ||
            (qt->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
                sq_errstr_set(errstr, errstr_size,
                              "%s thread: cannot create its pipe: %s", what,
                              strerror(errno));
                return SQ_ERR_IO;
        }
        rd_kafka_queue_io_event_enable(qt->rkq, qt->pipe_fds[1], "1", 1);
        if (topic) {
                topics = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(topics, topic,
                                                  RD_KAFKA_PARTITION_UA);
                rkerr = rd_kafka_subscribe(qt->rk, topics);
                rd_kafka_topic_partition_list_destroy(topics);
                if (rkerr) {
                        sq_errstr_set(errstr, errstr_size,
                                      "cannot subscribe to %s=%s: %s", key,
                                      topic, rd_kafka_err2str(rkerr));
                        return SQ_ERR_KAFKA;
                }
        }
        if ((rc = pthread_create(&qt->thread, NULL, thread_main, arg))) {
                sq_errstr_set(errstr, errstr_size,
                              "cannot start the %s thread: %s", what,
                              strerror(rc));
                return SQ_ERR_IO;
        }
        qt->started = true;
        return SQ_OK;
}

void sq_qthread_drain(sq_qthread_t *qt) {
        char drain[64];

        while (read(qt->pipe_fds[0], drain, sizeof(drain)) > 0)
                ;
}

bool sq_qthread_sleep(sq_qthread_t *qt, int timeout_ms, const char *fac) {
        struct pollfd fds[2];

        fds[0].fd      = qt->pipe_fds[0];
        fds[0].events  = POLLIN;
        fds[0].revents = 0;
        fds[1].fd      = qt->stop_fd;
        fds[1].events  = POLLIN;
        fds[1].revents = 0;
        if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR) {
                SQ_LOG(SQ_LOG_ERR, fac, "poll: %s", strerror(errno));
                return false;
        }
        return !fds[1].revents;
}

void sq_qthread_stop(sq_qthread_t *qt) {
        uint64_t one = 1;

        if (qt->started) {
                while (write(qt->stop_fd, &one, sizeof(one)) < 0 &&
                       errno == EINTR)
                        ;
                pthread_join(qt->thread, NULL);
                qt->started = false;
        }
        if (qt->rkq) {
                rd_kafka_queue_io_event_enable(qt->rkq, -1, NULL, 0);
                rd_kafka_queue_destroy(qt->rkq);
                qt->rkq = NULL;
        }
        if (qt->rk) {
                /* In a group: leaves it (the revoke callback runs here)
                 * and another member takes the partitions at once. With
                 * no group: only stops the fetchers. */
                rd_kafka_consumer_close(qt->rk);
                rd_kafka_destroy(qt->rk);
                qt->rk = NULL;
        }
        if (qt->pipe_fds[0] >= 0) {
                close(qt->pipe_fds[0]);
                close(qt->pipe_fds[1]);
                qt->pipe_fds[0] = qt->pipe_fds[1] = -1;
        }
        if (qt->stop_fd >= 0) {
                close(qt->stop_fd);
                qt->stop_fd = -1;
        }
}

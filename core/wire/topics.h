/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topics.h: the default names of swarmq's six topics, in one place for
 * the consumer's key table (topic.*), libswarmq, swarmq-producer and the
 * test broker.
 *
 * DESIGN
 *   A name is part of the wire contract between upstream producers, the
 *   consumer and readers of results: every program that defaults a topic
 *   takes it from here, so the defaults cannot drift apart. Only defaults:
 *   each program lets its user name other topics (topic.* keys, producer
 *   properties, --topic-* options).
 */
#ifndef SQ_TOPICS_H
#define SQ_TOPICS_H

#define SQ_TOPIC_DEFAULT_TASKS     "swarmq-tasks"          /* topic.tasks */
#define SQ_TOPIC_DEFAULT_CRITICAL  "swarmq-tasks-critical" /* topic.critical */
#define SQ_TOPIC_DEFAULT_RETRY     "swarmq-tasks-retry"    /* topic.retry */
#define SQ_TOPIC_DEFAULT_DLT       "swarmq-tasks-dlt"      /* topic.dlt */
#define SQ_TOPIC_DEFAULT_RESULTS   "swarmq-results"        /* topic.results */
#define SQ_TOPIC_DEFAULT_EVENTS    "swarmq-events"         /* topic.events */
#define SQ_TOPIC_DEFAULT_CONTROL   "swarmq-control"        /* topic.control */
#define SQ_TOPIC_DEFAULT_SCHEDULES "swarmq-schedules"      /* topic.schedules */
#define SQ_TOPIC_DEFAULT_WORKFLOWS "swarmq-workflows"      /* topic.workflows */

#endif /* SQ_TOPICS_H */

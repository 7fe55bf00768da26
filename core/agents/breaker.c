/* SPDX-License-Identifier: Apache-2.0 */
/*
 * breaker.c: the circuit breaker state machine (see breaker.h).
 *
 * DESIGN
 *   Pure functions of (state, config, clock, outcome): no locks, no
 *   clock reads, no allocation. The caller serialises calls.
 */
#include "breaker.h"

#include <string.h>

void sq_breaker_init(sq_breaker_t *breaker) {
        memset(breaker, 0, sizeof(*breaker));
        breaker->state = SQ_BREAKER_CLOSED;
}

static void trip(sq_breaker_t *breaker, const sq_breaker_conf_t *conf,
                 int64_t now_us) {
        breaker->state         = SQ_BREAKER_OPEN;
        breaker->open_until_us = now_us + conf->open_us;
        breaker->fails         = 0;
        breaker->probes_ok     = 0;
        /* probes_out is kept: probes still running report back. */
}

bool sq_breaker_tick(sq_breaker_t *breaker, int64_t now_us) {
        if (breaker->state != SQ_BREAKER_OPEN ||
            now_us < breaker->open_until_us)
                return false;
        breaker->state     = SQ_BREAKER_HALF_OPEN;
        breaker->probes_ok = 0;
        return true;
}

bool sq_breaker_could_allow(const sq_breaker_t *breaker,
                            const sq_breaker_conf_t *conf) {
        if (conf->failures == 0)
                return true;
        switch (breaker->state) {
        case SQ_BREAKER_CLOSED:
                return true;
        case SQ_BREAKER_HALF_OPEN:
                return breaker->probes_out + breaker->probes_ok < conf->probes;
        case SQ_BREAKER_OPEN:
                return false;
        }
        return false;
}

bool sq_breaker_allow(sq_breaker_t *breaker, const sq_breaker_conf_t *conf,
                      bool *probep) {
        *probep = false;
        if (!sq_breaker_could_allow(breaker, conf))
                return false;
        if (conf->failures && breaker->state == SQ_BREAKER_HALF_OPEN) {
                breaker->probes_out++;
                *probep = true;
        }
        return true;
}

bool sq_breaker_record(sq_breaker_t *breaker, const sq_breaker_conf_t *conf,
                       int64_t now_us, bool probe, bool success) {
        sq_breaker_state_t before = breaker->state;

        if (probe && breaker->probes_out > 0)
                breaker->probes_out--;
        if (conf->failures == 0) {
                /* Disabled (perhaps by a reload while it was open). */
                int out = breaker->probes_out;
                sq_breaker_init(breaker);
                breaker->probes_out = out;
                return before != SQ_BREAKER_CLOSED;
        }
        if (probe) {
                if (breaker->state != SQ_BREAKER_HALF_OPEN)
                        return false; /* a sibling probe failed first */
                if (!success) {
                        trip(breaker, conf, now_us);
                } else if (++breaker->probes_ok >= conf->probes) {
                        breaker->state     = SQ_BREAKER_CLOSED;
                        breaker->fails     = 0;
                        breaker->probes_ok = 0;
                }
                return breaker->state != before;
        }
        if (breaker->state != SQ_BREAKER_CLOSED)
                return false; /* started before it opened: not a probe */
        if (success) {
                breaker->fails = 0;
                return false;
        }
        if (breaker->fails == 0 ||
            now_us - breaker->first_fail_us > conf->window_us) {
                breaker->fails         = 0;
                breaker->first_fail_us = now_us;
        }
        if (++breaker->fails >= conf->failures)
                trip(breaker, conf, now_us);
        return breaker->state != before;
}

void sq_breaker_cancel(sq_breaker_t *breaker, bool probe) {
        if (probe && breaker->probes_out > 0)
                breaker->probes_out--;
}

const char *sq_breaker_state_name(sq_breaker_state_t state) {
        switch (state) {
        case SQ_BREAKER_CLOSED:
                return "closed";
        case SQ_BREAKER_HALF_OPEN:
                return "half_open";
        case SQ_BREAKER_OPEN:
                return "open";
        }
        return "closed";
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_breaker.c: the circuit breaker state machine, table-driven: each
 * row is a script of steps (allow, outcome, clock) and the state and
 * answers expected after each step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <string.h>

#include "breaker.h"

typedef enum {
        END = 0,
        ALLOW, /* sq_breaker_allow: expect allowed / probe */
        DENY,  /* sq_breaker_allow: expect refused */
        OK,    /* record success of a non-probe task */
        FAIL,  /* record failure of a non-probe task */
        PROBE_OK,
        PROBE_FAIL,
        CANCEL, /* a probe given back */
        TICK,   /* sq_breaker_tick */
} op_t;

typedef struct step_s {
        op_t op;
        int64_t at_ms;
        sq_breaker_state_t want; /* state after the step */
        bool probe;              /* ALLOW: expect a probe */
} step_t;

typedef struct case_s {
        const char *name;
        sq_breaker_conf_t conf;
        step_t steps[16];
} case_t;

#define C SQ_BREAKER_CLOSED
#define O SQ_BREAKER_OPEN
#define H SQ_BREAKER_HALF_OPEN

/* failures 3 within 1 s, open 500 ms, 2 probes */
#define CONF                                                                   \
        { 3, 1000000, 500000, 2 }

static const case_t cases[] = {
    {"opens after N failures in the window",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 10, C, false},
      {FAIL, 20, O, false},
      {DENY, 30, O, false}}},
    {"a success resets the count",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 10, C, false},
      {OK, 15, C, false},
      {FAIL, 20, C, false},
      {FAIL, 30, C, false},
      {FAIL, 40, O, false}}},
    {"failures spread wider than the window do not open it",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 600, C, false},
      {FAIL, 1200, C, false},
      {FAIL, 1300, C, false},
      {FAIL, 1400, O, false}}},
    {"stays open until the open period passes",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, O, false},
      {TICK, 499, O, false},
      {DENY, 499, O, false},
      {TICK, 500, H, false}}},
    {"half-open admits `probes` probes, then refuses",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, O, false},
      {TICK, 500, H, false},
      {ALLOW, 501, H, true},
      {ALLOW, 501, H, true},
      {DENY, 501, H, false}}},
    {"probes' successes close it",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, O, false},
      {TICK, 500, H, false},
      {ALLOW, 501, H, true},
      {ALLOW, 501, H, true},
      {PROBE_OK, 502, H, false},
      {DENY, 502, H, false},
      {PROBE_OK, 503, C, false},
      {ALLOW, 504, C, false}}},
    {"a failed probe opens it for another period",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, O, false},
      {TICK, 500, H, false},
      {ALLOW, 501, H, true},
      {PROBE_FAIL, 600, O, false},
      {TICK, 1099, O, false},
      {TICK, 1100, H, false},
      {ALLOW, 1100, H, true},
      {PROBE_OK, 1101, H, false},
      {ALLOW, 1102, H, true},
      {PROBE_OK, 1103, C, false}}},
    {"a cancelled probe frees its place",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, O, false},
      {TICK, 500, H, false},
      {ALLOW, 501, H, true},
      {ALLOW, 501, H, true},
      {DENY, 501, H, false},
      {CANCEL, 502, H, false},
      {ALLOW, 503, H, true}}},
    {"outcomes of tasks started before it opened are ignored",
     CONF,
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, O, false},
      {OK, 10, O, false},
      {FAIL, 20, O, false},
      {TICK, 500, H, false},
      {OK, 501, H, false},
      {FAIL, 502, H, false},
      {ALLOW, 503, H, true}}},
    {"failures 0 disables it",
     {0, 1000000, 500000, 1},
     {{FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {FAIL, 0, C, false},
      {ALLOW, 0, C, false}}},
    {"failures 1 opens on the first failure",
     {1, 1000000, 500000, 1},
     {{OK, 0, C, false},
      {FAIL, 1, O, false},
      {TICK, 501, H, false},
      {ALLOW, 501, H, true},
      {PROBE_OK, 502, C, false}}},
};

static void test_state_machine(void **state) {
        size_t c, s;
        (void)state;
        for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                const case_t *tc = &cases[c];
                sq_breaker_t breaker;
                sq_breaker_init(&breaker);
                for (s = 0; s < 16 && tc->steps[s].op != END; s++) {
                        const step_t *st = &tc->steps[s];
                        int64_t now      = st->at_ms * 1000;
                        bool probe       = false, allowed;
                        switch (st->op) {
                        case ALLOW:
                        case DENY:
                                allowed = sq_breaker_allow(&breaker, &tc->conf,
                                                           &probe);
                                if (allowed != (st->op == ALLOW) ||
                                    (allowed && probe != st->probe))
                                        fail_msg("%s, step %zu: allowed=%d "
                                                 "probe=%d",
                                                 tc->name, s, allowed, probe);
                                break;
                        case OK:
                        case FAIL:
                                sq_breaker_record(&breaker, &tc->conf, now,
                                                  false, st->op == OK);
                                break;
                        case PROBE_OK:
                        case PROBE_FAIL:
                                sq_breaker_record(&breaker, &tc->conf, now,
                                                  true, st->op == PROBE_OK);
                                break;
                        case CANCEL:
                                sq_breaker_cancel(&breaker, true);
                                break;
                        case TICK:
                                sq_breaker_tick(&breaker, now);
                                break;
                        case END:
                                break;
                        }
                        if (breaker.state != st->want)
                                fail_msg("%s, step %zu: state %s, want %s",
                                         tc->name, s,
                                         sq_breaker_state_name(breaker.state),
                                         sq_breaker_state_name(st->want));
                }
        }
}

static void test_transitions_reported(void **state) {
        sq_breaker_conf_t conf = {1, 1000, 1000, 1};
        sq_breaker_t breaker;
        bool probe;
        (void)state;
        sq_breaker_init(&breaker);
        assert_false(sq_breaker_record(&breaker, &conf, 0, false, true));
        assert_true(sq_breaker_record(&breaker, &conf, 0, false, false));
        assert_false(sq_breaker_tick(&breaker, 999));
        assert_true(sq_breaker_tick(&breaker, 1000));
        assert_false(sq_breaker_tick(&breaker, 1001));
        assert_true(sq_breaker_allow(&breaker, &conf, &probe));
        assert_true(probe);
        assert_true(sq_breaker_record(&breaker, &conf, 1002, true, true));
        assert_string_equal(sq_breaker_state_name(breaker.state), "closed");
        assert_string_equal(sq_breaker_state_name(SQ_BREAKER_HALF_OPEN),
                            "half_open");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_state_machine),
            cmocka_unit_test(test_transitions_reported),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

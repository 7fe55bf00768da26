/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.c: a rate limit's bucket as GCRA (ratelimit.h).
 *
 * DESIGN
 *   Two numbers derived from the limit and the share (interval, tau) and
 *   one that moves (tat), under a mutex: one short critical section per
 *   limited task.
 */
#include "ratelimit.h"

#include <math.h>

static void derive(sq_ratelimit_t *rl) {
        double rate  = rl->rate * rl->share;
        double burst = fmax(1.0, floor(rl->burst * rl->share));

        rl->interval_us = (int64_t)ceil(1e6 / rate);
        rl->tau_us      = (int64_t)((burst - 1.0) * (double)rl->interval_us);
}

void sq_ratelimit_init(sq_ratelimit_t *rl, double rate, double burst) {
        pthread_mutex_init(&rl->lock, NULL);
        rl->rate   = rate;
        rl->burst  = burst;
        rl->share  = 1.0;
        rl->tat_us = 0;
        derive(rl);
}

void sq_ratelimit_term(sq_ratelimit_t *rl) {
        pthread_mutex_destroy(&rl->lock);
}

void sq_ratelimit_set(sq_ratelimit_t *rl, double rate, double burst) {
        pthread_mutex_lock(&rl->lock);
        rl->rate  = rate;
        rl->burst = burst;
        derive(rl);
        pthread_mutex_unlock(&rl->lock);
}

void sq_ratelimit_set_share(sq_ratelimit_t *rl, double share) {
        pthread_mutex_lock(&rl->lock);
        rl->share = share > 1.0 ? 1.0 : share > 0.0 ? share : 1e-6;
        derive(rl);
        pthread_mutex_unlock(&rl->lock);
}

int64_t sq_ratelimit_reserve(sq_ratelimit_t *rl, int64_t now_us) {
        int64_t tat, start;

        pthread_mutex_lock(&rl->lock);
        tat        = rl->tat_us > now_us ? rl->tat_us : now_us;
        start      = tat - rl->tau_us > now_us ? tat - rl->tau_us : now_us;
        rl->tat_us = tat + rl->interval_us;
        pthread_mutex_unlock(&rl->lock);
        return start;
}

sq_ratelimit_view_t sq_ratelimit_read(sq_ratelimit_t *rl) {
        sq_ratelimit_view_t view;

        pthread_mutex_lock(&rl->lock);
        view.group_rate  = rl->rate;
        view.group_burst = rl->burst;
        view.share       = rl->share;
        view.rate        = rl->rate * rl->share;
        view.burst       = fmax(1.0, floor(rl->burst * rl->share));
        pthread_mutex_unlock(&rl->lock);
        return view;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ordering.c: the ordering gate runs one item per key at a time, in
 * admission order, lets different keys run at once, and gives back held
 * items at shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "ordering.h"

static void test_one_at_a_time_in_order(void **state) {
        sq_order_t *order = sq_order_new();
        sq_order_item_t items[5];
        uint64_t a = sq_order_key(0, 3, "a", 1), b = sq_order_key(0, 3, "b", 1);
        int i;
        (void)state;

        /* a0 b1 a2 a3 b4: a0 and b1 run, the others are held. */
        for (i = 0; i < 5; i++)
                items[i].key = (i == 1 || i == 4) ? b : a;
        assert_true(sq_order_admit(order, &items[0]));
        assert_true(sq_order_admit(order, &items[1]));
        assert_false(sq_order_admit(order, &items[2]));
        assert_false(sq_order_admit(order, &items[3]));
        assert_false(sq_order_admit(order, &items[4]));
        assert_int_equal(sq_order_busy_keys(order), 2);
        assert_ptr_equal(sq_order_release(order, &items[0]), &items[2]);
        assert_ptr_equal(sq_order_release(order, &items[1]), &items[4]);
        assert_ptr_equal(sq_order_release(order, &items[4]), NULL);
        assert_int_equal(sq_order_busy_keys(order), 1);
        assert_ptr_equal(sq_order_release(order, &items[2]), &items[3]);
        assert_ptr_equal(sq_order_release(order, &items[3]), NULL);
        assert_int_equal(sq_order_busy_keys(order), 0);
        /* Idle again: the next item of a runs at once. */
        assert_true(sq_order_admit(order, &items[0]));
        assert_ptr_equal(sq_order_release(order, &items[0]), NULL);
        sq_order_destroy(order);
        sq_order_destroy(NULL);
}

static void test_keys_are_scoped(void **state) {
        /* Lane, partition and key bytes all tell keys apart; the
         * partition-only key differs from an empty key. */
        uint64_t k[] = {
            sq_order_key(0, 0, "k", 1),  sq_order_key(1, 0, "k", 1),
            sq_order_key(0, 1, "k", 1),  sq_order_key(0, 0, "K", 1),
            sq_order_key(0, 0, NULL, 0), sq_order_key(0, 0, "", 0),
            sq_order_key(0, 0, "kk", 2),
        };
        size_t i, j;
        (void)state;
        for (i = 0; i < sizeof(k) / sizeof(k[0]); i++)
                for (j = i + 1; j < sizeof(k) / sizeof(k[0]); j++)
                        if (k[i] == k[j])
                                fail_msg("keys %zu and %zu collide", i, j);
        assert_true(sq_order_key(2, 7, "x", 1) == sq_order_key(2, 7, "x", 1));
}

/* Many keys (the table grows), each with a queue; releasing in any key
 * order gives each key's items back in admission order. */
static void test_many_keys(void **state) {
        enum { KEYS = 2000, PER = 4 };
        sq_order_t *order      = sq_order_new();
        sq_order_item_t *items = calloc(KEYS * PER, sizeof(*items));
        int k, n;
        (void)state;

        for (n = 0; n < PER; n++)
                for (k = 0; k < KEYS; k++) {
                        sq_order_item_t *item = &items[n * KEYS + k];
                        item->key = sq_order_key(0, 0, &k, sizeof(k));
                        assert_int_equal(sq_order_admit(order, item), n == 0);
                }
        assert_int_equal(sq_order_busy_keys(order), KEYS);
        for (k = KEYS - 1; k >= 0; k--)
                for (n = 0; n < PER; n++)
                        assert_ptr_equal(
                            sq_order_release(order, &items[n * KEYS + k]),
                            n + 1 < PER ? &items[(n + 1) * KEYS + k] : NULL);
        assert_int_equal(sq_order_busy_keys(order), 0);
        sq_order_destroy(order);
        free(items);
}

static void test_take_held(void **state) {
        sq_order_t *order = sq_order_new();
        sq_order_item_t items[6], *held;
        int i, cnt = 0;
        (void)state;

        for (i = 0; i < 6; i++) {
                items[i].key = sq_order_key(0, i % 2, NULL, 0);
                sq_order_admit(order, &items[i]);
        }
        for (held = sq_order_take_held(order); held; held = held->next)
                cnt++;
        assert_int_equal(cnt, 4);
        /* The running ones are still there, now with nothing behind. */
        assert_null(sq_order_release(order, &items[0]));
        assert_null(sq_order_release(order, &items[1]));
        assert_int_equal(sq_order_busy_keys(order), 0);
        sq_order_destroy(order);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_one_at_a_time_in_order),
            cmocka_unit_test(test_keys_are_scoped),
            cmocka_unit_test(test_many_keys),
            cmocka_unit_test(test_take_held),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_list.c: the intrusive list macros keep a list whose forward and
 * backward links agree with a model array after every push and unlink
 * (head, middle, tail, the last one), and unlinking an element that was
 * never linked leaves the list untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common.h"
#include "list.h"

typedef struct elem_s {
        int id;
        struct elem_s *prev, *next;
} elem_t;

/* The list from @p head must be exactly model[0..cnt), both ways. */
static void check(const elem_t *head, elem_t *const *model, size_t cnt) {
        const elem_t *e, *last = NULL;
        size_t i = 0;

        if (head)
                assert_null(head->prev);
        for (e = head; e; e = e->next, i++) {
                assert_true(i < cnt);
                assert_ptr_equal(e, model[i]);
                if (e->next)
                        assert_ptr_equal(e->next->prev, e);
                last = e;
        }
        assert_int_equal(i, cnt);
        for (e = last; e; e = e->prev)
                assert_ptr_equal(e, model[--i]);
        assert_int_equal(i, 0);
}

/* Each row: push elements 0..4 (4 ends first), then unlink in order. */
static const struct {
        const char *name;
        int unlink[5];
} orders[] = {
    {"head first", {4, 3, 2, 1, 0}},
    {"tail first", {0, 1, 2, 3, 4}},
    {"middle first", {2, 1, 3, 4, 0}},
    {"alternating", {4, 0, 3, 1, 2}},
};

static void test_orders(void **state) {
        size_t row, i, j, cnt;
        (void)state;

        for (row = 0; row < SQ_ARRAY_SIZE(orders); row++) {
                elem_t elems[5], *head = NULL, *model[5];

                memset(elems, 0, sizeof(elems));
                for (i = 0, cnt = 0; i < 5; i++) {
                        elems[i].id = (int)i;
                        SQ_LIST_PUSH(head, &elems[i]);
                        memmove(model + 1, model, cnt * sizeof(*model));
                        model[0] = &elems[i];
                        check(head, model, ++cnt);
                }
                for (i = 0; i < 5; i++) {
                        elem_t *elm = &elems[orders[row].unlink[i]];
                        SQ_LIST_UNLINK(head, elm);
                        assert_null(elm->prev);
                        assert_null(elm->next);
                        for (j = 0; model[j] != elm; j++)
                                ;
                        memmove(model + j, model + j + 1,
                                (cnt - j - 1) * sizeof(*model));
                        check(head, model, --cnt);
                }
                assert_null(head);
        }
}

static void test_unlink_unlinked(void **state) {
        elem_t a = {1, NULL, NULL}, b = {2, NULL, NULL},
               stray = {3, NULL, NULL};
        elem_t *head = NULL, *model[2];
        (void)state;

        SQ_LIST_UNLINK(head, &stray); /* empty list */
        assert_null(head);
        SQ_LIST_PUSH(head, &a);
        SQ_LIST_PUSH(head, &b);
        SQ_LIST_UNLINK(head, &stray); /* a list it is not in */
        model[0] = &b;
        model[1] = &a;
        check(head, model, 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_orders),
            cmocka_unit_test(test_unlink_unlinked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

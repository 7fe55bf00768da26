/* SPDX-License-Identifier: Apache-2.0 */
/*
 * list.h: intrusive doubly linked lists: an element carries its own prev
 * and next pointers, and a list is a pointer to its first element (NULL
 * when empty). Used where an owner keeps a set of live objects it must
 * find and drop in O(1): the exec runtime's processes, the pool's workers,
 * the HTTP server's event streams.
 *
 * DESIGN
 *   Macros, like BSD's <sys/queue.h> LIST_*, so any struct with fields
 *   named prev and next (pointers to its own type) can be an element,
 *   with no casts and no container_of. No allocation: the caller owns the
 *   elements. Unlinking an element that is not in the list (prev NULL and
 *   not the head) leaves the list as it is, so a teardown path may unlink
 *   an object that never got linked. Arguments are evaluated more than
 *   once: pass plain lvalues. Not thread-safe: the list's owner holds its
 *   lock, if it has one, around each macro.
 */
#ifndef SQ_LIST_H
#define SQ_LIST_H

#include <stddef.h>

/** @brief Puts @p elm first in the list whose first element is @p head. */
#define SQ_LIST_PUSH(head, elm)                                                \
        do {                                                                   \
                (elm)->prev = NULL;                                            \
                (elm)->next = (head);                                          \
                if ((head))                                                    \
                        (head)->prev = (elm);                                  \
                (head) = (elm);                                                \
        } while (0)

/** @brief Takes @p elm out of the list @p head; its links become NULL. */
#define SQ_LIST_UNLINK(head, elm)                                              \
        do {                                                                   \
                if ((elm)->prev)                                               \
                        (elm)->prev->next = (elm)->next;                       \
                else if ((head) == (elm))                                      \
                        (head) = (elm)->next;                                  \
                if ((elm)->next)                                               \
                        (elm)->next->prev = (elm)->prev;                       \
                (elm)->prev = NULL;                                            \
                (elm)->next = NULL;                                            \
        } while (0)

#endif /* SQ_LIST_H */

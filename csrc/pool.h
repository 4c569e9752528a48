/* A window of transfers over one curl multi handle: the slots (easy
 * handles reused from one exchange to the next), the queue of work not
 * yet started, retries waiting out their backoff, the rate limit, and the
 * finished exchanges waiting for the GIL.  Driven by batch.c (a blocking
 * poll loop) and aio.c (an asyncio event loop).
 */
#ifndef MOBILESTATUS_POOL_H
#define MOBILESTATUS_POOL_H

#include "transfer.h"

typedef struct ms_pending {
    Py_ssize_t key;
    char *body;
    size_t len;
    double not_before;
    struct ms_pending *next;
} ms_pending;

typedef struct {
    ms_pending *head;
    ms_pending *tail;
    Py_ssize_t count;
} ms_pending_list;

typedef struct {
    CURLM *multi;
    const ms_config *config;
    ms_transfer *slots;
    int slot_count;
    int *free_slots;
    int free_count;

    ms_pending *queue_head;
    ms_pending *queue_tail;
    Py_ssize_t queued;
    ms_pending *delayed; /* retries waiting for their backoff; few */
    Py_ssize_t delayed_count;

    ms_transfer *done_head;
    ms_transfer *done_tail;
    Py_ssize_t done_count;

    /* Start times of the last `window` calls; a call may start only when
     * the oldest is more than a second old, so no one-second window ever
     * holds more than `window` starts. */
    double rate;
    double *starts;
    Py_ssize_t window;
    Py_ssize_t start_pos;
    double last_start;

    int out_of_memory;
    unsigned long owner_generation; /* see ms_process_generation */
} ms_pool;

/* GIL held; 0, or -1 with an exception set (call ms_pool_release). */
int ms_pool_init(ms_pool *pool, const ms_config *config, int concurrency,
                 double rate);

/* Frees everything; the pool is zeroed.  GIL not needed. */
void ms_pool_release(ms_pool *pool);

/* Stops every transfer and drops queued and finished work; the slots
 * stay usable.  GIL not needed. */
void ms_pool_abort(ms_pool *pool);

/* Parses [(key, body), ...] and appends it to the queue (or, with delay
 * > 0, to the retries).  All or nothing.  GIL held; -1 with exception. */
int ms_pool_submit(ms_pool *pool, PyObject *items, double delay);

/* The two halves of ms_pool_submit, for a pool driven by another thread:
 * parsing needs the GIL, enqueueing only the pool (the list is emptied;
 * delayed: it goes to the retries). */
int ms_pending_parse(PyObject *items, double delay, ms_pending_list *out);
void ms_pool_enqueue(ms_pool *pool, ms_pending_list *list, int delayed);
void ms_pending_list_splice(ms_pending_list *into, ms_pending_list *from);
void ms_pending_list_free(ms_pending_list *list);

/* Starts ready work in free slots; *wait_until is lowered to when more
 * could start.  -1 with *error set on a multi error.  No GIL. */
int ms_pool_start(ms_pool *pool, double now, double *wait_until,
                  CURLMcode *error);

/* Moves finished transfers to the done list (parsing their bodies).  No
 * GIL. */
void ms_pool_collect(ms_pool *pool);

/* Cancels one key wherever it is (queued, delayed or in flight); 1 if
 * found.  No GIL. */
int ms_pool_cancel(ms_pool *pool, Py_ssize_t key);

/* [(key, outcome, is_error), ...] for the done list, which is emptied.
 * GIL held; NULL with an exception (the list is freed either way). */
PyObject *ms_pool_take_done(ms_pool *pool, ms_state *state);

/* Its two halves: detaching the done list needs only the pool; turning a
 * detached list into Python (which frees it) needs the GIL. */
ms_transfer *ms_pool_detach_done(ms_pool *pool, ms_transfer **tail,
                                 Py_ssize_t *count);
PyObject *ms_done_list_to_python(ms_transfer *head, ms_state *state);
void ms_done_list_free(ms_transfer *head);

Py_ssize_t ms_pool_in_flight(const ms_pool *pool);
int ms_pool_idle(const ms_pool *pool);

#endif /* MOBILESTATUS_POOL_H */

/* The transfer window shared by the blocking batch loop and the asyncio
 * driver.  See pool.h for which functions need the GIL.
 */
#include "pool.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static void
free_pending_list(ms_pending *item)
{
    while (item != NULL) {
        ms_pending *next = item->next;
        free(item->body);
        free(item);
        item = next;
    }
}

static void
free_done_list(ms_transfer *shell)
{
    while (shell != NULL) {
        ms_transfer *next = shell->next;
        ms_transfer_clear_response(shell);
        free(shell);
        shell = next;
    }
}

Py_ssize_t
ms_pool_in_flight(const ms_pool *pool)
{
    return pool->slot_count - pool->free_count;
}

int
ms_pool_idle(const ms_pool *pool)
{
    return ms_pool_in_flight(pool) == 0 && pool->queued == 0 &&
           pool->delayed == NULL;
}

static void
stop_slot(ms_pool *pool, int slot_id)
{
    ms_transfer *slot = &pool->slots[slot_id];
    curl_multi_remove_handle(pool->multi, slot->easy);
    ms_transfer_clear_response(slot);
    slot->index = -1;
    pool->free_slots[pool->free_count++] = slot_id;
}

void
ms_pool_abort(ms_pool *pool)
{
    for (int i = 0; i < pool->slot_count; i++) {
        if (pool->slots[i].index >= 0) {
            stop_slot(pool, i);
        }
    }
    free_pending_list(pool->queue_head);
    pool->queue_head = pool->queue_tail = NULL;
    pool->queued = 0;
    free_pending_list(pool->delayed);
    pool->delayed = NULL;
    pool->delayed_count = 0;
    free_done_list(pool->done_head);
    pool->done_head = pool->done_tail = NULL;
    pool->done_count = 0;
}

void
ms_pool_release(ms_pool *pool)
{
    if (pool->multi != NULL &&
        pool->owner_generation != ms_process_generation()) {
        /* A forked child: cleaning up would let libcurl shut down the
         * parent's connections (a TLS close_notify on a shared socket).
         * The handles and the child's copies of the sockets are leaked,
         * once per inherited pool; the queued bodies are ours to free. */
        free_pending_list(pool->queue_head);
        free_pending_list(pool->delayed);
        free_done_list(pool->done_head);
        free(pool->slots);
        free(pool->free_slots);
        free(pool->starts);
        memset(pool, 0, sizeof(*pool));
        return;
    }
    if (pool->slots != NULL) {
        ms_pool_abort(pool);
    }
    /* Connections first: closing one may still refer to its handle. */
    if (pool->multi != NULL) {
        curl_multi_cleanup(pool->multi);
    }
    for (int i = 0; i < pool->slot_count; i++) {
        ms_transfer_release(&pool->slots[i]);
    }
    free(pool->slots);
    free(pool->free_slots);
    free(pool->starts);
    memset(pool, 0, sizeof(*pool));
}

int
ms_pool_init(ms_pool *pool, const ms_config *config, int concurrency,
             double rate)
{
    memset(pool, 0, sizeof(*pool));
    if (concurrency < 1 || concurrency > 4096) {
        PyErr_SetString(PyExc_ValueError,
                        "concurrency must be between 1 and 4096");
        return -1;
    }
    if (!(rate >= 0.0) || !isfinite(rate)) {
        PyErr_SetString(PyExc_ValueError,
                        "rate_limit must be a finite number >= 0");
        return -1;
    }
    pool->config = config;
    pool->owner_generation = ms_process_generation();
    pool->rate = rate;
    pool->last_start = -INFINITY;
    pool->multi = curl_multi_init();
    pool->slots = calloc((size_t)concurrency, sizeof(ms_transfer));
    pool->free_slots = calloc((size_t)concurrency, sizeof(int));
    if (pool->multi == NULL || pool->slots == NULL ||
        pool->free_slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (rate > 0.0) {
        /* Below one call a second the window holds a single start and
         * the spacing rule in may_start does the pacing. */
        pool->window = rate >= 1.0 ? (Py_ssize_t)floor(rate) : 1;
        pool->starts = malloc((size_t)pool->window * sizeof(double));
        if (pool->starts == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < pool->window; i++) {
            pool->starts[i] = -INFINITY;
        }
    }
    curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
    curl_multi_setopt(pool->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)concurrency);
    for (int i = 0; i < concurrency; i++) {
        if (ms_transfer_init(&pool->slots[i], config, 0) < 0) {
            return -1;
        }
        pool->slot_count = i + 1;
        pool->slots[i].index = -1;
        pool->free_slots[pool->free_count++] = i;
    }
    return 0;
}

void
ms_pending_list_free(ms_pending_list *list)
{
    free_pending_list(list->head);
    list->head = list->tail = NULL;
    list->count = 0;
}

static void
pending_list_append(ms_pending_list *list, ms_pending *entry)
{
    if (list->tail != NULL) {
        list->tail->next = entry;
    }
    else {
        list->head = entry;
    }
    list->tail = entry;
    list->count++;
}

void
ms_pending_list_splice(ms_pending_list *into, ms_pending_list *from)
{
    if (from->head == NULL) {
        return;
    }
    if (into->tail != NULL) {
        into->tail->next = from->head;
    }
    else {
        into->head = from->head;
    }
    into->tail = from->tail;
    into->count += from->count;
    from->head = from->tail = NULL;
    from->count = 0;
}

int
ms_pending_parse(PyObject *items, double delay, ms_pending_list *out)
{
    out->head = out->tail = NULL;
    out->count = 0;
    PyObject *seq = PySequence_Fast(items, "items must be a sequence");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    double not_before = delay > 0.0 ? ms_monotonic() + delay : 0.0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        char *data;
        Py_ssize_t len;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "each item must be a (key, body) tuple");
            goto error;
        }
        Py_ssize_t key = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
        if (key == -1 && PyErr_Occurred()) {
            goto error;
        }
        if (key < 0) {
            PyErr_SetString(PyExc_ValueError, "key must be >= 0");
            goto error;
        }
        if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(item, 1), &data,
                                    &len) < 0) {
            goto error;
        }
        ms_pending *entry = malloc(sizeof(ms_pending));
        char *body = malloc((size_t)len + 1);
        if (entry == NULL || body == NULL) {
            free(entry);
            free(body);
            PyErr_NoMemory();
            goto error;
        }
        memcpy(body, data, (size_t)len);
        body[len] = '\0';
        entry->key = key;
        entry->body = body;
        entry->len = (size_t)len;
        entry->not_before = not_before;
        entry->next = NULL;
        pending_list_append(out, entry);
    }
    Py_DECREF(seq);
    return 0;

error:
    Py_DECREF(seq);
    ms_pending_list_free(out);
    return -1;
}

void
ms_pool_enqueue(ms_pool *pool, ms_pending_list *list, int delayed)
{
    if (list->head == NULL) {
        return;
    }
    if (delayed) {
        /* Retries are few and searched by time: order does not matter. */
        list->tail->next = pool->delayed;
        pool->delayed = list->head;
        pool->delayed_count += list->count;
        list->head = list->tail = NULL;
        list->count = 0;
        return;
    }
    ms_pending_list queue = {pool->queue_head, pool->queue_tail,
                             pool->queued};
    ms_pending_list_splice(&queue, list);
    pool->queue_head = queue.head;
    pool->queue_tail = queue.tail;
    pool->queued = queue.count;
}

int
ms_pool_submit(ms_pool *pool, PyObject *items, double delay)
{
    ms_pending_list list;
    if (ms_pending_parse(items, delay, &list) < 0) {
        return -1;
    }
    ms_pool_enqueue(pool, &list, delay > 0.0);
    return 0;
}

/* Whether the rate limit lets a call start now; if not, *wait_until says
 * when it will. */
static int
may_start(ms_pool *pool, double now, double *wait_until)
{
    if (pool->rate <= 0.0) {
        return 1;
    }
    double earliest = pool->starts[pool->start_pos] + 1.0;
    /* Spread starts evenly instead of a burst at each second's start; the
     * window above is the hard guarantee. */
    double spacing = pool->rate >= 1.0 ? 0.999 / pool->rate
                                       : 1.0 / pool->rate;
    double spaced = pool->last_start + spacing;
    double at = earliest > spaced ? earliest : spaced;
    if (now > at) {
        return 1;
    }
    if (at < *wait_until) {
        *wait_until = at;
    }
    return 0;
}

static void
record_start(ms_pool *pool, double now)
{
    if (pool->rate <= 0.0) {
        return;
    }
    pool->starts[pool->start_pos] = now;
    pool->start_pos = (pool->start_pos + 1) % pool->window;
    pool->last_start = now;
}

/* Takes the next item that may start: a retry whose backoff is over
 * first, then the queue in submission order. */
static ms_pending *
next_ready(ms_pool *pool, double now, double *wait_until)
{
    ms_pending **link = &pool->delayed;
    while (*link != NULL) {
        ms_pending *item = *link;
        if (item->not_before <= now) {
            *link = item->next;
            pool->delayed_count--;
            return item;
        }
        if (item->not_before < *wait_until) {
            *wait_until = item->not_before;
        }
        link = &item->next;
    }
    ms_pending *item = pool->queue_head;
    if (item != NULL) {
        pool->queue_head = item->next;
        if (pool->queue_head == NULL) {
            pool->queue_tail = NULL;
        }
        pool->queued--;
    }
    return item;
}

int
ms_pool_start(ms_pool *pool, double now, double *wait_until,
              CURLMcode *error)
{
    while (pool->free_count > 0 &&
           (pool->queued > 0 || pool->delayed != NULL)) {
        double ready_at = *wait_until;
        ms_pending *item = NULL;
        if (may_start(pool, now, &ready_at)) {
            item = next_ready(pool, now, &ready_at);
        }
        if (ready_at < *wait_until) {
            *wait_until = ready_at;
        }
        if (item == NULL) {
            return 0;
        }
        int slot_id = pool->free_slots[--pool->free_count];
        ms_transfer *slot = &pool->slots[slot_id];
        ms_transfer_prepare(slot, item->body, item->len);
        slot->index = item->key;
        free(item);
        CURLMcode rc = curl_multi_add_handle(pool->multi, slot->easy);
        if (rc != CURLM_OK) {
            *error = rc;
            slot->index = -1;
            pool->free_slots[pool->free_count++] = slot_id;
            return -1;
        }
        record_start(pool, now);
    }
    return 0;
}

void
ms_pool_collect(ms_pool *pool)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(pool->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        ms_transfer *slot = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(pool->multi, slot->easy);
        ms_transfer_complete(slot, result);
        ms_transfer *shell = calloc(1, sizeof(ms_transfer));
        if (shell == NULL) {
            pool->out_of_memory = 1;
            ms_transfer_clear_response(slot);
        }
        else {
            ms_transfer_move_response(shell, slot);
            if (pool->done_tail != NULL) {
                pool->done_tail->next = shell;
            }
            else {
                pool->done_head = shell;
            }
            pool->done_tail = shell;
            pool->done_count++;
        }
        slot->index = -1;
        pool->free_slots[pool->free_count++] = (int)(slot - pool->slots);
    }
}

static int
cancel_in_list(ms_pending **link, Py_ssize_t key)
{
    while (*link != NULL) {
        ms_pending *item = *link;
        if (item->key == key) {
            *link = item->next;
            free(item->body);
            free(item);
            return 1;
        }
        link = &item->next;
    }
    return 0;
}

int
ms_pool_cancel(ms_pool *pool, Py_ssize_t key)
{
    for (int i = 0; i < pool->slot_count; i++) {
        if (pool->slots[i].index == key) {
            stop_slot(pool, i);
            return 1;
        }
    }
    if (cancel_in_list(&pool->delayed, key)) {
        pool->delayed_count--;
        return 1;
    }
    if (cancel_in_list(&pool->queue_head, key)) {
        pool->queued--;
        pool->queue_tail = pool->queue_head;
        while (pool->queue_tail != NULL && pool->queue_tail->next != NULL) {
            pool->queue_tail = pool->queue_tail->next;
        }
        return 1;
    }
    return 0;
}

ms_transfer *
ms_pool_detach_done(ms_pool *pool, ms_transfer **tail, Py_ssize_t *count)
{
    ms_transfer *head = pool->done_head;
    *tail = pool->done_tail;
    *count = pool->done_count;
    pool->done_head = pool->done_tail = NULL;
    pool->done_count = 0;
    return head;
}

void
ms_done_list_free(ms_transfer *head)
{
    free_done_list(head);
}

PyObject *
ms_done_list_to_python(ms_transfer *shell, ms_state *state)
{
    PyObject *list = PyList_New(0);
    while (shell != NULL && list != NULL) {
        int is_error;
        PyObject *outcome = ms_transfer_outcome(state, shell, &is_error);
        PyObject *entry = NULL;
        if (outcome != NULL) {
            entry = Py_BuildValue("(nNO)", shell->index, outcome,
                                  is_error ? Py_True : Py_False);
        }
        if (entry == NULL || PyList_Append(list, entry) < 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(entry);
        ms_transfer *next = shell->next;
        ms_transfer_clear_response(shell);
        free(shell);
        shell = next;
    }
    free_done_list(shell);
    return list;
}

PyObject *
ms_pool_take_done(ms_pool *pool, ms_state *state)
{
    ms_transfer *tail;
    Py_ssize_t count;
    return ms_done_list_to_python(ms_pool_detach_done(pool, &tail, &count),
                                  state);
}

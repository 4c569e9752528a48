/* The Batch type: many exchanges in flight over one curl multi handle,
 * in the shape of curl's docs/examples/10-at-a-time.c.
 *
 * Python submits (index, body) pairs; run() releases the GIL and keeps
 * `concurrency` transfers going, pacing starts with a sliding one-second
 * window when a rate limit is set.  Finished exchanges are parsed right
 * away, still without the GIL, and wait in C until run() returns: it takes
 * the GIL back by time (flush_interval), never once per transfer, because
 * each take can cost a full switch interval while another thread runs.
 * Python decides what an outcome means and whether to retry it; a retry
 * comes back through submit() with a delay.
 */
#include "transfer.h"

#include <math.h>
#include <pythread.h>
#include <string.h>

typedef struct pending {
    Py_ssize_t index;
    char *body;
    size_t len;
    double not_before;
    int attempts;
    struct pending *next;
} pending;

typedef struct {
    PyObject_HEAD
    PyObject *session; /* keeps the config alive */
    const ms_config *config;
    CURLM *multi;
    ms_transfer *slots;
    int slot_count;
    int *free_slots;
    int free_count;

    pending *queue_head;
    pending *queue_tail;
    Py_ssize_t queued;
    pending *delayed; /* retries waiting for their backoff; few */
    Py_ssize_t delayed_count;

    ms_transfer *done_head;
    ms_transfer *done_tail;
    Py_ssize_t done_count;

    /* Start times of the last `window` calls; a new call may start only
     * when the oldest is more than a second old, so no one-second window
     * ever holds more than `window` starts. */
    double rate;
    double *starts;
    Py_ssize_t window;
    Py_ssize_t start_pos;
    double last_start;

    PyThread_type_lock lock;
    int closed;
    int out_of_memory;
} BatchObject;

static ms_state *
batch_state(BatchObject *self)
{
    return ms_state_from_type(Py_TYPE(self));
}

static Py_ssize_t
in_flight(const BatchObject *self)
{
    return self->slot_count - self->free_count;
}

static void
free_pending_list(pending *item)
{
    while (item != NULL) {
        pending *next = item->next;
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

/* Stops every transfer and drops all queued and finished work; the
 * handles stay usable for the next submit. */
static void
abort_all(BatchObject *self)
{
    for (int i = 0; i < self->slot_count; i++) {
        ms_transfer *slot = &self->slots[i];
        if (slot->index >= 0) {
            curl_multi_remove_handle(self->multi, slot->easy);
            ms_transfer_clear_response(slot);
            slot->index = -1;
            self->free_slots[self->free_count++] = i;
        }
    }
    free_pending_list(self->queue_head);
    self->queue_head = self->queue_tail = NULL;
    self->queued = 0;
    free_pending_list(self->delayed);
    self->delayed = NULL;
    self->delayed_count = 0;
    free_done_list(self->done_head);
    self->done_head = self->done_tail = NULL;
    self->done_count = 0;
}

static void
release_all(BatchObject *self)
{
    if (self->slots != NULL) {
        abort_all(self);
        /* Connections first: they may refer to their easy handles. */
        if (self->multi != NULL) {
            curl_multi_cleanup(self->multi);
            self->multi = NULL;
        }
        for (int i = 0; i < self->slot_count; i++) {
            ms_transfer_release(&self->slots[i]);
        }
        free(self->slots);
        self->slots = NULL;
    }
    else if (self->multi != NULL) {
        curl_multi_cleanup(self->multi);
        self->multi = NULL;
    }
    free(self->free_slots);
    self->free_slots = NULL;
    free(self->starts);
    self->starts = NULL;
    self->slot_count = self->free_count = 0;
}

static PyObject *
Batch_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"session", "concurrency", "rate_limit", NULL};
    PyObject *session;
    int concurrency = 16;
    double rate = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$id:Batch", keywords,
                                     &session, &concurrency, &rate)) {
        return NULL;
    }
    if (concurrency < 1 || concurrency > 4096) {
        PyErr_SetString(PyExc_ValueError,
                        "concurrency must be between 1 and 4096");
        return NULL;
    }
    if (!(rate >= 0.0) || !isfinite(rate)) {
        PyErr_SetString(PyExc_ValueError,
                        "rate_limit must be a finite number >= 0");
        return NULL;
    }
    ms_state *state = ms_state_from_type(type);
    const ms_config *config = ms_session_config(state, session);
    if (config == NULL) {
        return NULL;
    }

    BatchObject *self = (BatchObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->session = Py_NewRef(session);
    self->config = config;
    self->rate = rate;
    self->lock = PyThread_allocate_lock();
    self->multi = curl_multi_init();
    self->slots = calloc((size_t)concurrency, sizeof(ms_transfer));
    self->free_slots = calloc((size_t)concurrency, sizeof(int));
    if (self->lock == NULL || self->multi == NULL || self->slots == NULL ||
        self->free_slots == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if (rate > 0.0) {
        /* Below one call a second the window holds a single start and
         * the spacing rule in may_start does the pacing. */
        self->window = rate >= 1.0 ? (Py_ssize_t)floor(rate) : 1;
        self->starts = malloc((size_t)self->window * sizeof(double));
        if (self->starts == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        for (Py_ssize_t i = 0; i < self->window; i++) {
            self->starts[i] = -INFINITY;
        }
    }
    self->last_start = -INFINITY;
    curl_multi_setopt(self->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
    curl_multi_setopt(self->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)concurrency);
    for (int i = 0; i < concurrency; i++) {
        if (ms_transfer_init(&self->slots[i], config, 0) < 0) {
            self->slot_count = i;
            goto error;
        }
        self->slots[i].index = -1;
        self->free_slots[i] = concurrency - 1 - i;
    }
    self->slot_count = concurrency;
    self->free_count = concurrency;
    return (PyObject *)self;

error:
    Py_DECREF(self);
    return NULL;
}

static int
Batch_traverse(BatchObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->session);
    return 0;
}

static int
Batch_clear(BatchObject *self)
{
    Py_CLEAR(self->session);
    return 0;
}

static void
Batch_dealloc(BatchObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    release_all(self);
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    Batch_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* Whether the rate limit lets a call start now; if not, *wait_until says
 * when it will. */
static int
may_start(BatchObject *self, double now, double *wait_until)
{
    if (self->rate <= 0.0) {
        return 1;
    }
    double earliest = self->starts[self->start_pos] + 1.0;
    double spaced = self->last_start + 1.0 / self->rate;
    if (self->rate >= 1.0) {
        /* Spread starts evenly instead of a burst at each second's
         * start; the window above is the hard guarantee. */
        spaced = self->last_start + 0.999 / self->rate;
    }
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
record_start(BatchObject *self, double now)
{
    if (self->rate <= 0.0) {
        return;
    }
    self->starts[self->start_pos] = now;
    self->start_pos = (self->start_pos + 1) % self->window;
    self->last_start = now;
}

/* Takes the next item that may start: a retry whose backoff is over
 * first, then the queue in submission order. */
static pending *
next_ready(BatchObject *self, double now, double *wait_until)
{
    pending **link = &self->delayed;
    while (*link != NULL) {
        pending *item = *link;
        if (item->not_before <= now) {
            *link = item->next;
            self->delayed_count--;
            return item;
        }
        if (item->not_before < *wait_until) {
            *wait_until = item->not_before;
        }
        link = &item->next;
    }
    pending *item = self->queue_head;
    if (item != NULL) {
        self->queue_head = item->next;
        if (self->queue_head == NULL) {
            self->queue_tail = NULL;
        }
        self->queued--;
    }
    return item;
}

/* Fills free slots with ready work; returns -1 on a multi error. */
static int
start_transfers(BatchObject *self, double now, double *wait_until,
                CURLMcode *error)
{
    while (self->free_count > 0 && (self->queued > 0 || self->delayed)) {
        if (!may_start(self, now, wait_until)) {
            return 0;
        }
        pending *item = next_ready(self, now, wait_until);
        if (item == NULL) {
            return 0;
        }
        int slot_id = self->free_slots[--self->free_count];
        ms_transfer *slot = &self->slots[slot_id];
        ms_transfer_prepare(slot, item->body, item->len);
        slot->index = item->index;
        slot->attempts = item->attempts;
        free(item);
        CURLMcode rc = curl_multi_add_handle(self->multi, slot->easy);
        if (rc != CURLM_OK) {
            *error = rc;
            slot->index = -1;
            self->free_slots[self->free_count++] = slot_id;
            return -1;
        }
        record_start(self, now);
    }
    return 0;
}

/* Moves every finished transfer into the done list and frees its slot. */
static void
collect_finished(BatchObject *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(self->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        ms_transfer *slot = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(self->multi, slot->easy);
        ms_transfer_complete(slot, result);
        ms_transfer *shell = calloc(1, sizeof(ms_transfer));
        if (shell == NULL) {
            self->out_of_memory = 1;
            ms_transfer_clear_response(slot);
        }
        else {
            ms_transfer_move_response(shell, slot);
            if (self->done_tail != NULL) {
                self->done_tail->next = shell;
            }
            else {
                self->done_head = shell;
            }
            self->done_tail = shell;
            self->done_count++;
        }
        slot->index = -1;
        self->free_slots[self->free_count++] = (int)(slot - self->slots);
    }
}

typedef struct {
    double max_wait;
    double flush_interval;
    Py_ssize_t low_water;
} run_limits;

/* The GIL-free loop.  Returns the CURLMcode that stopped it, CURLM_OK
 * when it returned because of time, idleness or a refill request. */
static CURLMcode
run_loop(BatchObject *self, const run_limits *limits)
{
    double started = ms_monotonic();
    double deadline = started + limits->max_wait;
    CURLMcode rc = CURLM_OK;
    for (;;) {
        double now = ms_monotonic();
        double wait_until = deadline;
        if (start_transfers(self, now, &wait_until, &rc) < 0) {
            return rc;
        }
        int running;
        rc = curl_multi_perform(self->multi, &running);
        if (rc != CURLM_OK) {
            return rc;
        }
        collect_finished(self);
        if (self->out_of_memory) {
            return CURLM_OK;
        }
        now = ms_monotonic();
        if (start_transfers(self, now, &wait_until, &rc) < 0) {
            return rc;
        }
        if (in_flight(self) == 0 && self->queued == 0 &&
            self->delayed == NULL) {
            return CURLM_OK;
        }
        if (now >= deadline) {
            return CURLM_OK;
        }
        if (self->done_count > 0 &&
            now - started >= limits->flush_interval) {
            return CURLM_OK;
        }
        if (limits->low_water > 0 && self->queued < limits->low_water) {
            return CURLM_OK;
        }
        double wait = wait_until - now;
        if (self->done_count > 0) {
            double flush_at = started + limits->flush_interval - now;
            if (flush_at < wait) {
                wait = flush_at;
            }
        }
        int timeout_ms = (int)ceil(wait * 1000.0);
        if (timeout_ms < 0) {
            timeout_ms = 0;
        }
        /* curl_multi_poll also wakes for libcurl's own timers. */
        rc = curl_multi_poll(self->multi, NULL, 0, timeout_ms, NULL);
        if (rc != CURLM_OK) {
            return rc;
        }
    }
}

PyDoc_STRVAR(Batch_submit__doc__,
"submit($self, items, /, delay=0.0)\n"
"--\n"
"\n"
"Queue (index, body) pairs.  With delay, they start no sooner than delay\n"
"seconds from now (retry backoff) and count as retries.");

static PyObject *
Batch_submit(BatchObject *self, PyObject *args)
{
    PyObject *items;
    double delay = 0.0;
    if (!PyArg_ParseTuple(args, "O|d:submit", &items, &delay)) {
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the batch is closed");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(items, "items must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    pending *head = NULL, **tail = &head;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    double not_before = delay > 0.0 ? ms_monotonic() + delay : 0.0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t index;
        char *data;
        Py_ssize_t len;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "each item must be an (index, body) tuple");
            goto error;
        }
        index = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
        if (index == -1 && PyErr_Occurred()) {
            goto error;
        }
        if (index < 0) {
            PyErr_SetString(PyExc_ValueError, "index must be >= 0");
            goto error;
        }
        if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(item, 1), &data, &len) <
            0) {
            goto error;
        }
        pending *entry = malloc(sizeof(pending));
        char *body = malloc((size_t)len + 1);
        if (entry == NULL || body == NULL) {
            free(entry);
            free(body);
            PyErr_NoMemory();
            goto error;
        }
        memcpy(body, data, (size_t)len);
        body[len] = '\0';
        entry->index = index;
        entry->body = body;
        entry->len = (size_t)len;
        entry->not_before = not_before;
        entry->attempts = delay > 0.0 ? 1 : 0;
        entry->next = NULL;
        *tail = entry;
        tail = &entry->next;
    }
    Py_DECREF(seq);

    /* Only now, so a bad item leaves the batch untouched. */
    if (!PyThread_acquire_lock(self->lock, 0)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, 1);
        Py_END_ALLOW_THREADS
    }
    if (delay > 0.0) {
        pending *last = head;
        while (last != NULL && last->next != NULL) {
            last = last->next;
        }
        if (last != NULL) {
            last->next = self->delayed;
            self->delayed = head;
            self->delayed_count += count;
        }
    }
    else if (head != NULL) {
        if (self->queue_tail != NULL) {
            self->queue_tail->next = head;
        }
        else {
            self->queue_head = head;
        }
        self->queue_tail = (pending *)((char *)tail -
                                       offsetof(pending, next));
        self->queued += count;
    }
    PyThread_release_lock(self->lock);
    Py_RETURN_NONE;

error:
    Py_DECREF(seq);
    free_pending_list(head);
    return NULL;
}

/* Converts the done list to [(index, outcome, is_error), ...] and frees
 * it.  New reference, or NULL with an exception set (the rest of the list
 * is freed either way). */
static PyObject *
take_done(BatchObject *self)
{
    ms_state *state = batch_state(self);
    PyObject *list = PyList_New(0);
    ms_transfer *shell = self->done_head;
    self->done_head = self->done_tail = NULL;
    self->done_count = 0;
    while (shell != NULL && list != NULL) {
        int is_error;
        PyObject *outcome = ms_transfer_outcome(state, shell, &is_error);
        PyObject *entry = NULL;
        if (outcome != NULL) {
            entry = Py_BuildValue("(nNO)", shell->index, outcome,
                                  is_error ? Py_True : Py_False);
        }
        if (entry == NULL || PyList_Append(list, entry) < 0) {
            Py_XDECREF(entry);
            Py_CLEAR(list);
        }
        else {
            Py_DECREF(entry);
        }
        ms_transfer *next = shell->next;
        ms_transfer_clear_response(shell);
        free(shell);
        shell = next;
    }
    free_done_list(shell);
    return list;
}

PyDoc_STRVAR(Batch_run__doc__,
"run($self, /, max_wait=0.1, flush_interval=0.05, low_water=0)\n"
"--\n"
"\n"
"Drive the transfers with the GIL released for at most max_wait seconds\n"
"and return [(index, outcome, is_error), ...] for what finished.  Returns\n"
"early once finished work is flush_interval old, when fewer than low_water\n"
"items are queued (time to submit more), or when nothing is left.  An\n"
"outcome is the (status, headers, body, data) tuple of Session.post, or an\n"
"exception instance when is_error.  A pending signal (Ctrl-C) aborts every\n"
"transfer and raises.");

static PyObject *
Batch_run(BatchObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"max_wait", "flush_interval", "low_water",
                               NULL};
    run_limits limits = {0.1, 0.05, 0};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|ddn:run", keywords,
                                     &limits.max_wait, &limits.flush_interval,
                                     &limits.low_water)) {
        return NULL;
    }
    if (!(limits.max_wait >= 0.0) || !(limits.flush_interval >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "waits must be >= 0");
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the batch is closed");
        return NULL;
    }
    if (self->slots != NULL && ms_transfer_is_foreign(&self->slots[0])) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a batch cannot continue in a forked child");
        return NULL;
    }
    if (!PyThread_acquire_lock(self->lock, 0)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the batch is being run by another thread");
        return NULL;
    }
    CURLMcode rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_loop(self, &limits);
    Py_END_ALLOW_THREADS

    PyObject *result = NULL;
    if (rc != CURLM_OK) {
        abort_all(self);
        ms_raise_curlm_error(rc);
    }
    else if (self->out_of_memory) {
        self->out_of_memory = 0;
        abort_all(self);
        PyErr_NoMemory();
    }
    else if (PyErr_CheckSignals() < 0) {
        abort_all(self);
    }
    else {
        result = take_done(self);
        if (result == NULL) {
            abort_all(self);
        }
    }
    PyThread_release_lock(self->lock);
    return result;
}

static PyObject *
Batch_get_pending(BatchObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->queued + self->delayed_count +
                              in_flight(self) + self->done_count);
}

static PyObject *
Batch_get_in_flight(BatchObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(in_flight(self));
}

PyDoc_STRVAR(Batch_close__doc__,
"close($self, /)\n"
"--\n"
"\n"
"Abort every transfer and free the handles.  Idempotent.");

static PyObject *
Batch_close(BatchObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!PyThread_acquire_lock(self->lock, 0)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the batch is being run by another thread");
        return NULL;
    }
    if (!self->closed) {
        self->closed = 1;
        release_all(self);
    }
    PyThread_release_lock(self->lock);
    Py_RETURN_NONE;
}

static PyObject *
Batch_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_SetString(PyExc_TypeError, "cannot pickle a Batch");
    return NULL;
}

static PyMethodDef Batch_methods[] = {
    {"submit", (PyCFunction)Batch_submit, METH_VARARGS, Batch_submit__doc__},
    {"run", (PyCFunction)(void (*)(void))Batch_run,
     METH_VARARGS | METH_KEYWORDS, Batch_run__doc__},
    {"close", (PyCFunction)Batch_close, METH_NOARGS, Batch_close__doc__},
    {"__reduce__", Batch_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Batch_getset[] = {
    {"pending", (getter)Batch_get_pending, NULL,
     "Items queued, waiting to retry, in flight or finished but not yet "
     "returned.",
     NULL},
    {"in_flight", (getter)Batch_get_in_flight, NULL,
     "Transfers currently running.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Batch__doc__,
"Batch(session, *, concurrency=16, rate_limit=0.0)\n"
"--\n"
"\n"
"Concurrent exchanges with the session's URL, headers and limits over one\n"
"curl multi handle.  rate_limit is calls started per second (0: none).");

static PyType_Slot batch_type_slots[] = {
    {Py_tp_new, Batch_new},
    {Py_tp_dealloc, Batch_dealloc},
    {Py_tp_traverse, Batch_traverse},
    {Py_tp_clear, Batch_clear},
    {Py_tp_methods, Batch_methods},
    {Py_tp_getset, Batch_getset},
    {Py_tp_doc, (void *)Batch__doc__},
    {0, NULL},
};

PyType_Spec ms_batch_type_spec = {
    .name = "mobilestatus._core.Batch",
    .basicsize = sizeof(BatchObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = batch_type_slots,
};

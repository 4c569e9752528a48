/* The AsyncMulti type: the transfer window of pool.c driven by an asyncio
 * event loop through libcurl's multi socket interface (the pattern of
 * curl's docs/examples/multi-uv.c).
 *
 * libcurl tells us which sockets to watch and when to time out through
 * callbacks that run inside curl_multi_socket_action, with the GIL
 * released.  They only record the request in C; each method returns the
 * recorded changes and the finished exchanges to the Python driver, which
 * applies them to the loop (add_reader, call_later, ...).  So the loop
 * never blocks and no Python code runs inside libcurl.
 */
#include "pool.h"

#include <math.h>

typedef struct {
    curl_socket_t fd;
    int what; /* CURL_POLL_IN, _OUT, _INOUT or _REMOVE */
} socket_change;

typedef struct {
    PyObject_HEAD
    PyObject *session; /* keeps the config alive */
    ms_pool pool;
    socket_change *changes;
    size_t change_count;
    size_t change_cap;
    long timer_ms;
    int timer_changed;
    int closed;
} AsyncMultiObject;

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userdata,
          void *socketdata)
{
    AsyncMultiObject *self = userdata;
    if (self->change_count == self->change_cap) {
        size_t cap = self->change_cap ? self->change_cap * 2 : 16;
        socket_change *grown = realloc(self->changes, cap * sizeof(*grown));
        if (grown == NULL) {
            self->pool.out_of_memory = 1;
            return -1;
        }
        self->changes = grown;
        self->change_cap = cap;
    }
    self->changes[self->change_count].fd = fd;
    self->changes[self->change_count].what = what;
    self->change_count++;
    return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userdata)
{
    AsyncMultiObject *self = userdata;
    self->timer_ms = timeout_ms;
    self->timer_changed = 1;
    return 0;
}

static PyObject *
AsyncMulti_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"session", "concurrency", "rate_limit", NULL};
    PyObject *session;
    int concurrency = 64;
    double rate = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$id:AsyncMulti",
                                     keywords, &session, &concurrency,
                                     &rate)) {
        return NULL;
    }
    ms_state *state = ms_state_from_type(type);
    const ms_config *config = ms_session_config(state, session);
    if (config == NULL) {
        return NULL;
    }
    AsyncMultiObject *self = (AsyncMultiObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->session = Py_NewRef(session);
    if (ms_pool_init(&self->pool, config, concurrency, rate) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    CURLM *multi = self->pool.multi;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, self);
    return (PyObject *)self;
}

static int
AsyncMulti_traverse(AsyncMultiObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->session);
    return 0;
}

static int
AsyncMulti_clear(AsyncMultiObject *self)
{
    Py_CLEAR(self->session);
    return 0;
}

static void
AsyncMulti_dealloc(AsyncMultiObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    ms_pool_release(&self->pool);
    free(self->changes);
    AsyncMulti_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* Runs libcurl for one event (fd, or CURL_SOCKET_TIMEOUT; fd < -1 means
 * "no event, just start queued work") and collects what finished.  No
 * GIL.  Returns *wake_at: when rate-limited or backed-off work can start,
 * or INFINITY. */
static CURLMcode
drive(AsyncMultiObject *self, curl_socket_t fd, int events, double *wake_at)
{
    ms_pool *pool = &self->pool;
    CURLMcode rc = CURLM_OK;
    int running;
    *wake_at = INFINITY;
    if (ms_pool_start(pool, ms_monotonic(), wake_at, &rc) < 0) {
        return rc;
    }
    if (fd >= -1) {
        rc = curl_multi_socket_action(pool->multi, fd, events, &running);
        if (rc != CURLM_OK) {
            return rc;
        }
    }
    ms_pool_collect(pool);
    /* Slots freed just now take queued work at once. */
    *wake_at = INFINITY;
    if (ms_pool_start(pool, ms_monotonic(), wake_at, &rc) < 0) {
        return rc;
    }
    return CURLM_OK;
}

/* (done, socket_changes, timer_ms or None, wake_in or None): a new
 * reference, or NULL with an exception set. */
static PyObject *
drive_and_report(AsyncMultiObject *self, curl_socket_t fd, int events)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the AsyncMulti is closed");
        return NULL;
    }
    if (self->pool.slot_count > 0 &&
        ms_transfer_is_foreign(&self->pool.slots[0])) {
        PyErr_SetString(PyExc_RuntimeError,
                        "an event-loop driver cannot continue in a forked "
                        "child; create the AsyncClient after fork");
        return NULL;
    }
    double wake_at;
    CURLMcode rc;
    Py_BEGIN_ALLOW_THREADS
    rc = drive(self, fd, events, &wake_at);
    Py_END_ALLOW_THREADS
    if (rc != CURLM_OK || self->pool.out_of_memory) {
        self->pool.out_of_memory = 0;
        self->change_count = 0;
        ms_pool_abort(&self->pool);
        return rc != CURLM_OK ? ms_raise_curlm_error(rc) : PyErr_NoMemory();
    }

    PyObject *done = NULL, *changes = NULL, *timer = NULL, *wake = NULL;
    done = ms_pool_take_done(&self->pool, ms_state_from_type(Py_TYPE(self)));
    changes = PyList_New((Py_ssize_t)self->change_count);
    if (done == NULL || changes == NULL) {
        goto error;
    }
    for (size_t i = 0; i < self->change_count; i++) {
        PyObject *pair = Py_BuildValue("(ii)", (int)self->changes[i].fd,
                                       self->changes[i].what);
        if (pair == NULL) {
            goto error;
        }
        PyList_SET_ITEM(changes, (Py_ssize_t)i, pair);
    }
    self->change_count = 0;
    if (self->timer_changed) {
        self->timer_changed = 0;
        timer = PyLong_FromLong(self->timer_ms);
    }
    else {
        timer = Py_NewRef(Py_None);
    }
    if (isfinite(wake_at)) {
        double wait = wake_at - ms_monotonic();
        wake = PyFloat_FromDouble(wait > 0 ? wait : 0.0);
    }
    else {
        wake = Py_NewRef(Py_None);
    }
    if (timer == NULL || wake == NULL) {
        goto error;
    }
    return Py_BuildValue("(NNNN)", done, changes, timer, wake);

error:
    self->change_count = 0;
    Py_XDECREF(done);
    Py_XDECREF(changes);
    Py_XDECREF(timer);
    Py_XDECREF(wake);
    return NULL;
}

PyDoc_STRVAR(AsyncMulti_add__doc__,
"add($self, items, delay=0.0, /)\n"
"--\n"
"\n"
"Queue (key, body) pairs and start what the window allows.  Returns\n"
"(done, socket_changes, timer_ms, wake_in), like socket_action.");

static PyObject *
AsyncMulti_add(AsyncMultiObject *self, PyObject *args)
{
    PyObject *items;
    double delay = 0.0;
    if (!PyArg_ParseTuple(args, "O|d:add", &items, &delay)) {
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the AsyncMulti is closed");
        return NULL;
    }
    if (ms_pool_submit(&self->pool, items, delay) < 0) {
        return NULL;
    }
    return drive_and_report(self, -2, 0);
}

PyDoc_STRVAR(AsyncMulti_socket_action__doc__,
"socket_action($self, fd, events, /)\n"
"--\n"
"\n"
"Tell libcurl that fd is ready (events: CSELECT_IN|CSELECT_OUT), or that\n"
"its timer expired (fd == SOCKET_TIMEOUT, or -2: just start queued work).\n"
"Returns (done, socket_changes, timer_ms, wake_in): the finished\n"
"[(key, outcome, is_error)], the [(fd, POLL_*)] watches to change, the new\n"
"libcurl timeout in ms (-1: none) or None if unchanged, and the seconds\n"
"until rate-limited or delayed work may start, or None.");

static PyObject *
AsyncMulti_socket_action(AsyncMultiObject *self, PyObject *args)
{
    int fd, events;
    if (!PyArg_ParseTuple(args, "ii:socket_action", &fd, &events)) {
        return NULL;
    }
    return drive_and_report(self, (curl_socket_t)fd, events);
}

PyDoc_STRVAR(AsyncMulti_cancel__doc__,
"cancel($self, key, /)\n"
"--\n"
"\n"
"Remove key's transfer wherever it is; returns like socket_action.");

static PyObject *
AsyncMulti_cancel(AsyncMultiObject *self, PyObject *arg)
{
    Py_ssize_t key = PyLong_AsSsize_t(arg);
    if (key == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the AsyncMulti is closed");
        return NULL;
    }
    ms_pool_cancel(&self->pool, key);
    return drive_and_report(self, -2, 0);
}

static PyObject *
AsyncMulti_close(AsyncMultiObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->closed) {
        self->closed = 1;
        ms_pool_release(&self->pool);
    }
    Py_RETURN_NONE;
}

static PyObject *
AsyncMulti_get_pending(AsyncMultiObject *self, void *Py_UNUSED(closure))
{
    const ms_pool *pool = &self->pool;
    return PyLong_FromSsize_t(pool->queued + pool->delayed_count +
                              ms_pool_in_flight(pool) + pool->done_count);
}

static PyObject *
AsyncMulti_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_SetString(PyExc_TypeError, "cannot pickle an AsyncMulti");
    return NULL;
}

static PyMethodDef AsyncMulti_methods[] = {
    {"add", (PyCFunction)AsyncMulti_add, METH_VARARGS, AsyncMulti_add__doc__},
    {"socket_action", (PyCFunction)AsyncMulti_socket_action, METH_VARARGS,
     AsyncMulti_socket_action__doc__},
    {"cancel", (PyCFunction)AsyncMulti_cancel, METH_O,
     AsyncMulti_cancel__doc__},
    {"close", (PyCFunction)AsyncMulti_close, METH_NOARGS,
     "close($self, /)\n--\n\nAbort every transfer and free the handles."},
    {"__reduce__", AsyncMulti_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef AsyncMulti_getset[] = {
    {"pending", (getter)AsyncMulti_get_pending, NULL,
     "Items queued, delayed, in flight or finished but not yet returned.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(AsyncMulti__doc__,
"AsyncMulti(session, *, concurrency=64, rate_limit=0.0)\n"
"--\n"
"\n"
"The session's exchanges over a curl multi handle driven by an event\n"
"loop through the multi socket interface.");

static PyType_Slot async_multi_type_slots[] = {
    {Py_tp_new, AsyncMulti_new},
    {Py_tp_dealloc, AsyncMulti_dealloc},
    {Py_tp_traverse, AsyncMulti_traverse},
    {Py_tp_clear, AsyncMulti_clear},
    {Py_tp_methods, AsyncMulti_methods},
    {Py_tp_getset, AsyncMulti_getset},
    {Py_tp_doc, (void *)AsyncMulti__doc__},
    {0, NULL},
};

PyType_Spec ms_async_multi_type_spec = {
    .name = "mobilestatus._core.AsyncMulti",
    .basicsize = sizeof(AsyncMultiObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = async_multi_type_slots,
};

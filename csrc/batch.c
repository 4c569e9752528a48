/* The Batch type: many exchanges in flight over one curl multi handle,
 * in the shape of curl's docs/examples/10-at-a-time.c.
 *
 * Python submits (key, body) pairs; run() releases the GIL and keeps
 * `concurrency` transfers going (pool.c), pacing starts when a rate limit
 * is set.  Finished exchanges are parsed right away, still without the
 * GIL, and wait in C until run() returns: it takes the GIL back by time
 * (flush_interval), never once per transfer, because each take can cost a
 * full switch interval while another thread runs.  Python decides what an
 * outcome means and whether to retry it; a retry comes back through
 * submit() with a delay.
 */
#include "pool.h"

#include <errno.h>
#include <math.h>
#include <pythread.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    PyObject *session; /* keeps the config alive */
    ms_pool pool;
    int epoll_fd;
    double timer_at; /* when libcurl wants CURL_SOCKET_TIMEOUT */
    PyThread_type_lock lock;
    int closed;
} BatchObject;

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userdata,
                     void *socketdata);
static int on_timer(CURLM *multi, long timeout_ms, void *userdata);

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
    self->epoll_fd = -1;
    self->timer_at = INFINITY;
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if (ms_pool_init(&self->pool, config, concurrency, rate) < 0) {
        goto error;
    }
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epoll_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    CURLM *multi = self->pool.multi;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, self);
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
    ms_pool_release(&self->pool);
    if (self->epoll_fd >= 0) {
        close(self->epoll_fd);
    }
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    Batch_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* Takes the batch lock without ever blocking with the GIL held. */
static void
acquire_lock(BatchObject *self)
{
    if (!PyThread_acquire_lock(self->lock, 0)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, 1);
        Py_END_ALLOW_THREADS
    }
}

typedef struct {
    double max_wait;
    double flush_interval;
    Py_ssize_t low_water;
} run_limits;

/* libcurl's socket callback: mirror the sockets it wants watched into our
 * epoll set.  Runs inside curl_multi_socket_action, without the GIL. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userdata,
          void *socketdata)
{
    BatchObject *self = userdata;
    if (what == CURL_POLL_REMOVE) {
        /* The socket may already be closed, which removed it. */
        epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event event = {0};
    event.data.fd = fd;
    event.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
                   ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, fd, &event) < 0) {
        if (errno != ENOENT ||
            epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userdata)
{
    BatchObject *self = userdata;
    self->timer_at =
        timeout_ms < 0 ? INFINITY : ms_monotonic() + timeout_ms / 1000.0;
    return 0;
}

/* The GIL-free loop, on libcurl's socket interface: each wake-up costs
 * the sockets that are ready, not every transfer in flight (which is what
 * curl_multi_perform walks, and what made 256 in flight CPU-bound).
 * Returns the CURLMcode that stopped it, CURLM_OK when it returned because
 * of time, idleness or a refill request. */
static CURLMcode
run_loop(BatchObject *self, const run_limits *limits)
{
    ms_pool *pool = &self->pool;
    double started = ms_monotonic();
    double deadline = started + limits->max_wait;
    CURLMcode rc = CURLM_OK;
    struct epoll_event events[64];
    int running;
    for (;;) {
        double now = ms_monotonic();
        double wait_until = deadline;
        if (ms_pool_start(pool, now, &wait_until, &rc) < 0) {
            return rc;
        }
        if (self->timer_at <= now) {
            self->timer_at = INFINITY;
            rc = curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT,
                                          0, &running);
            if (rc != CURLM_OK) {
                return rc;
            }
        }
        ms_pool_collect(pool);
        if (pool->out_of_memory) {
            return CURLM_OK;
        }
        now = ms_monotonic();
        if (ms_pool_start(pool, now, &wait_until, &rc) < 0) {
            return rc;
        }
        if (ms_pool_idle(pool) || now >= deadline) {
            return CURLM_OK;
        }
        if (pool->done_count > 0 &&
            now - started >= limits->flush_interval) {
            return CURLM_OK;
        }
        if (limits->low_water > 0 && pool->queued < limits->low_water) {
            return CURLM_OK;
        }
        double wake = wait_until < self->timer_at ? wait_until
                                                  : self->timer_at;
        if (pool->done_count > 0 &&
            started + limits->flush_interval < wake) {
            wake = started + limits->flush_interval;
        }
        double wait = wake - now;
        int timeout_ms = wait > 0 ? (int)ceil(wait * 1000.0) : 0;
        int ready = epoll_wait(self->epoll_fd, events, 64, timeout_ms);
        if (ready < 0 && errno != EINTR) {
            return CURLM_INTERNAL_ERROR;
        }
        for (int i = 0; i < ready; i++) {
            int mask = ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                       ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT
                                                      : 0) |
                       ((events[i].events & (EPOLLERR | EPOLLHUP))
                            ? CURL_CSELECT_ERR
                            : 0);
            rc = curl_multi_socket_action(pool->multi, events[i].data.fd,
                                          mask, &running);
            if (rc != CURLM_OK) {
                return rc;
            }
        }
    }
}

PyDoc_STRVAR(Batch_submit__doc__,
"submit($self, items, delay=0.0, /)\n"
"--\n"
"\n"
"Queue (key, body) pairs.  With delay, they start no sooner than delay\n"
"seconds from now (retry backoff), ahead of the queue.");

static PyObject *
Batch_submit(BatchObject *self, PyObject *args)
{
    PyObject *items;
    double delay = 0.0;
    if (!PyArg_ParseTuple(args, "O|d:submit", &items, &delay)) {
        return NULL;
    }
    acquire_lock(self);
    int rc = -1;
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the batch is closed");
    }
    else {
        rc = ms_pool_submit(&self->pool, items, delay);
    }
    PyThread_release_lock(self->lock);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
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
    if (self->pool.slot_count > 0 &&
        ms_transfer_is_foreign(&self->pool.slots[0])) {
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
        ms_pool_abort(&self->pool);
        ms_raise_curlm_error(rc);
    }
    else if (self->pool.out_of_memory) {
        self->pool.out_of_memory = 0;
        ms_pool_abort(&self->pool);
        PyErr_NoMemory();
    }
    else if (PyErr_CheckSignals() < 0) {
        /* Ctrl-C: every handle is removed before the exception leaves. */
        ms_pool_abort(&self->pool);
    }
    else {
        result = ms_pool_take_done(&self->pool, ms_state_from_type(Py_TYPE(self)));
        if (result == NULL) {
            ms_pool_abort(&self->pool);
        }
    }
    PyThread_release_lock(self->lock);
    return result;
}

static PyObject *
Batch_get_pending(BatchObject *self, void *Py_UNUSED(closure))
{
    const ms_pool *pool = &self->pool;
    return PyLong_FromSsize_t(pool->queued + pool->delayed_count +
                              ms_pool_in_flight(pool) + pool->done_count);
}

static PyObject *
Batch_get_in_flight(BatchObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(ms_pool_in_flight(&self->pool));
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
        ms_pool_release(&self->pool);
        close(self->epoll_fd);
        self->epoll_fd = -1;
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

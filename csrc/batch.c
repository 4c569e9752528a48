/* The Batch type: many exchanges in flight over one curl multi handle,
 * in the shape of curl's docs/examples/10-at-a-time.c.
 *
 * The transfers are driven by a native worker thread that never takes the
 * GIL: it keeps `concurrency` transfers going (pool.c), paces starts when
 * a rate limit is set, and parses finished answers as they arrive.  Python
 * talks to it through a mailbox under a mutex: submit() drops (key, body)
 * work in, run() waits with the GIL released and takes finished answers
 * out by time (flush_interval), never once per transfer, because each
 * GIL take can cost a full switch interval while another thread runs.
 * While Python is busy giving those answers their meaning, the worker
 * keeps the window full; a loop on the calling thread would stall every
 * transfer for as long as Python takes.  Python decides what an outcome
 * means and whether to retry it; a retry comes back through submit() with
 * a delay.
 */
#include "pool.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <pythread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* What a waiting run() returns for: the worker checks it after each round
 * so that it wakes Python only when there is a reason. */
typedef struct {
    double deadline;
    double flush_at;
    Py_ssize_t low_water;
    Py_ssize_t outstanding;
} run_wait;

typedef struct {
    PyObject_HEAD
    PyObject *session; /* keeps the config alive */
    ms_pool pool;      /* the worker's alone while it runs */
    int epoll_fd;
    int wake_fd;       /* eventfd in the epoll set: new work, or stop */
    double timer_at;   /* when libcurl wants CURL_SOCKET_TIMEOUT */
    PyThread_type_lock lock; /* one Python caller at a time */
    int closed;

    /* Submitted and not yet returned by run(); Python's side only. */
    Py_ssize_t outstanding;

    pthread_t worker;
    int worker_started;

    /* The mailbox: everything below is under mailbox_lock. */
    pthread_mutex_t mailbox_lock;
    pthread_cond_t mailbox_changed;
    int sync_ready; /* the mutex and condition exist */
    ms_pending_list inbox;
    ms_pending_list inbox_delayed;
    ms_transfer *done_head;
    ms_transfer *done_tail;
    Py_ssize_t done_count;
    Py_ssize_t queued_in_pool; /* as of the worker's last round */
    Py_ssize_t in_flight;
    int stop;
    int worker_ended;
    CURLMcode worker_error;
    int worker_out_of_memory;
    int python_waiting;
    run_wait want;
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
    self->wake_fd = -1;
    self->timer_at = INFINITY;
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if (pthread_mutex_init(&self->mailbox_lock, NULL) != 0) {
        PyErr_NoMemory();
        goto error;
    }
    pthread_condattr_t cond_attr;
    int cond_err = pthread_condattr_init(&cond_attr);
    if (cond_err == 0) {
        cond_err = pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
        if (cond_err == 0) {
            cond_err = pthread_cond_init(&self->mailbox_changed, &cond_attr);
        }
        pthread_condattr_destroy(&cond_attr);
    }
    if (cond_err != 0) {
        pthread_mutex_destroy(&self->mailbox_lock);
        PyErr_NoMemory();
        goto error;
    }
    self->sync_ready = 1;
    if (ms_pool_init(&self->pool, config, concurrency, rate) < 0) {
        goto error;
    }
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->epoll_fd < 0 || self->wake_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    struct epoll_event wake_event = {0};
    wake_event.events = EPOLLIN;
    wake_event.data.fd = self->wake_fd;
    if (epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->wake_fd,
                  &wake_event) < 0) {
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

static int
in_forked_child(const BatchObject *self)
{
    return self->pool.multi != NULL &&
           self->pool.owner_generation != ms_process_generation();
}

static void
wake_worker(BatchObject *self)
{
    uint64_t one = 1;
    /* EAGAIN means a wake-up is already pending, which is enough. */
    (void)!write(self->wake_fd, &one, sizeof(one));
}

/* Frees the work and answers the mailbox holds; no worker may be running
 * (or, in a forked child, exist). */
static void
empty_mailbox(BatchObject *self)
{
    ms_pending_list_free(&self->inbox);
    ms_pending_list_free(&self->inbox_delayed);
    ms_done_list_free(self->done_head);
    self->done_head = self->done_tail = NULL;
    self->done_count = 0;
    self->queued_in_pool = 0;
    self->in_flight = 0;
    self->outstanding = 0;
}

/* Stops and joins the worker, then frees what the mailbox held.  The
 * pool is the caller's again afterwards.  GIL held (released to join). */
static void
stop_worker(BatchObject *self)
{
    if (self->worker_started) {
        pthread_mutex_lock(&self->mailbox_lock);
        self->stop = 1;
        pthread_mutex_unlock(&self->mailbox_lock);
        wake_worker(self);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(self->worker, NULL);
        Py_END_ALLOW_THREADS
        self->worker_started = 0;
        self->stop = 0;
        self->worker_ended = 0;
    }
    empty_mailbox(self);
}

/* In a forked child the worker thread does not exist, and the mutex may
 * have been held by it at fork: neither is touched again, only our own
 * memory is freed. */
static void
forget_worker(BatchObject *self)
{
    self->worker_started = 0;
    self->sync_ready = 0;
    empty_mailbox(self);
}

/* Drops every transfer and all queued and finished work. */
static void
abort_all(BatchObject *self)
{
    stop_worker(self);
    ms_pool_abort(&self->pool);
}

static void
Batch_dealloc(BatchObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (in_forked_child(self)) {
        forget_worker(self);
    }
    else {
        stop_worker(self);
        if (self->sync_ready) {
            pthread_cond_destroy(&self->mailbox_changed);
            pthread_mutex_destroy(&self->mailbox_lock);
        }
    }
    ms_pool_release(&self->pool);
    if (self->epoll_fd >= 0) {
        close(self->epoll_fd);
    }
    if (self->wake_fd >= 0) {
        close(self->wake_fd);
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

/* Whether a waiting run() should return now.  Under mailbox_lock; used by
 * run() itself and by the worker to decide whether to wake it. */
static int
run_should_return(const BatchObject *self, const run_wait *want, double now)
{
    if (self->worker_ended) {
        return 1;
    }
    if (self->done_count > 0 &&
        (now >= want->flush_at || self->done_count >= want->outstanding)) {
        return 1;
    }
    if (want->outstanding == 0) {
        return 1;
    }
    if (want->low_water > 0 &&
        self->inbox.count + self->queued_in_pool < want->low_water) {
        return 1;
    }
    return now >= want->deadline;
}

/* Swaps work in and answers out.  Returns 1 when told to stop. */
static int
exchange_mailbox(BatchObject *self)
{
    ms_pool *pool = &self->pool;
    pthread_mutex_lock(&self->mailbox_lock);
    if (self->stop) {
        pthread_mutex_unlock(&self->mailbox_lock);
        return 1;
    }
    ms_pool_enqueue(pool, &self->inbox, 0);
    ms_pool_enqueue(pool, &self->inbox_delayed, 1);
    if (pool->done_count > 0) {
        ms_transfer *tail;
        Py_ssize_t count;
        ms_transfer *head = ms_pool_detach_done(pool, &tail, &count);
        if (self->done_tail != NULL) {
            self->done_tail->next = head;
        }
        else {
            self->done_head = head;
        }
        self->done_tail = tail;
        self->done_count += count;
    }
    self->queued_in_pool = pool->queued;
    self->in_flight = ms_pool_in_flight(pool);
    if (self->python_waiting &&
        run_should_return(self, &self->want, ms_monotonic())) {
        pthread_cond_signal(&self->mailbox_changed);
    }
    pthread_mutex_unlock(&self->mailbox_lock);
    return 0;
}

/* One round of libcurl work: start what may start, fire an expired
 * timer, collect (and parse) what finished.  CURLM_OK or the error. */
static CURLMcode
drive(BatchObject *self, double *wait_until)
{
    ms_pool *pool = &self->pool;
    CURLMcode rc = CURLM_OK;
    int running;
    double now = ms_monotonic();
    if (ms_pool_start(pool, now, wait_until, &rc) < 0) {
        return rc;
    }
    if (self->timer_at <= now) {
        self->timer_at = INFINITY;
        rc = curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT, 0,
                                      &running);
        if (rc != CURLM_OK) {
            return rc;
        }
    }
    ms_pool_collect(pool);
    /* Slots freed by collect take the next work at once. */
    if (ms_pool_start(pool, ms_monotonic(), wait_until, &rc) < 0) {
        return rc;
    }
    return CURLM_OK;
}

/* The worker, on libcurl's socket interface: each wake-up costs the
 * sockets that are ready, not every transfer in flight (which is what
 * curl_multi_perform walks, and what made 256 in flight CPU-bound).  It
 * never touches a Python object. */
static void *
worker_main(void *arg)
{
    BatchObject *self = arg;
    ms_pool *pool = &self->pool;
    struct epoll_event events[64];
    CURLMcode rc = CURLM_OK;
    int running;
    while (!exchange_mailbox(self)) {
        double wait_until = INFINITY;
        rc = drive(self, &wait_until);
        if (rc != CURLM_OK || pool->out_of_memory) {
            break;
        }
        if (pool->done_count > 0) {
            continue; /* hand the answers over before sleeping */
        }
        double wake = wait_until < self->timer_at ? wait_until
                                                  : self->timer_at;
        int timeout_ms = -1;
        if (isfinite(wake)) {
            double wait = wake - ms_monotonic();
            timeout_ms = wait > 0 ? (int)ceil(wait * 1000.0) : 0;
        }
        int ready = epoll_wait(self->epoll_fd, events, 64, timeout_ms);
        if (ready < 0 && errno != EINTR) {
            rc = CURLM_INTERNAL_ERROR;
            break;
        }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == self->wake_fd) {
                uint64_t count;
                (void)!read(self->wake_fd, &count, sizeof(count));
                continue;
            }
            int mask = ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                       ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT
                                                      : 0) |
                       ((events[i].events & (EPOLLERR | EPOLLHUP))
                            ? CURL_CSELECT_ERR
                            : 0);
            rc = curl_multi_socket_action(pool->multi, fd, mask, &running);
            if (rc != CURLM_OK) {
                break;
            }
        }
        if (rc != CURLM_OK) {
            break;
        }
    }
    pthread_mutex_lock(&self->mailbox_lock);
    self->worker_ended = 1;
    self->worker_error = rc;
    self->worker_out_of_memory = pool->out_of_memory;
    pthread_cond_signal(&self->mailbox_changed);
    pthread_mutex_unlock(&self->mailbox_lock);
    return NULL;
}

/* GIL held.  Signals are blocked in the worker so that Ctrl-C always
 * reaches the thread that can raise KeyboardInterrupt. */
static int
start_worker(BatchObject *self)
{
    if (self->worker_started) {
        return 0;
    }
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    int err = pthread_create(&self->worker, NULL, worker_main, self);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->worker_started = 1;
    return 0;
}

static void
deadline_to_timespec(double at, struct timespec *ts)
{
    /* The condition runs on CLOCK_MONOTONIC (Batch_new), like
     * ms_monotonic, so a wall-clock jump cannot stretch a wait. */
    double seconds = floor(at);
    ts->tv_sec = (time_t)seconds;
    ts->tv_nsec = (long)((at - seconds) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
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
    ms_pending_list list;
    if (ms_pending_parse(items, delay, &list) < 0) {
        return NULL;
    }
    acquire_lock(self);
    int rc = -1;
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the batch is closed");
    }
    else if (in_forked_child(self)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a batch cannot continue in a forked child");
    }
    else {
        Py_ssize_t count = list.count;
        /* Held only for the worker's splice: never long. */
        pthread_mutex_lock(&self->mailbox_lock);
        ms_pending_list_splice(delay > 0.0 ? &self->inbox_delayed
                                           : &self->inbox,
                               &list);
        pthread_mutex_unlock(&self->mailbox_lock);
        self->outstanding += count;
        if (self->worker_started) {
            wake_worker(self);
        }
        rc = 0;
    }
    PyThread_release_lock(self->lock);
    ms_pending_list_free(&list);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Batch_run__doc__,
"run($self, /, max_wait=0.1, flush_interval=0.05, low_water=0)\n"
"--\n"
"\n"
"Wait with the GIL released for at most max_wait seconds while the\n"
"worker thread drives the transfers, and return [(index, outcome,\n"
"is_error), ...] for what finished.  Returns early once finished work is\n"
"flush_interval old, when fewer than low_water items are queued (time to\n"
"submit more), or when everything submitted has finished.  An outcome is\n"
"the (status, headers, body, data) tuple of Session.post, or an exception\n"
"instance when is_error.  A pending signal (Ctrl-C) aborts every transfer\n"
"and raises.");

/* Waits for a reason to return and detaches the answers.  Without the
 * GIL.  *error and *out_of_memory report a worker that stopped. */
static ms_transfer *
wait_for_answers(BatchObject *self, const run_wait *want, Py_ssize_t *count,
                 CURLMcode *error, int *out_of_memory)
{
    pthread_mutex_lock(&self->mailbox_lock);
    self->want = *want;
    for (;;) {
        double now = ms_monotonic();
        if (run_should_return(self, want, now)) {
            break;
        }
        double until = want->deadline;
        if (self->done_count > 0 && want->flush_at < until) {
            until = want->flush_at;
        }
        struct timespec ts;
        deadline_to_timespec(until, &ts);
        self->python_waiting = 1;
        pthread_cond_timedwait(&self->mailbox_changed, &self->mailbox_lock,
                               &ts);
        self->python_waiting = 0;
    }
    ms_transfer *head = self->done_head;
    *count = self->done_count;
    self->done_head = self->done_tail = NULL;
    self->done_count = 0;
    *error = self->worker_ended ? self->worker_error : CURLM_OK;
    *out_of_memory = self->worker_ended && self->worker_out_of_memory;
    pthread_mutex_unlock(&self->mailbox_lock);
    return head;
}

static PyObject *
Batch_run(BatchObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"max_wait", "flush_interval", "low_water",
                               NULL};
    double max_wait = 0.1, flush_interval = 0.05;
    Py_ssize_t low_water = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|ddn:run", keywords,
                                     &max_wait, &flush_interval,
                                     &low_water)) {
        return NULL;
    }
    if (!(max_wait >= 0.0) || !(flush_interval >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "waits must be >= 0");
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the batch is closed");
        return NULL;
    }
    if (in_forked_child(self)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a batch cannot continue in a forked child");
        return NULL;
    }
    if (!PyThread_acquire_lock(self->lock, 0)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the batch is being run by another thread");
        return NULL;
    }
    if (start_worker(self) < 0) {
        PyThread_release_lock(self->lock);
        return NULL;
    }
    double now = ms_monotonic();
    run_wait want = {now + max_wait, now + flush_interval, low_water,
                     self->outstanding};
    ms_transfer *done;
    Py_ssize_t count;
    CURLMcode rc;
    int out_of_memory;
    Py_BEGIN_ALLOW_THREADS
    done = wait_for_answers(self, &want, &count, &rc, &out_of_memory);
    Py_END_ALLOW_THREADS
    self->outstanding -= count;

    PyObject *result = NULL;
    if (rc != CURLM_OK || out_of_memory) {
        ms_done_list_free(done);
        abort_all(self);
        if (rc != CURLM_OK) {
            ms_raise_curlm_error(rc);
        }
        else {
            PyErr_NoMemory();
        }
    }
    else if (PyErr_CheckSignals() < 0) {
        /* Ctrl-C: every handle is removed before the exception leaves. */
        ms_done_list_free(done);
        abort_all(self);
    }
    else {
        result = ms_done_list_to_python(
            done, ms_state_from_type(Py_TYPE(self)));
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
    return PyLong_FromSsize_t(self->outstanding);
}

static PyObject *
Batch_get_in_flight(BatchObject *self, void *Py_UNUSED(closure))
{
    if (in_forked_child(self)) {
        return PyLong_FromLong(0);
    }
    pthread_mutex_lock(&self->mailbox_lock);
    Py_ssize_t in_flight = self->worker_started ? self->in_flight : 0;
    pthread_mutex_unlock(&self->mailbox_lock);
    return PyLong_FromSsize_t(in_flight);
}

PyDoc_STRVAR(Batch_close__doc__,
"close($self, /)\n"
"--\n"
"\n"
"Abort every transfer, stop the worker thread and free the handles.\n"
"Idempotent.");

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
        if (in_forked_child(self)) {
            forget_worker(self);
        }
        else {
            stop_worker(self);
        }
        ms_pool_release(&self->pool);
        close(self->epoll_fd);
        self->epoll_fd = -1;
        close(self->wake_fd);
        self->wake_fd = -1;
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

/* The Session type: one easy handle, one exchange at a time, performed
 * and parsed with the GIL released.  Its connection stays open between
 * calls.  The Python Client pools Sessions across threads; a Session's
 * own lock only guarantees that a misuse can never hand one easy handle
 * to two threads at once (libcurl-thread.md).
 */
#include "transfer.h"

#include <pythread.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    ms_config config;
    ms_transfer transfer;
    PyThread_type_lock lock;
    int closed;
} SessionObject;

static void enable_signal_watch(CURL *easy);

/* Acquires the session lock, blocking only with the GIL released so a
 * thread waiting here never stalls the others (the _bz2module pattern). */
static void
acquire_lock(SessionObject *self)
{
    if (!PyThread_acquire_lock(self->lock, 0)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, 1);
        Py_END_ALLOW_THREADS
    }
}

/* Returns a malloc'd copy of a str argument, refusing the bytes that
 * would let a value break out of its header line or URL. */
static char *
copy_clean_str(PyObject *value, const char *what)
{
    Py_ssize_t len;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &len);
    if (utf8 == NULL) {
        return NULL;
    }
    if (strcspn(utf8, "\r\n") != (size_t)len) {
        PyErr_Format(PyExc_ValueError,
                     "%s must not contain CR, LF or NUL characters", what);
        return NULL;
    }
    char *copy = malloc((size_t)len + 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, utf8, (size_t)len + 1);
    return copy;
}

static int
optional_str(PyObject *value, char **out, const char *what)
{
    if (value == NULL || value == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str or None", what);
        return -1;
    }
    *out = copy_clean_str(value, what);
    return *out == NULL ? -1 : 0;
}

static long
seconds_to_ms(double seconds, const char *what)
{
    if (!(seconds > 0) || seconds > 86400.0) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a finite number of seconds in (0, 86400]",
                     what);
        return -1;
    }
    long ms = (long)(seconds * 1000.0 + 0.5);
    return ms < 1 ? 1 : ms;
}

/* Fills config from the constructor's arguments; -1 with an exception
 * set, leaving whatever was filled for ms_config_clear. */
static int
config_from_args(ms_config *config, PyObject *url, PyObject *headers,
                 double timeout, double connect_timeout,
                 long long max_response_size, PyObject *ca_bundle,
                 PyObject *proxy, PyObject *user_agent, long max_depth)
{
    if (!PyUnicode_Check(url)) {
        PyErr_SetString(PyExc_TypeError, "url must be a str");
        return -1;
    }
    if ((config->url = copy_clean_str(url, "url")) == NULL) {
        return -1;
    }
    PyObject *seq = PySequence_Fast(headers, "headers must be a sequence");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "each header must be a str");
            goto error;
        }
        /* The message names no value: a header may hold the AppCode. */
        char *line = copy_clean_str(item, "a header");
        if (line == NULL) {
            goto error;
        }
        struct curl_slist *appended = curl_slist_append(config->headers, line);
        free(line);
        if (appended == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        config->headers = appended;
    }
    Py_DECREF(seq);

    if ((config->timeout_ms = seconds_to_ms(timeout, "timeout")) < 0 ||
        (config->connect_timeout_ms =
             seconds_to_ms(connect_timeout, "connect_timeout")) < 0) {
        return -1;
    }
    if (max_response_size < 1) {
        PyErr_SetString(PyExc_ValueError, "max_response_size must be >= 1");
        return -1;
    }
    config->max_response_size = (curl_off_t)max_response_size;
    if (max_depth < 1) {
        PyErr_SetString(PyExc_ValueError, "max_depth must be >= 1");
        return -1;
    }
    config->max_depth = max_depth;
    if (optional_str(ca_bundle, &config->ca_bundle, "ca_bundle") < 0 ||
        optional_str(proxy, &config->proxy, "proxy") < 0 ||
        optional_str(user_agent, &config->user_agent, "user_agent") < 0) {
        return -1;
    }
    return 0;

error:
    Py_DECREF(seq);
    return -1;
}

static PyObject *
Session_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"url", "headers", "timeout",
                               "connect_timeout", "max_response_size",
                               "ca_bundle", "proxy", "user_agent",
                               "max_depth", NULL};
    PyObject *url, *headers;
    double timeout = 10.0, connect_timeout = 3.0;
    long long max_response_size = 1 << 20;
    PyObject *ca_bundle = Py_None, *proxy = Py_None, *user_agent = Py_None;
    long max_depth = MS_DEFAULT_MAX_DEPTH;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "UO|$ddLOOOl:Session", keywords, &url, &headers,
            &timeout, &connect_timeout, &max_response_size, &ca_bundle,
            &proxy, &user_agent, &max_depth)) {
        return NULL;
    }

    SessionObject *self = (SessionObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    ms_config_init(&self->config);
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if (config_from_args(&self->config, url, headers, timeout,
                         connect_timeout, max_response_size, ca_bundle,
                         proxy, user_agent, max_depth) < 0) {
        goto error;
    }
    if (ms_transfer_init(&self->transfer, &self->config, 1) < 0) {
        goto error;
    }
    enable_signal_watch(self->transfer.easy);
    return (PyObject *)self;

error:
    Py_DECREF(self);
    return NULL;
}

static void
Session_dealloc(SessionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    ms_transfer_release(&self->transfer);
    ms_config_clear(&self->config);
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* A single exchange can wait as long as its deadline (seconds) with the
 * GIL released; Ctrl-C in a terminal or notebook should not.  libcurl calls
 * the progress callback at least once a second while it waits, and more
 * often while data moves; every SIGNAL_CHECK_INTERVAL at most, the callback
 * takes the GIL back for PyErr_CheckSignals and aborts the transfer if a
 * handler raised.  A fast exchange never takes the GIL in between. */
#define SIGNAL_CHECK_INTERVAL 0.1

typedef struct {
    PyThreadState *saved; /* this thread's state while the GIL is out */
    double next_check;
    int interrupted;      /* the exception is set in the thread state */
} signal_watch;

static int
on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
            curl_off_t ultotal, curl_off_t ulnow)
{
    signal_watch *watch = userdata;
    if (watch == NULL) {
        return 0;
    }
    double now = ms_monotonic();
    if (now < watch->next_check) {
        return 0;
    }
    watch->next_check = now + SIGNAL_CHECK_INTERVAL;
    PyEval_RestoreThread(watch->saved);
    if (PyErr_CheckSignals() < 0) {
        watch->interrupted = 1;
    }
    watch->saved = PyEval_SaveThread();
    return watch->interrupted;
}

/* Once per handle; each exchange then points XFERINFODATA at its own
 * watch, which libcurl only reads during curl_easy_perform. */
static void
enable_signal_watch(CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, NULL);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
}

PyDoc_STRVAR(Session_post__doc__,
"post($self, body, /)\n"
"--\n"
"\n"
"POST body to the session's URL and return (status, headers, body, data).\n"
"\n"
"The transfer and the JSON parse run with the GIL released.  headers holds\n"
"the response headers the client interprets, lower-cased; data is the\n"
"parsed JSON, a ParseError instance for a malformed body, or None when\n"
"the body was empty or not JSON.  A transport failure raises.");

static PyObject *
Session_post(SessionObject *self, PyObject *body)
{
    ms_state *state = ms_state_from_type(Py_TYPE(self));
    char *data;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(body, &data, &len) < 0) {
        return NULL;
    }
    char *copy = malloc((size_t)len + 1);
    if (copy == NULL) {
        return PyErr_NoMemory();
    }
    memcpy(copy, data, (size_t)len);
    copy[len] = '\0';

    acquire_lock(self);
    if (self->closed) {
        PyThread_release_lock(self->lock);
        free(copy);
        PyErr_SetString(PyExc_RuntimeError, "the session is closed");
        return NULL;
    }
    if (ms_transfer_is_foreign(&self->transfer)) {
        /* First use in a forked child: connect afresh on a new handle. */
        ms_transfer_release(&self->transfer);
        if (ms_transfer_init(&self->transfer, &self->config, 1) < 0) {
            PyThread_release_lock(self->lock);
            free(copy);
            return NULL;
        }
        enable_signal_watch(self->transfer.easy);
    }
    ms_transfer *transfer = &self->transfer;
    ms_transfer_prepare(transfer, copy, (size_t)len);

    signal_watch watch = {NULL, ms_monotonic() + SIGNAL_CHECK_INTERVAL, 0};
    curl_easy_setopt(transfer->easy, CURLOPT_XFERINFODATA, &watch);
    watch.saved = PyEval_SaveThread();
    CURLcode rc = curl_easy_perform(transfer->easy);
    ms_transfer_complete(transfer, rc);
    PyEval_RestoreThread(watch.saved);
    if (watch.interrupted) {
        /* KeyboardInterrupt (or whatever the handler raised) is set; the
         * aborted exchange's connection is closed by libcurl. */
        ms_transfer_clear_response(transfer);
        PyThread_release_lock(self->lock);
        return NULL;
    }

    int is_error;
    PyObject *outcome = ms_transfer_outcome(state, transfer, &is_error);
    /* The body and parse tree are dead weight until the next call. */
    ms_transfer_clear_response(transfer);
    PyThread_release_lock(self->lock);
    if (outcome != NULL && is_error) {
        PyErr_SetObject((PyObject *)Py_TYPE(outcome), outcome);
        Py_DECREF(outcome);
        return NULL;
    }
    return outcome;
}

const ms_config *
ms_session_config(ms_state *state, PyObject *session)
{
    if (!PyObject_TypeCheck(session, state->SessionType)) {
        PyErr_SetString(PyExc_TypeError, "expected a _core.Session");
        return NULL;
    }
    return &((SessionObject *)session)->config;
}

PyDoc_STRVAR(Session_close__doc__,
"close($self, /)\n"
"--\n"
"\n"
"Close the connection and free the handle.  Idempotent.");

static PyObject *
Session_close(SessionObject *self, PyObject *Py_UNUSED(ignored))
{
    acquire_lock(self);
    if (!self->closed) {
        self->closed = 1;
        ms_transfer_release(&self->transfer);
    }
    PyThread_release_lock(self->lock);
    Py_RETURN_NONE;
}

static PyObject *
Session_get_closed(SessionObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
Session_get_timeout(SessionObject *self, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble((double)self->config.timeout_ms / 1000.0);
}

static PyObject *
Session_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    /* A Session is a live connection holding credentials. */
    PyErr_SetString(PyExc_TypeError, "cannot pickle a Session");
    return NULL;
}

static PyObject *
Session_repr(SessionObject *self)
{
    /* No URL and no headers: either may carry secrets. */
    return PyUnicode_FromFormat("<mobilestatus._core.Session %s at %p>",
                                self->closed ? "closed" : "open", self);
}

static PyMethodDef Session_methods[] = {
    {"post", (PyCFunction)Session_post, METH_O, Session_post__doc__},
    {"close", (PyCFunction)Session_close, METH_NOARGS, Session_close__doc__},
    {"__reduce__", Session_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Session_getset[] = {
    {"closed", (getter)Session_get_closed, NULL, "True once closed.", NULL},
    {"timeout", (getter)Session_get_timeout, NULL,
     "The total deadline of one exchange, in seconds.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Session__doc__,
"Session(url, headers, *, timeout=10.0, connect_timeout=3.0,\n"
"        max_response_size=1048576, ca_bundle=None, proxy=None,\n"
"        user_agent=None, max_depth=128)\n"
"--\n"
"\n"
"One libcurl easy handle bound to one URL and one set of request headers.\n"
"Redirects are never followed, only http and https are allowed, signals\n"
"are never used, and every exchange has a connect and a total deadline.");

/* No Py_TPFLAGS_BASETYPE: a subclass could outlive the module and break
 * ms_state_from_type's lookup of the defining module. */
static PyType_Slot session_type_slots[] = {
    {Py_tp_new, Session_new},
    {Py_tp_dealloc, Session_dealloc},
    {Py_tp_repr, Session_repr},
    {Py_tp_methods, Session_methods},
    {Py_tp_getset, Session_getset},
    {Py_tp_doc, (void *)Session__doc__},
    {0, NULL},
};

PyType_Spec ms_session_type_spec = {
    .name = "mobilestatus._core.Session",
    .basicsize = sizeof(SessionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = session_type_slots,
};

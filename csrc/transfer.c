/* One HTTP exchange: easy-handle configuration, response callbacks, the
 * body parse, and the conversion of the finished exchange into a Python
 * outcome.  See transfer.h for the GIL rules of each function.
 */
#include "transfer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const header_names[MS_HDR_COUNT] = {
    [MS_HDR_REQUEST_ID] = "x-ca-request-id",
    [MS_HDR_ERROR_MESSAGE] = "x-ca-error-message",
    [MS_HDR_ERROR_CODE] = "x-ca-error-code",
    [MS_HDR_RETRY_AFTER] = "retry-after",
    [MS_HDR_CONTENT_TYPE] = "content-type",
    [MS_HDR_LOCATION] = "location",
    [MS_HDR_SANDBOX_MOBILE] = "x-sandbox-mobile",
};

double
ms_monotonic(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int
ms_config_init(ms_config *config)
{
    memset(config, 0, sizeof(*config));
    config->max_depth = MS_DEFAULT_MAX_DEPTH;
    return 0;
}

void
ms_config_clear(ms_config *config)
{
    free(config->url);
    free(config->ca_bundle);
    free(config->proxy);
    free(config->user_agent);
    curl_slist_free_all(config->headers);
    memset(config, 0, sizeof(*config));
}

static void
clear_headers(ms_transfer *transfer)
{
    for (int i = 0; i < MS_HDR_COUNT; i++) {
        free(transfer->headers[i]);
        transfer->headers[i] = NULL;
    }
}

void
ms_transfer_clear_response(ms_transfer *transfer)
{
    free(transfer->body.data);
    transfer->body.data = NULL;
    transfer->body.len = transfer->body.cap = 0;
    clear_headers(transfer);
    if (transfer->doc != NULL) {
        ms_json_free(transfer->doc);
        transfer->doc = NULL;
    }
    transfer->http_status = 0;
    transfer->too_large = 0;
    transfer->parse_failed = 0;
    transfer->connected = 0;
    transfer->request_sent = 0;
    transfer->result = CURLE_OK;
    transfer->errbuf[0] = '\0';
}

/* libcurl write callback.  Returning less than asked aborts the transfer
 * with CURLE_WRITE_ERROR, which is how the size cap and out-of-memory
 * stop a body; MAXFILESIZE alone is not enough (libcurl-security.md). */
static size_t
on_body(char *data, size_t size, size_t count, void *userdata)
{
    ms_transfer *transfer = userdata;
    size_t n = size * count;
    ms_buffer *body = &transfer->body;
    if ((curl_off_t)(body->len + n) > transfer->config->max_response_size) {
        transfer->too_large = 1;
        return 0;
    }
    if (body->len + n + 1 > body->cap) {
        size_t cap = body->cap ? body->cap : 512;
        while (cap < body->len + n + 1) {
            cap *= 2;
        }
        char *grown = realloc(body->data, cap);
        if (grown == NULL) {
            return 0;
        }
        body->data = grown;
        body->cap = cap;
    }
    memcpy(body->data + body->len, data, n);
    body->len += n;
    body->data[body->len] = '\0';
    return n;
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* libcurl header callback: keeps only the headers the client interprets.
 * A status line starts a new header block (100 Continue, or a response
 * after a retried reused connection), so earlier captures are dropped. */
static size_t
on_header(char *data, size_t size, size_t count, void *userdata)
{
    ms_transfer *transfer = userdata;
    size_t n = size * count;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        clear_headers(transfer);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (colon == NULL) {
        return n;
    }
    size_t name_len = (size_t)(colon - data);
    for (int i = 0; i < MS_HDR_COUNT; i++) {
        if (strlen(header_names[i]) != name_len ||
            strncasecmp(data, header_names[i], name_len) != 0) {
            continue;
        }
        const char *value = colon + 1;
        const char *end = data + n;
        while (value < end && is_space(*value)) {
            value++;
        }
        while (end > value && is_space(end[-1])) {
            end--;
        }
        size_t len = (size_t)(end - value);
        if (len > MS_HEADER_VALUE_MAX) {
            len = MS_HEADER_VALUE_MAX;
        }
        char *copy = malloc(len + 1);
        if (copy == NULL) {
            return 0;
        }
        memcpy(copy, value, len);
        copy[len] = '\0';
        free(transfer->headers[i]);
        transfer->headers[i] = copy;
        break;
    }
    return n;
}

/* libcurl sends a request again on a fresh connection, by itself, when a
 * reused one died before any answer came -- even after the server had
 * read it (lib/transfer.c Curl_retry_request).  The upstream may then
 * answer, and bill, both.  libcurl calls this just before each request it
 * sends, so a second call within one transfer is that silent re-send: it
 * is refused, the transfer fails as may_be_billed, and whether to try
 * again is the retry policy's decision, not libcurl's.  (A connection
 * found dead before anything was sent is replaced before this callback,
 * so that case still connects afresh.) */
static int
on_prereq(void *userdata, char *conn_primary_ip, char *conn_local_ip,
          int conn_primary_port, int conn_local_port)
{
    ms_transfer *transfer = userdata;
    if (++transfer->requests_started > 1) {
        transfer->resend_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Socket callbacks: libcurl opens and closes every socket through us, so
 * the handle knows its descriptors and a forked child can close its
 * copies without letting libcurl speak on them. */
static curl_socket_t
on_open_socket(void *userdata, curlsocktype purpose,
               struct curl_sockaddr *address)
{
    ms_transfer *transfer = userdata;
    curl_socket_t fd =
        socket(address->family, address->socktype, address->protocol);
    if (fd != CURL_SOCKET_BAD &&
        transfer->socket_count < MS_MAX_TRACKED_SOCKETS) {
        transfer->sockets[transfer->socket_count++] = fd;
    }
    return fd;
}

static int
on_close_socket(void *userdata, curl_socket_t fd)
{
    ms_transfer *transfer = userdata;
    for (int i = 0; i < transfer->socket_count; i++) {
        if (transfer->sockets[i] == fd) {
            transfer->sockets[i] =
                transfer->sockets[--transfer->socket_count];
            break;
        }
    }
    return close(fd);
}

#define SETOPT(option, value)                                     \
    do {                                                          \
        CURLcode setopt_rc = curl_easy_setopt(easy, option, value); \
        if (setopt_rc != CURLE_OK) {                              \
            ms_raise_setopt_error(setopt_rc, #option);            \
            goto error;                                           \
        }                                                         \
    } while (0)

/* Which process a handle belongs to: bumped in every child of fork(),
 * whoever calls it (os.fork, multiprocessing, a C library).  Cheaper than
 * getpid() on every exchange, and process-wide like the fork itself, so
 * a plain static serves every interpreter. */
static atomic_ulong fork_generation;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void
on_fork_in_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void
install_fork_hook(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_in_child);
}

int
ms_fork_tracking_init(void)
{
    return pthread_once(&fork_hook_once, install_fork_hook) == 0 ? 0 : -1;
}

unsigned long
ms_process_generation(void)
{
    return atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

int
ms_transfer_init(ms_transfer *transfer, const ms_config *config,
                 int track_sockets)
{
    memset(transfer, 0, sizeof(*transfer));
    transfer->config = config;
    transfer->owner_generation = ms_process_generation();
    CURL *easy = curl_easy_init();
    if (easy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    transfer->easy = easy;
    SETOPT(CURLOPT_PRIVATE, transfer);
    SETOPT(CURLOPT_URL, config->url);
    SETOPT(CURLOPT_HTTPHEADER, config->headers);
    SETOPT(CURLOPT_POST, 1L);
    /* Signals are the interpreter's; libcurl's alarm()-based DNS timeout
     * would race Python's handlers and other threads. */
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    /* A redirect could carry the AppCode to another host: never follow,
     * report it as a RedirectError instead. */
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SETOPT(CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, config->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, config->timeout_ms);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, config->max_response_size);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, transfer);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, transfer);
    if (track_sockets) {
        /* Only for handles that own their connection cache: in a multi
         * handle a connection outlives the transfer that opened it, and
         * the callbacks would point at freed memory. */
        SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        SETOPT(CURLOPT_OPENSOCKETDATA, transfer);
        SETOPT(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
        SETOPT(CURLOPT_CLOSESOCKETDATA, transfer);
    }
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, transfer);
    SETOPT(CURLOPT_ERRORBUFFER, transfer->errbuf);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    /* A connection idle longer than a server's keep-alive timeout is the
     * one that dies just as it is reused, failing a request that may have
     * been read (see on_prereq); reconnecting after 10 s idle is cheaper
     * than that. */
    SETOPT(CURLOPT_MAXAGE_CONN, 10L);
    SETOPT(CURLOPT_TCP_NODELAY, 1L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (config->ca_bundle != NULL) {
        SETOPT(CURLOPT_CAINFO, config->ca_bundle);
    }
    /* An explicit proxy or none: environment proxies would silently route
     * paid calls (and the AppCode) through whatever the shell had set. */
    SETOPT(CURLOPT_PROXY, config->proxy != NULL ? config->proxy : "");
    if (config->user_agent != NULL) {
        SETOPT(CURLOPT_USERAGENT, config->user_agent);
    }
    return 0;

error:
    curl_easy_cleanup(easy);
    transfer->easy = NULL;
    return -1;
}
#undef SETOPT

void
ms_transfer_prepare(ms_transfer *transfer, char *body, size_t len)
{
    ms_transfer_clear_response(transfer);
    free(transfer->body_to_send);
    transfer->body_to_send = body;
    transfer->body_to_send_len = len;
    transfer->requests_started = 0;
    transfer->resend_refused = 0;
    /* Not copied by libcurl: the body lives until the next prepare.  A
     * small POSTFIELDS body leaves in the same send as the headers. */
    curl_easy_setopt(transfer->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)len);
    curl_easy_setopt(transfer->easy, CURLOPT_POSTFIELDS, body);
}

void
ms_transfer_complete(ms_transfer *transfer, CURLcode result)
{
    CURL *easy = transfer->easy;
    long request_size = 0;
    curl_off_t connect_time = 0;

    transfer->result = result;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &transfer->http_status);
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_time);
    /* Once request bytes left, the upstream may have answered 200 and
     * billed it even if we never saw the answer. */
    transfer->request_sent = request_size > 0;
    transfer->connected = transfer->request_sent || connect_time > 0;
    if (transfer->resend_refused) {
        transfer->request_sent = transfer->connected = 1;
        snprintf(transfer->errbuf, sizeof(transfer->errbuf), "%s",
                 "the connection closed after the request was sent; not "
                 "sent again, as the upstream may have billed it");
    }

    if (result != CURLE_OK || transfer->body.len == 0) {
        return;
    }
    const char *p = transfer->body.data;
    const char *end = p + transfer->body.len;
    while (p < end && is_space(*p)) {
        p++;
    }
    /* Gateway errors come with HTML or empty bodies; only a 200 or a body
     * that claims to be JSON is worth parsing. */
    if (transfer->http_status != 200 && (p == end || (*p != '{' && *p != '['))) {
        return;
    }
    transfer->doc = ms_json_parse(transfer->body.data, transfer->body.len,
                                  (size_t)transfer->config->max_depth,
                                  &transfer->parse_error);
    transfer->parse_failed = transfer->doc == NULL;
}

static PyObject *
headers_to_dict(const ms_transfer *transfer)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (int i = 0; i < MS_HDR_COUNT; i++) {
        if (transfer->headers[i] == NULL) {
            continue;
        }
        PyObject *value = PyUnicode_DecodeUTF8(
            transfer->headers[i], (Py_ssize_t)strlen(transfer->headers[i]),
            "replace");
        if (value == NULL || PyDict_SetItemString(dict, header_names[i],
                                                  value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(value);
    }
    return dict;
}

PyObject *
ms_transfer_outcome(ms_state *state, ms_transfer *transfer, int *is_error)
{
    *is_error = 0;
    if (transfer->result != CURLE_OK) {
        if (transfer->too_large ||
            transfer->result == CURLE_FILESIZE_EXCEEDED) {
            *is_error = 1;
            return PyObject_CallFunction(
                state->ResponseTooLargeError, "s",
                "response body exceeds max_response_size");
        }
        if (transfer->result == CURLE_WRITE_ERROR) {
            /* Our write callback refused memory it could not get. */
            return PyErr_NoMemory();
        }
        ms_transfer_failure failure = {
            .code = transfer->result,
            .detail = transfer->errbuf,
            .request_sent = transfer->request_sent,
            .connected = transfer->connected,
        };
        *is_error = 1;
        return ms_transport_error_new(state, &failure);
    }

    PyObject *headers = NULL, *body = NULL, *data = NULL;
    headers = headers_to_dict(transfer);
    if (headers == NULL) {
        goto error;
    }
    body = PyBytes_FromStringAndSize(
        transfer->body.data ? transfer->body.data : "",
        (Py_ssize_t)transfer->body.len);
    if (body == NULL) {
        goto error;
    }
    if (transfer->doc != NULL) {
        data = ms_json_to_python(state, ms_json_root(transfer->doc));
    }
    else if (transfer->parse_failed) {
        data = ms_parse_error_new(state, &transfer->parse_error);
    }
    else {
        data = Py_NewRef(Py_None);
    }
    if (data == NULL) {
        goto error;
    }
    PyObject *outcome =
        Py_BuildValue("(lNNN)", transfer->http_status, headers, body, data);
    return outcome;

error:
    Py_XDECREF(headers);
    Py_XDECREF(body);
    Py_XDECREF(data);
    return NULL;
}

void
ms_transfer_move_response(ms_transfer *dst, ms_transfer *src)
{
    dst->index = src->index;
    dst->result = src->result;
    dst->http_status = src->http_status;
    dst->connected = src->connected;
    dst->request_sent = src->request_sent;
    dst->too_large = src->too_large;
    dst->body = src->body;
    dst->doc = src->doc;
    dst->parse_error = src->parse_error;
    dst->parse_failed = src->parse_failed;
    memcpy(dst->errbuf, src->errbuf, sizeof(dst->errbuf));
    memcpy(dst->headers, src->headers, sizeof(dst->headers));
    memset(&src->body, 0, sizeof(src->body));
    memset(src->headers, 0, sizeof(src->headers));
    src->doc = NULL;
    ms_transfer_clear_response(src);
}

int
ms_transfer_is_foreign(const ms_transfer *transfer)
{
    return transfer->easy != NULL &&
           transfer->owner_generation != ms_process_generation();
}

void
ms_transfer_release(ms_transfer *transfer)
{
    if (transfer->easy != NULL) {
        if (ms_transfer_is_foreign(transfer)) {
            /* Our copies of the parent's sockets go; the parent's stay
             * open and untouched.  The handle's memory is leaked, once
             * per handle per fork, which is the price of not letting
             * libcurl shut those connections down. */
            for (int i = 0; i < transfer->socket_count; i++) {
                close(transfer->sockets[i]);
            }
        }
        else {
            curl_easy_cleanup(transfer->easy);
        }
        transfer->easy = NULL;
    }
    transfer->socket_count = 0;
    ms_transfer_clear_response(transfer);
    free(transfer->body_to_send);
    transfer->body_to_send = NULL;
}

/* One HTTP exchange in plain C: the easy handle's safe configuration,
 * the response buffers filled by libcurl's callbacks, and the parse of
 * the body.  Shared by session.c (one transfer at a time) and batch.c
 * (many in a multi handle).  Nothing here touches a PyObject except
 * ms_transfer_outcome, which runs with the GIL held.
 */
#ifndef MOBILESTATUS_TRANSFER_H
#define MOBILESTATUS_TRANSFER_H

#include "mobilestatus.h"

#include <sys/types.h>

/* The response headers the Python layer interprets; everything else is
 * dropped in the header callback so that a 400 KiB header flood costs no
 * memory. */
typedef enum {
    MS_HDR_REQUEST_ID,
    MS_HDR_ERROR_MESSAGE,
    MS_HDR_ERROR_CODE,
    MS_HDR_RETRY_AFTER,
    MS_HDR_CONTENT_TYPE,
    MS_HDR_LOCATION,
    MS_HDR_SANDBOX_MOBILE,
    MS_HDR_COUNT
} ms_header_id;

#define MS_HEADER_VALUE_MAX 1024

/* A connection cache holds few sockets; we remember them so a forked
 * child can close its copies without libcurl touching the parent's
 * connections (see ms_transfer_abandon). */
#define MS_MAX_TRACKED_SOCKETS 16

/* Everything a transfer needs from its Session, copied out of Python
 * objects once, so GIL-free code reads only C memory. */
typedef struct {
    char *url;
    struct curl_slist *headers; /* request headers incl. Authorization */
    long connect_timeout_ms;
    long timeout_ms;
    curl_off_t max_response_size;
    char *ca_bundle;  /* NULL: libcurl's default */
    char *proxy;      /* NULL: no proxy, and environment proxies ignored */
    char *user_agent;
    long max_depth;
} ms_config;

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} ms_buffer;

typedef struct ms_transfer {
    CURL *easy;
    const ms_config *config;
    unsigned long owner_generation; /* ms_process_generation() at init */
    curl_socket_t sockets[MS_MAX_TRACKED_SOCKETS];
    int socket_count;

    char errbuf[CURL_ERROR_SIZE];
    char *body_to_send; /* owned, malloc */
    size_t body_to_send_len;
    int requests_started; /* in this transfer: 2 is libcurl re-sending */
    int resend_refused;

    /* Filled while the transfer runs (no GIL). */
    long http_status;
    ms_buffer body;
    char *headers[MS_HDR_COUNT];
    int too_large;

    /* Filled by ms_transfer_complete (no GIL). */
    CURLcode result;
    int connected;
    int request_sent;
    ms_json_doc *doc;
    ms_json_error parse_error;
    int parse_failed;

    /* Batch bookkeeping (unused by session.c): the caller's key, and the
     * link of the finished list in pool.c. */
    Py_ssize_t index;
    struct ms_transfer *next;
} ms_transfer;

/* Creates and configures the easy handle; 0 on success, -1 with a Python
 * exception set (GIL held).  track_sockets records the handle's sockets
 * for fork safety; only for handles used outside a multi. */
int ms_transfer_init(ms_transfer *transfer, const ms_config *config,
                     int track_sockets);

/* Takes ownership of body (malloc'd) and prepares the handle for one
 * exchange; drops the previous response.  No GIL needed. */
void ms_transfer_prepare(ms_transfer *transfer, char *body, size_t len);

/* Records how the exchange ended and parses the body.  No GIL needed. */
void ms_transfer_complete(ms_transfer *transfer, CURLcode result);

/* Builds the outcome after ms_transfer_complete: the response tuple
 * (status, headers, body, data) as a new reference, or a new exception
 * instance for a transport failure (*is_error set to 1).  NULL with an
 * exception set on MemoryError.  GIL held. */
PyObject *ms_transfer_outcome(ms_state *state, ms_transfer *transfer,
                              int *is_error);

/* Frees response memory and the parsed document, keeps the handle. */
void ms_transfer_clear_response(ms_transfer *transfer);

/* Releases everything.  In a process that is not the one that created
 * the handle (after fork), closes the inherited sockets and leaks the
 * handle instead: libcurl's cleanup could write to the parent's
 * connections (TLS close_notify). */
void ms_transfer_release(ms_transfer *transfer);

/* Whether the handle was created in another process (fork). */
int ms_transfer_is_foreign(const ms_transfer *transfer);

/* Moves the finished exchange's response (and index) from src into dst,
 * a zeroed shell, leaving src ready for its next exchange.  No GIL. */
void ms_transfer_move_response(ms_transfer *dst, ms_transfer *src);

/* The config of a _core.Session, or NULL with TypeError set. */
const ms_config *ms_session_config(ms_state *state, PyObject *session);

int ms_config_init(ms_config *config);
void ms_config_clear(ms_config *config);

double ms_monotonic(void);

/* Installs the fork hook behind ms_process_generation; once per process.
 * 0, or -1 if pthread_atfork failed. */
int ms_fork_tracking_init(void);

/* Changes in every child of fork(): a handle made under another value
 * belongs to the parent.  No GIL needed. */
unsigned long ms_process_generation(void);

#endif /* MOBILESTATUS_TRANSFER_H */

/* Cross-file declarations of mobilestatus._core.
 *
 * Only this header is shared between the C files (json.h aside, which is
 * plain C and knows nothing of Python).  Everything not declared here is
 * static to its file.
 */
#ifndef MOBILESTATUS_H
#define MOBILESTATUS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <curl/curl.h>
#include <stdint.h>

#include "json.h"

/* Responses nest two levels deep; the limit only has to stop hostile
 * input long before it can hurt the C stack (a 256 KiB thread stack
 * must survive the deepest accepted document, in both passes). */
#define MS_DEFAULT_MAX_DEPTH 128

/* Module state: every Python object the C code needs lives here, never
 * in a static global, so that each (sub)interpreter gets its own. */
typedef struct {
    PyTypeObject *SessionType;
    PyTypeObject *BatchType;
    PyTypeObject *AsyncMultiType;

    /* Exception classes, imported from mobilestatus.errors at exec. */
    PyObject *TransportError;
    PyObject *ConnectError;
    PyObject *TimeoutError;
    PyObject *ResponseError;
    PyObject *ResponseTooLargeError;
    PyObject *ParseError;

    /* Interned keyword names used when building exceptions. */
    PyObject *str_offset;
    PyObject *str_curl_code;
    PyObject *str_phase;
    PyObject *str_may_be_billed;

    /* Balanced by curl_global_cleanup in m_free. */
    int curl_initialised;
} ms_state;

ms_state *ms_state_from_module(PyObject *module);
ms_state *ms_state_from_type(PyTypeObject *type);

/* Type specs, turned into heap types by module.c at exec. */
extern PyType_Spec ms_session_type_spec;
extern PyType_Spec ms_batch_type_spec;
extern PyType_Spec ms_async_multi_type_spec;

/* ---- json.c lives in json.h (no Python) ---- */

/* ---- convert.c: parsed JSON -> Python objects, GIL held ----
 *
 * ms_json_to_python returns a new reference, or NULL with an exception
 * set (MemoryError, or ParseError for numbers Python refuses).
 */
PyObject *ms_json_to_python(ms_state *state, const ms_json_value *value);

/* Returns a new ParseError instance (not raised) built from a parser
 * error, or NULL with an exception set. */
PyObject *ms_parse_error_new(ms_state *state, const ms_json_error *error);

/* _core.loads(data, /, *, max_depth=128): METH_VARARGS|METH_KEYWORDS. */
PyObject *ms_core_loads(PyObject *module, PyObject *args, PyObject *kwargs);

/* ---- errors.c: libcurl's error space -> mobilestatus.errors ---- */

/* What a failed transfer had reached, so the error can say which phase
 * timed out and whether the request could have been billed. */
typedef struct {
    CURLcode code;
    const char *detail;     /* CURLOPT_ERRORBUFFER text, may be "" */
    int request_sent;       /* the whole request left this host */
    int connected;          /* TCP (and TLS) connection was established */
} ms_transfer_failure;

/* Returns a new exception instance (not raised), or NULL with an
 * exception set. */
PyObject *ms_transport_error_new(ms_state *state,
                                 const ms_transfer_failure *failure);

/* Raises and returns NULL (for CURLMcode / curl_easy_setopt failures,
 * which are bugs or out-of-memory rather than network conditions). */
PyObject *ms_raise_curlm_error(CURLMcode code);
PyObject *ms_raise_setopt_error(CURLcode code, const char *what);

#endif /* MOBILESTATUS_H */

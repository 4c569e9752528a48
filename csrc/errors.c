/* libcurl's error codes -> the exception classes of mobilestatus.errors.
 *
 * One switch per foreign error space, so every code has exactly one
 * meaning for the caller: was a connection made, did the deadline pass,
 * and could the upstream have billed the call.
 */
#include "mobilestatus.h"

#include <string.h>

typedef enum {
    KIND_CONNECT,  /* no connection: never billed, safe to retry */
    KIND_TIMEOUT,
    KIND_TRANSPORT /* broken exchange; billed if the request was sent */
} failure_kind;

static failure_kind
classify(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return KIND_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return KIND_TIMEOUT;
    default:
        return KIND_TRANSPORT;
    }
}

PyObject *
ms_transport_error_new(ms_state *state, const ms_transfer_failure *failure)
{
    failure_kind kind = classify(failure->code);
    /* A code can mean "never connected" in one place and "garbage after
     * the request went out" in another (libcurl 7.88 reports a bad status
     * line as CURLE_UNSUPPORTED_PROTOCOL): once the request was sent, the
     * call may have been billed, whatever the code says. */
    if (kind == KIND_CONNECT && failure->request_sent) {
        kind = KIND_TRANSPORT;
    }
    PyObject *cls;
    const char *phase = NULL;
    int billable = failure->request_sent;

    switch (kind) {
    case KIND_CONNECT:
        cls = state->ConnectError;
        billable = 0;
        break;
    case KIND_TIMEOUT:
        cls = state->TimeoutError;
        phase = failure->request_sent ? "read" : "connect";
        break;
    default:
        cls = state->TransportError;
        break;
    }

    const char *summary = curl_easy_strerror(failure->code);
    PyObject *message;
    if (phase != NULL) {
        message = PyUnicode_FromFormat(
            "%s timed out%s%s", phase,
            failure->detail && failure->detail[0] ? ": " : "",
            failure->detail ? failure->detail : "");
    }
    else if (failure->detail != NULL && failure->detail[0] != '\0') {
        message = PyUnicode_FromFormat("%s: %s", summary, failure->detail);
    }
    else {
        message = PyUnicode_FromString(summary);
    }
    if (message == NULL) {
        return NULL;
    }

    PyObject *args = NULL, *kwargs = NULL, *error = NULL;
    PyObject *code = NULL, *phase_obj = NULL;
    args = PyTuple_Pack(1, message);
    kwargs = PyDict_New();
    code = PyLong_FromLong((long)failure->code);
    if (args == NULL || kwargs == NULL || code == NULL) {
        goto done;
    }
    if (PyDict_SetItem(kwargs, state->str_curl_code, code) < 0 ||
        PyDict_SetItem(kwargs, state->str_may_be_billed,
                       billable ? Py_True : Py_False) < 0) {
        goto done;
    }
    if (phase != NULL) {
        phase_obj = PyUnicode_FromString(phase);
        if (phase_obj == NULL ||
            PyDict_SetItem(kwargs, state->str_phase, phase_obj) < 0) {
            goto done;
        }
    }
    error = PyObject_Call(cls, args, kwargs);

done:
    Py_DECREF(message);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(code);
    Py_XDECREF(phase_obj);
    return error;
}

PyObject *
ms_raise_curlm_error(CURLMcode code)
{
    if (code == CURLM_OUT_OF_MEMORY) {
        return PyErr_NoMemory();
    }
    PyErr_Format(PyExc_RuntimeError, "libcurl multi error %d: %s",
                 (int)code, curl_multi_strerror(code));
    return NULL;
}

PyObject *
ms_raise_setopt_error(CURLcode code, const char *what)
{
    if (code == CURLE_OUT_OF_MEMORY) {
        return PyErr_NoMemory();
    }
    PyErr_Format(PyExc_RuntimeError,
                 "libcurl refused %s (error %d: %s); the linked libcurl "
                 "lacks a feature mobilestatus needs",
                 what, (int)code, curl_easy_strerror(code));
    return NULL;
}

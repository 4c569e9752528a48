/* mobilestatus._core: module initialisation (PEP 489 multi-phase), the
 * module state, and libcurl's process-wide setup.
 */
#include "mobilestatus.h"
#include "transfer.h"

static struct PyModuleDef core_module;

ms_state *
ms_state_from_module(PyObject *module)
{
    ms_state *state = PyModule_GetState(module);
    assert(state != NULL);
    return state;
}

ms_state *
ms_state_from_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &core_module);
    assert(module != NULL);
    return ms_state_from_module(module);
}

/* libcurl must be at least the version we compiled against: a missing
 * option would otherwise fail at the first call instead of at import. */
static int
check_libcurl(void)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    if (info->version_num < LIBCURL_VERSION_NUM) {
        PyErr_Format(PyExc_ImportError,
                     "mobilestatus was built against libcurl %s but the "
                     "loaded libcurl is %s; upgrade libcurl or rebuild",
                     LIBCURL_VERSION, info->version);
        return -1;
    }
    if (!(info->features & CURL_VERSION_SSL)) {
        PyErr_SetString(PyExc_ImportError,
                        "the loaded libcurl has no TLS support; the "
                        "upstream API is HTTPS only");
        return -1;
    }
    return 0;
}

static int
import_errors(ms_state *state)
{
    PyObject *errors = PyImport_ImportModule("mobilestatus.errors");
    if (errors == NULL) {
        return -1;
    }
    struct {
        PyObject **slot;
        const char *name;
    } classes[] = {
        {&state->TransportError, "TransportError"},
        {&state->ConnectError, "ConnectError"},
        {&state->TimeoutError, "TimeoutError"},
        {&state->ResponseError, "ResponseError"},
        {&state->ResponseTooLargeError, "ResponseTooLargeError"},
        {&state->ParseError, "ParseError"},
    };
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        *classes[i].slot = PyObject_GetAttrString(errors, classes[i].name);
        if (*classes[i].slot == NULL) {
            Py_DECREF(errors);
            return -1;
        }
    }
    Py_DECREF(errors);
    return 0;
}

static int
add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (*slot == NULL) {
        return -1;
    }
    return PyModule_AddType(module, *slot);
}

static int
core_exec(PyObject *module)
{
    ms_state *state = ms_state_from_module(module);

    if (check_libcurl() < 0) {
        return -1;
    }
    /* Refcounted by libcurl; paired with curl_global_cleanup in m_free.
     * The version check above guarantees 7.84+, where it is thread-safe
     * when the threadsafe feature is present. */
    if (ms_fork_tracking_init() < 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        PyErr_SetString(PyExc_ImportError, "curl_global_init failed");
        return -1;
    }
    state->curl_initialised = 1;

    if (import_errors(state) < 0) {
        return -1;
    }
    if ((state->str_offset = PyUnicode_InternFromString("offset")) == NULL ||
        (state->str_curl_code = PyUnicode_InternFromString("curl_code")) ==
            NULL ||
        (state->str_phase = PyUnicode_InternFromString("phase")) == NULL ||
        (state->str_may_be_billed =
             PyUnicode_InternFromString("may_be_billed")) == NULL) {
        return -1;
    }
    if (add_type(module, &ms_session_type_spec, &state->SessionType) < 0 ||
        add_type(module, &ms_batch_type_spec, &state->BatchType) < 0 ||
        add_type(module, &ms_async_multi_type_spec,
                 &state->AsyncMultiType) < 0) {
        return -1;
    }

    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    if (PyModule_AddStringConstant(module, "LIBCURL_VERSION",
                                   info->version) < 0 ||
        PyModule_AddStringConstant(module, "LIBCURL_COMPILED_VERSION",
                                   LIBCURL_VERSION) < 0 ||
        PyModule_AddIntConstant(module, "ASYNCH_DNS",
                                (info->features & CURL_VERSION_ASYNCHDNS) !=
                                    0) < 0 ||
        PyModule_AddIntConstant(module, "DEFAULT_MAX_DEPTH",
                                MS_DEFAULT_MAX_DEPTH) < 0 ||
        /* The event-loop driver speaks libcurl's socket-interface codes. */
        PyModule_AddIntConstant(module, "POLL_IN", CURL_POLL_IN) < 0 ||
        PyModule_AddIntConstant(module, "POLL_OUT", CURL_POLL_OUT) < 0 ||
        PyModule_AddIntConstant(module, "POLL_INOUT", CURL_POLL_INOUT) < 0 ||
        PyModule_AddIntConstant(module, "POLL_REMOVE", CURL_POLL_REMOVE) <
            0 ||
        PyModule_AddIntConstant(module, "CSELECT_IN", CURL_CSELECT_IN) < 0 ||
        PyModule_AddIntConstant(module, "CSELECT_OUT", CURL_CSELECT_OUT) <
            0 ||
        PyModule_AddIntConstant(module, "SOCKET_TIMEOUT",
                                (long)CURL_SOCKET_TIMEOUT) < 0) {
        return -1;
    }
    return 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    ms_state *state = ms_state_from_module(module);
    Py_VISIT(state->SessionType);
    Py_VISIT(state->BatchType);
    Py_VISIT(state->AsyncMultiType);
    Py_VISIT(state->TransportError);
    Py_VISIT(state->ConnectError);
    Py_VISIT(state->TimeoutError);
    Py_VISIT(state->ResponseError);
    Py_VISIT(state->ResponseTooLargeError);
    Py_VISIT(state->ParseError);
    Py_VISIT(state->str_offset);
    Py_VISIT(state->str_curl_code);
    Py_VISIT(state->str_phase);
    Py_VISIT(state->str_may_be_billed);
    return 0;
}

static int
core_clear(PyObject *module)
{
    ms_state *state = ms_state_from_module(module);
    Py_CLEAR(state->SessionType);
    Py_CLEAR(state->BatchType);
    Py_CLEAR(state->AsyncMultiType);
    Py_CLEAR(state->TransportError);
    Py_CLEAR(state->ConnectError);
    Py_CLEAR(state->TimeoutError);
    Py_CLEAR(state->ResponseError);
    Py_CLEAR(state->ResponseTooLargeError);
    Py_CLEAR(state->ParseError);
    Py_CLEAR(state->str_offset);
    Py_CLEAR(state->str_curl_code);
    Py_CLEAR(state->str_phase);
    Py_CLEAR(state->str_may_be_billed);
    return 0;
}

static void
core_free(void *module)
{
    ms_state *state = ms_state_from_module((PyObject *)module);
    core_clear((PyObject *)module);
    if (state->curl_initialised) {
        state->curl_initialised = 0;
        curl_global_cleanup();
    }
}

PyDoc_STRVAR(loads__doc__,
"loads(data, /, *, max_depth=128)\n"
"--\n"
"\n"
"Parse strict RFC 8259 JSON from a bytes-like object.\n"
"\n"
"Raises mobilestatus.ParseError (a ValueError) with the byte offset for\n"
"malformed input, for nesting deeper than max_depth, for invalid UTF-8\n"
"and for lone surrogate escapes.  Integers stay exact.");

static PyMethodDef core_methods[] = {
    {"loads", (PyCFunction)(void (*)(void))ms_core_loads,
     METH_VARARGS | METH_KEYWORDS, loads__doc__},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(core__doc__,
"The C core of mobilestatus: libcurl transfers and a strict JSON parser,\n"
"run with the GIL released.  Not a public API: use mobilestatus.Client.");

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mobilestatus._core",
    .m_doc = core__doc__,
    .m_size = sizeof(ms_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}

/* libFuzzer harness for the response path: raw HTTP bytes from a server
 * through libcurl, our header and body callbacks, the size cap, the JSON
 * parse, the conversion to Python objects and the error mapping.
 *
 * The extension's own C files are compiled into this binary (ASan, UBSan
 * and libFuzzer coverage on all of them) and the interpreter is embedded:
 * _core is created from its PyModuleDef at start-up, and each input is
 * served by a socket server thread on 127.0.0.1 while the main thread runs
 * one exchange through the real entry points, Session.post (the easy
 * interface) or Batch (the multi interface), picked by the first byte.
 *
 * Besides "no crash, no UB, no leak" it checks the contract of an
 * exchange (RESPONSE_CHECK below): the outcome is the 4-tuple or one of
 * the documented transport errors (never a MemoryError, SystemError or
 * bare ValueError), the body respects max_response_size, only the known
 * headers come back and each is capped, and `data` agrees with
 * _core.loads(body).  A violation raises AssertionError, which aborts.
 *
 * Build and run: make -C fuzz run-response (docs/reliability.md, "Fuzzing").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MS_REPO_ROOT
#error "build with -DMS_REPO_ROOT=\"/path/to/repository\""
#endif

PyMODINIT_FUNC PyInit__core(void);

/* The body curl sends; the server reads exactly this much after the head. */
#define REQUEST_BODY "mobile=13800138000"
#define MAX_REQUEST_HEAD 65536
#define IO_TIMEOUT_MS 2000

static int listen_fd = -1;
static int listen_port;

/* The response for the current input: owned by the harness, never freed
 * while the server thread may still be writing it. */
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static unsigned char *response;
static size_t response_len;
static int serving; /* a connection is being served */

static PyObject *run_one; /* the Python half, defined below */

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_response: %s\n", what);
    if (PyErr_Occurred()) {
        PyErr_Print();
    }
    abort();
}

/* Waits until fd is readable or writable; 0 on timeout or error. */
static int
wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do {
        rc = poll(&p, 1, IO_TIMEOUT_MS);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

/* Reads the request head and its Content-Length body so that closing the
 * socket afterwards sends a FIN, not an RST (unread data triggers RST). */
static void
read_request(int fd)
{
    static char buf[MAX_REQUEST_HEAD + 1];
    size_t len = 0;
    char *end = NULL;
    while (end == NULL && len < MAX_REQUEST_HEAD) {
        if (!wait_fd(fd, POLLIN)) {
            return;
        }
        ssize_t n = recv(fd, buf + len, MAX_REQUEST_HEAD - len, 0);
        if (n <= 0) {
            return;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL) {
        return;
    }
    size_t want = (size_t)(end + 4 - buf) + strlen(REQUEST_BODY);
    while (len < want) {
        if (!wait_fd(fd, POLLIN)) {
            return;
        }
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0) {
            return;
        }
        len += (size_t)n;
    }
}

static void
serve(int fd, const unsigned char *data, size_t len)
{
    read_request(fd);
    size_t sent = 0;
    while (sent < len) {
        if (!wait_fd(fd, POLLOUT)) {
            break;
        }
        ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break; /* the client gave up (size cap, bad header...) */
        }
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    /* Drain until the client closes, so our close cannot RST. */
    char sink[4096];
    while (wait_fd(fd, POLLIN) && recv(fd, sink, sizeof(sink), 0) > 0) {
    }
}

static void *
server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            die("accept failed");
        }
        pthread_mutex_lock(&mutex);
        serving = 1;
        const unsigned char *data = response;
        size_t len = response_len;
        pthread_mutex_unlock(&mutex);

        serve(fd, data, len);
        close(fd);

        pthread_mutex_lock(&mutex);
        serving = 0;
        pthread_cond_broadcast(&idle_cond);
        pthread_mutex_unlock(&mutex);
    }
    return NULL;
}

static void
start_server(void)
{
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(listen_fd, 64) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len) < 0) {
        die("cannot listen on 127.0.0.1");
    }
    listen_port = ntohs(addr.sin_port);
    pthread_t thread;
    if (pthread_create(&thread, NULL, server_main, NULL) != 0) {
        die("cannot start the server thread");
    }
    pthread_detach(thread);
}

/* The Python half: one exchange and its contract.  `core` is the module
 * built from this binary's own C files; `errors` is the real
 * mobilestatus/errors.py, imported without the package's __init__ (which
 * would load the installed, uninstrumented _core). */
static const char PY_SOURCE[] =
    "import sys, types\n"
    "pkg = types.ModuleType('mobilestatus')\n"
    "pkg.__path__ = [ROOT + '/mobilestatus']\n"
    "sys.modules['mobilestatus'] = pkg\n"
    "def setup(core, port):\n"
    "    global _core, errors, URL, ALLOWED, interpret, CheckResult\n"
    "    _core = core\n"
    "    pkg._core = core\n"
    "    from mobilestatus import errors\n"
    "    from mobilestatus.providers.kuaizheng import interpret\n"
    "    from mobilestatus._types import CheckResult\n"
    "    URL = 'http://127.0.0.1:%d/api-mall/api/mobile_status/check' % port\n"
    "    ALLOWED = (errors.TransportError, errors.ResponseTooLargeError)\n"
    "HEADERS = ['Authorization: APPCODE fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz',\n"
    "           'Content-Type: application/x-www-form-urlencoded; charset=UTF-8',\n"
    "           'Accept: application/json', 'Expect:']\n"
    "BODY = b'" REQUEST_BODY "'\n"
    "LIMIT = 16384\n"
    "KNOWN = {'x-ca-request-id', 'x-ca-error-message', 'x-ca-error-code',\n"
    "         'retry-after', 'content-type', 'location', 'x-sandbox-mobile'}\n"
    "def check_error(error):\n"
    "    assert isinstance(error, ALLOWED), repr(error)\n"
    "    assert isinstance(error.args[0], str) and error.args[0], repr(error)\n"
    "    assert 'fuzzfuzz' not in repr(error) + str(error), repr(error)\n"
    "    if isinstance(error, errors.TransportError):\n"
    "        assert isinstance(error.curl_code, int) and error.curl_code > 0\n"
    "        assert isinstance(error.may_be_billed, bool)\n"
    "def check_response(outcome):\n"
    "    assert type(outcome) is tuple and len(outcome) == 4, repr(outcome)\n"
    "    status, headers, body, data = outcome\n"
    "    # libcurl 7.88 takes 'HTTP/2 2100' as 2100 and 'HTTP/x' as 200.\n"
    "    assert type(status) is int, status\n"
    "    assert type(headers) is dict and set(headers) <= KNOWN, headers\n"
    "    for value in headers.values():\n"
    "        assert type(value) is str and len(value) <= 1024, value\n"
    "    assert type(body) is bytes and len(body) <= LIMIT, len(body)\n"
    "    looks_json = body.lstrip(b' \\t\\r\\n')[:1] in (b'{', b'[')\n"
    "    if not body or (status != 200 and not looks_json):\n"
    "        assert data is None, (status, body[:80], data)\n"
    "        return\n"
    "    try:\n"
    "        expected = _core.loads(body)\n"
    "    except errors.ParseError as error:\n"
    "        assert isinstance(data, errors.ParseError), (data, error)\n"
    "        assert data.offset == error.offset, (data.offset, error.offset)\n"
    "        return\n"
    "    assert not isinstance(data, BaseException), (data, body[:80])\n"
    "    assert data == expected, (data, expected)\n"
    "def check_meaning(outcome):\n"
    "    # The pure-Python interpretation never raises, whatever came back.\n"
    "    meaning = interpret('13800138000', outcome)\n"
    "    assert isinstance(meaning, (CheckResult, errors.MobileStatusError)), meaning\n"
    "    assert 'fuzzfuzz' not in repr(meaning), repr(meaning)\n"
    "def run(mode):\n"
    "    session = _core.Session(URL, HEADERS, timeout=3.0, connect_timeout=1.0,\n"
    "                            max_response_size=LIMIT)\n"
    "    try:\n"
    "        if mode == 0:\n"
    "            try:\n"
    "                outcome = session.post(BODY)\n"
    "            except ALLOWED as error:\n"
    "                check_error(error)\n"
    "                return\n"
    "            check_response(outcome)\n"
    "            check_meaning(outcome)\n"
    "            return\n"
    "        batch = _core.Batch(session, concurrency=1)\n"
    "        try:\n"
    "            batch.submit([(7, BODY)])\n"
    "            done = []\n"
    "            while batch.pending:\n"
    "                done += batch.run(max_wait=5.0, flush_interval=0.0)\n"
    "            assert len(done) == 1 and done[0][0] == 7, done\n"
    "            _, outcome, is_error = done[0]\n"
    "            if is_error:\n"
    "                check_error(outcome)\n"
    "            else:\n"
    "                check_response(outcome)\n"
    "                check_meaning(outcome)\n"
    "        finally:\n"
    "            batch.close()\n"
    "    finally:\n"
    "        session.close()\n";

static PyObject *
create_core(void)
{
    PyModuleDef *def = (PyModuleDef *)PyInit__core();
    PyObject *machinery = PyImport_ImportModule("importlib.machinery");
    if (def == NULL || machinery == NULL) {
        return NULL;
    }
    PyObject *spec = PyObject_CallMethod(machinery, "ModuleSpec", "sO",
                                         "mobilestatus._core", Py_None);
    Py_DECREF(machinery);
    if (spec == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_FromDefAndSpec(def, spec);
    Py_DECREF(spec);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_ExecDef(module, def) < 0 ||
        PyDict_SetItemString(PyImport_GetModuleDict(), "mobilestatus._core",
                             module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    /* Every Python allocation goes through malloc, where ASan sees it. */
    setenv("PYTHONMALLOC", "malloc", 1);
    Py_InitializeEx(0);

    PyObject *globals = PyDict_New();
    PyObject *root = PyUnicode_FromString(MS_REPO_ROOT);
    if (globals == NULL || root == NULL ||
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) <
            0 ||
        PyDict_SetItemString(globals, "ROOT", root) < 0) {
        die("cannot make globals");
    }
    Py_DECREF(root);
    PyObject *rc = PyRun_String(PY_SOURCE, Py_file_input, globals, globals);
    if (rc == NULL) {
        die("the Python half failed to load");
    }
    Py_DECREF(rc);

    PyObject *core = create_core();
    if (core == NULL) {
        die("cannot create mobilestatus._core");
    }
    start_server();
    PyObject *setup = PyDict_GetItemString(globals, "setup");
    rc = PyObject_CallFunction(setup, "Oi", core, listen_port);
    if (rc == NULL) {
        die("setup failed");
    }
    Py_DECREF(rc);
    run_one = PyDict_GetItemString(globals, "run");
    Py_INCREF(run_one);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mode = 0;
    if (size > 0) {
        mode = data[0] & 1;
        data++;
        size--;
    }
    unsigned char *copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);

    pthread_mutex_lock(&mutex);
    response = copy;
    response_len = size;
    pthread_mutex_unlock(&mutex);

    PyObject *rc = PyObject_CallFunction(run_one, "i", mode);
    if (rc == NULL) {
        die("contract violated");
    }
    Py_DECREF(rc);

    /* The session is closed: the server finishes its connection at once.
     * Only then may the buffer go. */
    pthread_mutex_lock(&mutex);
    while (serving) {
        pthread_cond_wait(&idle_cond, &mutex);
    }
    response = NULL;
    response_len = 0;
    pthread_mutex_unlock(&mutex);
    free(copy);
    return 0;
}

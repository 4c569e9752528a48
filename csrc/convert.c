/* Parsed JSON (json.c) -> Python objects, and _core.loads.
 *
 * The parser builds a plain C tree without the GIL; this file turns it
 * into Python objects once the GIL is held again.  The conversion is
 * recursive, one C frame per nesting level: the parser has already
 * refused anything nested deeper than max_depth (128 by default), which
 * bounds the recursion, and Py_EnterRecursiveCall is kept as a backstop
 * for callers who raise max_depth far beyond what a C stack can hold.
 */
#include "mobilestatus.h"

/* bytes inputs above this size are parsed with the GIL released; below
 * it, releasing and re-taking the GIL costs more than the parse does. */
#define MS_LOADS_NOGIL_THRESHOLD 4096

/* Integer texts this short (sign included) fit in a long long, so they
 * skip PyLong_FromString's generic path. */
#define MS_FAST_INT_LEN 18

/* Returns a new ParseError instance (not raised) for `what` at `offset`,
 * or NULL with an exception set.  `what` is a static C string. */
static PyObject *
parse_error_new(ms_state *state, const char *what, size_t offset)
{
    PyObject *message = NULL, *offset_obj = NULL;
    PyObject *args = NULL, *kwargs = NULL, *exc = NULL;

    message = PyUnicode_FromFormat("malformed JSON: %s (byte %zu)", what,
                                   offset);
    if (message == NULL) {
        goto error;
    }
    offset_obj = PyLong_FromSize_t(offset);
    if (offset_obj == NULL) {
        goto error;
    }
    args = PyTuple_Pack(1, message);
    if (args == NULL) {
        goto error;
    }
    kwargs = PyDict_New();
    if (kwargs == NULL) {
        goto error;
    }
    if (PyDict_SetItem(kwargs, state->str_offset, offset_obj) < 0) {
        goto error;
    }
    exc = PyObject_Call(state->ParseError, args, kwargs);

error:
    Py_XDECREF(message);
    Py_XDECREF(offset_obj);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return exc;
}

PyObject *
ms_parse_error_new(ms_state *state, const ms_json_error *error)
{
    if (error->out_of_memory) {
        return PyErr_NoMemory();
    }
    return parse_error_new(state, error->message, error->offset);
}

/* Replaces the pending ValueError from PyLong_FromString (the
 * int_max_str_digits limit, when a caller lowered it below the parser's
 * own 4300-character cap) by a ParseError chained to it, so that loads
 * never leaks a bare ValueError.  The tree keeps no input offsets, so the
 * error says byte 0.  Always returns NULL with an exception set. */
static PyObject *
raise_digit_limit(ms_state *state)
{
    PyObject *cause, *exc;

#if PY_VERSION_HEX >= 0x030C0000
    cause = PyErr_GetRaisedException();
#else
    PyObject *type, *tb;

    PyErr_Fetch(&type, &cause, &tb);
    PyErr_NormalizeException(&type, &cause, &tb);
    if (tb != NULL && cause != NULL) {
        PyException_SetTraceback(cause, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    exc = parse_error_new(state, "integer has too many digits", 0);
    if (exc == NULL) {
        Py_XDECREF(cause);
        return NULL;
    }
    if (cause != NULL) {
        /* SetCause and SetContext each steal one reference. */
        Py_INCREF(cause);
        PyException_SetCause(exc, cause);
        PyException_SetContext(exc, cause);
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* Decodes one code point of validated UTF-8 and advances *p. */
static inline Py_UCS4
next_code_point(const unsigned char **p)
{
    const unsigned char *s = *p;

    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *p = s + 2;
        return ((Py_UCS4)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0) {
        *p = s + 3;
        return ((Py_UCS4)(s[0] & 0x0F) << 12) | ((Py_UCS4)(s[1] & 0x3F) << 6) |
               (s[2] & 0x3F);
    }
    *p = s + 4;
    return ((Py_UCS4)(s[0] & 0x07) << 18) | ((Py_UCS4)(s[1] & 0x3F) << 12) |
           ((Py_UCS4)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

/* Returns a new str from UTF-8 the parser has validated (strict, no
 * surrogates), or NULL with MemoryError set.
 *
 * PyUnicode_DecodeUTF8 cannot know the string's width in advance: for
 * non-ASCII text it starts narrow and widens through a writer and a
 * realloc, which showed up in profiles of our mostly-Chinese responses.
 * The widest lead byte gives the exact width here (a lead byte of
 * C2..C3 means a code point in 80..FF, E0..EF one above FF, F0..F4 one
 * above FFFF), so the str is created at its final, canonical kind. */
static PyObject *
utf8_to_str(const char *bytes, size_t len)
{
    const unsigned char *s = (const unsigned char *)bytes;
    const unsigned char *end = s + len;
    const unsigned char *p;
    unsigned char lead_max = 0;
    Py_ssize_t nchars = 0, i;
    Py_UCS4 maxchar;
    PyObject *str;
    void *data;

    for (p = s; p < end; p++) {
        if ((*p & 0xC0) != 0x80) {
            nchars++;
            if (*p > lead_max) {
                lead_max = *p;
            }
        }
    }
    if (lead_max < 0x80) {
        /* ASCII: CPython's own path is as fast and shares 1-char strs. */
        return PyUnicode_DecodeUTF8(bytes, (Py_ssize_t)len, NULL);
    }
    maxchar = lead_max < 0xC4 ? 0xFF : lead_max < 0xF0 ? 0xFFFF : 0x10FFFF;
    str = PyUnicode_New(nchars, maxchar);
    if (str == NULL) {
        return NULL;
    }
    data = PyUnicode_DATA(str);
    p = s;
    switch (PyUnicode_KIND(str)) {
    case PyUnicode_1BYTE_KIND:
        for (i = 0; i < nchars; i++) {
            ((Py_UCS1 *)data)[i] = (Py_UCS1)next_code_point(&p);
        }
        break;
    case PyUnicode_2BYTE_KIND:
        for (i = 0; i < nchars; i++) {
            ((Py_UCS2 *)data)[i] = (Py_UCS2)next_code_point(&p);
        }
        break;
    default:
        for (i = 0; i < nchars; i++) {
            ((Py_UCS4 *)data)[i] = next_code_point(&p);
        }
        break;
    }
    return str;
}

/* Returns a new int or float, or NULL with an exception set.  The
 * parser has validated the grammar, so the text needs no checks here. */
static PyObject *
number_to_python(ms_state *state, const ms_json_value *value)
{
    const char *text = value->u.number.text;
    PyObject *result;
    double d;

    if (value->u.number.is_integer) {
        if (value->u.number.len <= MS_FAST_INT_LEN) {
            const char *p = text;
            long long n = 0;
            int negative = 0;

            if (*p == '-') {
                negative = 1;
                p++;
            }
            for (; *p != '\0'; p++) {
                n = n * 10 + (*p - '0');
            }
            return PyLong_FromLongLong(negative ? -n : n);
        }
        result = PyLong_FromString(text, NULL, 10);
        if (result == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
            return raise_digit_limit(state);
        }
        return result;
    }
    /* What float() does: with no overflow exception, "1E400" becomes
     * inf as in json.loads, and underflow gives 0.0 or a subnormal. */
    d = PyOS_string_to_double(text, NULL, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    return PyFloat_FromDouble(d);
}

/* Items converted on the C stack before the list exists; arrays longer
 * than this use a heap buffer.  128 bytes per nesting level. */
#define MS_SMALL_ARRAY 16

/* Returns a new list, or NULL with an exception set.
 *
 * The items are converted first and the list is created and filled only
 * afterwards, with no allocation in between: a list made by
 * PyList_New(n) holds NULL slots until filled, and a collection run by
 * an allocation during the conversion could hand it to Python code
 * (gc.get_objects() in a gc callback) half-built. */
static PyObject *
array_to_python(ms_state *state, const ms_json_value *value)
{
    size_t count = value->u.array.count;
    PyObject *small[MS_SMALL_ARRAY];
    PyObject **items = small;
    PyObject *list = NULL;
    size_t owned = 0, i;

    if (Py_EnterRecursiveCall(" while converting a JSON array")) {
        return NULL;
    }
    if (count > MS_SMALL_ARRAY) {
        items = PyMem_New(PyObject *, count);
        if (items == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (owned = 0; owned < count; owned++) {
        items[owned] = ms_json_to_python(state, &value->u.array.items[owned]);
        if (items[owned] == NULL) {
            goto done;
        }
    }
    list = PyList_New((Py_ssize_t)count);
    if (list == NULL) {
        goto done;
    }
    for (i = 0; i < count; i++) {
        PyList_SET_ITEM(list, (Py_ssize_t)i, items[i]); /* steals */
    }
    owned = 0;

done:
    /* On error, the items converted so far are still ours. */
    for (i = 0; i < owned; i++) {
        Py_DECREF(items[i]);
    }
    if (items != small) {
        PyMem_Free(items);
    }
    Py_LeaveRecursiveCall();
    return list;
}

/* Returns a new dict, or NULL with an exception set.  Members are set in
 * document order, so the last duplicate key wins as in json.loads. */
static PyObject *
object_to_python(ms_state *state, const ms_json_value *value)
{
    PyObject *dict = NULL, *key = NULL, *item = NULL;
    size_t i;

    if (Py_EnterRecursiveCall(" while converting a JSON object")) {
        return NULL;
    }
    dict = PyDict_New();
    if (dict == NULL) {
        goto error;
    }
    for (i = 0; i < value->u.object.count; i++) {
        const ms_json_member *m = &value->u.object.members[i];

        key = utf8_to_str(m->key, m->key_len);
        if (key == NULL) {
            goto error;
        }
        item = ms_json_to_python(state, &m->value);
        if (item == NULL) {
            goto error;
        }
        if (PyDict_SetItem(dict, key, item) < 0) {
            goto error;
        }
        Py_CLEAR(key);
        Py_CLEAR(item);
    }
    Py_LeaveRecursiveCall();
    return dict;

error:
    Py_LeaveRecursiveCall();
    Py_XDECREF(key);
    Py_XDECREF(item);
    Py_XDECREF(dict);
    return NULL;
}

/* Returns a new reference, or NULL with an exception set.  value is
 * borrowed from a document the caller keeps alive during the call. */
PyObject *
ms_json_to_python(ms_state *state, const ms_json_value *value)
{
    switch (value->type) {
    case MS_JSON_NULL:
        Py_RETURN_NONE;
    case MS_JSON_FALSE:
        Py_RETURN_FALSE;
    case MS_JSON_TRUE:
        Py_RETURN_TRUE;
    case MS_JSON_NUMBER:
        return number_to_python(state, value);
    case MS_JSON_STRING:
        return utf8_to_str(value->u.string.bytes, value->u.string.len);
    case MS_JSON_ARRAY:
        return array_to_python(state, value);
    case MS_JSON_OBJECT:
        return object_to_python(state, value);
    }
    PyErr_SetString(PyExc_SystemError, "unknown JSON value type");
    return NULL;
}

/* _core.loads(data, /, *, max_depth=128).  Returns a new reference to
 * the decoded value, or NULL with ParseError, TypeError, ValueError or
 * MemoryError set.  data is only borrowed for the duration of the
 * parse: the tree owns copies of every string and number. */
PyObject *
ms_core_loads(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "max_depth", NULL};
    ms_state *state = ms_state_from_module(module);
    PyObject *data, *result;
    Py_ssize_t max_depth = MS_DEFAULT_MAX_DEPTH;
    Py_buffer view;
    ms_json_doc *doc;
    ms_json_error err;

    /* loads(body) is the hot call; PyArg_ParseTupleAndKeywords would be
     * a measurable share of parsing a 200-byte response. */
    if (kwargs == NULL && PyTuple_GET_SIZE(args) == 1) {
        data = PyTuple_GET_ITEM(args, 0);
    }
    else if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$n:loads", kwlist,
                                          &data, &max_depth)) {
        return NULL;
    }
    if (max_depth < 1) {
        PyErr_Format(PyExc_ValueError,
                     "max_depth must be at least 1, not %zd", max_depth);
        return NULL;
    }
    /* str has no buffer anyway; say what to do instead of the generic
     * "a bytes-like object is required". */
    if (PyUnicode_Check(data)) {
        PyErr_SetString(PyExc_TypeError,
                        "loads() takes bytes or another C-contiguous "
                        "buffer, not str; encode it as UTF-8 first");
        return NULL;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* Only exact bytes are immutable for sure: a bytearray or another
     * exporter could be written by another thread while we read it. */
    if (PyBytes_CheckExact(data) && view.len > MS_LOADS_NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        doc = ms_json_parse(view.buf, (size_t)view.len, (size_t)max_depth,
                            &err);
        Py_END_ALLOW_THREADS
    }
    else {
        doc = ms_json_parse(view.buf, (size_t)view.len, (size_t)max_depth,
                            &err);
    }
    PyBuffer_Release(&view);

    if (doc == NULL) {
        PyObject *exc = ms_parse_error_new(state, &err);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    result = ms_json_to_python(state, ms_json_root(doc));
    ms_json_free(doc);
    return result;
}

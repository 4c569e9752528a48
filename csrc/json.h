/* A strict RFC 8259 JSON parser in plain C.
 *
 * No Python.h here on purpose: the parser runs with the GIL released, and
 * can be fuzzed or unit-tested as a plain C library.  It builds a tree in
 * memory it owns (malloc, never PyMem_*); convert.c turns the tree into
 * Python objects once the GIL is back.
 */
#ifndef MOBILESTATUS_JSON_H
#define MOBILESTATUS_JSON_H

#include <stddef.h>

typedef enum {
    MS_JSON_NULL,
    MS_JSON_FALSE,
    MS_JSON_TRUE,
    MS_JSON_NUMBER,
    MS_JSON_STRING,
    MS_JSON_ARRAY,
    MS_JSON_OBJECT
} ms_json_type;

typedef struct ms_json_value ms_json_value;
typedef struct ms_json_member ms_json_member;

struct ms_json_value {
    ms_json_type type;
    union {
        /* The number's text exactly as written, NUL-terminated, so that
         * big integers stay exact (Python decides int vs float). */
        struct {
            const char *text;
            size_t len;
            int is_integer; /* no fraction and no exponent */
        } number;
        /* Decoded, validated UTF-8; NUL-terminated but may hold NULs. */
        struct {
            const char *bytes;
            size_t len;
        } string;
        struct {
            ms_json_value *items;
            size_t count;
        } array;
        struct {
            ms_json_member *members; /* in document order, duplicates kept */
            size_t count;
        } object;
    } u;
};

struct ms_json_member {
    const char *key; /* decoded UTF-8, NUL-terminated */
    size_t key_len;
    ms_json_value value;
};

typedef struct {
    size_t offset;        /* byte offset in the input where parsing stopped */
    const char *message;  /* static string, e.g. "unexpected character" */
    int out_of_memory;    /* set when allocation failed, not the input */
} ms_json_error;

typedef struct ms_json_doc ms_json_doc;

/* Parses data[0:len].  On success returns a document (free it with
 * ms_json_free) and leaves *error untouched; on failure returns NULL and
 * fills *error.  Nesting deeper than max_depth is an error; the parser's
 * own stack use is bounded by max_depth whatever the input. */
ms_json_doc *ms_json_parse(const char *data, size_t len, size_t max_depth,
                           ms_json_error *error);

const ms_json_value *ms_json_root(const ms_json_doc *doc);

/* Looks a key up in an object (last duplicate wins, as in json.loads);
 * NULL when absent or when object is not an object. */
const ms_json_value *ms_json_get(const ms_json_value *object,
                                 const char *key);

void ms_json_free(ms_json_doc *doc);

#endif /* MOBILESTATUS_JSON_H */

/* libFuzzer harness for the JSON parser (csrc/json.c), without Python.
 *
 * Besides "no crash, no leak, no UB" (the sanitizers' job) it checks the
 * parser's own contract on every input:
 *   - a failure has a static message and an offset within the input, and
 *     out_of_memory is never set (libFuzzer's malloc does not fail);
 *   - a success yields a tree whose strings are valid UTF-8 without
 *     surrogates, NUL-terminated at their explicit length, whose numbers
 *     are NUL-terminated, and which is nested no deeper than max_depth;
 *   - the depth limit is exact: a document accepted with max_depth = d
 *     is rejected with d - 1 and "maximum nesting depth exceeded".
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define FUZZ_MAX_DEPTH 64

#define REQUIRE(cond)                                                  \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "contract violated: %s (line %d)\n", #cond, \
                    __LINE__);                                         \
            abort();                                                   \
        }                                                              \
    } while (0)

/* Strict UTF-8 (no overlongs, surrogates or > U+10FFFF), written
 * independently of json.c so that the two can disagree. */
static int
valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t n, k;

        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            n = 2;
            cp = s[i] & 0x1F;
        }
        else if ((s[i] & 0xF0) == 0xE0) {
            n = 3;
            cp = s[i] & 0x0F;
        }
        else if ((s[i] & 0xF8) == 0xF0) {
            n = 4;
            cp = s[i] & 0x07;
        }
        else {
            return 0;
        }
        if (len - i < n) {
            return 0;
        }
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
            (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += n;
    }
    return 1;
}

/* Returns the nesting depth of v (0 for scalars). */
static size_t
check_value(const ms_json_value *v)
{
    size_t i, depth = 0, d;

    switch (v->type) {
    case MS_JSON_NULL:
    case MS_JSON_TRUE:
    case MS_JSON_FALSE:
        return 0;
    case MS_JSON_NUMBER:
        REQUIRE(v->u.number.len > 0 && v->u.number.len <= 4300);
        REQUIRE(v->u.number.text[v->u.number.len] == '\0');
        REQUIRE(strlen(v->u.number.text) == v->u.number.len);
        return 0;
    case MS_JSON_STRING:
        REQUIRE(v->u.string.bytes[v->u.string.len] == '\0');
        REQUIRE(valid_utf8((const unsigned char *)v->u.string.bytes,
                           v->u.string.len));
        return 0;
    case MS_JSON_ARRAY:
        for (i = 0; i < v->u.array.count; i++) {
            d = check_value(&v->u.array.items[i]);
            depth = d > depth ? d : depth;
        }
        return depth + 1;
    case MS_JSON_OBJECT:
        for (i = 0; i < v->u.object.count; i++) {
            const ms_json_member *m = &v->u.object.members[i];
            REQUIRE(m->key[m->key_len] == '\0');
            REQUIRE(valid_utf8((const unsigned char *)m->key, m->key_len));
            /* Last duplicate wins. */
            if (memchr(m->key, '\0', m->key_len) == NULL) {
                REQUIRE(ms_json_get(v, m->key) != NULL);
            }
            d = check_value(&m->value);
            depth = d > depth ? d : depth;
        }
        return depth + 1;
    }
    REQUIRE(!"unknown type");
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_json_error err = {0, NULL, 0};
    ms_json_doc *doc;
    size_t depth;

    doc = ms_json_parse((const char *)data, size, FUZZ_MAX_DEPTH, &err);
    if (doc == NULL) {
        REQUIRE(err.message != NULL);
        REQUIRE(err.offset <= size);
        REQUIRE(!err.out_of_memory);
        return 0;
    }
    depth = check_value(ms_json_root(doc));
    REQUIRE(depth <= FUZZ_MAX_DEPTH);
    ms_json_free(doc);

    if (depth > 0) {
        doc = ms_json_parse((const char *)data, size, depth - 1, &err);
        REQUIRE(doc == NULL);
        REQUIRE(strcmp(err.message, "maximum nesting depth exceeded") == 0);
    }
    return 0;
}

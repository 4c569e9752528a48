/* A strict RFC 8259 JSON parser in plain C (see json.h).
 *
 * Design, and why:
 *
 * - No recursion.  Open containers live on an explicit frame stack that
 *   grows on the heap up to max_depth entries, so the C stack use of
 *   ms_json_parse is constant whatever the input and whatever max_depth
 *   is; the parser runs without the GIL on any thread, including small
 *   musl or threading.stack_size() stacks.  A document nested deeper than
 *   max_depth fails at the first bracket past the limit, without looking
 *   at the rest of the input.
 *
 * - One arena per document.  Every string, number text and item array of
 *   a document is carved out of a chain of malloc'd blocks owned by the
 *   ms_json_doc, so freeing a document (or abandoning one on an error
 *   path) is one walk over the chain and nothing can leak.  The first
 *   block sits in the same allocation as the document, so a typical
 *   ~200-byte response costs a single malloc.
 *
 * - Items of the containers still open are collected on a scratch stack
 *   (inline in the parser for small documents) and copied into an
 *   exactly-sized arena array when the container closes, which is what
 *   gives arrays and objects of any length without per-item allocation.
 *
 * - Strings are decoded into UTF-8 with explicit lengths: "\u0000" gives
 *   a real NUL byte.  Input UTF-8 is validated strictly and lone surrogate
 *   escapes are rejected (the orjson policy, not the stdlib's): a string
 *   we accept always converts to a Python str, and two parsers cannot
 *   disagree about what a key with a broken surrogate means
 *   (CVE-2022-31116).
 *
 * - Numbers are validated against the RFC grammar and kept as text so
 *   that convert.c can make exact ints.  Tokens longer than
 *   MS_JSON_MAX_NUMBER_LEN are refused here, before CPython's quadratic
 *   int parsing (CVE-2020-10735) could see them.
 *
 * Only malloc/realloc/free are used: the parser must not need the GIL.
 */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* CPython's default int digit limit (sys.get_int_max_str_digits()). */
#define MS_JSON_MAX_NUMBER_LEN 4300

/* Alignment of every non-string arena allocation. */
#define MS_JSON_ALIGN (_Alignof(ms_json_member) > _Alignof(ms_json_value) \
                       ? _Alignof(ms_json_member)                         \
                       : _Alignof(ms_json_value))

/* The first arena block is sized from the input; later blocks double up
 * to this size (and are bigger only for one oversized request). */
#define MS_JSON_FIRST_BLOCK_MIN 256
#define MS_JSON_FIRST_BLOCK_MAX (64 * 1024)
#define MS_JSON_BLOCK_MAX (4 * 1024 * 1024)

/* Inline capacities of the parser's stacks: enough for any API response,
 * so the common case never touches the heap for them. */
#define MS_JSON_INLINE_ITEMS 32
#define MS_JSON_INLINE_FRAMES 16

typedef struct ms_arena_block {
    struct ms_arena_block *next;
    /* Keeps the data after the header aligned for ms_json_member. */
    ms_json_member align_[];
} ms_arena_block;

struct ms_json_doc {
    ms_json_value root;
    ms_arena_block *blocks;  /* extra blocks, newest first */
    unsigned char *ptr;      /* free space of the current block */
    unsigned char *end;
    size_t next_block;       /* data size of the next block to malloc */
    /* The first block's data follows the struct. */
};

/* Slot number of the document's root in ms_frame.slot. */
#define MS_JSON_ROOT_SLOT SIZE_MAX

typedef struct {
    size_t start;       /* index of the container's first item on stack */
    size_t slot;        /* item that receives the container when it closes */
    ms_json_type type;  /* MS_JSON_ARRAY or MS_JSON_OBJECT */
} ms_frame;

typedef struct {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    ms_json_doc *doc;
    ms_json_error *error;
    size_t max_depth;

    /* Items of the open containers (array items have key == NULL). */
    ms_json_member *items;
    size_t nitems;
    size_t items_cap;

    ms_frame *frames;
    size_t depth;
    size_t frames_cap;

    ms_json_member items_inline[MS_JSON_INLINE_ITEMS];
    ms_frame frames_inline[MS_JSON_INLINE_FRAMES];
} ms_parser;

/* 1 for bytes that may be copied as they are inside a string: printable
 * ASCII other than '"' and '\\'. */
static const unsigned char plain_char[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x80..0xFF: 0 (UTF-8, validated sequence by sequence) */
};

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* RFC 8259 whitespace only: no form feed, no vertical tab, no NBSP. */
#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

static int
fail(ms_parser *ps, const unsigned char *at, const char *message)
{
    ps->error->offset = (size_t)(at - ps->start);
    ps->error->message = message;
    ps->error->out_of_memory = 0;
    return -1;
}

static int
fail_nomem(ms_parser *ps)
{
    ps->error->offset = (size_t)(ps->p - ps->start);
    ps->error->message = "out of memory";
    ps->error->out_of_memory = 1;
    return -1;
}

/* ---- arena ---- */

/* Makes the current block hold at least size bytes (plus alignment
 * slack).  Returns 0, or -1 when malloc fails. */
static int
arena_grow(ms_json_doc *doc, size_t size)
{
    size_t want = doc->next_block;
    ms_arena_block *block;

    if (size > SIZE_MAX - sizeof(ms_arena_block) - MS_JSON_ALIGN) {
        return -1;
    }
    if (want < size + MS_JSON_ALIGN) {
        want = size + MS_JSON_ALIGN;
    }
    block = malloc(sizeof(ms_arena_block) + want);
    if (block == NULL) {
        return -1;
    }
    block->next = doc->blocks;
    doc->blocks = block;
    doc->ptr = (unsigned char *)(block + 1);
    doc->end = doc->ptr + want;
    if (doc->next_block < MS_JSON_BLOCK_MAX) {
        doc->next_block *= 2;
    }
    return 0;
}

/* size bytes aligned for values and members; NULL when out of memory. */
static void *
arena_alloc(ms_json_doc *doc, size_t size)
{
    size_t pad = (size_t)(-(uintptr_t)doc->ptr) & (MS_JSON_ALIGN - 1);
    size_t left = (size_t)(doc->end - doc->ptr);
    void *mem;

    if (pad > left || size > left - pad) {
        if (arena_grow(doc, size) < 0) {
            return NULL;
        }
        pad = (size_t)(-(uintptr_t)doc->ptr) & (MS_JSON_ALIGN - 1);
    }
    mem = doc->ptr + pad;
    doc->ptr += pad + size;
    return mem;
}

/* size unaligned bytes (string and number text); NULL when out of
 * memory.  The caller may give the tail back with arena_trim. */
static unsigned char *
arena_bytes(ms_json_doc *doc, size_t size)
{
    unsigned char *mem;

    if (size > (size_t)(doc->end - doc->ptr)) {
        if (arena_grow(doc, size) < 0) {
            return NULL;
        }
    }
    mem = doc->ptr;
    doc->ptr += size;
    return mem;
}

/* Returns the bytes after new_end of the latest arena_bytes allocation;
 * strings shrink when escapes are decoded. */
static void
arena_trim(ms_json_doc *doc, unsigned char *new_end)
{
    doc->ptr = new_end;
}

static ms_json_doc *
doc_new(size_t input_len)
{
    /* Typical documents decode to about twice their size once values
     * and members are counted; guessing well saves a second malloc. */
    size_t first = MS_JSON_FIRST_BLOCK_MAX;
    ms_json_doc *doc;

    if (input_len < (MS_JSON_FIRST_BLOCK_MAX - MS_JSON_FIRST_BLOCK_MIN) / 3) {
        first = MS_JSON_FIRST_BLOCK_MIN + input_len * 3;
    }
    doc = malloc(sizeof(ms_json_doc) + first);
    if (doc == NULL) {
        return NULL;
    }
    doc->root.type = MS_JSON_NULL;
    doc->blocks = NULL;
    doc->ptr = (unsigned char *)(doc + 1);
    doc->end = doc->ptr + first;
    doc->next_block = first < 4096 ? 4096 : first * 2;
    return doc;
}

void
ms_json_free(ms_json_doc *doc)
{
    ms_arena_block *block;

    if (doc == NULL) {
        return;
    }
    block = doc->blocks;
    while (block != NULL) {
        ms_arena_block *next = block->next;
        free(block);
        block = next;
    }
    free(doc);
}

const ms_json_value *
ms_json_root(const ms_json_doc *doc)
{
    return &doc->root;
}

const ms_json_value *
ms_json_get(const ms_json_value *object, const char *key)
{
    size_t key_len, i;

    if (object == NULL || object->type != MS_JSON_OBJECT || key == NULL) {
        return NULL;
    }
    key_len = strlen(key);
    /* Backwards, so that the last duplicate wins as in json.loads. */
    for (i = object->u.object.count; i > 0; i--) {
        const ms_json_member *m = &object->u.object.members[i - 1];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) {
            return &m->value;
        }
    }
    return NULL;
}

/* ---- parser stacks ---- */

/* Grows a stack that starts inline: the inline buffer is never freed, a
 * heap one is realloc'd.  Returns the new buffer or NULL (old one kept). */
static void *
stack_grow(void *buf, const void *inline_buf, size_t *cap, size_t elem)
{
    size_t new_cap;
    void *new_buf;

    if (*cap > SIZE_MAX / 2 / elem) {
        return NULL;
    }
    new_cap = *cap * 2;
    if (buf == inline_buf) {
        new_buf = malloc(new_cap * elem);
        if (new_buf != NULL) {
            memcpy(new_buf, buf, *cap * elem);
        }
    }
    else {
        new_buf = realloc(buf, new_cap * elem);
    }
    if (new_buf != NULL) {
        *cap = new_cap;
    }
    return new_buf;
}

static int
push_item(ms_parser *ps, const char *key, size_t key_len)
{
    ms_json_member *m;

    if (ps->nitems == ps->items_cap) {
        ms_json_member *grown = stack_grow(ps->items, ps->items_inline,
                                           &ps->items_cap,
                                           sizeof(ms_json_member));
        if (grown == NULL) {
            return fail_nomem(ps);
        }
        ps->items = grown;
    }
    m = &ps->items[ps->nitems++];
    m->key = key;
    m->key_len = key_len;
    return 0;
}

/* Opens a container whose value goes to item `slot` (or the root). */
static int
push_frame(ms_parser *ps, ms_json_type type, size_t slot)
{
    if (ps->depth >= ps->max_depth) {
        return fail(ps, ps->p, "maximum nesting depth exceeded");
    }
    if (ps->depth == ps->frames_cap) {
        ms_frame *grown = stack_grow(ps->frames, ps->frames_inline,
                                     &ps->frames_cap, sizeof(ms_frame));
        if (grown == NULL) {
            return fail_nomem(ps);
        }
        ps->frames = grown;
    }
    ps->frames[ps->depth].start = ps->nitems;
    ps->frames[ps->depth].slot = slot;
    ps->frames[ps->depth].type = type;
    ps->depth++;
    return 0;
}

/* Closes the innermost container: moves its items into an exactly-sized
 * arena array and stores the container in the slot it was opened for. */
static int
pop_frame(ms_parser *ps)
{
    const ms_frame *f = &ps->frames[ps->depth - 1];
    size_t count = ps->nitems - f->start;
    const ms_json_member *src = ps->items + f->start;
    ms_json_value *v;
    void *array = NULL;

    if (count > 0) {
        /* count * sizeof(member) fit in the items stack: no overflow. */
        if (f->type == MS_JSON_ARRAY) {
            ms_json_value *items;
            size_t i;

            items = arena_alloc(ps->doc, count * sizeof(ms_json_value));
            if (items == NULL) {
                return fail_nomem(ps);
            }
            for (i = 0; i < count; i++) {
                items[i] = src[i].value;
            }
            array = items;
        }
        else {
            array = arena_alloc(ps->doc, count * sizeof(ms_json_member));
            if (array == NULL) {
                return fail_nomem(ps);
            }
            memcpy(array, src, count * sizeof(ms_json_member));
        }
    }
    v = f->slot == MS_JSON_ROOT_SLOT ? &ps->doc->root
                                     : &ps->items[f->slot].value;
    v->type = f->type;
    if (f->type == MS_JSON_ARRAY) {
        v->u.array.items = array;
        v->u.array.count = count;
    }
    else {
        v->u.object.members = array;
        v->u.object.count = count;
    }
    ps->nitems = f->start;
    ps->depth--;
    return 0;
}

/* ---- strings ---- */

static int
hex_value(unsigned char c)
{
    if (IS_DIGIT(c)) {
        return c - '0';
    }
    c |= 0x20;
    if ((unsigned char)(c - 'a') < 6) {
        return c - 'a' + 10;
    }
    return -1;
}

/* The 4 hex digits at q, or -1.  The caller checked that they exist. */
static long
hex4(const unsigned char *q)
{
    int a = hex_value(q[0]), b = hex_value(q[1]);
    int c = hex_value(q[2]), d = hex_value(q[3]);

    if ((a | b | c | d) < 0) {
        return -1;
    }
    return ((long)a << 12) | (b << 8) | (c << 4) | d;
}

static unsigned char *
put_utf8(unsigned char *d, unsigned long cp)
{
    if (cp < 0x80) {
        *d++ = (unsigned char)cp;
    }
    else if (cp < 0x800) {
        *d++ = (unsigned char)(0xC0 | (cp >> 6));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    else if (cp < 0x10000) {
        *d++ = (unsigned char)(0xE0 | (cp >> 12));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    else {
        *d++ = (unsigned char)(0xF0 | (cp >> 18));
        *d++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* Length of the valid UTF-8 sequence starting at q (lead byte >= 0x80)
 * and ending before end, or 0 when it is invalid: overlong forms,
 * surrogates (ED A0..BF), code points above U+10FFFF and truncated
 * sequences all fail (Unicode Table 3-7). */
static size_t
utf8_length(const unsigned char *q, const unsigned char *end)
{
    unsigned char c = q[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        }
        else if (c == 0xED) {
            hi = 0x9F;
        }
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        }
        else if (c == 0xF4) {
            hi = 0x8F;
        }
    }
    else {
        return 0;
    }
    if ((size_t)(end - q) < n) {
        return 0;
    }
    if (q[1] < lo || q[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if ((q[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* Parses the string whose opening quote is at ps->p; on success stores
 * the decoded, NUL-terminated text (in the arena) and its length, and
 * leaves ps->p after the closing quote.
 *
 * The first pass finds the closing quote and validates everything but
 * the \u escapes: UTF-8 (a sequence cannot run past the closing quote,
 * since '"' is no continuation byte), control characters, escape
 * letters.  Strings without escapes, nearly all of them, are then one
 * memcpy; the others are decoded by a second pass over the same bytes. */
static int
parse_string(ms_parser *ps, const char **out, size_t *out_len)
{
    const unsigned char *open = ps->p;
    const unsigned char *s = open + 1;
    const unsigned char *end = ps->end;
    const unsigned char *q = s;
    const unsigned char *raw_end;
    unsigned char *dst, *d;
    int escaped = 0;

    for (;;) {
        while (q < end && plain_char[*q]) {
            q++;
        }
        if (q == end) {
            return fail(ps, open, "unterminated string");
        }
        if (*q == '"') {
            break;
        }
        if (*q == '\\') {
            if (end - q < 2) {
                return fail(ps, open, "unterminated string");
            }
            switch (q[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
            case 'u':
                break;
            default:
                return fail(ps, q, "invalid escape");
            }
            escaped = 1;
            q += 2;
        }
        else if (*q < 0x20) {
            return fail(ps, q, "control character in string");
        }
        else {
            size_t n = utf8_length(q, end);
            if (n == 0) {
                return fail(ps, q, "invalid UTF-8");
            }
            q += n;
        }
    }
    raw_end = q;

    dst = arena_bytes(ps->doc, (size_t)(raw_end - s) + 1);
    if (dst == NULL) {
        return fail_nomem(ps);
    }
    if (!escaped) {
        size_t len = (size_t)(raw_end - s);

        memcpy(dst, s, len);
        dst[len] = '\0';
        *out = (const char *)dst;
        *out_len = len;
        ps->p = raw_end + 1;
        return 0;
    }

    /* Decoding only shrinks the text, so the raw length is enough. */
    d = dst;
    q = s;
    while (q < raw_end) {
        const unsigned char *bs = memchr(q, '\\', (size_t)(raw_end - q));
        size_t run = (size_t)((bs != NULL ? bs : raw_end) - q);

        memcpy(d, q, run);
        d += run;
        q += run;
        if (bs == NULL) {
            break;
        }
        /* The first pass checked the escape letter and that q[1] exists
         * before raw_end. */
        switch (q[1]) {
        case 'b':
            *d++ = '\b';
            break;
        case 'f':
            *d++ = '\f';
            break;
        case 'n':
            *d++ = '\n';
            break;
        case 'r':
            *d++ = '\r';
            break;
        case 't':
            *d++ = '\t';
            break;
        case 'u': {
            long cp, lo;

            if (raw_end - q < 6 || (cp = hex4(q + 2)) < 0) {
                return fail(ps, q, "invalid \\u escape");
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(ps, q, "lone surrogate");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* Only a directly following low-surrogate escape
                 * completes the pair. */
                if (raw_end - q < 12 || q[6] != '\\' || q[7] != 'u') {
                    return fail(ps, q, "lone surrogate");
                }
                lo = hex4(q + 8);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    return fail(ps, q, "lone surrogate");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 6;
            }
            d = put_utf8(d, (unsigned long)cp);
            q += 6;
            continue;
        }
        default:
            /* '"', '\\' and '/' stand for themselves. */
            *d++ = q[1];
            break;
        }
        q += 2;
    }
    *d = '\0';
    arena_trim(ps->doc, d + 1);
    *out = (const char *)dst;
    *out_len = (size_t)(d - dst);
    ps->p = raw_end + 1;
    return 0;
}

/* ---- numbers ---- */

/* Parses -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at ps->p.  Scans
 * at most MS_JSON_MAX_NUMBER_LEN + 1 bytes, so a 10 MB digit run fails
 * as fast as a short one. */
static int
parse_number(ms_parser *ps, ms_json_value *v)
{
    const unsigned char *s = ps->p;
    const unsigned char *q = s;
    const unsigned char *lim = ps->end;
    const unsigned char *bad;
    int is_integer = 1;
    size_t len;
    unsigned char *text;

    if ((size_t)(lim - s) > MS_JSON_MAX_NUMBER_LEN + 1) {
        lim = s + MS_JSON_MAX_NUMBER_LEN + 1;
    }
    if (*q == '-') {
        q++;
    }
    if (q < lim && *q == '0') {
        q++;
        if (q < lim && IS_DIGIT(*q)) {
            return fail(ps, q - 1, "leading zero");
        }
    }
    else if (q < lim && IS_DIGIT(*q)) {
        do {
            q++;
        } while (q < lim && IS_DIGIT(*q));
    }
    else {
        bad = q;
        goto invalid;
    }
    if (q < lim && *q == '.') {
        is_integer = 0;
        q++;
        if (!(q < lim && IS_DIGIT(*q))) {
            bad = q;
            goto invalid;
        }
        do {
            q++;
        } while (q < lim && IS_DIGIT(*q));
    }
    if (q < lim && (*q == 'e' || *q == 'E')) {
        is_integer = 0;
        q++;
        if (q < lim && (*q == '+' || *q == '-')) {
            q++;
        }
        if (!(q < lim && IS_DIGIT(*q))) {
            bad = q;
            goto invalid;
        }
        do {
            q++;
        } while (q < lim && IS_DIGIT(*q));
    }
    len = (size_t)(q - s);
    if (len > MS_JSON_MAX_NUMBER_LEN) {
        return fail(ps, s, "number too long");
    }
    text = arena_bytes(ps->doc, len + 1);
    if (text == NULL) {
        return fail_nomem(ps);
    }
    memcpy(text, s, len);
    text[len] = '\0';
    v->type = MS_JSON_NUMBER;
    v->u.number.text = (const char *)text;
    v->u.number.len = len;
    v->u.number.is_integer = is_integer;
    ps->p = q;
    return 0;

invalid:
    if ((size_t)(bad - s) > MS_JSON_MAX_NUMBER_LEN) {
        return fail(ps, s, "number too long");
    }
    if (bad == ps->end) {
        return fail(ps, bad, "unexpected end of data");
    }
    return fail(ps, bad, "invalid number");
}

/* ---- literals ---- */

static int
parse_literal(ms_parser *ps, const char *word, size_t n, ms_json_type type,
              ms_json_value *v)
{
    size_t avail = (size_t)(ps->end - ps->p);
    size_t i;

    if (avail >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        v->type = type;
        return 0;
    }
    for (i = 0; i < n && i < avail; i++) {
        if (ps->p[i] != (unsigned char)word[i]) {
            return fail(ps, ps->p + i, "invalid literal");
        }
    }
    return fail(ps, ps->end, "unexpected end of data");
}

/* ---- the document ---- */

#define SKIP_WS(ps)                                           \
    do {                                                      \
        while ((ps)->p < (ps)->end && IS_WS(*(ps)->p)) {      \
            (ps)->p++;                                        \
        }                                                     \
    } while (0)

/* A state machine over the places a token can appear: a value, an array
 * item, an object key, and after a value (',' or a closing bracket).
 * Scalars are parsed straight into their final slot (the root, or an item
 * on the stack): going through a temporary value cost a store-forwarding
 * stall per token.  Returns 0 with the doc's root filled, or -1 with
 * *ps->error filled. */
static int
parse_document(ms_parser *ps)
{
    ms_json_value *dst = &ps->doc->root;
    size_t slot = MS_JSON_ROOT_SLOT;
    const char *key;
    size_t key_len;

value:
    /* dst and slot name where the value goes. */
    SKIP_WS(ps);
    if (ps->p == ps->end) {
        return fail(ps, ps->p, "unexpected end of data");
    }
    switch (*ps->p) {
    case '{':
        if (push_frame(ps, MS_JSON_OBJECT, slot) < 0) {
            return -1;
        }
        ps->p++;
        SKIP_WS(ps);
        if (ps->p < ps->end && *ps->p == '}') {
            goto close;
        }
        goto key;
    case '[':
        if (push_frame(ps, MS_JSON_ARRAY, slot) < 0) {
            return -1;
        }
        ps->p++;
        SKIP_WS(ps);
        if (ps->p < ps->end && *ps->p == ']') {
            goto close;
        }
        goto item;
    case '"':
        if (parse_string(ps, &dst->u.string.bytes, &dst->u.string.len) < 0) {
            return -1;
        }
        dst->type = MS_JSON_STRING;
        goto after_value;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        if (parse_number(ps, dst) < 0) {
            return -1;
        }
        goto after_value;
    case 't':
        if (parse_literal(ps, "true", 4, MS_JSON_TRUE, dst) < 0) {
            return -1;
        }
        goto after_value;
    case 'f':
        if (parse_literal(ps, "false", 5, MS_JSON_FALSE, dst) < 0) {
            return -1;
        }
        goto after_value;
    case 'n':
        if (parse_literal(ps, "null", 4, MS_JSON_NULL, dst) < 0) {
            return -1;
        }
        goto after_value;
    default:
        if (ps->p == ps->start && ps->end - ps->p >= 3 &&
            memcmp(ps->p, "\xEF\xBB\xBF", 3) == 0) {
            return fail(ps, ps->p, "byte order mark not allowed");
        }
        return fail(ps, ps->p, "unexpected character");
    }

item:
    if (push_item(ps, NULL, 0) < 0) {
        return -1;
    }
    slot = ps->nitems - 1;
    dst = &ps->items[slot].value;
    goto value;

key:
    SKIP_WS(ps);
    if (ps->p == ps->end) {
        return fail(ps, ps->p, "unexpected end of data");
    }
    if (*ps->p != '"') {
        return fail(ps, ps->p, "expected string key");
    }
    if (parse_string(ps, &key, &key_len) < 0) {
        return -1;
    }
    if (push_item(ps, key, key_len) < 0) {
        return -1;
    }
    slot = ps->nitems - 1;
    dst = &ps->items[slot].value;
    SKIP_WS(ps);
    if (ps->p == ps->end) {
        return fail(ps, ps->p, "unexpected end of data");
    }
    if (*ps->p != ':') {
        return fail(ps, ps->p, "expected ':'");
    }
    ps->p++;
    goto value;

after_value:
    if (ps->depth == 0) {
        SKIP_WS(ps);
        if (ps->p != ps->end) {
            return fail(ps, ps->p, "trailing data");
        }
        return 0;
    }
    SKIP_WS(ps);
    if (ps->p == ps->end) {
        return fail(ps, ps->p, "unexpected end of data");
    }
    if (ps->frames[ps->depth - 1].type == MS_JSON_ARRAY) {
        if (*ps->p == ',') {
            ps->p++;
            goto item;
        }
        if (*ps->p != ']') {
            return fail(ps, ps->p, "expected ',' or ']'");
        }
    }
    else {
        if (*ps->p == ',') {
            ps->p++;
            goto key;
        }
        if (*ps->p != '}') {
            return fail(ps, ps->p, "expected ',' or '}'");
        }
    }

close:
    /* ps->p is at the closing bracket. */
    ps->p++;
    if (pop_frame(ps) < 0) {
        return -1;
    }
    goto after_value;
}

ms_json_doc *
ms_json_parse(const char *data, size_t len, size_t max_depth,
              ms_json_error *error)
{
    /* The parser state is ~2 KiB with its inline stacks: small enough for
     * any thread stack, and it saves two mallocs per typical document. */
    ms_parser ps;
    int rc;

    if (data == NULL) {
        /* Pointer arithmetic on NULL is undefined even with len 0. */
        data = "";
        len = 0;
    }
    ps.start = (const unsigned char *)data;
    ps.p = ps.start;
    ps.end = ps.start + len;
    ps.error = error;
    ps.max_depth = max_depth;
    ps.items = ps.items_inline;
    ps.nitems = 0;
    ps.items_cap = MS_JSON_INLINE_ITEMS;
    ps.frames = ps.frames_inline;
    ps.depth = 0;
    ps.frames_cap = MS_JSON_INLINE_FRAMES;

    ps.doc = doc_new(len);
    if (ps.doc == NULL) {
        fail_nomem(&ps);
        return NULL;
    }
    rc = parse_document(&ps);

    if (ps.items != ps.items_inline) {
        free(ps.items);
    }
    if (ps.frames != ps.frames_inline) {
        free(ps.frames);
    }
    if (rc < 0) {
        ms_json_free(ps.doc);
        return NULL;
    }
    return ps.doc;
}

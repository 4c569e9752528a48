/* Standalone C test driver for csrc/json.c, meant for sanitizers.
 *
 * It includes json.c itself (rather than linking it) so that malloc,
 * realloc and free can be swapped for counting versions that fail on
 * demand: every allocation of every test document is made to fail once,
 * which walks all out-of-memory paths, and a live-block counter proves
 * that no error path leaks even without LeakSanitizer.
 *
 * Build and run from the repository root:
 *
 *   gcc -std=c11 -Wall -Wextra -O1 -g -fsanitize=address,undefined \
 *       -fno-sanitize-recover=undefined tests/json_unit.c -o /tmp/json_unit
 *   /tmp/json_unit ../shared/testdata/JSONTestSuite/test_parsing
 *
 * Exit status 0 means every check passed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long ut_live;        /* blocks currently allocated */
static long ut_calls;       /* allocation calls so far */
static long ut_fail_at = -1; /* make this allocation call fail */

static void *
ut_malloc(size_t n)
{
    void *p;

    if (ut_calls++ == ut_fail_at) {
        return NULL;
    }
    p = malloc(n);
    if (p != NULL) {
        ut_live++;
    }
    return p;
}

static void *
ut_realloc(void *old, size_t n)
{
    void *p;

    if (ut_calls++ == ut_fail_at) {
        return NULL;
    }
    p = realloc(old, n);
    if (p != NULL && old == NULL) {
        ut_live++;
    }
    return p;
}

static void
ut_free(void *p)
{
    if (p != NULL) {
        ut_live--;
    }
    free(p);
}

#define malloc ut_malloc
#define realloc ut_realloc
#define free ut_free
#include "../csrc/json.c"
#undef malloc
#undef realloc
#undef free

static int failures;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            failures++;                                   \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                 \
            fputc('\n', stderr);                          \
        }                                                 \
    } while (0)

static ms_json_doc *
parse(const char *s, size_t len, size_t depth, ms_json_error *err)
{
    err->offset = (size_t)-1;
    err->message = NULL;
    err->out_of_memory = 0;
    return ms_json_parse(s, len, depth, err);
}

/* Parses once normally, then once per allocation call with that call
 * failing; every failing run must report out_of_memory and free all. */
static void
check_oom_paths(const char *s, size_t len, size_t depth)
{
    ms_json_error err;
    ms_json_doc *doc;
    long needed, i;
    int ok;

    ut_calls = 0;
    ut_fail_at = -1;
    doc = parse(s, len, depth, &err);
    ok = doc != NULL;
    ms_json_free(doc);
    needed = ut_calls;
    CHECK(ut_live == 0, "leak after parse (%ld blocks)", ut_live);
    for (i = 0; i < needed; i++) {
        ut_calls = 0;
        ut_fail_at = i;
        doc = parse(s, len, depth, &err);
        if (doc != NULL) {
            /* Fine only if the failing call came after the end. */
            CHECK(0, "allocation %ld failed but parse succeeded", i);
            ms_json_free(doc);
        }
        else if (ok) {
            CHECK(err.out_of_memory, "allocation %ld failed: got '%s'", i,
                  err.message);
        }
        CHECK(ut_live == 0, "leak with allocation %ld failing", i);
    }
    ut_fail_at = -1;
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void
run_suite(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int counts[3] = {0, 0, 0};
    char path[4096];

    if (d == NULL) {
        CHECK(0, "cannot open %s", dir);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        ms_json_error err;
        ms_json_doc *doc;
        size_t len;
        char *data;

        if (name[0] == '.' || name[1] != '_') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        data = read_file(path, &len);
        if (data == NULL) {
            CHECK(0, "cannot read %s", path);
            continue;
        }
        doc = parse(data, len, 128, &err);
        if (name[0] == 'y') {
            counts[0]++;
            CHECK(doc != NULL, "%s rejected: %s at %zu", name,
                  err.message, err.offset);
        }
        else if (name[0] == 'n') {
            counts[1]++;
            CHECK(doc == NULL, "%s accepted", name);
            if (doc == NULL) {
                CHECK(err.offset <= len && err.message != NULL &&
                          !err.out_of_memory,
                      "%s: bad error", name);
            }
        }
        else {
            counts[2]++;
        }
        ms_json_free(doc);
        /* The big files make the OOM walk slow and add nothing. */
        if (len < 2000) {
            check_oom_paths(data, len, 128);
        }
        free(data);
    }
    closedir(d);
    CHECK(counts[0] == 95 && counts[1] == 188 && counts[2] == 35,
          "suite counts %d/%d/%d", counts[0], counts[1], counts[2]);
    printf("suite: %d y, %d n, %d i\n", counts[0], counts[1], counts[2]);
}

static void
expect_error(const char *s, size_t len, size_t depth, const char *message,
             size_t offset)
{
    ms_json_error err;
    ms_json_doc *doc = parse(s, len, depth, &err);

    CHECK(doc == NULL, "accepted: %.*s", (int)(len > 60 ? 60 : len), s);
    ms_json_free(doc);
    if (doc == NULL) {
        CHECK(strcmp(err.message, message) == 0 && err.offset == offset,
              "%.*s: got '%s' at %zu, want '%s' at %zu",
              (int)(len > 60 ? 60 : len), s, err.message, err.offset,
              message, offset);
    }
}

#define ERR(lit, msg, off) expect_error(lit, sizeof(lit) - 1, 128, msg, off)

static void
test_errors(void)
{
    ERR("", "unexpected end of data", 0);
    ERR("   ", "unexpected end of data", 3);
    ERR("[1,]", "unexpected character", 3);
    ERR("{\"a\":1,}", "expected string key", 7);
    ERR("[1 2]", "expected ',' or ']'", 3);
    ERR("{\"a\" 1}", "expected ':'", 5);
    ERR("{\"a\":1 \"b\"}", "expected ',' or '}'", 7);
    ERR("01", "leading zero", 0);
    ERR("-01", "leading zero", 1);
    ERR("1.", "unexpected end of data", 2);
    ERR("1.e1", "invalid number", 2);
    ERR("1e+", "unexpected end of data", 3);
    ERR("-", "unexpected end of data", 1);
    ERR("-x", "invalid number", 1);
    ERR("+1", "unexpected character", 0);
    ERR("NaN", "unexpected character", 0);
    ERR("Infinity", "unexpected character", 0);
    ERR("tru", "unexpected end of data", 3);
    ERR("trUe", "invalid literal", 2);
    ERR("true false", "trailing data", 5);
    ERR("\"abc", "unterminated string", 0);
    ERR("[\"abc\\", "unterminated string", 1);
    ERR("\"a\tb\"", "control character in string", 2);
    ERR("\"\\x\"", "invalid escape", 1);
    ERR("\"\\u12\"", "invalid \\u escape", 1);
    ERR("\"\\u12G4\"", "invalid \\u escape", 1);
    ERR("\"\\ud800\"", "lone surrogate", 1);
    ERR("\"\\udc00\\ud800\"", "lone surrogate", 1);
    ERR("\"\\ud800\\u0041\"", "lone surrogate", 1);
    ERR("\"ab\\ud800x\\udc00\"", "lone surrogate", 3);
    ERR("\"\xC0\x80\"", "invalid UTF-8", 1);       /* overlong NUL */
    ERR("\"\xE0\x80\xAF\"", "invalid UTF-8", 1);   /* overlong '/' */
    ERR("\"\xED\xA0\x80\"", "invalid UTF-8", 1);   /* U+D800 */
    ERR("\"\xF4\x90\x80\x80\"", "invalid UTF-8", 1); /* > U+10FFFF */
    ERR("\"\xE6\x88\"", "invalid UTF-8", 1);       /* truncated */
    ERR("\"\xFF\"", "invalid UTF-8", 1);
    ERR("\xEF\xBB\xBF{}", "byte order mark not allowed", 0);
    ERR("'a'", "unexpected character", 0);
    ERR("[1]/*x*/", "trailing data", 3);
    ERR("\x0c[]", "unexpected character", 0);
    expect_error("[[1]]", 5, 1, "maximum nesting depth exceeded", 1);
    expect_error("{}", 2, 0, "maximum nesting depth exceeded", 0);
    expect_error("\"a\\u0000b", 9, 128, "unterminated string", 0);
}

static void
test_values(void)
{
    static const char sample[] =
        "{\"msg\":\"\xe6\x88\x90\xe5\x8a\x9f\",\"success\":true,\"code\":200,"
        "\"data\":{\"orderNo\":\"202406282055560705659\",\"result\":\"1\","
        "\"province\":\"\xe5\x8c\x97\xe4\xba\xac\",\"city\":\"\xe5\x8c\x97"
        "\xe4\xba\xac\",\"channel\":\"\xe7\xa7\xbb\xe5\x8a\xa8\","
        "\"resultMsg\":\"\xe6\xad\xa3\xe5\xb8\xb8\"}}";
    ms_json_error err;
    ms_json_doc *doc;
    const ms_json_value *root, *v, *data;

    doc = parse(sample, sizeof(sample) - 1, 128, &err);
    CHECK(doc != NULL, "sample rejected");
    if (doc != NULL) {
        root = ms_json_root(doc);
        CHECK(root->type == MS_JSON_OBJECT && root->u.object.count == 4,
              "sample root");
        v = ms_json_get(root, "code");
        CHECK(v && v->type == MS_JSON_NUMBER && v->u.number.is_integer &&
                  strcmp(v->u.number.text, "200") == 0,
              "code");
        v = ms_json_get(root, "success");
        CHECK(v && v->type == MS_JSON_TRUE, "success");
        data = ms_json_get(root, "data");
        CHECK(data && data->type == MS_JSON_OBJECT, "data");
        v = ms_json_get(data, "orderNo");
        CHECK(v && v->type == MS_JSON_STRING &&
                  strcmp(v->u.string.bytes, "202406282055560705659") == 0,
              "orderNo");
        v = ms_json_get(data, "province");
        CHECK(v && v->u.string.len == 6 &&
                  memcmp(v->u.string.bytes, "\xe5\x8c\x97\xe4\xba\xac", 6)
                      == 0,
              "province");
        CHECK(ms_json_get(data, "missing") == NULL, "missing key");
        CHECK(ms_json_get(v, "x") == NULL, "get on a string");
        ms_json_free(doc);
    }
    check_oom_paths(sample, sizeof(sample) - 1, 128);

    doc = parse("{\"a\":1,\"a\":2}", 13, 128, &err);
    CHECK(doc != NULL, "duplicate keys");
    if (doc != NULL) {
        v = ms_json_get(ms_json_root(doc), "a");
        CHECK(v && strcmp(v->u.number.text, "2") == 0, "last wins");
        ms_json_free(doc);
    }

    /* Escapes, NUL and a surrogate pair decode to exact bytes. */
    {
        static const char in[] = "\"a\\u0000b\\ud83d\\ude00\\n\\/\\u00e9\"";
        static const char want[] = "a\0b\xf0\x9f\x98\x80\n/\xc3\xa9";

        doc = parse(in, sizeof(in) - 1, 128, &err);
        CHECK(doc != NULL, "escapes rejected: %s", doc ? "" : err.message);
        if (doc != NULL) {
            root = ms_json_root(doc);
            CHECK(root->type == MS_JSON_STRING &&
                      root->u.string.len == sizeof(want) - 1 &&
                      memcmp(root->u.string.bytes, want, sizeof(want)) == 0,
                  "escape decoding");
            ms_json_free(doc);
        }
    }

    /* Numbers: text kept, integer flag. */
    {
        static const char in[] = "[-0, 1.5, 2e3, 123456789012345678901234]";

        doc = parse(in, sizeof(in) - 1, 128, &err);
        CHECK(doc != NULL, "numbers rejected");
        if (doc != NULL) {
            const ms_json_value *items = ms_json_root(doc)->u.array.items;
            CHECK(ms_json_root(doc)->u.array.count == 4, "count");
            CHECK(items[0].u.number.is_integer &&
                      strcmp(items[0].u.number.text, "-0") == 0,
                  "-0");
            CHECK(!items[1].u.number.is_integer, "1.5");
            CHECK(!items[2].u.number.is_integer, "2e3");
            CHECK(items[3].u.number.is_integer &&
                      items[3].u.number.len == 24,
                  "big int");
            ms_json_free(doc);
        }
    }
}

static void
test_limits(void)
{
    size_t big = 10 * 1024 * 1024;
    char *buf = malloc(big + 2);
    ms_json_error err;
    ms_json_doc *doc;
    clock_t t0;
    double secs;
    size_t i;

    /* Depth exactly at the limit is fine, one more is not. */
    for (i = 0; i < 128; i++) {
        buf[i] = '[';
        buf[255 - i] = ']';
    }
    doc = parse(buf, 256, 128, &err);
    CHECK(doc != NULL, "depth 128 rejected");
    ms_json_free(doc);
    check_oom_paths(buf, 256, 128);
    doc = parse(buf, 256, 127, &err);
    CHECK(doc == NULL && err.offset == 127 &&
              strcmp(err.message, "maximum nesting depth exceeded") == 0,
          "depth 128 with limit 127");
    ms_json_free(doc);

    /* 10 MB of '[' fails at the limit without reading the rest. */
    memset(buf, '[', big);
    t0 = clock();
    doc = parse(buf, big, 128, &err);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(doc == NULL && err.offset == 128, "10 MB of [");
    CHECK(secs < 0.1, "10 MB of [ took %.3f s", secs);

    /* A huge limit still uses no C stack: frames are on the heap. */
    doc = parse(buf, (size_t)1 << 20, (size_t)-1, &err);
    CHECK(doc == NULL && err.offset == (size_t)1 << 20 &&
              strcmp(err.message, "unexpected end of data") == 0,
          "10 MB of [ without a limit: %s", err.message);

    /* 4300-character numbers are fine, 4301 are not, 10 MB fail fast. */
    memset(buf, '7', big);
    doc = parse(buf, 4300, 128, &err);
    CHECK(doc != NULL, "4300 digits rejected");
    ms_json_free(doc);
    expect_error(buf, 4301, 128, "number too long", 0);
    buf[0] = '-';
    expect_error(buf, 4301, 128, "number too long", 0);
    buf[0] = '7';
    buf[4299] = '.';
    expect_error(buf, 4301, 128, "number too long", 0);
    buf[4299] = '7';
    t0 = clock();
    expect_error(buf, big, 128, "number too long", 0);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(secs < 0.1, "10 MB number took %.3f s", secs);

    /* Long arrays and objects spill the inline stacks and arena. */
    {
        size_t n = 200000, pos = 0;
        buf[pos++] = '[';
        for (i = 0; i < n; i++) {
            pos += (size_t)sprintf(buf + pos, "{\"k%zu\":[%zu,\"v\"]},", i, i);
        }
        buf[pos - 1] = ']';
        doc = parse(buf, pos, 128, &err);
        CHECK(doc != NULL && ms_json_root(doc)->u.array.count == n,
              "long array");
        if (doc != NULL) {
            const ms_json_value *last =
                &ms_json_root(doc)->u.array.items[n - 1];
            char key[32];
            snprintf(key, sizeof(key), "k%zu", n - 1);
            CHECK(ms_json_get(last, key) != NULL, "last item");
        }
        ms_json_free(doc);
    }
    CHECK(ut_live == 0, "leak in limits (%ld)", ut_live);
    free(buf);
}

/* Flips random bytes of valid documents: nothing may crash or leak. */
static void
test_mutations(void)
{
    static const char *seeds[] = {
        "{\"msg\":\"\xe6\x88\x90\",\"a\":[1,-2.5e3,true,false,null,"
        "\"\\ud83d\\ude00\\n\"],\"b\":{\"c\":{}}}",
        "[[[[\"x\"]]],{\"\":0}]",
    };
    static const char alphabet[] = "[]{}\",:\\u0-1eE.+ tfn\xed\xa0\xf4\x80";
    char buf[256];
    unsigned int seed = 12345;
    size_t s, i, n;

    for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        for (i = 0; i < 20000; i++) {
            ms_json_error err;
            ms_json_doc *doc;
            size_t k, flips;

            n = strlen(seeds[s]);
            memcpy(buf, seeds[s], n);
            seed = seed * 1103515245u + 12345u;
            flips = 1 + (seed >> 16) % 3;
            for (k = 0; k < flips; k++) {
                seed = seed * 1103515245u + 12345u;
                buf[(seed >> 16) % n] =
                    alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
            }
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 4 == 0) {
                n = (seed >> 4) % n;
            }
            doc = parse(buf, n, 3, &err);
            ms_json_free(doc);
        }
    }
    CHECK(ut_live == 0, "leak in mutations (%ld)", ut_live);
}

int
main(int argc, char **argv)
{
    test_errors();
    test_values();
    test_limits();
    test_mutations();
    if (argc > 1) {
        run_suite(argv[1]);
    }
    CHECK(ut_live == 0, "leak at exit (%ld)", ut_live);
    if (failures) {
        printf("%d check(s) FAILED\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}

/*
 * Fuzz target for the agent's status file (agent_status_load,
 * agent_status_line, agent_pairs_set).
 *
 * The input is the file's content, read through an in-memory vio_fs
 * (fuzz/memfs.h) on top of one base pair. Beyond the sanitizers' checks,
 * the target asserts the parser's promises and calls abort() when one
 * fails:
 *
 *  - the load returns 0 (the file reads), and every complaint it reports
 *    is one line naming the file and the line number;
 *  - what it gives holds at most VIGIL_CUSTOM_MAX pairs, each with a key
 *    and a value the wire accepts, no key twice, and the base pair unless
 *    the file sets its key again;
 *  - each line on its own (agent_status_line on a copy) is a pair, a
 *    skipped line or a bad one with a reason; a pair's key and value lie
 *    within the line;
 *  - removing every pair with agent_pairs_set(..., NULL) leaves none, one
 *    at a time, and setting them again in order gives the same set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exact.h"
#include "memfs.h"
#include "vigil/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PATH "fuzz.status"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void on_report(void *arg, const char *line)
{
    unsigned *count = arg;
    (*count)++;
    check(strncmp(line, FUZZ_PATH ":", sizeof(FUZZ_PATH)) == 0);
    check(strchr(line, '\n') == NULL);
}

static bool pairs_equal(const struct agent_pairs *a, const struct agent_pairs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->p[i].key, b->p[i].key) != 0 || strcmp(a->p[i].value, b->p[i].value) != 0)
            return false;
    return true;
}

/* Every line on its own, as a copy of exactly its length (fuzz/exact.h). */
static void check_lines(const uint8_t *data, size_t size)
{
    static struct exact ex;
    size_t at = 0;
    while (at < size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        char *line = exact_copy(&ex, data + at, len);
        char *key = NULL, *value = NULL;
        const char *why = NULL;
        enum agent_line r = agent_status_line(line, len, &key, &value, &why);
        check(r == AGENT_LINE_PAIR || r == AGENT_LINE_SKIP || r == AGENT_LINE_BAD);
        if (r == AGENT_LINE_BAD)
            check(why != NULL && why[0] != '\0');
        if (r == AGENT_LINE_PAIR) {
            check(key >= line && key <= line + len && value >= line && value <= line + len);
            check(strlen(key) <= len && strlen(value) <= len);
        }
        exact_done(&ex, line, len);
        at += len + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_pairs base = {.n = 0};
    check(agent_pairs_set(&base, "role", "fuzz base") == 0);

    struct memfs fs;
    memfs_init(&fs, data, size);
    struct agent_pairs out;
    unsigned reports = 0;
    int rc = agent_status_load(&fs.fs, FUZZ_PATH, &base, &out, on_report, &reports);
    check(rc == 0 || (rc == -1 && size > AGENT_STATUS_FILE_MAX && reports == 1));

    check(out.n <= VIGIL_CUSTOM_MAX);
    bool has_base = false;
    for (size_t i = 0; i < out.n; i++) {
        check(vigil_custom_key_valid(out.p[i].key) && vigil_custom_value_valid(out.p[i].value));
        for (size_t j = 0; j < i; j++)
            check(strcmp(out.p[i].key, out.p[j].key) != 0);
        has_base |= strcmp(out.p[i].key, "role") == 0;
    }
    check(has_base);

    /* Set again in order: the same set; removed one by one: none. */
    struct agent_pairs copy = {.n = 0};
    for (size_t i = 0; i < out.n; i++)
        check(agent_pairs_set(&copy, out.p[i].key, out.p[i].value) == 0);
    check(pairs_equal(&copy, &out));
    for (size_t left = out.n; left > 0; left--) {
        char key[sizeof(copy.p[0].key)];
        memcpy(key, copy.p[0].key, sizeof(key));
        check(agent_pairs_set(&copy, key, NULL) == 0 && copy.n == left - 1);
    }

    check_lines(data, size);
    memfs_fini(&fs);
    return 0;
}

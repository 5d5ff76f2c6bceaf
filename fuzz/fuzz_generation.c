/*
 * Fuzz target for the agent's generation file (agent_generation_next).
 *
 * The input is the file's content, read through an in-memory vio_fs
 * (fuzz/memfs.h) whose replace records what the agent writes back. Beyond
 * the sanitizers' checks, the target asserts the reader's promises and
 * calls abort() when one fails:
 *
 *  - it returns 0, or 1 (a file that cannot serve: never fatal) with a
 *    message;
 *  - it writes the file exactly once, as the decimal generation and a
 *    newline, and that generation is at least the wall clock, at least 1,
 *    and above the stored number (when the input holds one);
 *  - what it wrote reads back: the next call (with the wall clock behind)
 *    gives exactly that generation plus one, or starts over at 1 from a
 *    generation that cannot grow.
 *
 * Each input is read with a wall clock of 0 (the stored number decides)
 * and with a late-2027 wall clock (the clock decides for smaller numbers).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memfs.h"
#include "vigil/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Late 2027 in microseconds since the epoch: a wall clock that is ahead of small numbers. */
#define WALL_US UINT64_C(1800000000000000)

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_next(const uint8_t *data, size_t size, uint64_t wall_us)
{
    struct memfs m;
    memfs_init(&m, data, size);
    char err[256] = "";
    uint64_t gen = 0;
    int rc = agent_generation_next(&m.fs, "fuzz.gen", wall_us, &gen, err, sizeof(err));
    /* A file that cannot serve is a warning (1), and the agent goes on from the clock. */
    check(rc == 0 || rc == 1);
    check(rc == 0 || err[0] != '\0');
    check(m.replaces == 1 && gen >= wall_us && gen > 0);
    char expect[32];
    snprintf(expect, sizeof(expect), "%" PRIu64 "\n", gen);
    check(strcmp(m.written, expect) == 0 && m.written_len == strlen(expect));

    /* What was written reads back. */
    struct memfs again;
    memfs_init(&again, (const uint8_t *)m.written, m.written_len);
    uint64_t next = 0;
    rc = agent_generation_next(&again.fs, "fuzz.gen", 0, &next, err, sizeof(err));
    if (gen == UINT64_MAX)
        check(rc == 1 && next == 1);
    else
        check(rc == 0 && next == gen + 1);
    memfs_fini(&again);
    memfs_fini(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_next(data, size, 0);
    check_next(data, size, WALL_US);
    return 0;
}

/*
 * Fuzz target for the monitor's high-water-mark file (hwm_load).
 *
 * The input is the file's content, read through an in-memory vio_fs
 * (fuzz/memfs.h) into a fresh monitor with room for 16 nodes. Beyond the
 * sanitizers' checks, the target asserts the reader's promises and calls
 * abort() when one fails:
 *
 *  - it returns -1 with a message that starts with the file's name, or the
 *    number of marks restored, never more than the file has lines and
 *    never fewer than the nodes it added;
 *  - every node it added is valid and unknown, never heard;
 *  - what it restored survives hwm_save and a second hwm_load into another
 *    monitor: the same nodes with the same (generation, sequence), since a
 *    restored mark is saved already raised and not raised again (a mark of
 *    (0, 0) guards nothing and is not saved);
 *  - every block a monitor took is given back when it is freed.
 *
 * Both monitors get their memory from a recycling allocator (struct
 * vigil_allocator): a block the monitor frees is poisoned and kept, and the
 * next request of exactly its size gets it back, zeroed. Building a monitor
 * through AddressSanitizer's own allocator (about ten blocks, each filled,
 * its stack recorded, then quarantined) cost more than the load itself.
 * The blocks come from malloc at their exact size, so a read past one is
 * still caught, and a freed one is poisoned until it is handed out again;
 * a block freed twice, or not from the allocator, and a block still taken
 * when the input ends (a leak) abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exact.h" /* for the poisoning macros */
#include "memfs.h"
#include "vigil/hwm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S VIGIL_NSEC_PER_SEC
/* The table's size: small, so that a long file also fills it. */
#define FUZZ_MAX_NODES 16
/* The flush interval the marks are raised for (hwm_slack). */
#define FUZZ_FLUSH (10 * S)
/* The monotonic time of the loads: any will do. */
#define FUZZ_NOW  (1000 * S)
#define FUZZ_PATH "fuzz.hwm"

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Blocks the recycling allocator keeps: two monitors take about twenty. */
#define POOL_MAX 64

struct block {
    void *p;
    size_t size;
    bool taken;
};

static struct block pool[POOL_MAX];
static size_t pool_len;

static void *pool_calloc(void *ud, size_t nmemb, size_t size)
{
    (void)ud;
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    size_t n = nmemb * size;
    for (size_t i = 0; i < pool_len; i++) {
        struct block *b = &pool[i];
        if (!b->taken && b->size == n) {
            ASAN_UNPOISON_MEMORY_REGION(b->p, n);
            memset(b->p, 0, n);
            b->taken = true;
            return b->p;
        }
    }
    check(pool_len < POOL_MAX);
    void *p = calloc(1, n ? n : 1);
    check(p != NULL);
    pool[pool_len++] = (struct block){.p = p, .size = n, .taken = true};
    return p;
}

static void pool_free(void *ud, void *p)
{
    (void)ud;
    for (size_t i = 0; i < pool_len; i++) {
        struct block *b = &pool[i];
        if (b->p == p) {
            check(b->taken);
            b->taken = false;
            ASAN_POISON_MEMORY_REGION(b->p, b->size);
            return;
        }
    }
    check(false); /* not a block of the pool */
}

/* At the end of an input: every block given back. */
static void pool_check(void)
{
    for (size_t i = 0; i < pool_len; i++)
        check(!pool[i].taken);
}

static struct vigil_monitor *monitor(void)
{
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.max_nodes = FUZZ_MAX_NODES;
    c.auto_register = true;
    c.allocator.calloc = pool_calloc;
    c.allocator.free = pool_free;
    struct vigil_monitor *m = NULL;
    check(vigil_monitor_new(&c, 0, &m) == 0);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct memfs fs;
    memfs_init(&fs, data, size);
    struct vigil_monitor *m = monitor();
    char err[512] = "";
    int rc = hwm_load(&fs.fs, FUZZ_PATH, m, FUZZ_FLUSH, FUZZ_NOW, err, sizeof(err));
    check(rc >= -1);
    if (rc < 0) {
        check(strncmp(err, FUZZ_PATH ":", sizeof(FUZZ_PATH)) == 0);
        vigil_monitor_free(m);
        pool_check();
        return 0;
    }
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    size_t nodes = vigil_monitor_node_count(m);
    check((size_t)rc <= lines + 1 && nodes <= (size_t)rc && nodes <= FUZZ_MAX_NODES);
    for (size_t i = 0; i < nodes; i++) {
        const struct vigil_node *n = vigil_monitor_node_at(m, i);
        const char *id = vigil_node_id(n);
        check(vigil_id_valid(id, strlen(id)));
        check(vigil_node_state(n) == VIGIL_STATE_UNKNOWN && vigil_node_heartbeats(n) == 0);
    }

    size_t marks = 0;
    for (size_t i = 0; i < nodes; i++) {
        const struct vigil_node *n = vigil_monitor_node_at(m, i);
        marks += vigil_node_generation(n) != 0 || vigil_node_sequence(n) != 0;
    }

    /* Saved and loaded again: the same marks. */
    check(hwm_save(&fs.fs, FUZZ_PATH, m) == 0 && fs.replaces == 1);
    struct memfs again;
    memfs_init(&again, (const uint8_t *)fs.written, fs.written_len);
    struct vigil_monitor *m2 = monitor();
    check(hwm_load(&again.fs, FUZZ_PATH, m2, FUZZ_FLUSH, FUZZ_NOW, err, sizeof(err)) == (int)marks);
    check(vigil_monitor_node_count(m2) == marks);
    for (size_t i = 0; i < nodes; i++) {
        const struct vigil_node *n = vigil_monitor_node_at(m, i);
        if (vigil_node_generation(n) == 0 && vigil_node_sequence(n) == 0)
            continue;
        const struct vigil_node *n2 = vigil_monitor_find(m2, vigil_node_id(n));
        check(n2 != NULL && vigil_node_generation(n2) == vigil_node_generation(n) &&
              vigil_node_sequence(n2) == vigil_node_sequence(n));
    }
    vigil_monitor_free(m2);
    memfs_fini(&again);
    vigil_monitor_free(m);
    memfs_fini(&fs);
    pool_check();
    return 0;
}

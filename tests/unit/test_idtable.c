/*
 * Tests of the id table (core/idtable.h): lookups, growth from the smallest
 * table, removal that shifts runs back (checked against a plain array after
 * every change, in tables crowded enough that runs are long), and a growth
 * that fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/idtable.h"

#define MAX_IDS 4096

/* The records the table indexes: ids by value, as the monitor's nodes are. */
struct ids {
    char id[MAX_IDS][VIGIL_ID_MAX + 1];
    bool in[MAX_IDS]; /* whether value i is in the table */
};

static const char *id_of(const void *ctx, uint32_t value)
{
    return ((const struct ids *)ctx)->id[value];
}

static uint32_t find(const struct vigil__idtable *t, const char *id)
{
    return vigil__idtable_find(t, id, strlen(id), id_of);
}

/* Every value in the table is found, every other one is not, and the count agrees. */
static void check_all(const struct vigil__idtable *t, const struct ids *ids, uint32_t n)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = find(t, ids->id[i]);
        if (ids->in[i]) {
            if (v != i)
                fail_msg("%s: %u, want %u", ids->id[i], v, i);
            count++;
        } else if (v != VIGIL__IDTABLE_NONE) {
            fail_msg("%s: %u, want none", ids->id[i], v);
        }
    }
    assert_int_equal(t->count, count);
}

static struct ids *make_ids(uint32_t n)
{
    struct ids *ids = calloc(1, sizeof(*ids));
    assert_non_null(ids);
    for (uint32_t i = 0; i < n; i++)
        snprintf(ids->id[i], sizeof(ids->id[i]), "node-%04u", i);
    return ids;
}

/* Growth from the smallest table, then removal in an order that cuts runs everywhere. */
static void test_insert_grow_remove(void **state)
{
    (void)state;
    struct ids *ids = make_ids(MAX_IDS);
    struct vigil__idtable t;
    assert_int_equal(vigil__idtable_init(&t, 1, NULL, NULL, id_of, ids), 0);
    assert_int_equal(vigil__idtable_memory(&t), 16 * sizeof(uint32_t));
    assert_int_equal(find(&t, "node-0000"), VIGIL__IDTABLE_NONE);
    for (uint32_t i = 0; i < MAX_IDS; i++) {
        assert_int_equal(vigil__idtable_insert(&t, ids->id[i], strlen(ids->id[i]), i), 0);
        ids->in[i] = true;
        if (i % 97 == 0)
            check_all(&t, ids, MAX_IDS);
    }
    check_all(&t, ids, MAX_IDS);
    /* At most half full: 4096 entries in 8192 slots. */
    assert_int_equal(vigil__idtable_memory(&t), 8192 * sizeof(uint32_t));
    /* A prefix of an id, or an id with a suffix, is another id. */
    assert_int_equal(vigil__idtable_find(&t, "node-00011", 9, id_of), 1);
    assert_int_equal(find(&t, "node-000"), VIGIL__IDTABLE_NONE);
    assert_int_equal(find(&t, "node-00011"), VIGIL__IDTABLE_NONE);

    /* Every third, then the rest; checked after each removal for a while. */
    for (uint32_t pass = 0; pass < 3; pass++) {
        for (uint32_t i = pass; i < MAX_IDS; i += 3) {
            uint32_t *s = vigil__idtable_slot(&t, ids->id[i], strlen(ids->id[i]), id_of);
            assert_int_equal(vigil__idtable_value(s), i);
            vigil__idtable_remove_slot(&t, s);
            ids->in[i] = false;
            if (i < 300)
                check_all(&t, ids, MAX_IDS);
        }
        check_all(&t, ids, MAX_IDS);
    }
    assert_int_equal(t.count, 0);
    vigil__idtable_destroy(&t);
    free(ids);
}

/*
 * A table that never grows, crowded to half, with ids going in and out at
 * random: the shape of a busy hook runner. A fixed key makes the run the
 * same every time.
 */
static void test_churn_fixed_key(void **state)
{
    (void)state;
    struct ids *ids = make_ids(MAX_IDS);
    static const unsigned char key[16] = "0123456789abcdef";
    struct vigil__idtable t;
    assert_int_equal(vigil__idtable_init(&t, 64, NULL, key, id_of, ids), 0);
    assert_int_equal(vigil__idtable_memory(&t), 128 * sizeof(uint32_t));
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t i = (seed >> 8) % 200;
        uint32_t *s = vigil__idtable_slot(&t, ids->id[i], strlen(ids->id[i]), id_of);
        if (ids->in[i]) {
            vigil__idtable_remove_slot(&t, s);
            ids->in[i] = false;
        } else if (vigil__idtable_has_room(&t)) {
            vigil__idtable_put(&t, s, i, vigil__idtable_hash(&t, ids->id[i], strlen(ids->id[i])));
            ids->in[i] = true;
        }
        if (round % 16 == 0)
            check_all(&t, ids, 200);
    }
    check_all(&t, ids, 200);
    /* The key is the one given. */
    assert_int_equal(vigil__idtable_hash(&t, "a", 1), vigil__idtable_hash(&t, "a", 1));
    assert_memory_equal(t.key, key, sizeof(key));
    vigil__idtable_destroy(&t);
    free(ids);
}

/* An allocator that fails after a number of allocations. */
struct talloc {
    int left; /* allocations that still succeed */
    int live;
};

static void *t_calloc(void *ud, size_t nmemb, size_t size)
{
    struct talloc *a = ud;
    if (a->left <= 0)
        return NULL;
    a->left--;
    a->live++;
    return calloc(nmemb, size);
}

static void t_free(void *ud, void *ptr)
{
    struct talloc *a = ud;
    a->live--;
    free(ptr);
}

/* When growing fails the table fills past half, stays right, and refuses the last slot. */
static void test_growth_fails(void **state)
{
    (void)state;
    struct ids *ids = make_ids(32);
    struct talloc a = {.left = 0};
    struct vigil_allocator al = {.calloc = t_calloc, .free = t_free, .ud = &a};
    struct vigil__idtable t;
    assert_int_equal(vigil__idtable_init(&t, 8, &al, NULL, id_of, ids), -VIGIL_ENOMEM);
    vigil__idtable_destroy(&t);
    a.left = 1;
    assert_int_equal(vigil__idtable_init(&t, 8, &al, NULL, id_of, ids), 0);
    assert_int_equal(vigil__idtable_reserve(&t, 9), -VIGIL_ENOMEM);
    assert_int_equal(vigil__idtable_reserve(&t, 8), 0);
    for (uint32_t i = 0; i < 15; i++) {
        assert_int_equal(vigil__idtable_insert(&t, ids->id[i], strlen(ids->id[i]), i), 0);
        ids->in[i] = true;
    }
    check_all(&t, ids, 32);
    /* The sixteenth would leave no empty slot for probes to end at. */
    assert_int_equal(vigil__idtable_insert(&t, ids->id[15], strlen(ids->id[15]), 15),
                     -VIGIL_ENOMEM);
    check_all(&t, ids, 32);
    /* With memory again, it grows. */
    a.left = 1;
    assert_int_equal(vigil__idtable_insert(&t, ids->id[15], strlen(ids->id[15]), 15), 0);
    ids->in[15] = true;
    check_all(&t, ids, 32);
    assert_int_equal(vigil__idtable_memory(&t), 32 * sizeof(uint32_t));
    assert_int_equal(vigil__idtable_insert(&t, "x", 1, VIGIL__IDTABLE_NONE), -VIGIL_EINVAL);
    assert_int_equal(vigil__idtable_insert(&t, "x", 1, VIGIL__IDTABLE_VALUE_MAX), -VIGIL_EINVAL);
    vigil__idtable_destroy(&t);
    assert_int_equal(a.live, 0);
    free(ids);
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_grow_remove),
        cmocka_unit_test(test_churn_fixed_key),
        cmocka_unit_test(test_growth_fails),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

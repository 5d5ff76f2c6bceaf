/*
 * The id table's allocation and the moves that need the ids of other
 * entries: growing (every entry rehashed into a table twice the size) and
 * removing (the entries after the removed one shifted back). Lookups are
 * inline in core/idtable.h; the design is explained there.
 */
#include <stdlib.h>

#include "core/idtable.h"

/* Fewest slots: a table that starts small still has probes that end. */
#define IDTABLE_MIN_SLOTS 16
/* Most slots: the slot count must fit in 32 bits. */
#define IDTABLE_MAX_SLOTS (UINT32_C(1) << 31)

static void *libc_calloc(void *ud, size_t nmemb, size_t size)
{
    (void)ud;
    return calloc(nmemb, size);
}

static void libc_free(void *ud, void *ptr)
{
    (void)ud;
    free(ptr);
}

/* Slots for n entries at a load of at most one half; 0 when too many. */
static uint64_t slots_for(uint64_t n)
{
    uint64_t slots = IDTABLE_MIN_SLOTS;
    while (slots / 2 < n) {
        slots <<= 1;
        if (slots > IDTABLE_MAX_SLOTS)
            return 0;
    }
    return slots;
}

/* The first empty slot of the run that starts at hash h. */
static uint32_t *empty_slot(uint32_t *slots, uint32_t mask, uint64_t h)
{
    uint32_t i = (uint32_t)h & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    return &slots[i];
}

/* The hash of the id in slot word v. */
static uint64_t hash_of(const struct vigil__idtable *t, uint32_t v)
{
    const char *id = t->id_of(t->ctx, (v & VIGIL__IDTABLE_VALUE_MASK) - 1);
    return vigil__idtable_hash(t, id, strlen(id));
}

int vigil__idtable_init(struct vigil__idtable *t, uint32_t capacity,
                        const struct vigil_allocator *al, const unsigned char *key,
                        vigil__idtable_id_fn *id_of, const void *ctx)
{
    if (!t || !id_of)
        return -VIGIL_EINVAL;
    memset(t, 0, sizeof(*t));
    uint64_t n = slots_for(capacity);
    if (n == 0)
        return -VIGIL_EINVAL;
    if (al && al->calloc) {
        t->al = *al;
    } else {
        t->al.calloc = libc_calloc;
        t->al.free = libc_free;
    }
    t->slots = t->al.calloc(t->al.ud, (size_t)n, sizeof(*t->slots));
    if (!t->slots)
        return -VIGIL_ENOMEM;
    t->mask = (uint32_t)(n - 1);
    t->id_of = id_of;
    t->ctx = ctx;
    if (key)
        memcpy(t->key, key, sizeof(t->key));
    else
        randombytes_buf(t->key, sizeof(t->key));
    return 0;
}

void vigil__idtable_destroy(struct vigil__idtable *t)
{
    if (!t)
        return;
    if (t->slots)
        t->al.free(t->al.ud, t->slots);
    t->slots = NULL;
    sodium_memzero(t->key, sizeof(t->key));
}

size_t vigil__idtable_memory(const struct vigil__idtable *t)
{
    return t && t->slots ? ((size_t)t->mask + 1) * sizeof(*t->slots) : 0;
}

int vigil__idtable_reserve(struct vigil__idtable *t, uint32_t n)
{
    uint64_t want = slots_for(n);
    if (want == 0)
        return -VIGIL_ENOMEM;
    uint64_t have = (uint64_t)t->mask + 1;
    if (want <= have)
        return 0;
    uint32_t *slots = t->al.calloc(t->al.ud, (size_t)want, sizeof(*slots));
    if (!slots)
        return -VIGIL_ENOMEM;
    uint32_t mask = (uint32_t)(want - 1);
    for (uint64_t i = 0; i < have; i++) {
        uint32_t v = t->slots[i];
        if (v)
            *empty_slot(slots, mask, hash_of(t, v)) = v;
    }
    t->al.free(t->al.ud, t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

int vigil__idtable_insert(struct vigil__idtable *t, const char *id, size_t len, uint32_t value)
{
    if (value >= VIGIL__IDTABLE_VALUE_MAX)
        return -VIGIL_EINVAL;
    /*
     * When growing fails, an insert still goes in while it leaves one slot
     * empty: every probe ends at an empty slot.
     */
    if (!vigil__idtable_has_room(t) && vigil__idtable_reserve(t, t->count + 1) != 0 &&
        (uint64_t)t->count + 2 > (uint64_t)t->mask + 1)
        return -VIGIL_ENOMEM;
    uint64_t h = vigil__idtable_hash(t, id, len);
    vigil__idtable_put(t, empty_slot(t->slots, t->mask, h), value, h);
    return 0;
}

void vigil__idtable_remove_slot(struct vigil__idtable *t, uint32_t *slot)
{
    uint32_t mask = t->mask;
    uint32_t i = (uint32_t)(slot - t->slots);
    uint32_t j = i;
    /*
     * The hole at i must not cut a run: an entry after it whose first slot
     * is at or before the hole moves into it, and the hole moves to where
     * that entry was. The run ends at the first empty slot.
     */
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = t->slots[j];
        if (v == 0)
            break;
        uint32_t home = (uint32_t)hash_of(t, v) & mask;
        /* Stays when its first slot lies after the hole: in (i, j], going round. */
        if (((j - home) & mask) < ((j - i) & mask))
            continue;
        t->slots[i] = v;
        i = j;
    }
    t->slots[i] = 0;
    t->count--;
}

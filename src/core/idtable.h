/*
 * A hash table from node ids to uint32 values: the one table behind the
 * monitor's nodes and the hook runner's FIFOs.
 *
 * Open addressing with linear probing over an array of uint32 slots, each
 * holding a value + 1 (0: empty). The table keeps no keys: the caller's
 * records hold the ids, and the table asks for the id of a value through
 * the caller's id_of function. So a slot costs 4 bytes, which matters at a
 * million nodes, and an empty table is zeroed memory that the kernel hands
 * out untouched.
 *
 * Ids are hashed with SipHash (libsodium's crypto_shorthash) under a key of
 * the table's own, random unless the caller gives one, so that whoever picks
 * the ids (a node on the network) cannot make them collide and the probes
 * long.
 *
 * Lookups are static inline and take id_of as an argument: called with the
 * caller's own function, the compiler inlines it, and a probe is a load and
 * a string compare with no call through a pointer. That is the monitor's
 * heartbeat path. The stored id_of is called only where the table has to
 * move entries: growing and removing.
 *
 * The load stays at most one half: probes stay short, and a probe always
 * ends at an empty slot. Removal shifts the entries after the removed one
 * back (no tombstones), so a table that sees many inserts and removals,
 * like the hook runner's, never degrades.
 *
 * Memory comes from a struct vigil_allocator, so that the monitor's tables
 * come from the monitor's allocator and fail as it fails.
 */
#ifndef VIGIL_CORE_IDTABLE_H
#define VIGIL_CORE_IDTABLE_H

#include <stdint.h>
#include <string.h>

#include <sodium.h>
#include <vigil/common.h>

/* What find returns for an id the table does not hold. */
#define VIGIL__IDTABLE_NONE UINT32_MAX

/*
 * A slot holds value + 1 in its low VIGIL__IDTABLE_VALUE_BITS bits and,
 * above them, a tag: the top bits of the id's hash. A probe compares ids
 * only where the tag matches, so it rarely reads the record of another
 * id, which at many ids is a cache miss each time. Values must be below
 * VIGIL__IDTABLE_VALUE_MAX (the monitor's at most 2^24 nodes fit).
 */
#define VIGIL__IDTABLE_VALUE_BITS 25
#define VIGIL__IDTABLE_VALUE_MASK ((UINT32_C(1) << VIGIL__IDTABLE_VALUE_BITS) - 1)
#define VIGIL__IDTABLE_VALUE_MAX  VIGIL__IDTABLE_VALUE_MASK

/* The id of the entry holding value: a NUL-terminated string that stays put while it is in the
 * table. */
typedef const char *vigil__idtable_id_fn(const void *ctx, uint32_t value);

struct vigil__idtable {
    uint32_t *slots; /* tag and value + 1 per slot (see above); 0: empty */
    uint32_t mask;   /* number of slots - 1; the number is a power of two */
    uint32_t count;  /* entries held */
    vigil__idtable_id_fn *id_of;
    const void *ctx; /* passed to id_of */
    struct vigil_allocator al;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

/*
 * A table for at least capacity entries before it needs to grow. key is 16
 * bytes (crypto_shorthash_KEYBYTES), or NULL for a random one (libsodium
 * must then be initialized). al NULL: calloc and free. Returns 0 or
 * -VIGIL_ENOMEM, -VIGIL_EINVAL.
 */
int vigil__idtable_init(struct vigil__idtable *t, uint32_t capacity,
                        const struct vigil_allocator *al, const unsigned char *key,
                        vigil__idtable_id_fn *id_of, const void *ctx);
void vigil__idtable_destroy(struct vigil__idtable *t);

/* Bytes of memory the table holds (its slots). */
size_t vigil__idtable_memory(const struct vigil__idtable *t);

/*
 * The hash of an id under the table's key; the low bits pick the first
 * slot, the top bits are the tag.
 */
static inline uint64_t vigil__idtable_hash(const struct vigil__idtable *t, const char *id,
                                           size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)id, len, t->key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return v;
}

/* The tag of a hash, in its place in a slot. */
static inline uint32_t vigil__idtable_tag(uint64_t hash)
{
    return (uint32_t)(hash >> 32) & ~VIGIL__IDTABLE_VALUE_MASK;
}

/*
 * The slot of the len bytes of id, whose hash (vigil__idtable_hash) is
 * hash: the one holding it, or the empty one where it would go (see
 * vigil__idtable_put). id_of must be the table's own; given directly (not
 * read from t), it is inlined. The slot is valid until the table next
 * changes.
 */
static inline uint32_t *vigil__idtable_slot_h(const struct vigil__idtable *t, uint64_t hash,
                                              const char *id, size_t len,
                                              vigil__idtable_id_fn *id_of)
{
    uint32_t i = (uint32_t)hash & t->mask;
    uint32_t tag = vigil__idtable_tag(hash);
    for (;;) {
        uint32_t *s = &t->slots[i];
        if (*s == 0)
            return s;
        if ((*s & ~VIGIL__IDTABLE_VALUE_MASK) == tag) {
            const char *other = id_of(t->ctx, (*s & VIGIL__IDTABLE_VALUE_MASK) - 1);
            if (!strncmp(other, id, len) && other[len] == '\0')
                return s;
        }
        i = (i + 1) & t->mask;
    }
}

/* As vigil__idtable_slot_h, hashing id itself. */
static inline uint32_t *vigil__idtable_slot(const struct vigil__idtable *t, const char *id,
                                            size_t len, vigil__idtable_id_fn *id_of)
{
    return vigil__idtable_slot_h(t, vigil__idtable_hash(t, id, len), id, len, id_of);
}

/*
 * Asks the processor to start loading the first slot a hash probes, so
 * that a batch of lookups waits for memory once, not once per lookup.
 */
static inline void vigil__idtable_prefetch(const struct vigil__idtable *t, uint64_t hash)
{
    __builtin_prefetch(&t->slots[(uint32_t)hash & t->mask]);
}

/*
 * The value of the first slot in the hash's run whose tag matches, or
 * VIGIL__IDTABLE_NONE: a guess (the ids are not compared), for prefetching.
 */
static inline uint32_t vigil__idtable_guess(const struct vigil__idtable *t, uint64_t hash)
{
    uint32_t i = (uint32_t)hash & t->mask;
    uint32_t tag = vigil__idtable_tag(hash);
    for (int k = 0; k < 4; k++) {
        uint32_t s = t->slots[i];
        if (s == 0)
            break;
        if ((s & ~VIGIL__IDTABLE_VALUE_MASK) == tag)
            return (s & VIGIL__IDTABLE_VALUE_MASK) - 1;
        i = (i + 1) & t->mask;
    }
    return VIGIL__IDTABLE_NONE;
}

/* The value in a slot from vigil__idtable_slot, or VIGIL__IDTABLE_NONE when it is empty. */
static inline uint32_t vigil__idtable_value(const uint32_t *slot)
{
    return *slot ? (*slot & VIGIL__IDTABLE_VALUE_MASK) - 1 : VIGIL__IDTABLE_NONE;
}

/* The value of id, or VIGIL__IDTABLE_NONE. */
static inline uint32_t vigil__idtable_find(const struct vigil__idtable *t, const char *id,
                                           size_t len, vigil__idtable_id_fn *id_of)
{
    return vigil__idtable_value(vigil__idtable_slot(t, id, len, id_of));
}

/* True while one more entry fits without growing (the load stays at most one half). */
static inline bool vigil__idtable_has_room(const struct vigil__idtable *t)
{
    return t->count < (t->mask + 1) / 2;
}

/*
 * Fills the empty slot that vigil__idtable_slot returned for an id, whose
 * hash is hash, with value (below VIGIL__IDTABLE_VALUE_MAX). No lookup and
 * no growth: the caller checked vigil__idtable_has_room, or made room with
 * vigil__idtable_reserve before looking for the slot.
 */
static inline void vigil__idtable_put(struct vigil__idtable *t, uint32_t *slot, uint32_t value,
                                      uint64_t hash)
{
    *slot = vigil__idtable_tag(hash) | (value + 1);
    t->count++;
}

/* Replaces the value in a slot that holds one (the record of an id moved). */
static inline void vigil__idtable_set(uint32_t *slot, uint32_t value)
{
    *slot = (*slot & ~VIGIL__IDTABLE_VALUE_MASK) | (value + 1);
}

/*
 * Makes room for n entries, growing the slots (doubling) when the load
 * would pass one half. Returns 0 or -VIGIL_ENOMEM (the table is unchanged).
 */
int vigil__idtable_reserve(struct vigil__idtable *t, uint32_t n);

/*
 * Adds id (len bytes, not in the table) with value, growing when needed.
 * When growing fails the table fills beyond half while a slot stays empty,
 * with longer probes but still right. Returns 0, or -VIGIL_ENOMEM when
 * there is no room at all.
 */
int vigil__idtable_insert(struct vigil__idtable *t, const char *id, size_t len, uint32_t value);

/* Empties a slot that holds an entry, moving later entries of its run back. */
void vigil__idtable_remove_slot(struct vigil__idtable *t, uint32_t *slot);

#endif

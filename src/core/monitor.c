/*
 * The monitor core: node table, deadlines, the node state machine, events.
 *
 * Every node lives in one flat array allocated once for max_nodes (pages
 * that are never touched cost no memory), found through the id table of
 * core/idtable.h: open addressing over 4-byte indices, keyed with SipHash,
 * so that an attacker who picks ids cannot make lookups slow. The table is
 * sized for max_nodes once and never grows or removes here. Nodes are never evicted: a flood of new
 * ids can fill the table, after which new ids are dropped and counted, but it can never push out a
 * node that is already known.
 *
 * Each node has at most one deadline: the next moment a decision about it
 * could change (alive -> suspect, suspect -> dead, the end of a declared
 * node's start-up grace, the end of a recovery run). Deadlines sit in a
 * binary min-heap ordered by (time, insertion order), so equal deadlines
 * fire in the order they were set and runs are reproducible. A steady
 * heartbeat costs one hash lookup, one detector update and a closed-form
 * check that its deadline only moved later: the heap entry then stays where
 * it is and is re-keyed, in O(log n), once when it reaches the top. A quiet
 * cluster costs nothing between deadlines, since nothing scans the table.
 *
 * Status: a heartbeat that carries the full status (wire version 1, or a
 * version 2 full status) replaces the node's stored status; a version 2
 * beat only names the current status version, and the stored status is
 * marked stale when it is another one (apply_status() below).
 *
 * State machine (DESIGN.md): unknown -> alive <-> suspect -> dead; left on
 * a goodbye; a dead or left node comes back to alive after `rise`
 * consecutive timely heartbeats (a heartbeat is timely if it arrives before
 * the detector would have suspected the node again).
 *
 * The monitor can stall too (SIGSTOP, a VM pause, starvation). It notices
 * when it is called much later than its own earliest deadline: heartbeats
 * sat unread in the socket while it was away, so convicting on the time
 * since the last one *read* would convict healthy nodes. Instead it gives
 * every monitored node a fresh detection period from now, and the first
 * interval after the pause is not learned.
 *
 * Memory comes from the allocator in the configuration. Everything a node
 * needs (its record with its detector's history and an id of up to 15
 * characters, hash slots, heap entry) is allocated once for max_nodes when
 * the monitor is created, so judging nodes never needs memory (a node's
 * first suspicion asks for a record, and does without), and declaring or
 * registering a node allocates only for a long id. Four things
 * allocate later: a chunk of the id store, once per thousand or so ids of
 * 16 characters or more (a failure refuses that one new node, as a full
 * table would); a chunk of suspicion records, once per 2,048 nodes
 * suspected for the first time (a failure leaves that suspicion untimed
 * for the observed quality of service and counts qos_lost; the suspicion
 * stands); the event queue when events pile up unpolled (a failed growth
 * drops the event and counts it in events_lost; the state change stands);
 * and a node's copy of a changed custom status (a failed copy keeps the
 * old one and counts custom_lost).
 *
 * The records are in core/monitor_int.h, and node.c reads them for
 * callers. The heap and the state machine stay together in this file, with
 * the table's lookups inline from its header: a heartbeat goes through all
 * three, and the compiler inlines the heap moves, the probes and the id
 * compare (node_id_of) into the heartbeat path; the heap and the state
 * machine also share the invariants (heap_pos, stale, deadline) that the
 * paragraphs above explain once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <sodium.h>

#include "core/idtable.h"
#include "core/detector_int.h"
#include "core/monitor_int.h"
#include "core/wire_int.h"

#define NO_POS UINT32_MAX
/*
 * The id store's chunks: 64 KiB, so that a chunk's allocation is rare (one
 * per thousand long ids or more) and the tail a chunk leaves unused (less
 * than the longest id) is a thousandth of it.
 */
#define VIGIL__ID_CHUNK 65536
/* Slack between the crossing estimate and the exact crossing (ns). */
#define LAZY_MARGIN 1000

/* --- names ------------------------------------------------------------ */

static const char *const state_names[] = {"unknown", "alive", "suspect", "dead", "left"};

const char *vigil_state_name(enum vigil_state s)
{
    if ((unsigned)s < sizeof(state_names) / sizeof(state_names[0]))
        return state_names[s];
    return "invalid";
}

int vigil_state_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (!strcmp(name, state_names[i]))
            return (int)i;
    return -1;
}

/* --- configuration ---------------------------------------------------- */

void vigil_monitor_config_default(struct vigil_monitor_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    vigil_detector_config_default(&cfg->detector, VIGIL_DETECTOR_PHI, VIGIL_NSEC_PER_SEC);
    cfg->interval = VIGIL_NSEC_PER_SEC;
    cfg->adapt_interval = true;
    /* Two timely heartbeats: one lucky datagram does not bring a node back. */
    cfg->rise = 2;
    /* Ten seconds lets every node of a cluster that starts together send once. */
    cfg->startup_grace = 10 * VIGIL_NSEC_PER_SEC;
    cfg->auto_register = true;
    /* 65536 nodes is about 27 MB of address space, touched only as nodes arrive. */
    cfg->max_nodes = 65536;
    /*
     * One second of lateness is far beyond scheduling jitter on a loaded host,
     * and short next to any sensible dead timeout.
     */
    cfg->pause_tolerance = VIGIL_NSEC_PER_SEC;
    /* Ten minutes: far beyond the offset of NTP-synchronised hosts (see monitor.h). */
    cfg->max_ahead = 600 * VIGIL_NSEC_PER_SEC;
}

int vigil_monitor_config_check(const struct vigil_monitor_config *cfg, const char **why)
{
    int rc = vigil_detector_config_check(&cfg->detector, why);
    if (rc)
        return rc;
    if (cfg->rise < 1 || cfg->rise > VIGIL_MONITOR_RISE_MAX) {
        *why = "rise must be between 1 and 100";
        return -VIGIL_EINVAL;
    }
    if (cfg->max_nodes < 1 || cfg->max_nodes > VIGIL_MONITOR_MAX_NODES_MAX) {
        *why = "max_nodes must be between 1 and 16777216";
        return -VIGIL_EINVAL;
    }
    if (cfg->startup_grace <= 0) {
        *why = "startup_grace must be positive";
        return -VIGIL_EINVAL;
    }
    if (cfg->interval <= 0) {
        *why = "the heartbeat interval must be positive";
        return -VIGIL_EINVAL;
    }
    if (cfg->pause_tolerance <= 0) {
        *why = "pause_tolerance must be positive";
        return -VIGIL_EINVAL;
    }
    if (cfg->max_ahead <= 0) {
        *why = "max_ahead must be positive";
        return -VIGIL_EINVAL;
    }
    if (cfg->key_is_master && !cfg->has_key) {
        *why = "key_is_master needs a key";
        return -VIGIL_EINVAL;
    }
    if (cfg->key_id > VIGIL_WIRE_KEY_ID_MAX) {
        *why = "a key id is 0 to 15";
        return -VIGIL_EINVAL;
    }
    if (cfg->require_sealed && !cfg->has_key) {
        *why = "require_sealed needs a key";
        return -VIGIL_EINVAL;
    }
    if (!cfg->allocator.calloc != !cfg->allocator.free) {
        *why = "an allocator needs both calloc and free";
        return -VIGIL_EINVAL;
    }
    return 0;
}

/* --- lifecycle -------------------------------------------------------- */

static const char *node_id_of(const void *ctx, uint32_t idx);
static int keys_install(struct vigil_monitor *m, const struct vigil_key *keys, size_t n);

const struct vigil_detector_config *vigil_monitor_node_detector(const struct vigil_monitor *m,
                                                                const struct vigil_node *n,
                                                                struct vigil_detector_config *tmp)
{
    const struct vigil_detector_config *base = &m->cfg.detector;
    vigil_time_t iv = (vigil_time_t)n->interval_ms * VIGIL_NSEC_PER_MSEC;
    if (base->kind == VIGIL_DETECTOR_GRID) {
        /*
         * The grid step is the sender's own interval, whatever the
         * settings say: it is a fact about the sender, not a tuning. Only
         * the times written for the monitor's interval scale (adapt_interval).
         */
        if (iv == 0 || (iv == base->interval && (!m->cfg.adapt_interval || iv == m->cfg.interval)))
            return base;
        *tmp = *base;
        tmp->interval = iv;
        if (m->cfg.adapt_interval && iv != m->cfg.interval) {
            double r = (double)iv / (double)m->cfg.interval;
            double sd = (double)base->min_std_dev * r, mg = (double)base->margin * r;
            tmp->min_std_dev = sd < 0x1p62 ? (vigil_time_t)sd : (vigil_time_t)0x1p62;
            tmp->margin = mg < 0x1p62 ? (vigil_time_t)mg : (vigil_time_t)0x1p62;
            if (tmp->min_std_dev < 1)
                tmp->min_std_dev = 1;
        }
        return tmp;
    }
    if (!m->cfg.adapt_interval || iv == 0 || iv == m->cfg.interval)
        return base;
    double r = (double)iv / (double)m->cfg.interval;
    *tmp = *base;
    if (base->kind == VIGIL_DETECTOR_FIXED) {
        tmp->suspect_threshold *= r;
        tmp->dead_threshold *= r;
    } else {
        /* Phi thresholds are odds, not times: only the times scale. */
        tmp->first_estimate = iv;
        /* Clamped: an hour-long interval against a 10 ms reference must not overflow. */
        double sd = (double)base->min_std_dev * r, pause = (double)base->acceptable_pause * r;
        tmp->min_std_dev = sd < 0x1p62 ? (vigil_time_t)sd : (vigil_time_t)0x1p62;
        tmp->acceptable_pause = pause < 0x1p62 ? (vigil_time_t)pause : (vigil_time_t)0x1p62;
        if (tmp->min_std_dev < 1)
            tmp->min_std_dev = 1;
    }
    return tmp;
}

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

/* Zeroed memory for nmemb objects of size bytes, or NULL (also on overflow). */
static void *mon_calloc(const struct vigil_allocator *al, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    return al->calloc(al->ud, nmemb, size);
}

static void mon_free(const struct vigil_allocator *al, void *ptr)
{
    if (ptr)
        al->free(al->ud, ptr);
}

int vigil_monitor_new(const struct vigil_monitor_config *cfg, vigil_time_t now,
                      struct vigil_monitor **out)
{
    const char *why;
    (void)now;
    if (vigil_monitor_config_check(cfg, &why))
        return -VIGIL_EINVAL;
    struct vigil_allocator al = cfg->allocator;
    if (!al.calloc) {
        al.calloc = libc_calloc;
        al.free = libc_free;
        al.ud = NULL;
    }
    struct vigil_monitor *m = mon_calloc(&al, 1, sizeof(*m));
    if (!m)
        return -VIGIL_ENOMEM;
    m->cfg = *cfg;
    m->al = al;
    m->last_status = VIGIL__IDTABLE_NONE;
    if (cfg->has_key) {
        struct vigil_key k = {.id = cfg->key_id, .master = cfg->key_is_master};
        memcpy(k.key, cfg->key, sizeof(k.key));
        int krc = keys_install(m, &k, 1);
        sodium_memzero(&k, sizeof(k));
        if (krc) {
            sodium_memzero(m->cfg.key, sizeof(m->cfg.key));
            mon_free(&al, m);
            return krc;
        }
    }
    /* The monitor's own copy of the key lives in m->keys only, or not at all. */
    sodium_memzero(m->cfg.key, sizeof(m->cfg.key));
    /* Phi thresholds do not scale with a node's interval: one quantile serves all. */
    m->suspect_quantile = vigil_phi_quantile(cfg->detector.suspect_threshold);
    size_t cap = cfg->max_nodes;
    m->nodes = mon_calloc(&al, cap, sizeof(*m->nodes));
    /* Sized once for max_nodes: node_insert never has to grow it. */
    int ids_rc = vigil__idtable_init(&m->ids, (uint32_t)cap, &al, m->cfg.hash_seed, node_id_of, m);
    m->heap = mon_calloc(&al, cap, sizeof(*m->heap));
    m->heap_pos = mon_calloc(&al, cap, sizeof(*m->heap_pos));
    m->ev_cap = 64;
    m->evq = mon_calloc(&al, m->ev_cap, sizeof(*m->evq));
    /* Room for the chunks of max_nodes ids of the longest length. */
    m->id_chunks_cap = (uint32_t)(cap * (VIGIL_ID_MAX + 1) / (VIGIL__ID_CHUNK - VIGIL_ID_MAX) + 1);
    m->id_chunks = mon_calloc(&al, m->id_chunks_cap, sizeof(*m->id_chunks));
    /* Room for the chunks of a suspicion record for each of max_nodes. */
    m->susp_chunks_cap = (uint32_t)(cap / VIGIL__SUSP_CHUNK + 1);
    m->susp_chunks = mon_calloc(&al, m->susp_chunks_cap, sizeof(*m->susp_chunks));
    if (!m->nodes || ids_rc != 0 || !m->heap || !m->heap_pos || !m->evq || !m->id_chunks ||
        !m->susp_chunks) {
        vigil_monitor_free(m);
        return -VIGIL_ENOMEM;
    }
    m->mem = sizeof(*m) + cap * sizeof(*m->nodes) + vigil__idtable_memory(&m->ids) +
             cap * (sizeof(*m->heap) + sizeof(*m->heap_pos)) + m->ev_cap * sizeof(*m->evq) +
             m->id_chunks_cap * sizeof(*m->id_chunks) +
             m->susp_chunks_cap * sizeof(*m->susp_chunks);
    *out = m;
    return 0;
}

void vigil_monitor_free(struct vigil_monitor *m)
{
    if (!m)
        return;
    const struct vigil_allocator al = m->al;
    if (m->nodes)
        for (uint32_t i = 0; i < m->n_nodes; i++) {
            mon_free(&al, m->nodes[i].custom);
            if (m->nodes[i].status_wide)
                mon_free(&al, m->nodes[i].status.wide);
        }
    if (m->nodes)
        sodium_memzero(m->nodes, (size_t)m->cfg.max_nodes * sizeof(*m->nodes));
    mon_free(&al, m->nodes);
    vigil__idtable_destroy(&m->ids);
    mon_free(&al, m->heap);
    mon_free(&al, m->heap_pos);
    mon_free(&al, m->evq);
    if (m->id_chunks)
        for (uint32_t i = 0; i < m->id_chunks_len; i++)
            mon_free(&al, m->id_chunks[i]);
    mon_free(&al, m->id_chunks);
    if (m->susp_chunks)
        for (uint32_t i = 0; i < m->susp_chunks_cap; i++)
            mon_free(&al, m->susp_chunks[i]);
    mon_free(&al, m->susp_chunks);
    sodium_free(m->keys);
    mon_free(&al, m);
}

/* --- node table ------------------------------------------------------ */

/* The id of node idx, for the id table. */
static const char *node_id_of(const void *ctx, uint32_t idx)
{
    return vigil__node_id(&((const struct vigil_monitor *)ctx)->nodes[idx]);
}

/* Returns the slot holding id, or the empty slot where it would go. */
static uint32_t *slot_find(const struct vigil_monitor *m, const char *id, size_t len)
{
    return vigil__idtable_slot(&m->ids, id, len, node_id_of);
}

/* As slot_find, with the id's hash already known. */
static uint32_t *slot_find_h(const struct vigil_monitor *m, uint64_t hash, const char *id,
                             size_t len)
{
    return vigil__idtable_slot_h(&m->ids, hash, id, len, node_id_of);
}

/*
 * A copy of a long id (len bytes) in the id store, or NULL when a new chunk
 * was needed and could not be had.
 */
static const char *id_store(struct vigil_monitor *m, const char *id, size_t len)
{
    if (m->id_chunks_len == 0 || m->id_chunk_used + len + 1 > VIGIL__ID_CHUNK) {
        if (m->id_chunks_len == m->id_chunks_cap)
            return NULL;
        char *c = mon_calloc(&m->al, 1, VIGIL__ID_CHUNK);
        if (!c)
            return NULL;
        m->id_chunks[m->id_chunks_len++] = c;
        m->id_chunk_used = 0;
        m->mem += VIGIL__ID_CHUNK;
    }
    char *p = m->id_chunks[m->id_chunks_len - 1] + m->id_chunk_used;
    memcpy(p, id, len);
    p[len] = '\0';
    m->id_chunk_used += (uint32_t)len + 1;
    return p;
}

/*
 * Enters a node (state unknown, no deadline). NULL when a long id found no
 * memory in the id store: the node is then not entered, as when the table
 * is full.
 */
static struct vigil_node *node_insert(struct vigil_monitor *m, uint32_t *slot, const char *id,
                                      size_t len, vigil_time_t now)
{
    const char *out = NULL;
    if (len >= VIGIL__ID_INLINE && !(out = id_store(m, id, len)))
        return NULL;
    uint32_t idx = m->n_nodes++;
    struct vigil_node *n = &m->nodes[idx];
    memset(n, 0, sizeof(*n));
    if (out) {
        n->id.out = out;
        n->id_out = 1;
    } else {
        memcpy(n->id.in, id, len);
        n->id.in[len] = '\0';
    }
    n->state = VIGIL_STATE_UNKNOWN;
    m->heap_pos[idx] = NO_POS;
    n->first_heard = -1;
    n->state_since = now;
    n->last_heard = -1;
    vigil_detector_init(&n->det);
    vigil__idtable_put(&m->ids, slot, idx, vigil__idtable_hash(&m->ids, id, len));
    return n;
}

/* --- keys ------------------------------------------------------------ */

/* The key slot of key id, or NULL. */
static const struct vigil__keyslot *key_slot(const struct vigil_monitor *m, unsigned id)
{
    for (uint32_t i = 0; i < m->n_keys; i++)
        if (m->keys[i].id == id)
            return &m->keys[i];
    return NULL;
}

/*
 * The tag key (and, with seal non-NULL, the seal key) of node id (len
 * bytes, a valid id) under master key ks: derived through the node's own
 * key, which is wiped at once.
 */
static void node_keys(const struct vigil__keyslot *ks, const char *id, size_t len,
                      uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN], uint8_t *seal)
{
    char name[VIGIL_ID_MAX + 1];
    uint8_t node_key[VIGIL_WIRE_KEY_LEN];
    memcpy(name, id, len);
    name[len] = '\0';
    (void)vigil_wire_node_key(node_key, ks->key, name);
    vigil_wire_mac_key(mac, node_key);
    if (seal)
        vigil_wire_seal_key(seal, node_key);
    sodium_memzero(node_key, sizeof(node_key));
}

static int keys_install(struct vigil_monitor *m, const struct vigil_key *keys, size_t n)
{
    if (n == 0 || n > VIGIL_KEYS_MAX)
        return -VIGIL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].id > VIGIL_WIRE_KEY_ID_MAX)
            return -VIGIL_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (keys[j].id == keys[i].id)
                return -VIGIL_EINVAL;
    }
    if (!m->keys) {
        /*
         * Guarded, locked pages: never swapped out, wiped by sodium_free.
         * sodium_malloc needs the library initialised (idempotent).
         */
        m->keys = sodium_init() < 0 ? NULL : sodium_allocarray(VIGIL_KEYS_MAX, sizeof(*m->keys));
        if (!m->keys)
            return -VIGIL_ENOMEM;
    } else {
        sodium_mprotect_readwrite(m->keys);
    }
    /*
     * A node's cached tag key stays valid only if the new set still holds
     * the very key it was derived from, under the same id.
     */
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        struct vigil_node *nd = &m->nodes[i];
        if (!nd->mac_ok)
            continue;
        const struct vigil__keyslot *old = key_slot(m, nd->mac_id);
        bool kept = false;
        for (size_t j = 0; j < n && old; j++)
            kept |= keys[j].id == old->id && keys[j].master &&
                    sodium_memcmp(keys[j].key, old->key, VIGIL_WIRE_KEY_LEN) == 0;
        if (!kept) {
            nd->mac_ok = 0;
            sodium_memzero(nd->mac_key, sizeof(nd->mac_key));
        }
    }
    sodium_memzero(m->keys, VIGIL_KEYS_MAX * sizeof(*m->keys));
    for (size_t i = 0; i < n; i++) {
        struct vigil__keyslot *ks = &m->keys[i];
        ks->id = keys[i].id;
        ks->master = keys[i].master;
        memcpy(ks->key, keys[i].key, VIGIL_WIRE_KEY_LEN);
        if (!ks->master) {
            vigil_wire_mac_key(ks->mac, ks->key);
            vigil_wire_seal_key(ks->seal, ks->key);
        }
    }
    m->n_keys = (uint32_t)n;
    sodium_mprotect_readonly(m->keys);
    return 0;
}

int vigil_monitor_node_mac(const struct vigil_monitor *m, const char *id,
                           uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN], uint8_t *key_id)
{
    size_t len = strlen(id);
    if (!vigil_id_valid(id, len))
        return -VIGIL_EBADID;
    if (m->n_keys == 0)
        return -VIGIL_EUNKNOWN;
    const struct vigil__keyslot *ks = NULL;
    uint32_t idx = vigil__idtable_value(slot_find(m, id, len));
    if (idx != VIGIL__IDTABLE_NONE && m->nodes[idx].heartbeats > 0)
        ks = key_slot(m, m->nodes[idx].key_id);
    if (!ks)
        ks = &m->keys[0];
    *key_id = ks->id;
    if (ks->master)
        node_keys(ks, id, len, mac, NULL);
    else
        memcpy(mac, ks->mac, VIGIL_WIRE_MAC_KEY_LEN);
    return 0;
}

int vigil_monitor_key_fingerprint(const struct vigil_monitor *m, const char *id, unsigned key_id,
                                  uint8_t fp[VIGIL_WIRE_FINGERPRINT_LEN])
{
    if (!vigil_id_valid(id, strlen(id)))
        return -VIGIL_EBADID;
    const struct vigil__keyslot *ks = m->keys ? key_slot(m, key_id) : NULL;
    if (!ks)
        return -VIGIL_EUNKNOWN;
    if (!ks->master) {
        vigil_wire_key_fingerprint(fp, ks->key);
        return 0;
    }
    uint8_t node_key[VIGIL_WIRE_KEY_LEN];
    (void)vigil_wire_node_key(node_key, ks->key, id);
    vigil_wire_key_fingerprint(fp, node_key);
    sodium_memzero(node_key, sizeof(node_key));
    return 0;
}

size_t vigil_monitor_key_ids(const struct vigil_monitor *m, uint8_t *ids, size_t cap)
{
    for (uint32_t i = 0; i < m->n_keys && i < cap; i++)
        ids[i] = m->keys[i].id;
    return m->n_keys;
}

int vigil_monitor_set_keys(struct vigil_monitor *m, const struct vigil_key *keys, size_t n)
{
    if (!m || !keys || !m->keys)
        return -VIGIL_EINVAL;
    return keys_install(m, keys, n);
}

/* --- deadline heap ---------------------------------------------------- */

static bool ent_before(const struct vigil__heap_ent *a, const struct vigil__heap_ent *b)
{
    /* The orders as serial numbers (monitor_int.h): right across a wrap. */
    return a->at < b->at || (a->at == b->at && (int32_t)(a->order - b->order) < 0);
}

/* The node's deadline: its heap entry's time, or VIGIL_TIME_NEVER. */
static vigil_time_t node_deadline(const struct vigil_monitor *m, uint32_t idx)
{
    uint32_t pos = m->heap_pos[idx];
    return pos == NO_POS ? VIGIL_TIME_NEVER : m->heap[pos].at;
}

static void heap_set(struct vigil_monitor *m, uint32_t pos, struct vigil__heap_ent e)
{
    m->heap[pos] = e;
    m->heap_pos[e.node] = pos;
}

static void sift_up(struct vigil_monitor *m, uint32_t pos)
{
    struct vigil__heap_ent e = m->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!ent_before(&e, &m->heap[parent]))
            break;
        heap_set(m, pos, m->heap[parent]);
        pos = parent;
    }
    heap_set(m, pos, e);
}

static void sift_down(struct vigil_monitor *m, uint32_t pos)
{
    struct vigil__heap_ent e = m->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= m->heap_len)
            break;
        if (c + 1 < m->heap_len && ent_before(&m->heap[c + 1], &m->heap[c]))
            c++;
        if (!ent_before(&m->heap[c], &e))
            break;
        heap_set(m, pos, m->heap[c]);
        pos = c;
    }
    heap_set(m, pos, e);
}

static void heap_remove(struct vigil_monitor *m, uint32_t idx)
{
    struct vigil_node *n = &m->nodes[idx];
    uint32_t pos = m->heap_pos[idx];
    if (pos == NO_POS)
        return;
    m->heap_pos[idx] = NO_POS;
    n->stale = 0;
    uint32_t last = --m->heap_len;
    if (pos == last)
        return;
    struct vigil__heap_ent moved = m->heap[last];
    heap_set(m, pos, moved);
    if (pos > 0 && ent_before(&moved, &m->heap[(pos - 1) / 2]))
        sift_up(m, pos);
    else
        sift_down(m, pos);
}

/* Sets (or with VIGIL_TIME_NEVER clears) the node's one deadline. */
static void schedule(struct vigil_monitor *m, uint32_t idx, vigil_time_t at)
{
    struct vigil_node *n = &m->nodes[idx];
    if (at == VIGIL_TIME_NEVER) {
        heap_remove(m, idx);
        return;
    }
    struct vigil__heap_ent e = {.at = at, .order = m->heap_order++, .node = idx};
    n->stale = 0;
    uint32_t pos = m->heap_pos[idx];
    if (pos == NO_POS) {
        pos = m->heap_len++;
        heap_set(m, pos, e);
        sift_up(m, pos);
        return;
    }
    vigil_time_t old = m->heap[pos].at;
    heap_set(m, pos, e);
    /* Heartbeats move deadlines later, so sift_down is the common case. */
    if (at < old)
        sift_up(m, pos);
    else
        sift_down(m, pos);
}

/* The deadline that follows from the node's state and detector. */
static vigil_time_t next_decision(const struct vigil_monitor *m, const struct vigil_node *n)
{
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    /* Checks decide these: no detector deadline. */
    if (n->polled || n->check_down)
        return VIGIL_TIME_NEVER;
    switch (n->state) {
    case VIGIL_STATE_ALIVE:
        return vigil__detector_crossing_q(dc, &n->det, dc->suspect_threshold, m->suspect_quantile);
    case VIGIL_STATE_SUSPECT:
        return vigil_detector_crossing(dc, &n->det, dc->dead_threshold);
    case VIGIL_STATE_DEAD:
    case VIGIL_STATE_LEFT:
        /* Only a recovery run in progress can time out. */
        if (n->rise_count > 0)
            return vigil_detector_crossing(dc, &n->det, dc->suspect_threshold);
        return VIGIL_TIME_NEVER;
    default:
        /* unknown: the grace deadline set at declaration */
        return node_deadline(m, (uint32_t)(n - m->nodes));
    }
}

/* --- events ----------------------------------------------------------- */

static struct vigil_event *event_slot(struct vigil_monitor *m)
{
    if (m->ev_len == m->ev_cap) {
        size_t ncap = m->ev_cap * 2;
        struct vigil_event *q = mon_calloc(&m->al, ncap, sizeof(*q));
        if (!q) {
            m->stats.events_lost++; /* the state change itself stands */
            return NULL;
        }
        for (size_t i = 0; i < m->ev_len; i++)
            q[i] = m->evq[(m->ev_head + i) % m->ev_cap];
        mon_free(&m->al, m->evq);
        m->mem += (ncap - m->ev_cap) * sizeof(*q);
        m->evq = q;
        m->ev_cap = ncap;
        m->ev_head = 0;
    }
    struct vigil_event *ev = &m->evq[(m->ev_head + m->ev_len) % m->ev_cap];
    m->ev_len++;
    memset(ev, 0, sizeof(*ev));
    ev->seq = ++m->ev_seq;
    m->stats.events++;
    return ev;
}

static void copy_cut(char *dst, const char *src, size_t max);

/*
 * The node's suspicion record, entered at its first suspicion; NULL when
 * a new chunk of the store was needed and could not be had.
 */
static struct vigil__susp *susp_get(struct vigil_monitor *m, struct vigil_node *n)
{
    if (n->susp)
        return vigil__node_susp(m, n);
    uint32_t i = m->susp_len;
    uint32_t c = i >> VIGIL__SUSP_CHUNK_BITS;
    if (c >= m->susp_chunks_cap)
        return NULL; /* more records than nodes: cannot happen, each node enters once */
    if (!m->susp_chunks[c]) {
        m->susp_chunks[c] = mon_calloc(&m->al, VIGIL__SUSP_CHUNK, sizeof(struct vigil__susp));
        if (!m->susp_chunks[c])
            return NULL;
        m->mem += VIGIL__SUSP_CHUNK * sizeof(struct vigil__susp);
    }
    m->susp_len++;
    n->susp = i + 1;
    struct vigil__susp *s = vigil__node_susp(m, n);
    s->suspected_at = -1;
    return s;
}

static void set_state(struct vigil_monitor *m, struct vigil_node *n, enum vigil_state to,
                      vigil_time_t now, const char *reason, double threshold)
{
    struct vigil_event *ev = event_slot(m);
    if (ev) {
        struct vigil_detector_config tmp;
        ev->type = VIGIL_EVENT_STATE;
        ev->time = now;
        copy_cut(ev->node, vigil__node_id(n), VIGIL_ID_MAX);
        ev->old_state = (enum vigil_state)n->state;
        ev->new_state = to;
        ev->reason = reason;
        ev->since_last = n->last_heard < 0 ? -1 : now - n->last_heard;
        ev->level = vigil_detector_level(vigil_monitor_node_detector(m, n, &tmp), &n->det, now);
        ev->threshold = threshold;
        vigil_detector_stats(&n->det, &ev->mean, &ev->std_dev);
        ev->loss = vigil_detector_loss(vigil_monitor_node_detector(m, n, &tmp), &n->det);
        ev->missed = vigil_detector_missed(vigil_monitor_node_detector(m, n, &tmp), &n->det, now);
        ev->generation = n->generation;
        ev->sequence = n->sequence;
        ev->addr = n->addr;
    }
    if (to == VIGIL_STATE_SUSPECT) {
        struct vigil__susp *s = susp_get(m, n);
        if (s)
            s->suspected_at = now;
        else
            m->stats.qos_lost++; /* the suspicion stands; only its timing is not kept */
    } else if (to != VIGIL_STATE_DEAD) {
        struct vigil__susp *s = vigil__node_susp(m, n);
        if (s)
            s->suspected_at = -1;
    }
    n->state = (uint8_t)to;
    n->state_since = now;
}

/*
 * The queue of pending events grows without bound so that no event is
 * lost: a million nodes registering at once leave about 260,000 pending
 * at the peak, 90 MB. Once such a queue is empty again it goes back to
 * EV_KEEP slots, so that the peak of a storm is not kept for good. Only
 * queues past EV_SHRINK_ABOVE shrink: smaller ones stay, so that a steady
 * flow of events never allocates.
 */
#define EV_KEEP         4096
#define EV_SHRINK_ABOVE 65536

bool vigil_monitor_poll_event(struct vigil_monitor *m, struct vigil_event *ev)
{
    if (m->ev_len == 0)
        return false;
    *ev = m->evq[m->ev_head];
    m->ev_head = (m->ev_head + 1) % m->ev_cap;
    m->ev_len--;
    if (m->ev_len == 0 && m->ev_cap > EV_SHRINK_ABOVE) {
        struct vigil_event *q = mon_calloc(&m->al, EV_KEEP, sizeof(*q));
        if (q) { /* else the large one stays: nothing is lost */
            mon_free(&m->al, m->evq);
            m->mem -= (m->ev_cap - EV_KEEP) * sizeof(*q);
            m->evq = q;
            m->ev_cap = EV_KEEP;
            m->ev_head = 0;
        }
    }
    return true;
}

/* --- the monitor's own pauses ----------------------------------------- */

/*
 * Gives every node under detection a fresh period from now: the time the
 * monitor was away says nothing about the nodes. Rebuilds the heap in O(n);
 * pauses are rare.
 */
/* Counts a pause of the monitor and reports it as an event. */
static void report_pause(struct vigil_monitor *m, vigil_time_t now, vigil_time_t late)
{
    m->stats.pauses++;
    m->stats.paused_total += late;
    struct vigil_event *ev = event_slot(m);
    if (ev) {
        ev->type = VIGIL_EVENT_PAUSE;
        ev->time = now;
        ev->reason = "monitor paused";
        ev->since_last = late;
    }
}

/* Copies at most max bytes of src (NULL: none) into dst, NUL terminated (max + 1 bytes). */
static void copy_cut(char *dst, const char *src, size_t max)
{
    size_t n = 0;
    while (src && n < max && src[n])
        n++;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void vigil_monitor_note_leader(struct vigil_monitor *m, vigil_time_t now, const char *leader,
                               uint64_t epoch, const char *reason)
{
    struct vigil_event *ev = event_slot(m);
    if (!ev)
        return;
    ev->type = VIGIL_EVENT_LEADER;
    ev->time = now;
    copy_cut(ev->node, leader, VIGIL_ID_MAX);
    ev->generation = epoch;
    ev->reason = reason ? reason : "";
    ev->since_last = -1;
}

void vigil_monitor_note_action(struct vigil_monitor *m, vigil_time_t now, const char *node,
                               const char *reason, uint64_t about, uint64_t attempt)
{
    struct vigil_event *ev = event_slot(m);
    if (!ev)
        return;
    ev->type = VIGIL_EVENT_ACTION;
    ev->time = now;
    copy_cut(ev->node, node, VIGIL_ID_MAX);
    ev->generation = about;
    ev->sequence = attempt;
    ev->reason = reason ? reason : "";
    ev->since_last = -1;
}

void vigil_monitor_note_check(struct vigil_monitor *m, vigil_time_t now, const char *node,
                              const struct vigil_check_note *c)
{
    struct vigil_event *ev = event_slot(m);
    if (!ev)
        return;
    ev->type = VIGIL_EVENT_CHECK;
    ev->time = now;
    copy_cut(ev->node, node, VIGIL_ID_MAX);
    ev->old_state = c->old_state;
    ev->new_state = c->new_state;
    ev->reason = c->reason ? c->reason : "";
    ev->check = c->check ? c->check : "";
    ev->since_last = -1;
    ev->latency = c->latency;
    ev->code = c->code;
    copy_cut(ev->detail, c->detail, VIGIL_EVENT_DETAIL_MAX);
    /* The node's own numbers, when it is in the table, say which run of it this was. */
    const struct vigil_node *nd = node ? vigil_monitor_find(m, node) : NULL;
    if (nd) {
        ev->generation = nd->generation;
        ev->sequence = nd->sequence;
        ev->addr = nd->addr;
    }
}

const struct vigil_node *vigil_monitor_last_status(const struct vigil_monitor *m)
{
    return m->last_status == VIGIL__IDTABLE_NONE ? NULL : &m->nodes[m->last_status];
}

/* The node of id, entered (unknown, no deadline yet) if new: 0, -VIGIL_EBADID or -VIGIL_EFULL. */
static int node_get(struct vigil_monitor *m, const char *id, vigil_time_t now,
                    struct vigil_node **out)
{
    size_t len = strlen(id);
    if (!vigil_id_valid(id, len))
        return -VIGIL_EBADID;
    uint32_t *slot = slot_find(m, id, len);
    uint32_t idx = vigil__idtable_value(slot);
    if (idx != VIGIL__IDTABLE_NONE) {
        *out = &m->nodes[idx];
        return 0;
    }
    if (m->n_nodes >= m->cfg.max_nodes)
        return -VIGIL_EFULL;
    *out = node_insert(m, slot, id, len, now);
    return *out ? 0 : -VIGIL_ENOMEM;
}

int vigil_monitor_declare_polled(struct vigil_monitor *m, const char *id, vigil_time_t now)
{
    struct vigil_node *n;
    int rc = node_get(m, id, now, &n);
    if (rc != 0)
        return rc;
    n->declared = 1;
    n->polled = 1;
    n->rise_count = 0;
    schedule(m, (uint32_t)(n - m->nodes), VIGIL_TIME_NEVER);
    return 0;
}

int vigil_monitor_set_check_down(struct vigil_monitor *m, vigil_time_t now, const char *id,
                                 bool down, const char *reason)
{
    size_t len = strlen(id);
    if (!vigil_id_valid(id, len))
        return -VIGIL_EBADID;
    uint32_t idx = vigil__idtable_value(slot_find(m, id, len));
    if (idx == VIGIL__IDTABLE_NONE)
        return -VIGIL_EUNKNOWN;
    struct vigil_node *n = &m->nodes[idx];
    n->check_down = down ? 1 : 0;
    if (down) {
        n->rise_count = 0;
        if (n->state != VIGIL_STATE_DEAD && n->state != VIGIL_STATE_LEFT)
            set_state(m, n, VIGIL_STATE_DEAD, now, reason ? reason : "check failed", 0);
        schedule(m, idx, VIGIL_TIME_NEVER);
        return 0;
    }
    if (n->polled) {
        if (n->state != VIGIL_STATE_ALIVE)
            set_state(m, n, VIGIL_STATE_ALIVE, now, reason ? reason : "checks passing", 0);
        schedule(m, idx, VIGIL_TIME_NEVER);
        return 0;
    }
    if (n->state == VIGIL_STATE_DEAD && n->last_heard >= 0) {
        /* Heartbeats that never stopped bring it back at once. */
        struct vigil_detector_config tmp;
        const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
        if (vigil_detector_level(dc, &n->det, now) < dc->suspect_threshold) {
            n->rise_count = 0;
            set_state(m, n, VIGIL_STATE_ALIVE, now, reason ? reason : "checks passing", 0);
        }
    }
    vigil_time_t at = next_decision(m, n);
    if (at != VIGIL_TIME_NEVER && at <= now)
        at = now + 1;
    schedule(m, idx, at);
    return 0;
}

static bool store_custom(struct vigil_monitor *m, struct vigil_node *n,
                         const struct vigil_heartbeat *hb);
static bool status_store(struct vigil_monitor *m, struct vigil_node *n,
                         const struct vigil_status *s);

int vigil_monitor_set_member(struct vigil_monitor *m, vigil_time_t now, const char *id,
                             enum vigil_state state, const char *reason,
                             const struct vigil_addr *addr)
{
    if (!vigil_id_valid(id, strlen(id)))
        return -VIGIL_EBADID;
    if (state != VIGIL_STATE_ALIVE && state != VIGIL_STATE_SUSPECT && state != VIGIL_STATE_DEAD &&
        state != VIGIL_STATE_LEFT)
        return -VIGIL_EINVAL;
    struct vigil_node *n;
    int rc = node_get(m, id, now, &n);
    if (rc != 0)
        return rc;
    uint32_t idx = (uint32_t)(n - m->nodes);
    n->polled = 1;
    n->member = 1;
    n->rise_count = 0;
    if (addr)
        n->addr = *addr;
    if (state == VIGIL_STATE_ALIVE) {
        n->last_heard = now;
        if (n->first_heard < 0)
            n->first_heard = now;
    }
    if (n->state != (uint8_t)state)
        set_state(m, n, state, now, reason ? reason : "membership", 0);
    schedule(m, idx, VIGIL_TIME_NEVER);
    return 0;
}

int vigil_monitor_set_member_status(struct vigil_monitor *m, vigil_time_t now,
                                    const struct vigil_heartbeat *hb)
{
    size_t len = strlen(hb->id);
    if (!vigil_id_valid(hb->id, len))
        return -VIGIL_EBADID;
    uint32_t idx = vigil__idtable_value(slot_find(m, hb->id, len));
    if (idx == VIGIL__IDTABLE_NONE || !m->nodes[idx].member)
        return -VIGIL_EUNKNOWN;
    struct vigil_node *n = &m->nodes[idx];
    (void)now;
    n->send_time_us = hb->send_time_us;
    bool kept = status_store(m, n, &hb->status);
    kept &= store_custom(m, n, hb);
    n->status_stale = !kept;
    return kept ? 0 : -VIGIL_ENOMEM;
}

void vigil_monitor_note_pause(struct vigil_monitor *m, vigil_time_t now, vigil_time_t length)
{
    report_pause(m, now, length);
}

static void forgive_pause(struct vigil_monitor *m, vigil_time_t now, vigil_time_t late)
{
    for (uint32_t pos = 0; pos < m->heap_len; pos++) {
        struct vigil__heap_ent *e = &m->heap[pos];
        struct vigil_node *n = &m->nodes[e->node];
        if (n->state == VIGIL_STATE_UNKNOWN) {
            e->at = now + m->cfg.startup_grace;
        } else {
            vigil_detector_rebase(&n->det, now);
            n->skip_learn = 1;
            e->at = next_decision(m, n);
        }
        n->stale = 0;
        e->order = m->heap_order++;
    }
    for (uint32_t pos = m->heap_len / 2; pos-- > 0;)
        sift_down(m, pos);
    report_pause(m, now, late);
}

void vigil_monitor_forgive(struct vigil_monitor *m, vigil_time_t now, vigil_time_t length)
{
    forgive_pause(m, now, length);
}

/* Called first by every entry point that carries the time. */
static void advance(struct vigil_monitor *m, vigil_time_t now)
{
    /*
     * Lateness is measured against real deadlines: entries left early by
     * the lazy heartbeat path are re-keyed first (each at most once).
     */
    while (m->heap_len > 0 && m->heap[0].at < now && m->nodes[m->heap[0].node].stale) {
        uint32_t idx = m->heap[0].node;
        schedule(m, idx, next_decision(m, &m->nodes[idx]));
    }
    if (m->heap_len == 0)
        return;
    vigil_time_t due = m->heap[0].at;
    if (!m->cfg.arrival_times && now > due && now - due > m->cfg.pause_tolerance)
        forgive_pause(m, now, now - due);
}

/* --- public entry points ---------------------------------------------- */

int vigil_monitor_declare(struct vigil_monitor *m, const char *id, vigil_time_t now)
{
    size_t len = strlen(id);
    if (!vigil_id_valid(id, len))
        return -VIGIL_EBADID;
    uint32_t *slot = slot_find(m, id, len);
    if (vigil__idtable_value(slot) != VIGIL__IDTABLE_NONE)
        return -VIGIL_EEXIST;
    if (m->n_nodes >= m->cfg.max_nodes)
        return -VIGIL_EFULL;
    struct vigil_node *n = node_insert(m, slot, id, len, now);
    if (!n)
        return -VIGIL_ENOMEM;
    n->declared = 1;
    schedule(m, (uint32_t)(n - m->nodes), now + m->cfg.startup_grace);
    return 0;
}

/*
 * Whether the gap since the node's last heartbeat says anything about the
 * node. Senders keep a fixed schedule, so gaps far shorter than their
 * interval come from the receiving side: datagrams that queued up while
 * the monitor was stopped or busy and are read in one batch. Learning them
 * would shrink the mean and inflate the deviation.
 */
static bool plausible_gap(const struct vigil_node *n, vigil_time_t now)
{
    vigil_time_t iv = (vigil_time_t)n->interval_ms * VIGIL_NSEC_PER_MSEC;
    return n->last_heard < 0 || now - n->last_heard >= iv / 4;
}

/* Counts skipped sequence numbers of the current generation, saturating. */
static void qos_skip(struct vigil_node *n, uint64_t skipped)
{
    n->gen_missing = skipped >= (uint64_t)(UINT32_MAX - n->gen_missing)
                         ? UINT32_MAX
                         : n->gen_missing + (uint32_t)skipped;
}

/*
 * The observed quality of service, before the heartbeat is stored: a
 * suspicion (and the death it led to) that a heartbeat of the same
 * generation ends was a mistake; one of a new generation was a real
 * failure (the node restarted). Also the start of the loss count of each
 * generation.
 */
static void qos_heartbeat(struct vigil_monitor *m, struct vigil_node *n,
                          const struct vigil_heartbeat *hb, vigil_time_t now)
{
    struct vigil__susp *s = vigil__node_susp(m, n);
    if (s) {
        if (s->suspected_at >= 0 && n->heartbeats > 0 && hb->generation == n->generation) {
            s->mistakes++;
            if (n->state == VIGIL_STATE_DEAD)
                s->false_deaths++;
            s->mistake_time += now - s->suspected_at;
        }
        s->suspected_at = -1;
    }
    if (n->first_heard < 0)
        n->first_heard = now;
    if (n->heartbeats == 0 || hb->generation != n->generation) {
        n->gen_hb0 = n->heartbeats;
        n->gen_missing = 0;
    } else {
        qos_skip(n, hb->sequence - n->sequence - 1);
    }
}

/* Stores the heartbeat's custom pairs; false if they changed and could not be copied. */
static bool store_custom(struct vigil_monitor *m, struct vigil_node *n,
                         const struct vigil_heartbeat *hb)
{
    bool same = n->n_custom == hb->n_custom;
    for (uint8_t i = 0; same && i < hb->n_custom; i++)
        same = !strcmp(n->custom[i].key, hb->custom[i].key) &&
               !strcmp(n->custom[i].value, hb->custom[i].value);
    if (same)
        return true;
    /* Only a change of the custom status allocates; steady heartbeats never do. */
    struct vigil_custom *c = NULL;
    if (hb->n_custom) {
        c = mon_calloc(&m->al, hb->n_custom, sizeof(*c));
        if (!c) {
            /* Keep the old custom status rather than lose the heartbeat. */
            m->stats.custom_lost++;
            return false;
        }
        for (uint8_t i = 0; i < hb->n_custom; i++) {
            strcpy(c[i].key, hb->custom[i].key);
            strcpy(c[i].value, hb->custom[i].value);
        }
    }
    m->mem += (size_t)hb->n_custom * sizeof(*c);
    m->mem -= (size_t)n->n_custom * sizeof(*c);
    mon_free(&m->al, n->custom);
    n->custom = c;
    n->n_custom = hb->n_custom;
    return true;
}

/* Drops a status kept whole (status_wide), leaving the narrow form zeroed. */
static void status_unwiden(struct vigil_monitor *m, struct vigil_node *n)
{
    if (n->status_wide) {
        mon_free(&m->al, n->status.wide);
        m->mem -= sizeof(struct vigil_status);
        n->status_wide = 0;
    }
    memset(&n->status, 0, sizeof(n->status));
}

/*
 * Stores a reported status: narrow when its 64-bit figures fit in 32 bits,
 * else whole in an allocated copy. False if that copy could not be had
 * (the old status stays, counted in custom_lost).
 */
static bool status_store(struct vigil_monitor *m, struct vigil_node *n,
                         const struct vigil_status *s)
{
    if (s->mem_total_kib > UINT32_MAX || s->mem_avail_kib > UINT32_MAX ||
        s->uptime_s > UINT32_MAX) {
        if (!n->status_wide) {
            struct vigil_status *w = mon_calloc(&m->al, 1, sizeof(*w));
            if (!w) {
                m->stats.custom_lost++;
                return false;
            }
            n->status.wide = w;
            n->status_wide = 1;
            m->mem += sizeof(*w);
        }
        *n->status.wide = *s;
        return true;
    }
    status_unwiden(m, n);
    n->status.narrow.load1_milli = s->load1_milli;
    n->status.narrow.load5_milli = s->load5_milli;
    n->status.narrow.load15_milli = s->load15_milli;
    n->status.narrow.mem_total_kib = (uint32_t)s->mem_total_kib;
    n->status.narrow.mem_avail_kib = (uint32_t)s->mem_avail_kib;
    n->status.narrow.uptime_s = (uint32_t)s->uptime_s;
    return true;
}

/* Drops the node's custom status (freeing, never allocating). */
static void drop_custom(struct vigil_monitor *m, struct vigil_node *n)
{
    m->mem -= (size_t)n->n_custom * sizeof(*n->custom);
    mon_free(&m->al, n->custom);
    n->custom = NULL;
    n->n_custom = 0;
}

/*
 * What an accepted heartbeat says about the node's status. One that
 * carries the full status (version 1, or a version 2 full status) replaces
 * the stored status and makes it current. A version 2 beat only names the
 * sender's current status version: if it is not the stored one, the
 * stored status stays (it is still the best the monitor has) but is
 * marked stale until a full status arrives. A beat that opens a new
 * generation clears the status instead: what a node said before it
 * restarted says nothing about it now, and custom pairs such as a role
 * must not outlive the process that set them. Steady beats touch two
 * bytes of the node record.
 */
static void apply_status(struct vigil_monitor *m, struct vigil_node *n,
                         const struct vigil_heartbeat *hb, bool new_generation)
{
    if (hb->version == VIGIL_WIRE_V1 || hb->type == VIGIL_MSG_STATUS) {
        n->send_time_us = hb->send_time_us;
        n->status_version = hb->status_version;
        m->last_status = (uint32_t)(n - m->nodes);
        /* What could not be copied (for want of memory) is left as it was: not current. */
        bool kept = status_store(m, n, &hb->status);
        kept &= store_custom(m, n, hb);
        n->status_stale = !kept;
    } else if (new_generation) {
        n->send_time_us = 0;
        status_unwiden(m, n);
        if (n->custom)
            drop_custom(m, n);
        n->status_version = hb->status_version;
        n->status_stale = 1;
    } else if (hb->status_version != n->status_version) {
        n->status_stale = 1;
    }
}

/*
 * Key material derived for one datagram, wiped when it is done; and the
 * hash of the datagram's node id when the caller computed it already.
 */
struct dgram_keys {
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    uint8_t seal[VIGIL_WIRE_SEAL_KEY_LEN];
    bool derived; /* mac was derived here (not the node's cached key) */
    uint8_t key_id;
    bool hashed; /* hash is the id table's hash of the id in the datagram */
    uint64_t hash;
    /* peek_rc is vigil_wire_peek's answer for the datagram (pk when 0), when peeked. */
    bool peeked;
    int peek_rc;
    struct vigil_wire_peek pk;
};

static int on_datagram(struct vigil_monitor *m, vigil_time_t now, const uint8_t *buf, size_t len,
                       const struct vigil_addr *from, struct dgram_keys *dk);

int vigil_monitor_on_datagram(struct vigil_monitor *m, vigil_time_t now, const uint8_t *buf,
                              size_t len, const struct vigil_addr *from)
{
    struct dgram_keys dk;
    dk.derived = false;
    dk.hashed = false;
    dk.peeked = false;
    m->last_status = VIGIL__IDTABLE_NONE;
    int rc = on_datagram(m, now, buf, len, from, &dk);
    if (dk.derived)
        sodium_memzero(&dk, sizeof(dk));
    return rc;
}

/* Datagrams looked up together in vigil_monitor_on_batch. */
#define BATCH_STEP 64

_Static_assert(offsetof(struct vigil_node, addr) + sizeof(struct vigil_addr) <= VIGIL__NODE_HOT,
               "the fields a heartbeat touches lie in the first VIGIL__NODE_HOT bytes");

/* Asks for the cache lines of a node record that a heartbeat touches. */
static void prefetch_node(const struct vigil_monitor *m, uint32_t idx)
{
    const char *p = (const char *)&m->nodes[idx];
    for (size_t off = 0; off < VIGIL__NODE_HOT; off += 64)
        __builtin_prefetch(p + off, 1);
    __builtin_prefetch(p + VIGIL__NODE_HOT - 1, 1);
    __builtin_prefetch(&m->heap_pos[idx], 1);
}

/*
 * The same work as vigil_monitor_on_datagram for each datagram, in order,
 * but the memory each needs is asked for first, for the whole step:
 * first the id table's slots, then the node records they point to, then
 * the nodes' heap entries (where their deadlines are). At a
 * hundred thousand nodes and more, the node records are not in the cache,
 * and a datagram handled alone waits for each load in turn; here the loads
 * of a step overlap. The hashes are computed once, and only the datagrams
 * whose header is sound are hashed (their id is not authenticated yet:
 * the hash only says where to look).
 */
void vigil_monitor_on_batch(struct vigil_monitor *m, struct vigil_monitor_dgram *d, size_t n)
{
    uint64_t hash[BATCH_STEP];
    int peek_rc[BATCH_STEP];
    struct vigil_wire_peek pk[BATCH_STEP];
    for (size_t base = 0; base < n; base += BATCH_STEP) {
        size_t k = n - base < BATCH_STEP ? n - base : BATCH_STEP;
        struct vigil_monitor_dgram *s = d + base;
        for (size_t i = 0; i < k; i++) {
            peek_rc[i] = vigil_wire_peek(s[i].buf, s[i].len, &pk[i]);
            if (peek_rc[i] == 0) {
                hash[i] = vigil__idtable_hash(&m->ids, pk[i].id, pk[i].id_len);
                vigil__idtable_prefetch(&m->ids, hash[i]);
            }
        }
        uint32_t guess[BATCH_STEP];
        for (size_t i = 0; i < k; i++) {
            guess[i] =
                peek_rc[i] == 0 ? vigil__idtable_guess(&m->ids, hash[i]) : VIGIL__IDTABLE_NONE;
            if (guess[i] != VIGIL__IDTABLE_NONE && guess[i] < m->n_nodes)
                prefetch_node(m, guess[i]);
            else
                guess[i] = VIGIL__IDTABLE_NONE;
        }
        /* Then the heap entries, which hold the nodes' deadlines (node_deadline). */
        for (size_t i = 0; i < k; i++) {
            if (guess[i] == VIGIL__IDTABLE_NONE)
                continue;
            uint32_t pos = m->heap_pos[guess[i]];
            if (pos != NO_POS && pos < m->heap_len)
                __builtin_prefetch(&m->heap[pos]);
        }
        for (size_t i = 0; i < k; i++) {
            struct dgram_keys dk;
            dk.derived = false;
            dk.hashed = peek_rc[i] == 0;
            dk.hash = hash[i];
            dk.peeked = true;
            dk.peek_rc = peek_rc[i];
            dk.pk = pk[i];
            m->last_status = VIGIL__IDTABLE_NONE;
            uint64_t unknown_key = m->stats.unknown_key, unsealed = m->stats.unsealed;
            s[i].rc = on_datagram(m, s[i].at, s[i].buf, s[i].len, s[i].from, &dk);
            if (dk.derived)
                sodium_memzero(&dk, sizeof(dk));
            s[i].status = vigil_monitor_last_status(m);
            s[i].unknown_key = m->stats.unknown_key != unknown_key;
            s[i].unsealed = m->stats.unsealed != unsealed;
        }
    }
}

static int on_datagram(struct vigil_monitor *m, vigil_time_t now, const uint8_t *buf, size_t len,
                       const struct vigil_addr *from, struct dgram_keys *dk)
{
    advance(m, now);
    m->stats.datagrams++;

    struct vigil_heartbeat hb;
    struct vigil_wire_keys wk = {0};
    uint32_t *slot = NULL;
    uint32_t found = VIGIL__IDTABLE_NONE;
    int rc;
    if (m->keys) {
        /*
         * The key id in the header names the key. With a master key each
         * node has its own: find the node first (the id is not
         * authenticated yet, so nothing is changed on its word) and verify
         * with that node's key. A node not in the table, or one that moved
         * to another key, gets its key derived here, kept only if the
         * datagram is accepted.
         */
        if (!dk->peeked) {
            dk->peek_rc = vigil_wire_peek(buf, len, &dk->pk);
            dk->peeked = true;
        }
        const struct vigil_wire_peek pk = dk->pk;
        rc = dk->peek_rc;
        if (rc) {
            m->stats.malformed++;
            return rc;
        }
        if (!(pk.flags & VIGIL_FLAG_AUTH)) {
            m->stats.auth_failed++;
            return -VIGIL_EAUTH;
        }
        const struct vigil__keyslot *ks = key_slot(m, pk.key_id);
        if (!ks) {
            m->stats.unknown_key++;
            m->stats.auth_failed++;
            return -VIGIL_EAUTH;
        }
        bool sealed = pk.flags & VIGIL_FLAG_SEALED;
        if (!ks->master) {
            wk.mac = ks->mac;
            wk.seal = ks->seal;
        } else {
            slot = dk->hashed ? slot_find_h(m, dk->hash, pk.id, pk.id_len)
                              : slot_find(m, pk.id, pk.id_len);
            found = vigil__idtable_value(slot);
            const struct vigil_node *kn = found != VIGIL__IDTABLE_NONE ? &m->nodes[found] : NULL;
            if (kn && kn->mac_ok && kn->mac_id == pk.key_id && !sealed) {
                wk.mac = kn->mac_key;
            } else {
                dk->derived = true;
                dk->key_id = pk.key_id;
                node_keys(ks, pk.id, pk.id_len, dk->mac, sealed ? dk->seal : NULL);
                wk.mac = dk->mac;
                wk.seal = sealed ? dk->seal : NULL;
            }
        }
    }
    /* The header, once checked, is not checked again. */
    if (dk->peeked && dk->peek_rc == 0)
        rc = vigil__wire_decode_peeked(buf, len, &dk->pk, &wk, &hb);
    else
        rc = vigil_wire_decode_keys(buf, len, &wk, &hb);
    if (rc) {
        if (rc == -VIGIL_EAUTH)
            m->stats.auth_failed++;
        else
            m->stats.malformed++;
        return rc;
    }
    if (m->cfg.require_sealed && !(hb.flags & VIGIL_FLAG_SEALED) &&
        (hb.version == VIGIL_WIRE_V1 || hb.type == VIGIL_MSG_STATUS)) {
        m->stats.unsealed++;
        return -VIGIL_EAUTH;
    }
    /*
     * A generation or a send time from the future: a forgery meant to make
     * the node's real heartbeats look stale, or a clock badly off.
     */
    if (m->wall_set) {
        int64_t limit = m->wall_us + (now - m->wall_mono) / 1000 + m->cfg.max_ahead / 1000;
        if ((limit >= 0 && hb.generation > (uint64_t)limit) || hb.send_time_us > limit) {
            m->stats.future++;
            return -VIGIL_EFUTURE;
        }
    }

    size_t id_len = strlen(hb.id);
    if (!slot) {
        slot = dk->hashed ? slot_find_h(m, dk->hash, hb.id, id_len) : slot_find(m, hb.id, id_len);
        found = vigil__idtable_value(slot);
    }
    struct vigil_node *n;
    if (found != VIGIL__IDTABLE_NONE) {
        n = &m->nodes[found];
    } else if (!m->cfg.auto_register) {
        m->stats.unknown_node++;
        return -VIGIL_EUNKNOWN;
    } else if (m->n_nodes >= m->cfg.max_nodes) {
        m->stats.table_full++;
        return -VIGIL_EFULL;
    } else if (!(n = node_insert(m, slot, hb.id, id_len, now))) {
        /* No memory for a long id: no room for the node either. */
        m->stats.table_full++;
        return -VIGIL_EFULL;
    }
    uint32_t idx = (uint32_t)(n - m->nodes);

    /* A replayed or reordered datagram must not refresh the node. */
    if (hb.generation < n->generation ||
        (hb.generation == n->generation && hb.sequence <= n->sequence)) {
        m->stats.stale++;
        return -VIGIL_ESTALE;
    }
    m->stats.accepted++;
    /* The node's key is the one its newest accepted datagram was made with. */
    if (dk->derived) {
        memcpy(n->mac_key, dk->mac, sizeof(n->mac_key));
        n->mac_id = dk->key_id;
        n->mac_ok = 1;
    }
    n->key_id = hb.key_id;
    qos_heartbeat(m, n, &hb, now);

    /* The first heartbeat of a node counts as a new generation, whatever its number. */
    bool new_generation = hb.generation != n->generation || n->heartbeats == 0;
    /* A new boot generation numbers its heartbeats afresh, on a grid of its own. */
    bool restarted = n->heartbeats > 0 && hb.generation != n->generation;
    n->generation = hb.generation;
    n->sequence = hb.sequence;
    n->flags = hb.flags;
    n->interval_ms = hb.interval_ms;
    n->heartbeats++;
    if (from)
        n->addr = *from;
    apply_status(m, n, &hb, new_generation);

    if (n->polled) {
        /* Recorded, but its checks decide its state. */
        n->last_heard = now;
        return 0;
    }

    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    enum vigil_state st = (enum vigil_state)n->state;

    bool grid = dc->kind == VIGIL_DETECTOR_GRID;
    /*
     * The grid places heartbeats by their sequence numbers, so batches read
     * together (plausible_gap) need no special care; a new generation
     * anchors the grid afresh.
     */
    bool fresh = restarted && grid;
    bool plausible = grid || plausible_gap(n, now);

    if (hb.flags & VIGIL_FLAG_LEAVING) {
        vigil_detector_heartbeat(dc, &n->det, now, hb.sequence, false);
        n->last_heard = now;
        n->rise_count = 0;
        if (st != VIGIL_STATE_LEFT)
            set_state(m, n, VIGIL_STATE_LEFT, now, "goodbye", 0);
        schedule(m, idx, VIGIL_TIME_NEVER);
        return 0;
    }

    if (n->check_down) {
        /* Held dead by a check: learned from, but no way back until the check passes. */
        vigil_detector_heartbeat(dc, &n->det, now, hb.sequence,
                                 st != VIGIL_STATE_UNKNOWN && !n->skip_learn && !fresh &&
                                     plausible);
        n->skip_learn = 0;
        n->last_heard = now;
        n->rise_count = 0;
        if (st != VIGIL_STATE_DEAD)
            set_state(m, n, VIGIL_STATE_DEAD, now, "check failed", 0);
        schedule(m, idx, VIGIL_TIME_NEVER);
        return 0;
    }

    switch (st) {
    case VIGIL_STATE_UNKNOWN:
        vigil_detector_heartbeat(dc, &n->det, now, hb.sequence, false);
        n->last_heard = now;
        set_state(m, n, VIGIL_STATE_ALIVE, now, "first heartbeat", 0);
        break;
    case VIGIL_STATE_ALIVE:
    case VIGIL_STATE_SUSPECT:
        vigil_detector_heartbeat(dc, &n->det, now, hb.sequence,
                                 !n->skip_learn && !fresh && plausible);
        n->skip_learn = 0;
        n->last_heard = now;
        if (st == VIGIL_STATE_SUSPECT) {
            set_state(m, n, VIGIL_STATE_ALIVE, now, "heartbeat", 0);
        } else if (m->heap_pos[idx] != NO_POS) {
            /*
             * The steady case. If the new crossing is surely not earlier
             * than the scheduled entry (the estimate is within a
             * microsecond of it), keep the entry and re-key it when it
             * comes up.
             */
            vigil_time_t est = vigil_detector_crossing_estimate(dc, &n->det, dc->suspect_threshold,
                                                                m->suspect_quantile);
            if (est != VIGIL_TIME_NEVER && est - LAZY_MARGIN >= node_deadline(m, idx)) {
                n->stale = 1;
                return 0;
            }
        }
        break;
    case VIGIL_STATE_LEFT:
        /*
         * A node that said goodbye and comes back with a new generation
         * restarted on purpose: it is alive at once. The goodbye never
         * outlives the node's next boot.
         */
        if (restarted) {
            vigil_detector_heartbeat(dc, &n->det, now, hb.sequence, false);
            n->skip_learn = 0;
            n->last_heard = now;
            n->rise_count = 0;
            set_state(m, n, VIGIL_STATE_ALIVE, now, "rejoined", 0);
            break;
        }
        /* fall through */
    case VIGIL_STATE_DEAD:
        /*
         * The interval that spans the outage is not learned; those inside
         * the recovery run are.
         */
        vigil_detector_heartbeat(dc, &n->det, now, hb.sequence,
                                 n->rise_count > 0 && !n->skip_learn && !fresh && plausible);
        n->skip_learn = 0;
        n->last_heard = now;
        if (++n->rise_count >= m->cfg.rise) {
            n->rise_count = 0;
            set_state(m, n, VIGIL_STATE_ALIVE, now, "recovered", 0);
        }
        break;
    }
    schedule(m, idx, next_decision(m, n));
    return 0;
}

int vigil_monitor_reconfigure(struct vigil_monitor *m, vigil_time_t now,
                              const struct vigil_monitor_config *cfg, bool *restart)
{
    if (!m || !cfg)
        return -VIGIL_EINVAL;
    /* What stays: the running values, and whether the new ones asked otherwise. */
    struct vigil_monitor_config c = *cfg;
    const struct vigil_monitor_config *o = &m->cfg;
    bool fixed_differs = c.detector.kind != o->detector.kind ||
                         c.detector.window != o->detector.window || c.max_nodes != o->max_nodes ||
                         c.arrival_times != o->arrival_times;
    c.detector.kind = o->detector.kind;
    c.detector.window = o->detector.window;
    c.max_nodes = o->max_nodes;
    c.arrival_times = o->arrival_times;
    memcpy(c.hash_seed, o->hash_seed, sizeof(c.hash_seed));
    c.allocator = o->allocator;
    c.has_key = o->has_key;
    c.key_is_master = o->key_is_master;
    c.key_id = o->key_id;
    memset(c.key, 0, sizeof(c.key));
    const char *why;
    if (vigil_monitor_config_check(&c, &why) != 0)
        return -VIGIL_EINVAL;
    if (restart)
        *restart = fixed_differs;
    advance(m, now);
    m->cfg = c;
    m->suspect_quantile = vigil_phi_quantile(c.detector.suspect_threshold);
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        m->nodes[i].stale = 0;
        schedule(m, i, next_decision(m, &m->nodes[i]));
    }
    return 0;
}

void vigil_monitor_set_wall(struct vigil_monitor *m, vigil_time_t now, int64_t wall_us)
{
    m->wall_us = wall_us;
    m->wall_mono = now;
    m->wall_set = true;
}

void vigil_monitor_set_event_seq(struct vigil_monitor *m, uint64_t last)
{
    if (last > m->ev_seq)
        m->ev_seq = last;
}

int vigil_monitor_restore(struct vigil_monitor *m, const char *id, uint64_t generation,
                          uint64_t sequence, vigil_time_t now)
{
    size_t len = strlen(id);
    if (!vigil_id_valid(id, len))
        return -VIGIL_EBADID;
    uint32_t *slot = slot_find(m, id, len);
    uint32_t found = vigil__idtable_value(slot);
    struct vigil_node *n;
    if (found != VIGIL__IDTABLE_NONE) {
        n = &m->nodes[found];
    } else if (!m->cfg.auto_register) {
        return -VIGIL_EUNKNOWN;
    } else if (m->n_nodes >= m->cfg.max_nodes) {
        return -VIGIL_EFULL;
    } else if (!(n = node_insert(m, slot, id, len, now))) {
        return -VIGIL_ENOMEM;
    }
    if (generation > n->generation || (generation == n->generation && sequence > n->sequence)) {
        /* The generation's span counts what it skipped, as a heartbeat would. */
        if (n->heartbeats > 0 && generation == n->generation)
            qos_skip(n, sequence - n->sequence);
        else if (n->heartbeats > 0) {
            n->gen_hb0 = n->heartbeats;
            n->gen_missing = 0;
        }
        n->generation = generation;
        n->sequence = sequence;
    }
    return 0;
}

vigil_time_t vigil_monitor_next_deadline(const struct vigil_monitor *m)
{
    return m->heap_len ? m->heap[0].at : VIGIL_TIME_NEVER;
}

/* Decides about one node whose deadline has come. */
static void expire(struct vigil_monitor *m, uint32_t idx, vigil_time_t now)
{
    struct vigil_node *n = &m->nodes[idx];
    if (n->polled || n->check_down) {
        schedule(m, idx, VIGIL_TIME_NEVER);
        return;
    }
    if (n->stale) {
        /* Heartbeats came since this entry was set: find the real deadline. */
        vigil_time_t at = next_decision(m, n);
        if (at > now) {
            schedule(m, idx, at);
            return;
        }
        n->stale = 0;
    }
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    double level = vigil_detector_level(dc, &n->det, now);
    switch (n->state) {
    case VIGIL_STATE_UNKNOWN:
        set_state(m, n, VIGIL_STATE_DEAD, now, "never heard", 0);
        schedule(m, idx, VIGIL_TIME_NEVER);
        return;
    case VIGIL_STATE_ALIVE:
        if (level >= dc->suspect_threshold)
            set_state(m, n, VIGIL_STATE_SUSPECT, now, "timeout", dc->suspect_threshold);
        if (n->state == VIGIL_STATE_SUSPECT && level >= dc->dead_threshold)
            set_state(m, n, VIGIL_STATE_DEAD, now, "timeout", dc->dead_threshold);
        break;
    case VIGIL_STATE_SUSPECT:
        if (level >= dc->dead_threshold)
            set_state(m, n, VIGIL_STATE_DEAD, now, "timeout", dc->dead_threshold);
        break;
    default:
        /* A recovery run that missed a heartbeat starts over. */
        if (level >= dc->suspect_threshold)
            n->rise_count = 0;
        break;
    }
    vigil_time_t at = next_decision(m, n);
    /* Guard against a crossing that rounding put at or before now. */
    if (at != VIGIL_TIME_NEVER && at <= now)
        at = now + 1;
    schedule(m, idx, at);
}

void vigil_monitor_on_expiry(struct vigil_monitor *m, vigil_time_t now)
{
    advance(m, now);
    /* Bounded: each node is decided at most once per call. */
    uint32_t budget = m->heap_len;
    while (budget-- > 0 && m->heap_len > 0 && m->heap[0].at <= now)
        expire(m, m->heap[0].node, now);
}

/* --- queries ---------------------------------------------------------- */

const struct vigil_node *vigil_monitor_find(const struct vigil_monitor *m, const char *id)
{
    size_t len = strlen(id);
    if (!vigil_id_valid(id, len))
        return NULL;
    uint32_t idx = vigil__idtable_value(slot_find(m, id, len));
    return idx != VIGIL__IDTABLE_NONE ? &m->nodes[idx] : NULL;
}

size_t vigil_monitor_node_count(const struct vigil_monitor *m)
{
    return m->n_nodes;
}

const struct vigil_node *vigil_monitor_node_at(const struct vigil_monitor *m, size_t i)
{
    return i < m->n_nodes ? &m->nodes[i] : NULL;
}

double vigil_monitor_level(const struct vigil_monitor *m, const struct vigil_node *n,
                           vigil_time_t now)
{
    if (n->state == VIGIL_STATE_UNKNOWN)
        return 0;
    struct vigil_detector_config tmp;
    return vigil_detector_level(vigil_monitor_node_detector(m, n, &tmp), &n->det, now);
}

const struct vigil_monitor_config *vigil_monitor_config(const struct vigil_monitor *m)
{
    return &m->cfg;
}

const struct vigil_monitor_stats *vigil_monitor_stats(const struct vigil_monitor *m)
{
    return &m->stats;
}

size_t vigil_monitor_memory(const struct vigil_monitor *m)
{
    return m->mem;
}

/*
 * The state store on SQLite (vio.h, vio_store): one database file,
 * STATE_DIR/vigil.db, in WAL mode.
 *
 * Why these settings:
 *
 *   journal_mode WAL   a commit appends to the write-ahead log instead of
 *                      rewriting pages twice, and readers (an operator's
 *                      `sqlite3 vigil.db .backup`) never block the monitor.
 *   synchronous FULL   each commit is on disk when write returns: an event
 *                      the API served is never lost, even to a power cut,
 *                      so its sequence number is never handed out again.
 *                      The monitor commits at most once per loop turn that
 *                      produced events, plus once per state_flush, so the
 *                      fsyncs are few.
 *   a lock file        two monitors on one directory would interleave their
 *                      sequence numbers; the second is refused. flock goes
 *                      with the process, so a SIGKILL leaves no stale lock.
 *
 * Numbers are 64-bit unsigned in vigil and signed in SQLite: they are
 * stored as the signed integer with the same bits and read back the same
 * way, so every value survives the round trip (ordering by seq is only
 * used below 2^63, which a monitor numbering a million events a second
 * reaches in 292,000 years).
 *
 * The schema has a version (PRAGMA user_version); a database of another
 * version is refused rather than guessed at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "io/vio.h"

#define STORE_SCHEMA_VERSION 1
/* How long a statement waits for a lock held by a reader's checkpoint (a backup). */
#define STORE_BUSY_MS 2000

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS nodes ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " generation INTEGER NOT NULL,"
    " sequence INTEGER NOT NULL,"
    " interval_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY NOT NULL,"
    " wall_us INTEGER NOT NULL,"
    " node TEXT NOT NULL,"
    " json TEXT NOT NULL"
    ");"
    "CREATE TABLE IF NOT EXISTS outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " created_us INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " state TEXT NOT NULL"
    ");"
    "CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, id);"
    /* The largest event sequence number ever handed out, kept when events are pruned. */
    "CREATE TABLE IF NOT EXISTS meta ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " value INTEGER NOT NULL"
    ") WITHOUT ROWID;";

enum {
    ST_NODE_PUT,
    ST_EVENT_ADD,
    ST_META_SEQ,
    ST_NODES,
    ST_EVENTS,
    ST_LAST_SEQ,
    ST_OUTBOX_ADD,
    ST_OUTBOX_SET,
    ST_OUTBOX_LIST,
    ST_OUTBOX_LIST_ALL,
    ST_OUTBOX_PURGE,
    ST_COUNT
};

static const char *const sql[ST_COUNT] = {
    [ST_NODE_PUT] = "INSERT OR REPLACE INTO nodes(id, generation, sequence, interval_ms, state) "
                    "VALUES (?, ?, ?, ?, ?)",
    [ST_EVENT_ADD] = "INSERT INTO events(seq, wall_us, node, json) VALUES (?, ?, ?, ?)",
    [ST_META_SEQ] = "INSERT INTO meta(key, value) VALUES ('last_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
    [ST_NODES] = "SELECT id, generation, sequence, interval_ms, state FROM nodes ORDER BY id",
    [ST_EVENTS] = "SELECT seq, wall_us, node, json FROM "
                  "(SELECT * FROM events WHERE seq > ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
    [ST_LAST_SEQ] = "SELECT max(coalesce((SELECT max(seq) FROM events), 0),"
                    " coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0))",
    [ST_OUTBOX_ADD] = "INSERT INTO outbox(created_us, kind, payload, state) "
                      "VALUES (?, ?, ?, 'pending')",
    [ST_OUTBOX_SET] = "UPDATE outbox SET state = ? WHERE id = ?",
    [ST_OUTBOX_LIST] = "SELECT id, created_us, kind, payload, state FROM outbox WHERE state = ? "
                       "ORDER BY id",
    [ST_OUTBOX_LIST_ALL] = "SELECT id, created_us, kind, payload, state FROM outbox ORDER BY id",
    [ST_OUTBOX_PURGE] = "DELETE FROM outbox WHERE state = ?",
};

struct store {
    struct vio_store base;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int lock_fd;
    char err[256];
};

static int fail(struct store *s, const char *what)
{
    snprintf(s->err, sizeof(s->err), "%s: %s", what, sqlite3_errmsg(s->db));
    return -EIO;
}

static int exec(struct store *s, const char *q)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, q, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(s->err, sizeof(s->err), "%s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static sqlite3_stmt *stmt(struct store *s, int i)
{
    sqlite3_reset(s->st[i]);
    sqlite3_clear_bindings(s->st[i]);
    return s->st[i];
}

/* Steps a statement that returns no rows. */
static int run(struct store *s, sqlite3_stmt *q, const char *what)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return fail(s, what);
    return 0;
}

static const char *text(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return t ? (const char *)t : "";
}

static int st_write(struct vio_store *vs, const struct vio_store_batch *b)
{
    struct store *s = (struct store *)vs;
    if (b->n_events == 0 && b->n_nodes == 0)
        return 0;
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    uint64_t top = 0;
    for (size_t i = 0; i < b->n_events && !rc; i++) {
        const struct vio_store_event *e = &b->events[i];
        sqlite3_stmt *q = stmt(s, ST_EVENT_ADD);
        sqlite3_bind_int64(q, 1, (sqlite3_int64)e->seq);
        sqlite3_bind_int64(q, 2, e->wall_us);
        sqlite3_bind_text(q, 3, e->node ? e->node : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, e->json, -1, SQLITE_STATIC);
        rc = run(s, q, "appending an event");
        if (e->seq > top)
            top = e->seq;
    }
    if (!rc && b->n_events) {
        sqlite3_stmt *q = stmt(s, ST_META_SEQ);
        sqlite3_bind_int64(q, 1, (sqlite3_int64)top);
        rc = run(s, q, "noting the last sequence number");
    }
    for (size_t i = 0; i < b->n_nodes && !rc; i++) {
        const struct vio_store_node *n = &b->nodes[i];
        sqlite3_stmt *q = stmt(s, ST_NODE_PUT);
        sqlite3_bind_text(q, 1, n->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)n->generation);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)n->sequence);
        sqlite3_bind_int64(q, 4, n->interval_ms);
        sqlite3_bind_text(q, 5, vigil_state_name(n->state), -1, SQLITE_STATIC);
        rc = run(s, q, "writing a node");
    }
    if (!rc)
        return exec(s, "COMMIT");
    /* The statement's error is kept; the rollback's own outcome adds nothing. */
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int st_nodes(struct vio_store *vs, vio_store_node_fn fn, void *arg)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, ST_NODES);
    int rc, out = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int st = vigil_state_parse(text(q, 4));
        sqlite3_int64 iv = sqlite3_column_int64(q, 3);
        struct vio_store_node n = {
            .id = text(q, 0),
            .generation = (uint64_t)sqlite3_column_int64(q, 1),
            .sequence = (uint64_t)sqlite3_column_int64(q, 2),
            .interval_ms = iv < 0 || iv > UINT32_MAX ? 0 : (uint32_t)iv,
            .state = st < 0 ? VIGIL_STATE_UNKNOWN : (enum vigil_state)st,
        };
        if ((out = fn(arg, &n)) != 0)
            break;
    }
    sqlite3_reset(q);
    if (out)
        return out;
    return rc == SQLITE_DONE ? 0 : fail(s, "reading the nodes");
}

static int st_events(struct vio_store *vs, uint64_t after, size_t max, vio_store_event_fn fn,
                     void *arg)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, ST_EVENTS);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(q, 2, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    int rc, out = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct vio_store_event e = {
            .seq = (uint64_t)sqlite3_column_int64(q, 0),
            .wall_us = sqlite3_column_int64(q, 1),
            .node = text(q, 2),
            .json = text(q, 3),
        };
        if ((out = fn(arg, &e)) != 0)
            break;
    }
    sqlite3_reset(q);
    if (out)
        return out;
    return rc == SQLITE_DONE ? 0 : fail(s, "reading the events");
}

static int st_last_seq(struct vio_store *vs, uint64_t *out)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, ST_LAST_SEQ);
    int rc = sqlite3_step(q);
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 0 : fail(s, "reading the last sequence number");
}

static int st_outbox_add(struct vio_store *vs, int64_t created_us, const char *kind,
                         const char *payload, int64_t *id)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, ST_OUTBOX_ADD);
    sqlite3_bind_int64(q, 1, created_us);
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, payload, -1, SQLITE_STATIC);
    int rc = run(s, q, "adding to the outbox");
    if (!rc && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int st_outbox_set(struct vio_store *vs, int64_t id, const char *state)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, ST_OUTBOX_SET);
    sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, id);
    int rc = run(s, q, "updating the outbox");
    if (!rc && sqlite3_changes(s->db) == 0)
        return snprintf(s->err, sizeof(s->err), "no outbox entry %lld", (long long)id), -ENOENT;
    return rc;
}

static int st_outbox_list(struct vio_store *vs, const char *state, vio_store_outbox_fn fn,
                          void *arg)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, state ? ST_OUTBOX_LIST : ST_OUTBOX_LIST_ALL);
    if (state)
        sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
    int rc, out = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct vio_store_outbox o = {
            .id = sqlite3_column_int64(q, 0),
            .created_us = sqlite3_column_int64(q, 1),
            .kind = text(q, 2),
            .payload = text(q, 3),
            .state = text(q, 4),
        };
        if ((out = fn(arg, &o)) != 0)
            break;
    }
    sqlite3_reset(q);
    if (out)
        return out;
    return rc == SQLITE_DONE ? 0 : fail(s, "reading the outbox");
}

static int st_outbox_purge(struct vio_store *vs, const char *state, size_t *n)
{
    struct store *s = (struct store *)vs;
    sqlite3_stmt *q = stmt(s, ST_OUTBOX_PURGE);
    sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
    int rc = run(s, q, "purging the outbox");
    if (n)
        *n = rc ? 0 : (size_t)sqlite3_changes(s->db);
    return rc;
}

static const char *st_error(const struct vio_store *vs)
{
    return ((const struct store *)vs)->err;
}

static void st_close(struct vio_store *vs)
{
    struct store *s = (struct store *)vs;
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    /* The last connection to close checkpoints the log into the database. */
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
}

static const struct vio_store_ops store_ops = {
    .write = st_write,
    .nodes = st_nodes,
    .events = st_events,
    .last_seq = st_last_seq,
    .outbox_add = st_outbox_add,
    .outbox_set = st_outbox_set,
    .outbox_list = st_outbox_list,
    .outbox_purge = st_outbox_purge,
    .error = st_error,
    .close = st_close,
};

/* Creates path (owner-only) if missing, so that SQLite and its log files inherit the mode. */
static int touch_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

int vio_store_sqlite_open(const char *dir, struct vio_store **out, char *err, size_t cap)
{
    *out = NULL;
    char path[4096];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, cap, "%s: cannot create: %s", dir, strerror(e));
        return -e;
    }
    struct store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    s->base.ops = &store_ops;
    s->lock_fd = -1;
    int rc;
    snprintf(path, sizeof(path), "%s/vigil.lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        rc = -errno;
        snprintf(err, cap, "%s: %s", path, strerror(-rc));
        goto bad;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        snprintf(err, cap, "%s: %s", dir,
                 rc == -EWOULDBLOCK ? "in use by another process (a monitor runs on it)"
                                    : strerror(-rc));
        goto bad;
    }
    snprintf(path, sizeof(path), "%s/vigil.db", dir);
    if ((rc = touch_private(path)) != 0) {
        snprintf(err, cap, "%s: %s", path, strerror(-rc));
        goto bad;
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, cap, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        rc = -EIO;
        goto bad;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    rc = exec(s, "PRAGMA journal_mode = WAL");
    if (!rc)
        rc = exec(s, "PRAGMA synchronous = FULL");
    if (!rc)
        rc = exec(s, "PRAGMA foreign_keys = OFF");
    sqlite3_stmt *q = NULL;
    int version = -1;
    if (!rc && sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (!rc && version < 0)
        rc = fail(s, "reading the schema version");
    if (!rc && version != 0 && version != STORE_SCHEMA_VERSION) {
        snprintf(s->err, sizeof(s->err), "schema version %d, this vigil knows %d", version,
                 STORE_SCHEMA_VERSION);
        rc = -EPROTO;
    }
    if (!rc && version == 0) {
        rc = exec(s, "BEGIN IMMEDIATE");
        if (!rc)
            rc = exec(s, schema);
        if (!rc)
            rc = exec(s, "PRAGMA user_version = 1");
        if (!rc)
            rc = exec(s, "COMMIT");
    }
    for (int i = 0; i < ST_COUNT && !rc; i++)
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK)
            rc = fail(s, sql[i]);
    if (rc) {
        snprintf(err, cap, "%s: %s", path, s->err);
        goto bad;
    }
    *out = &s->base;
    return 0;
bad:
    st_close(&s->base);
    return rc;
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holds.h"

/* A penalty below this is forgotten (with no maintenance, the record goes). */
#define HOLDS_FORGET 1.0

static const char *rec_id(const void *ctx, uint32_t i)
{
    return ((const struct holds *)ctx)->recs[i].node;
}

static double decayed(const struct holds *h, const struct hold_rec *r, vigil_time_t now)
{
    if (r->penalty <= 0 || now <= r->at || h->o.half_life <= 0)
        return r->penalty;
    return r->penalty * exp2(-(double)(now - r->at) / (double)h->o.half_life);
}

static struct hold_rec *find(const struct holds *h, const char *node)
{
    uint32_t i = vigil__idtable_find(&h->ids, node, strlen(node), rec_id);
    return i == VIGIL__IDTABLE_NONE ? NULL : &h->recs[i];
}

static struct hold_rec *get(struct holds *h, const char *node)
{
    struct hold_rec *r = find(h, node);
    if (r)
        return r;
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        struct hold_rec *n = realloc(h->recs, (size_t)cap * sizeof(*n));
        if (!n)
            return NULL;
        h->recs = n;
        h->cap = cap;
    }
    r = &h->recs[h->n];
    memset(r, 0, sizeof(*r));
    snprintf(r->node, sizeof(r->node), "%s", node);
    if (vigil__idtable_insert(&h->ids, r->node, strlen(r->node), h->n) != 0)
        return NULL;
    h->n++;
    return r;
}

static void drop(struct holds *h, struct hold_rec *r)
{
    uint32_t i = (uint32_t)(r - h->recs);
    vigil__idtable_remove_slot(&h->ids,
                               vigil__idtable_slot(&h->ids, r->node, strlen(r->node), rec_id));
    if (i != h->n - 1) {
        h->recs[i] = h->recs[h->n - 1];
        vigil__idtable_set(
            vigil__idtable_slot(&h->ids, h->recs[i].node, strlen(h->recs[i].node), rec_id), i);
    }
    h->n--;
}

/* When r's hold ends by itself (VIGIL_TIME_NEVER: not by itself). */
static vigil_time_t ends_at(const struct holds *h, const struct hold_rec *r)
{
    vigil_time_t t = VIGIL_TIME_NEVER;
    if (r->maint_until > 0)
        t = r->maint_until;
    if (r->flapping && r->penalty > 0 && h->o.half_life > 0) {
        double halvings = log2(r->penalty / h->o.reuse);
        vigil_time_t f = r->at + (halvings > 0 ? (vigil_time_t)(halvings * h->o.half_life) : 0) + 1;
        if (f < t)
            t = f;
    }
    return t;
}

static void arm(struct holds *h)
{
    vigil_time_t next = VIGIL_TIME_NEVER;
    for (uint32_t i = 0; i < h->n; i++) {
        vigil_time_t t = ends_at(h, &h->recs[i]);
        if (t < next)
            next = t;
    }
    if (next == VIGIL_TIME_NEVER)
        vio_timer_disarm(h->loop, &h->timer);
    else
        vio_timer_arm(h->loop, &h->timer, next);
}

static void on_timer(void *arg, vigil_time_t now)
{
    struct holds *h = arg;
    /* Ends are reported after the walk: a report may call back into h. */
    char(*ended)[VIGIL_ID_MAX + 1] = calloc(h->n ? 2 * h->n : 1, sizeof(*ended));
    const char **what = calloc(h->n ? 2 * h->n : 1, sizeof(*what));
    size_t k = 0;
    for (uint32_t i = 0; i < h->n;) {
        struct hold_rec *r = &h->recs[i];
        r->penalty = decayed(h, r, now);
        r->at = now;
        if (r->maint_until > 0 && r->maint_until <= now) {
            r->maint_until = 0;
            if (ended && what) {
                memcpy(ended[k], r->node, sizeof(ended[k]));
                what[k++] = "maintenance off";
            }
        }
        if (r->flapping && r->penalty < h->o.reuse) {
            r->flapping = false;
            if (ended && what) {
                memcpy(ended[k], r->node, sizeof(ended[k]));
                what[k++] = "settled";
            }
        }
        if (!r->flapping && r->maint_until == 0 && r->penalty < HOLDS_FORGET) {
            drop(h, r);
            continue;
        }
        i++;
    }
    arm(h);
    for (size_t i = 0; i < k; i++)
        h->change(h->arg, ended[i], what[i]);
    free(ended);
    free(what);
}

int holds_init(struct holds *h, struct vio_loop *loop, const struct holds_opts *o,
               holds_change_fn change, void *arg)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->o = *o;
    h->change = change;
    h->arg = arg;
    vio_timer_init(&h->timer, on_timer, h);
    return vigil__idtable_init(&h->ids, 16, NULL, NULL, rec_id, h);
}

void holds_destroy(struct holds *h)
{
    vio_timer_disarm(h->loop, &h->timer);
    vigil__idtable_destroy(&h->ids);
    free(h->recs);
    h->recs = NULL;
    h->n = h->cap = 0;
}

void holds_set_opts(struct holds *h, const struct holds_opts *o)
{
    h->o = *o;
    arm(h);
}

void holds_note(struct holds *h, const struct evrec *e)
{
    const struct vigil_event *ev = &e->ev;
    if (!h->o.damping || ev->type != VIGIL_EVENT_STATE)
        return;
    if (ev->new_state != VIGIL_STATE_DEAD && ev->old_state != VIGIL_STATE_DEAD)
        return; /* alive <-> suspect is jitter, not a flap */
    if (ev->old_state == VIGIL_STATE_UNKNOWN)
        return; /* declared, never heard: a first verdict, not a change */
    struct hold_rec *r = get(h, ev->node);
    if (!r)
        return;
    vigil_time_t now = vio_now(h->loop);
    r->penalty = decayed(h, r, now) + h->o.penalty;
    r->at = now;
    if (!r->flapping && r->penalty >= h->o.suppress) {
        r->flapping = true;
        arm(h);
        h->change(h->arg, r->node, "flapping");
    } else if (r->flapping) {
        arm(h);
    } else if (!vio_timer_armed(&h->timer)) {
        /* Forgotten in time: the timer tidies records that decayed. */
        vio_timer_arm(h->loop, &h->timer, now + 10 * h->o.half_life);
    }
}

const char *holds_reason(const struct holds *h, const char *node)
{
    const struct hold_rec *r = find(h, node);
    if (!r)
        return NULL;
    if (r->maint_until > 0)
        return "maintenance";
    if (r->flapping)
        return "flapping";
    return NULL;
}

int holds_maint(struct holds *h, const char *node, vigil_time_t until)
{
    struct hold_rec *r = until ? get(h, node) : find(h, node);
    if (!r)
        return until ? -VIGIL_ENOMEM : 0;
    bool was = r->maint_until > 0;
    r->maint_until = until;
    arm(h);
    if (was != (until > 0))
        h->change(h->arg, r->node, until ? "maintenance on" : "maintenance off");
    return 0;
}

struct hold_rec *holds_find(struct holds *h, const char *node)
{
    return find(h, node);
}

double holds_penalty(const struct holds *h, const char *node)
{
    const struct hold_rec *r = find(h, node);
    return r ? decayed(h, r, vio_now(h->loop)) : 0;
}

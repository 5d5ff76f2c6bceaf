/*
 * The part of every event loop that does not depend on the world: timers
 * in a binary heap ordered by (time, arming order), the list of ready
 * sources, the signal handler, and one turn of dispatch.
 *
 * A turn runs the ready sources first and the due timers after them. For
 * the monitor this order is the point: a heartbeat that reached the host
 * before a node's deadline is read (with the kernel's arrival time) before
 * the deadline is judged, however late the loop got round to either.
 *
 * Equal times fire in arming order (libuv's timer ids, tarantool's fake
 * loop), so a simulated run is the same on every machine.
 *
 * A source may cancel, and free, another that is ready in the same turn
 * (an HTTP client forgets one socket while handling another), and a loop
 * stopped in the middle of a turn keeps the sources that had not run for
 * its next run (a command line tool runs the loop once per request).
 */
#include <stdlib.h>
#include <string.h>

#include "io/vio.h"

static bool timer_before(const struct vio_timer *a, const struct vio_timer *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_place(struct vio_loop *l, struct vio_timer *t, size_t i)
{
    l->heap[i] = t;
    t->slot = i;
}

static void sift_up(struct vio_loop *l, size_t i)
{
    struct vio_timer *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_before(t, l->heap[p]))
            break;
        heap_place(l, l->heap[p], i);
        i = p;
    }
    heap_place(l, t, i);
}

static void sift_down(struct vio_loop *l, size_t i)
{
    struct vio_timer *t = l->heap[i];
    size_t n = l->n_timers;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && timer_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_before(l->heap[c], t))
            break;
        heap_place(l, l->heap[c], i);
        i = c;
    }
    heap_place(l, t, i);
}

static void heap_remove(struct vio_loop *l, struct vio_timer *t)
{
    size_t i = t->slot;
    struct vio_timer *last = l->heap[--l->n_timers];
    t->slot = VIO_NOT_ARMED;
    if (last == t)
        return;
    heap_place(l, last, i);
    if (i > 0 && timer_before(last, l->heap[(i - 1) / 2]))
        sift_up(l, i);
    else
        sift_down(l, i);
}

void vio_loop_base_init(struct vio_loop *l, const struct vio_loop_ops *ops)
{
    memset(l, 0, sizeof(*l));
    l->ops = ops;
}

void vio_loop_base_destroy(struct vio_loop *l)
{
    for (size_t i = 0; i < l->n_timers; i++)
        l->heap[i]->slot = VIO_NOT_ARMED;
    free(l->heap);
    l->heap = NULL;
    l->n_timers = l->cap_timers = 0;
}

void vio_timer_init(struct vio_timer *t, vio_timer_fn fn, void *arg)
{
    memset(t, 0, sizeof(*t));
    t->slot = VIO_NOT_ARMED;
    t->fn = fn;
    t->arg = arg;
}

int vio_timer_arm(struct vio_loop *l, struct vio_timer *t, vigil_time_t at)
{
    if (t->slot != VIO_NOT_ARMED) {
        /* Moving it keeps its place among equals only if the time is unchanged. */
        if (t->at == at)
            return 0;
        heap_remove(l, t);
    }
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? l->cap_timers * 2 : 16;
        struct vio_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            return -VIGIL_ENOMEM;
        l->heap = h;
        l->cap_timers = cap;
    }
    t->at = at;
    t->order = l->order++;
    l->heap[l->n_timers] = t;
    t->slot = l->n_timers++;
    sift_up(l, t->slot);
    return 0;
}

void vio_timer_disarm(struct vio_loop *l, struct vio_timer *t)
{
    if (t->slot != VIO_NOT_ARMED)
        heap_remove(l, t);
}

void vio_source_init(struct vio_source *s, vio_source_fn fn, void *arg)
{
    memset(s, 0, sizeof(*s));
    s->fn = fn;
    s->arg = arg;
}

void vio_source_ready(struct vio_loop *l, struct vio_source *s)
{
    if (s->ready)
        return;
    s->ready = true;
    s->next_ready = NULL;
    if (l->ready_tail)
        l->ready_tail->next_ready = s;
    else
        l->ready_head = s;
    l->ready_tail = s;
}

/* Unlinks s from the list head..tail; returns whether it was there. */
static bool list_unlink(struct vio_source **head, struct vio_source **tail, struct vio_source *s)
{
    struct vio_source **pp = head, *prev = NULL;
    while (*pp && *pp != s) {
        prev = *pp;
        pp = &(*pp)->next_ready;
    }
    if (!*pp)
        return false;
    *pp = s->next_ready;
    if (*tail == s)
        *tail = prev;
    return true;
}

void vio_source_cancel(struct vio_loop *l, struct vio_source *s)
{
    if (!s->ready)
        return;
    /* Ready for the next turn, or for this one and not yet run (a source may cancel another). */
    if (!list_unlink(&l->ready_head, &l->ready_tail, s))
        list_unlink(&l->turn_head, &l->turn_tail, s);
    s->ready = false;
    s->next_ready = NULL;
}

void vio_loop_on_signal(struct vio_loop *l, vio_signal_fn fn, void *arg)
{
    l->on_signal = fn;
    l->signal_arg = arg;
}

void vio_loop_signal(struct vio_loop *l, int signo)
{
    if (l->on_signal)
        l->on_signal(l->signal_arg, signo);
}

vigil_time_t vio_loop_next(const struct vio_loop *l, vigil_time_t now)
{
    if (l->ready_head)
        return now;
    return l->n_timers ? l->heap[0]->at : VIGIL_TIME_NEVER;
}

void vio_loop_dispatch(struct vio_loop *l, vigil_time_t now)
{
    /*
     * The sources ready at the start of the turn; any made ready while
     * they run (a source that re-arms itself after a full batch) go on the
     * next turn, so a flood on one cannot starve the timers. The turn's
     * list lives in the loop, so that a source can cancel (and free)
     * another that has not run yet.
     */
    l->turn_head = l->ready_head;
    l->turn_tail = l->ready_tail;
    l->ready_head = l->ready_tail = NULL;
    struct vio_source *s;
    while ((s = l->turn_head)) {
        l->turn_head = s->next_ready;
        if (!l->turn_head)
            l->turn_tail = NULL;
        s->ready = false;
        s->next_ready = NULL;
        s->fn(s->arg, now);
        if (l->stop) {
            /* What has not run goes first on the next turn, still marked ready. */
            if (l->turn_head) {
                l->turn_tail->next_ready = l->ready_head;
                if (!l->ready_head)
                    l->ready_tail = l->turn_tail;
                l->ready_head = l->turn_head;
                l->turn_head = l->turn_tail = NULL;
            }
            return;
        }
    }
    /*
     * Due timers, each at most once per turn: one that re-arms itself at
     * or before now waits for the next turn.
     */
    uint64_t horizon = l->order;
    while (l->n_timers && l->heap[0]->at <= now && l->heap[0]->order < horizon) {
        struct vio_timer *t = l->heap[0];
        heap_remove(l, t);
        t->fn(t->arg, now);
        if (l->stop)
            return;
    }
}

int vio_loop_run(struct vio_loop *l)
{
    while (!l->stop) {
        vigil_time_t now = vio_now(l);
        vigil_time_t next = vio_loop_next(l, now);
        /*
         * Wait until the next timer; with work already in hand (a source
         * that made itself ready again, a timer due) only look, without
         * waiting, at what became ready meanwhile: a socket must get its
         * turn even while other work keeps the loop busy.
         */
        int rc = l->ops->wait(l, next > now ? next : now);
        if (rc < 0) {
            l->stop = false;
            return rc;
        }
        if (l->stop)
            break;
        vio_loop_dispatch(l, vio_now(l));
    }
    l->stop = false;
    return 0;
}

void vio_loop_stop(struct vio_loop *l)
{
    l->stop = true;
}

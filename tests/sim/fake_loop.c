/* The fake event loop: see fake_loop.h. */
#include <stdlib.h>

#include "fake_loop.h"

/* Turns one run_until may take: a loop that re-arms at the same time forever is a bug. */
#define FAKE_LOOP_MAX_TURNS 100000000

struct fake_loop {
    struct vio_loop base;
    vigil_time_t *clock;
    int64_t wall_base_us;
    bool paused;
};

static vigil_time_t fl_now(struct vio_loop *l)
{
    return *((struct fake_loop *)l)->clock;
}

static int64_t fl_wall_us(struct vio_loop *l)
{
    struct fake_loop *f = (struct fake_loop *)l;
    return f->wall_base_us + *f->clock / 1000;
}

static int fl_wait(struct vio_loop *l, vigil_time_t until)
{
    (void)l;
    (void)until;
    return -VIGIL_EINVAL; /* stepped, never waited on */
}

static int fl_watch_fd(struct vio_loop *l, int fd, struct vio_source *src)
{
    (void)l;
    (void)fd;
    (void)src;
    return -VIGIL_EINVAL;
}

static int fl_watch_fd_events(struct vio_loop *l, int fd, unsigned events, struct vio_source *src)
{
    (void)l;
    (void)fd;
    (void)events;
    (void)src;
    return -VIGIL_EINVAL;
}

static void fl_unwatch_fd(struct vio_loop *l, int fd)
{
    (void)l;
    (void)fd;
}

static void fl_destroy(struct vio_loop *l)
{
    vio_loop_base_destroy(l);
    free(l);
}

static const struct vio_loop_ops fake_ops = {
    .now = fl_now,
    .wall_us = fl_wall_us,
    .wait = fl_wait,
    .watch_fd = fl_watch_fd,
    .watch_fd_events = fl_watch_fd_events,
    .unwatch_fd = fl_unwatch_fd,
    .destroy = fl_destroy,
};

struct vio_loop *fake_loop_new(vigil_time_t *clock)
{
    struct fake_loop *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    vio_loop_base_init(&f->base, &fake_ops);
    f->clock = clock;
    f->wall_base_us = INT64_C(1800000000000000);
    return &f->base;
}

void fake_loop_set_wall_base(struct vio_loop *l, int64_t wall_us)
{
    ((struct fake_loop *)l)->wall_base_us = wall_us;
}

void fake_loop_pause(struct vio_loop *l, bool paused)
{
    ((struct fake_loop *)l)->paused = paused;
}

bool fake_loop_paused(const struct vio_loop *l)
{
    return ((const struct fake_loop *)l)->paused;
}

vigil_time_t fake_loop_next(const struct vio_loop *l)
{
    const struct fake_loop *f = (const struct fake_loop *)l;
    if (f->paused || l->stop)
        return VIGIL_TIME_NEVER;
    return vio_loop_next(l, *f->clock);
}

void fake_loop_step(struct vio_loop *l)
{
    struct fake_loop *f = (struct fake_loop *)l;
    if (!f->paused && !l->stop)
        vio_loop_dispatch(l, *f->clock);
}

void fake_loop_run_until(struct vio_loop *l, vigil_time_t t)
{
    struct fake_loop *f = (struct fake_loop *)l;
    for (long i = 0; i < FAKE_LOOP_MAX_TURNS; i++) {
        vigil_time_t next = fake_loop_next(l);
        if (next > t)
            break;
        if (next > *f->clock)
            *f->clock = next;
        fake_loop_step(l);
    }
    if (*f->clock < t)
        *f->clock = t;
}

/*
 * A fake event loop on a virtual clock, for tests and the simulator.
 *
 * Its time is whatever *clock says: the test or the simulated world owns
 * the clock and advances it. Nothing waits: fake_loop_run_until() steps
 * the loop through every timer and ready source due up to a time, setting
 * the clock to each event's time as it goes. Several fake loops may share
 * one clock (several simulated processes); the world then steps the one
 * with the earliest next event (fake_loop_next).
 *
 * A loop can be paused (a SIGSTOPped process): it runs nothing until
 * resumed, then catches up at once, as a real process would.
 */
#ifndef VIGIL_SIM_FAKE_LOOP_H
#define VIGIL_SIM_FAKE_LOOP_H

#include "io/vio.h"

struct vio_loop *fake_loop_new(vigil_time_t *clock);
/* Wall clock microseconds at virtual time 0 (default 1.8e15, late 2027). */
void fake_loop_set_wall_base(struct vio_loop *l, int64_t wall_us);
/* Paused loops report VIGIL_TIME_NEVER as their next event. */
void fake_loop_pause(struct vio_loop *l, bool paused);
bool fake_loop_paused(const struct vio_loop *l);
/* The loop's next event, or VIGIL_TIME_NEVER (paused, or nothing to do). */
vigil_time_t fake_loop_next(const struct vio_loop *l);
/* One turn at *clock. */
void fake_loop_step(struct vio_loop *l);
/* Steps until nothing is due at or before t, then sets the clock to t. Bounded. */
void fake_loop_run_until(struct vio_loop *l, vigil_time_t t);

#endif

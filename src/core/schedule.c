/*
 * The heartbeat schedule of a sender.
 *
 * A sender beats on a fixed grid of absolute deadlines, start + k *
 * interval on the monotonic clock, rather than "interval after the last
 * beat". Relative sleeps drift: every beat adds the time spent sampling,
 * encoding and being scheduled, and over a day a 1 s heartbeat slides by
 * seconds. Absolute slots do not drift, and a monitor that learns the
 * rhythm (phi accrual) sees a steady one.
 *
 * When the sender falls behind (the process was stopped, the VM paused, the
 * machine swapped), it must not send a burst of the heartbeats it owes: a
 * burst tells the monitor nothing the first one did not, and distorts its
 * interval statistics. So after a beat the next deadline is the first slot
 * strictly after the present, and the missed slots are only counted. The
 * sender stays on its grid: the phase of its heartbeats never changes.
 *
 * Pure arithmetic, kept apart so it can be tested in virtual time.
 */
#include "core/schedule.h"

vigil_time_t vigil__sched_next(vigil_time_t start, vigil_time_t interval, vigil_time_t now)
{
    if (interval <= 0)
        return VIGIL_TIME_NEVER;
    if (now < start)
        return start;
    /*
     * Unsigned arithmetic: now - start and the room left below
     * VIGIL_TIME_NEVER are exact in 64 unsigned bits for any start, even a
     * negative one, where the signed expressions could overflow.
     */
    uint64_t elapsed = (uint64_t)now - (uint64_t)start;
    uint64_t room = (uint64_t)VIGIL_TIME_NEVER - (uint64_t)start;
    uint64_t k = elapsed / (uint64_t)interval + 1;
    if (k > room / (uint64_t)interval)
        return VIGIL_TIME_NEVER;
    return (vigil_time_t)((uint64_t)start + k * (uint64_t)interval);
}

uint64_t vigil__sched_missed(vigil_time_t due, vigil_time_t interval, vigil_time_t now)
{
    if (interval <= 0 || now <= due)
        return 0;
    return ((uint64_t)now - (uint64_t)due) / (uint64_t)interval;
}

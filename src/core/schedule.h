/*
 * The fixed heartbeat grid of a sender, as pure arithmetic: slots at
 * start + k * interval on the monotonic clock. Internal to libvigil.
 */
#ifndef VIGIL_CORE_SCHEDULE_H
#define VIGIL_CORE_SCHEDULE_H

#include <vigil/common.h>

/*
 * The first slot start + k * interval (k >= 0) that lies strictly after
 * now; start itself if now is before start. VIGIL_TIME_NEVER if interval
 * is not positive or the slot is not representable.
 */
vigil_time_t vigil__sched_next(vigil_time_t start, vigil_time_t interval, vigil_time_t now);

/*
 * How many whole slots went by unserved when a beat due at due happens at
 * now: 0 for a beat on time (or early), 3 for a wake-up 3.5 intervals late.
 * Those slots are skipped, not made up for.
 */
uint64_t vigil__sched_missed(vigil_time_t due, vigil_time_t interval, vigil_time_t now);

#endif

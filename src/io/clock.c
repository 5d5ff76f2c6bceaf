/*
 * The clocks libvigil reads, in its own units.
 *
 * Every decision about time (heartbeat deadlines, failure detection) uses
 * CLOCK_MONOTONIC: it never jumps when an administrator or NTP sets the
 * date. The wall clock is read only to stamp heartbeats for display and
 * one-way delay estimates. Both live here so the pure core never reads a
 * clock and tests can hand it any time they like.
 */
#include <time.h>

#include <vigil/sender.h>

/* Public (<vigil/sender.h>); marked here as that header does not mark it. */
vigil_time_t vigil_clock_mono(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (vigil_time_t)ts.tv_sec * VIGIL_NSEC_PER_SEC + ts.tv_nsec;
}

int64_t vigil_clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Microseconds: 1000000 per second, 1000 nanoseconds each. */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

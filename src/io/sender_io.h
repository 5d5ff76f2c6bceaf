/*
 * A vigil_sender whose clock, status sampling and datagrams go through the
 * caller instead of the OS: how vigil agent sends through the vio
 * interfaces (and so runs in the simulator). Internal to the program; the
 * public vigil_sender_new() is this with the real clock and UDP sockets.
 */
#ifndef VIGIL_IO_SENDER_IO_H
#define VIGIL_IO_SENDER_IO_H

#include <vigil/sender.h>

struct vigil__sender_io {
    vigil_time_t (*now)(void *arg);
    int64_t (*wall_us)(void *arg);
    /* Sends one datagram; 0 or -errno. */
    int (*send)(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len);
    /* Fills load, memory and uptime; 0 or a negative error. */
    int (*sample)(void *arg, struct vigil_status *st);
    void *arg;
};

/*
 * As vigil_sender_new, with the monitors given as n addresses (c's
 * monitors and n_monitors are ignored) and every OS call made through io
 * (copied; io->arg must outlive the sender).
 */
int vigil__sender_new_io(const struct vigil_sender_config *c, const struct vigil_addr *dests,
                         size_t n, const struct vigil__sender_io *io, struct vigil_sender **out);

#endif

/*
 * The real implementations of the vio interfaces (src/io/vio.h), for the
 * program's main and for tests that prove them against the OS. The daemon
 * code sees only struct vio_env; nothing outside src/io includes this.
 */
#ifndef VIGIL_IO_REAL_H
#define VIGIL_IO_REAL_H

#include <stdio.h>

#include "io/vio.h"

/*
 * The epoll loop. Blocks SIGTERM, SIGINT, SIGHUP and SIGCHLD in the calling
 * thread (create it before any other thread, so they inherit the mask) and
 * takes them through a signalfd: TERM, INT and HUP go to the loop's signal
 * handler; CHLD marks child_source ready (the process runner's reaper).
 */
int vio_loop_epoll_new(struct vio_loop **out);
void vio_loop_epoll_set_child_source(struct vio_loop *l, struct vio_source *src);

/* UDP sockets: recvmmsg/sendmmsg, kernel receive timestamps. */
extern struct vio_net vio_net_udp;

/*
 * Child processes with posix_spawnp, reaped on SIGCHLD through the loop: l
 * must be an epoll loop (it becomes l's child source; one per loop). Sets
 * SIGPIPE to ignored if it is at its default, since the children's input
 * is written through pipes. Free it before the loop; children not released
 * by then keep running, unwatched. The status an exit reports is -1 when
 * it was lost (the child was reaped by someone else).
 */
int vio_procs_real_new(struct vio_loop *l, struct vio_procs **out);
void vio_procs_real_free(struct vio_procs *p);

/*
 * The log on a file (appended, close-on-exec; path NULL: standard output),
 * written by a thread of its own through a 4 MB buffer. Open it after the
 * epoll loop (vio_loop_epoll_new) has blocked the signals the loop reads:
 * the thread inherits the mask, and a thread without it would take SIGTERM
 * or SIGCHLD away from the signalfd. Returns 0, or -errno with err set.
 * When close returns -1 (the writer is stuck), the program must not flush
 * or close standard output or the file itself: it should leave with _exit.
 */
int vio_log_real_open(const char *path, struct vio_log **out, char *err, size_t cap);
/*
 * The same on a stream the caller opened, with a buffer of cap bytes; the
 * log closes out when own (and it was not left stuck). For tests.
 */
int vio_log_real_stream(FILE *out, bool own, size_t cap, struct vio_log **lg);

/* libmicrohttpd, driven from the loop (HTTPS when opts names a certificate and key). */
int vio_httpd_mhd_open(struct vio_loop *l, const struct vio_httpd_opts *opts,
                       vio_http_handler handler, void *arg, struct vio_httpd **out, char *err,
                       size_t cap);

/* libcurl's multi interface, driven from the loop. */
int vio_http_curl_new(struct vio_loop *l, struct vio_http **out);

/*
 * The service manager's notifications (sd_notify; notify_real.c) and its
 * watchdog, kept fed by a timer on l between READY=1 and STOPPING=1. Free
 * it before the loop.
 */
struct vio_notifier;
int vio_notifier_new(struct vio_loop *l, struct vio_notifier **out);
void vio_notifier_send(struct vio_notifier *n, const char *state);
void vio_notifier_free(struct vio_notifier *n);

#endif

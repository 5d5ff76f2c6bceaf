/*
 * The real implementations of the vio interfaces (src/io/vio.h), for the
 * program's main and for tests that prove them against the OS. The daemon
 * code sees only struct vio_env; nothing outside src/io includes this.
 */
#ifndef VIGIL_IO_REAL_H
#define VIGIL_IO_REAL_H

#include "io/vio.h"

/*
 * The epoll loop. Blocks SIGTERM, SIGINT, SIGHUP and SIGCHLD in the calling
 * thread (create it before any other thread, so they inherit the mask) and
 * takes them through a signalfd: TERM, INT and HUP go to the loop's signal
 * handler; CHLD marks child_source ready (the process runner's reaper).
 */
int vio_loop_epoll_new(struct vio_loop **out);
void vio_loop_epoll_set_child_source(struct vio_loop *l, struct vio_source *src);
/*
 * The loop's epoll descriptor: readable when a watched descriptor is ready.
 * For a program that still waits in a loop of its own: it waits on this
 * too, and when it is readable (or a timer of this loop is due, see
 * vio_loop_next) calls l->ops->wait(l, 0) (no waiting) and
 * vio_loop_dispatch(l, vio_now(l)).
 */
int vio_loop_epoll_fd(const struct vio_loop *l);

/* UDP sockets: recvmmsg/sendmmsg, kernel receive timestamps. */
extern struct vio_net vio_net_udp;

/* Child processes with posix_spawnp, reaped on SIGCHLD through the loop. */
int vio_procs_real_new(struct vio_loop *l, struct vio_procs **out);
void vio_procs_real_free(struct vio_procs *p);

/* The log on a file or standard output, written by a thread of its own. */
int vio_log_real_open(const char *path, struct vio_log **out, char *err, size_t cap);

/* libmicrohttpd, driven from the loop. */
int vio_httpd_mhd_open(struct vio_loop *l, const char *addr, vio_http_handler handler, void *arg,
                       struct vio_httpd **out, char *err, size_t cap);

/* libcurl's multi interface, driven from the loop. */
int vio_http_curl_new(struct vio_loop *l, struct vio_http **out);

#endif

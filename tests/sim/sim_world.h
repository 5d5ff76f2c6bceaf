/*
 * A simulated world for whole vigil programs: one virtual clock, a
 * simulated network, and simulated processes, each with its own fake event
 * loop and a fake vio environment (src/io/vio.h). The real monitor and agent
 * daemons (monitord, agentd) run on them unchanged, hundreds in one test
 * process, deterministically: every random choice comes from the world's
 * seeded generator, and equal times are served in a fixed order, so a run
 * replays exactly from its seed.
 *
 * The network delivers each datagram after a delay (a base, uniform
 * jitter, and rare long spikes, which also reorder), drops it with the
 * loss probability, duplicates it now and then, and drops everything to or
 * from a process that is cut off (a partition). A delivered datagram waits
 * in the receiving transport's queue (a socket buffer of bounded size,
 * overflow dropped and counted) stamped with its delivery time, as the
 * kernel stamps it, until the process reads it. A paused process (SIGSTOP)
 * runs nothing, and its datagrams wait for it; a killed one (SIGKILL)
 * stops for good and its addresses swallow what is sent to them.
 *
 * Each process also has fake child processes (fake_procs.h) for its hooks,
 * an HTTP server that tests call directly (fake_http.h), an HTTP client
 * that nothing answers unless a test says so, an in-memory file system
 * and an in-memory log.
 *
 * Addresses are 127.x.y.z, so nothing in a simulation could ever name a
 * real host.
 */
#ifndef VIGIL_SIM_WORLD_H
#define VIGIL_SIM_WORLD_H

#include "io/vio.h"

struct sim_world;
struct sim_proc;

struct sim_net_model {
    double loss;         /* probability a datagram is lost */
    double dup;          /* probability it is delivered twice */
    vigil_time_t delay;  /* base one-way delay */
    vigil_time_t jitter; /* plus uniform [0, jitter) */
    double spike_p;      /* probability of a delay spike */
    vigil_time_t spike;  /* plus uniform [0, spike) on a spike */
};

struct sim_net_stats {
    uint64_t sent, delivered, lost, duplicated, cut, no_listener, overflow;
};

struct sim_world *sim_world_new(uint64_t seed);
void sim_world_free(struct sim_world *w);
vigil_time_t sim_now(const struct sim_world *w);
uint64_t sim_rand(struct sim_world *w);
/* A uniform double in [0, 1). */
double sim_unit(struct sim_world *w);
void sim_world_set_model(struct sim_world *w, const struct sim_net_model *m);
const struct sim_net_stats *sim_world_stats(const struct sim_world *w);
/*
 * A tap told of every datagram the network puts in a reader's queue (what
 * the reader will see, with its arrival time); lost, cut and overflowed
 * datagrams are not reported. Tests use it to know what a node really sent
 * through. NULL removes it.
 */
typedef void (*sim_tap_fn)(void *arg, const struct vigil_addr *from, const struct vigil_addr *to,
                           vigil_time_t arrival);
void sim_world_set_tap(struct sim_world *w, sim_tap_fn fn, void *arg);
/*
 * Runs every process and delivery due up to t, in time order, then sets
 * the clock to t. Bounded by a step count; returns false if it hit the bound.
 */
bool sim_world_run_until(struct sim_world *w, vigil_time_t t);

/* A process with address ip ("127.1.0.7"); its environment is ready to use. */
struct sim_proc *sim_proc_new(struct sim_world *w, const char *name, const char *ip);
struct vio_env *sim_proc_env(struct sim_proc *p);
const char *sim_proc_name(const struct sim_proc *p);
/* SIGSTOP / SIGCONT. */
void sim_proc_pause(struct sim_proc *p, bool paused);
/* SIGKILL: the process never runs again (free its daemon, then the process, later). */
void sim_proc_kill(struct sim_proc *p);
bool sim_proc_killed(const struct sim_proc *p);
/* Delivers a signal through the process's loop (on its next turn, as a real signalfd). */
void sim_proc_signal(struct sim_proc *p, int signo);
/* Makes the process's sends fail with -err (a down interface: ENETUNREACH), or work (0). */
void sim_proc_send_error(struct sim_proc *p, int err);
/* Cuts the process off the network (both ways), or heals it. */
void sim_proc_cut(struct sim_proc *p, bool cut);
/* The states the process told its service manager (vio_notify), one per line, oldest first. */
const char *sim_proc_notified(const struct sim_proc *p);
/* Lines the process logged, and how many contain needle. */
size_t sim_proc_log_count(const struct sim_proc *p, const char *needle);
const char *sim_proc_log_text(const struct sim_proc *p);
/* The process's fake file system: put a file in it. */
int sim_proc_put_file(struct sim_proc *p, const char *path, const char *data, uint32_t mode);
/* Its fake child processes (fake_procs.h): register the programs its hooks run. */
struct vio_procs *sim_proc_procs(struct sim_proc *p);
/* The HTTP server it opened last (fake_http.h: send it requests), or NULL. */
struct vio_httpd *sim_proc_httpd(struct sim_proc *p);
/* A new log into the process's log (for a daemon that takes one). */
struct vio_log *sim_proc_log(struct sim_proc *p);
/* Frees the process (its daemon must have been freed first). */
void sim_proc_free(struct sim_proc *p);

#endif

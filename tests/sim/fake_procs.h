/*
 * Fake child processes, for tests and the simulator: a struct vio_procs
 * whose programs are C functions.
 *
 * A program is registered under a name (what argv[0] must be, exactly).
 * When it is spawned, the function is called at once with what a real
 * program would get (argv, the environment, the whole standard input) and
 * says what happens: the exit code, and how long the child runs on the
 * loop's clock before it exits, or that it runs until a signal ends it. A
 * SIGTERM ends it unless the program said it ignores TERM; SIGKILL and any
 * other signal always end it. Exits are reported through a timer on the
 * loop given at creation, never from spawn or signal, as with real
 * children. Spawning a name that is not registered fails with -ENOENT, as
 * posix_spawnp does for a missing program.
 *
 * Every spawn is recorded (argv, environment, standard input, start and
 * end time, the signals received and when), for assertions; the records
 * live as long as the fake.
 */
#ifndef VIGIL_SIM_FAKE_PROCS_H
#define VIGIL_SIM_FAKE_PROCS_H

#include "io/vio.h"

/* How long a child runs when it only ends by a signal. */
#define FAKE_PROC_FOREVER VIGIL_TIME_NEVER

/* One spawn, as recorded. */
struct fake_spawn {
    long pid;         /* 1000, 1001, ... in spawn order */
    char **argv;      /* copies, NULL-terminated */
    char **envp;      /* copies, NULL-terminated */
    char *stdin_data; /* a copy, NUL-terminated */
    size_t stdin_len;
    vigil_time_t start;            /* when it was spawned */
    vigil_time_t end;              /* when its exit was reported, or VIGIL_TIME_NEVER */
    int status;                    /* as from waitpid, once ended */
    vigil_time_t term_at, kill_at; /* first SIGTERM / SIGKILL received, or VIGIL_TIME_NEVER */
    unsigned n_signals;            /* signals received, all kinds */
};

/* What a program decides when it starts. */
struct fake_outcome {
    int exit_code;         /* its status when it ends by itself (0..255) */
    vigil_time_t runs_for; /* how long until it ends by itself, or FAKE_PROC_FOREVER */
    bool ignore_term;      /* SIGTERM does not end it (SIGKILL does) */
    /* What it writes (static; NULL: nothing), kept up to the spawn's output_max. */
    const char *output;
};

/*
 * A program. out comes zeroed (exit 0, at once, TERM honoured). arg is the
 * one given at registration.
 */
typedef void (*fake_program_fn)(void *arg, const struct fake_spawn *sp, struct fake_outcome *out);

struct vio_procs *fake_procs_new(struct vio_loop *loop);
/* Frees the fake, its children and its records. */
void fake_procs_free(struct vio_procs *p);
/* Registers (or replaces) the program called name. Returns 0 or -VIGIL_ENOMEM. */
int fake_procs_register(struct vio_procs *p, const char *name, fake_program_fn fn, void *arg);

/* The spawns so far, in order; i < fake_procs_count. Valid until the next spawn. */
size_t fake_procs_count(const struct vio_procs *p);
const struct fake_spawn *fake_procs_spawn_at(const struct vio_procs *p, size_t i);
/* Children started and not yet ended. */
size_t fake_procs_running(const struct vio_procs *p);
/* The most children that ever ran at once. */
size_t fake_procs_max_running(const struct vio_procs *p);

/* The value of NAME in sp's environment, or NULL. */
const char *fake_spawn_env(const struct fake_spawn *sp, const char *name);

#endif

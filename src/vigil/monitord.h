/*
 * The monitor daemon as an object on a vio environment: what `vigil
 * monitor` runs on the real world, and what the simulator runs on a fake
 * one. See monitord.c.
 */
#ifndef VIGIL_MONITORD_H
#define VIGIL_MONITORD_H

#include "config.h"
#include "evlog.h"
#include "io/vio.h"

struct monitord;

/*
 * Starts a monitor on env with the settings in cfg (taken over: cfg is
 * emptied, whatever the outcome). Opens its listeners, log, hooks and API
 * and arms its timers; the caller then runs (or steps) env's loop. SIGTERM
 * and SIGINT through the loop stop it; SIGHUP reloads the configuration
 * (monitord_reload). Returns 0, or -1 with err set.
 */
int monitord_new(struct vio_env *env, struct vcfg *cfg, struct monitord **out, char *err,
                 size_t cap);
/*
 * Logs the stop, hands the last events on, stops the hooks (TERM, then
 * KILL), closes everything. Returns 0, or -1 if the log writer was stuck
 * (the caller must then leave without flushing standard streams).
 */
int monitord_free(struct monitord *d);

/*
 * Reads the keys again: the key files monitor.key_file names in the
 * configuration file now (or the --key-file given at start), and hands
 * them to the core (vigil_monitor_set_keys): a key rotation without a
 * restart. Logs the key ids held. Returns 0, or -1 with err set and the
 * keys unchanged.
 */
int monitord_reload_keys(struct monitord *d, char *err, size_t cap);

/*
 * Reads the configuration again (the file, and the command line the
 * monitor was started with, as at start) and applies what can change
 * while it runs, keeping every node's state: the detector's settings,
 * rise, grace, the keys, more declared nodes, the hook queue limits.
 * Other changed settings are kept until a restart and named in the log
 * line. A file that does not load or check changes nothing. Returns 0, or
 * -1 with err set.
 */
int monitord_reload(struct monitord *d, char *err, size_t cap);

struct vigil_monitor *monitord_core(struct monitord *d);
struct evlog *monitord_events(struct monitord *d);
struct vio_httpd *monitord_httpd(struct monitord *d);

#endif

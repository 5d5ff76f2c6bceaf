/*
 * The agent daemon as an object on a vio environment: what `vigil agent`
 * runs on the real world and what the simulator runs, hundreds at a time,
 * on a fake one. See agentd.c.
 */
#ifndef VIGIL_AGENTD_H
#define VIGIL_AGENTD_H

#include "agent.h"
#include "config.h"
#include "io/vio.h"

struct agentd;

/*
 * Starts an agent on env: the boot generation (through generation_file, if
 * set), the monitors resolved, the first heartbeat due at once. cfg is
 * taken over (emptied whatever the outcome); base holds the static custom
 * pairs (the config's, then --set's). log: where it reports (taken over,
 * closed by agentd_free), or NULL for standard error. SIGTERM or
 * SIGINT through the loop sends the goodbye (twice) and stops the loop.
 * Returns 0, or -1 with err set.
 */
int agentd_new(struct vio_env *env, struct vcfg *cfg, const struct agent_pairs *base,
               struct vio_log *log, struct agentd **out, char *err, size_t cap);
/*
 * How the agent reads its settings again on SIGHUP: load fills cfg and
 * base as at start (returns 0, or -1 with err set). Without one (the
 * simulator), SIGHUP reads the key file alone again.
 */
typedef int (*agentd_load_fn)(void *arg, struct vcfg *cfg, struct agent_pairs *base, char *err,
                              size_t cap);
void agentd_set_reload(struct agentd *a, agentd_load_fn load, void *arg);
/*
 * Reads the settings again and applies what can change while the agent
 * runs: its key (from the next heartbeat on), the static custom status and
 * the status file. Other changed settings are kept until a restart and
 * named in the log. A configuration that does not load changes nothing.
 * Returns 0, or -1 with err set.
 */
int agentd_reload(struct agentd *a, char *err, size_t cap);
/* The goodbye did not reach every monitor (the agent then exits 1). */
bool agentd_goodbye_failed(const struct agentd *a);
/* The signal that stopped the agent, or 0. */
int agentd_stop_signal(const struct agentd *a);
/* Heartbeats sent so far, and the boot generation. */
uint64_t agentd_sent(const struct agentd *a);
uint64_t agentd_generation(const struct agentd *a);
/* Frees the agent. Sends nothing: a crash, unless the goodbye was sent already. */
void agentd_free(struct agentd *a);

#endif

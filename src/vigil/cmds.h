/* The vigil program's subcommands. Each parses its own flags; returns the exit status. */
#ifndef VIGIL_CMDS_H
#define VIGIL_CMDS_H

/*
 * Exit statuses, the same in every subcommand (docs/operations.md): 0 done;
 * 1 a failure at run time (a monitor that cannot be reached, a socket that
 * cannot be bound, a hook runner that cannot start); 2 a usage error: a bad
 * flag, or a configuration file that does not parse, names an unknown
 * setting or a key file that cannot be used. A script can thus tell "fix
 * the command or the file" from "try again".
 */
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE   2

int cmd_agent(int argc, char **argv);    /* agent_full.c */
int cmd_monitor(int argc, char **argv);  /* monitord.c */
int cmd_peer(int argc, char **argv);     /* peer.c */
int cmd_status(int argc, char **argv);   /* cli.c */
int cmd_events(int argc, char **argv);   /* cli.c */
int cmd_actions(int argc, char **argv);  /* cli.c: vigil actions */
int cmd_maint(int argc, char **argv);    /* cli.c: vigil maint NODE */
int cmd_failover(int argc, char **argv); /* cli.c: vigil failover GROUP */
int cmd_keys(int argc, char **argv);     /* cli.c: vigil keys reload */
int cmd_keygen(int argc, char **argv);   /* agent.c */
int cmd_doctor(int argc, char **argv);   /* doctor.c */
int cmd_set(int argc, char **argv);      /* agent.c: edits an agent's status file */
int cmd_explain(int argc, char **argv);  /* explain.c */
int cmd_tune(int argc, char **argv);     /* tune.c */
int cmd_sim(int argc, char **argv);      /* sim.c */

int cmd_peer_cert(int argc, char **argv); /* peercert.c: vigil peer-cert ca|issue */
/* Hidden (not in the usage): one candidate of an etcd leader election. */
int cmd_leader_probe(int argc, char **argv); /* leader_probe.c */

#endif

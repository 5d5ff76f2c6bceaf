/* vigil: heartbeat-based failure detection. Dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include <vigil/vigil.h>

#include "fmt.h"
#include "cmds.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"monitor", cmd_monitor, "receive heartbeats, detect failures, run hooks, serve the API"},
    {"agent", cmd_agent, "send heartbeats with this node's status to monitors"},
    {"peer", cmd_peer, "a member of a peer-to-peer cluster (SWIM with Lifeguard)"},
    {"status", cmd_status, "show the nodes a running monitor knows"},
    {"events", cmd_events, "list a running monitor's recent events"},
    {"explain", cmd_explain, "say in plain words why a node is in its state"},
    {"tune", cmd_tune, "detector settings from detection and false-alarm goals"},
    {"sim", cmd_sim, "simulate a configuration on a modelled network, in virtual time"},
    {"set", cmd_set, "set or remove custom status in an agent's status file"},
    {"keygen", cmd_keygen, "make a master key, or derive a node key"},
    {"peer-cert", cmd_peer_cert, "make a peer cluster's signing CA, or a member's certificate"},
    {"actions", cmd_actions, "list a running monitor's pending and recent actions"},
    {"maint", cmd_maint, "hold a node's actions for maintenance (needs the API's token)"},
    {"failover", cmd_failover, "switch a failover group's primary (needs the API's token)"},
    {"keys", cmd_keys, "ask a running monitor to reload its keys (needs the API's token)"},
    {"doctor", cmd_doctor, "check an agent's configuration against its monitor"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil COMMAND [options]   (vigil COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nexit status: 0 done, 1 a failure at run time (e.g. no monitor to ask),\n"
               "2 a usage error: a bad option, or a configuration file that is wrong\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vigil %s\n", VIGIL_VERSION_STRING);
        return 0;
    }
    /* Hidden: the election is not wired into the monitor yet (docs/operations.md). */
    if (!strcmp(argv[1], "leader-probe"))
        return cmd_leader_probe(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vigil: unknown command '%s'\n", vigil_quote(argv[1]).s);
    usage(stderr);
    return 2;
}

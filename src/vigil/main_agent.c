/*
 * vigil-agent: the agent alone, as small as it can be. The same flags, file
 * and behaviour as `vigil agent` (agent.c), on the base environment
 * (vio_env_base_new): UDP, files, child processes for exec checks, stream
 * sockets for tcp checks, systemd's notifications, and no HTTP client or
 * server, no JSON, no SQLite. The program links libc, and libsodium and
 * libconfig statically where their archives are installed, so that an
 * idle agent keeps at most 2 MB resident (docs/performance.md, "A small
 * agent"). A configuration with an http check hands over to `vigil agent`
 * (the program vigil in the same directory), in the same process.
 */
#include <stdio.h>
#include <string.h>

#include <vigil/vigil.h>

#include "agent.h"

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("vigil-agent %s\n", VIGIL_VERSION_STRING);
        return 0;
    }
    static const struct agent_host host = {"vigil-agent", vio_env_base_new};
    return agent_command(argc, argv, &host);
}

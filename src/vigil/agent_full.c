/*
 * vigil agent: the agent (agent.c) on the full real environment, with the
 * HTTP client its http checks need. A file of its own so that the small
 * program vigil-agent, which runs the same agent on the base environment
 * (main_agent.c), links none of what this one does.
 */
#include "agent.h"
#include "cmds.h"

int cmd_agent(int argc, char **argv)
{
    static const struct agent_host host = {"vigil agent", vio_env_real_new};
    return agent_command(argc, argv, &host);
}

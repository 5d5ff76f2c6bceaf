/*
 * What the commands that read a running monitor share with cli.c: fetching
 * the API's JSON, and the quality-of-service block of a node (cli_qos.c).
 */
#ifndef VIGIL_CLI_TOOLS_H
#define VIGIL_CLI_TOOLS_H

#include <jansson.h>

/*
 * GETs path from the monitor's API (path NULL: every node, all pages
 * merged into {"now", "total", "nodes"}). The API is found as `vigil
 * status` finds it: api, else monitor.api of the file cfg_path, else the
 * default. Returns the parsed document, or NULL after printing why to
 * standard error as "vigil CMD: ..."; then *exit_code (if not NULL) is the
 * exit status that failure calls for: 2 for a bad configuration file or
 * option, 1 for a monitor that could not be asked.
 */
json_t *cli_fetch_json(const char *cmd, const char *api, const char *cfg_path, const char *path,
                       int *exit_code);

/* Prints the "qos" and "warnings" of a node's JSON, for `vigil status NODE`. */
void cli_print_qos(const json_t *node);

/* A rate per hour for people: "0.25 per hour", "about one in 3.2 days", "none expected". */
void cli_format_rate(double per_h, char *buf, size_t cap);

/* A number of the JSON object o (integer or real); def when absent or null. */
double cli_jnum(const json_t *o, const char *key, double def);

#endif

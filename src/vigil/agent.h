/*
 * Pieces of vigil agent and vigil set shared with the tests: the status
 * file format and the merging of custom pairs.
 *
 * A status file holds custom status as "key=value" lines. Blank lines and
 * lines whose first non-blank character is '#' are ignored; white space
 * around keys and values is trimmed; "key=" is an empty value. A '#' after
 * a value is part of the value (values are free text). Keys and values
 * follow the wire rules (vigil_custom_key_valid, vigil_custom_value_valid).
 */
#ifndef VIGIL_AGENT_H
#define VIGIL_AGENT_H

#include <stdio.h>

#include <vigil/vigil.h>

#include "io/vio.h"

/* Largest status file read or rewritten, in bytes: far above 16 pairs of 82 bytes. */
#define AGENT_STATUS_FILE_MAX (64 * 1024)

/* An ordered set of custom pairs. */
struct agent_pairs {
    struct vigil_custom p[VIGIL_CUSTOM_MAX];
    size_t n;
};

enum agent_line { AGENT_LINE_BAD = -1, AGENT_LINE_PAIR = 0, AGENT_LINE_SKIP = 1 };

/*
 * Parses one status file line (len bytes, without its newline), in place:
 * on AGENT_LINE_PAIR *key and *value point into line, NUL terminated. On
 * AGENT_LINE_BAD *why says what is wrong.
 */
enum agent_line agent_status_line(char *line, size_t len, char **key, char **value,
                                  const char **why);

/*
 * Sets key to value (replacing a pair with that key in its place, or
 * appending), or removes key with value NULL. Returns 0, -VIGIL_EINVAL for
 * an invalid key or value, or -VIGIL_EFULL for a 17th key.
 */
int agent_pairs_set(struct agent_pairs *l, const char *key, const char *value);

/*
 * Reads the status file at path: out becomes base with the file's pairs on
 * top (a later line wins over an earlier one). A bad line is reported on
 * errf as "path:line: what is wrong" and skipped. A missing file is no
 * pairs. Returns 0, or -1 if the file exists but cannot be read (reported).
 */
int agent_status_read(const char *path, const struct agent_pairs *base, struct agent_pairs *out,
                      FILE *errf);
/* The same through fs, each complaint handed to report as one line. */
int agent_status_load(struct vio_fs *fs, const char *path, const struct agent_pairs *base,
                      struct agent_pairs *out, void (*report)(void *arg, const char *line),
                      void *arg);

/*
 * The next boot generation, persisted in path (see agent.c). Returns 0; a
 * file that could not serve is warned about on standard error.
 */
int agent_next_generation(const char *path, uint64_t wall_us, uint64_t *out);
/*
 * The same through fs. Returns 0, or 1 when the file could not serve (empty,
 * not a number, unreadable, unwritable): *out is still set (from the clock)
 * and err says what happened, for a warning.
 */
int agent_generation_next(struct vio_fs *fs, const char *path, uint64_t wall_us, uint64_t *out,
                          char *err, size_t cap);

/*
 * The agent's command line, run by `vigil agent` and by the small program
 * vigil-agent: the same flags and configuration, on the environment the
 * program builds (env_new: vio_env_real_new, or vio_env_base_new without
 * an HTTP client). When the configuration needs what that environment
 * lacks (an http check), the program vigil in the same directory runs the
 * agent instead, as `vigil agent` with the same flags and in the same
 * process. Returns the exit status.
 */
struct agent_host {
    const char *name; /* in the usage and the messages: "vigil agent", "vigil-agent" */
    int (*env_new)(struct vio_env **out, bool with_procs);
};
int agent_command(int argc, char **argv, const struct agent_host *host);

#endif

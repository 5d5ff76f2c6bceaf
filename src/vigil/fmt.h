/*
 * Text for people, the same everywhere the program writes it: durations
 * with their units, and strings that came from outside (arguments,
 * configuration values, answers from the network) made safe to print.
 */
#ifndef VIGIL_FMT_H
#define VIGIL_FMT_H

#include <stddef.h>

#include <vigil/vigil.h>

/*
 * Most bytes of an outside string a message shows. Node ids, durations,
 * addresses and setting values all fit; a 10 kB argument is cut, so that a
 * message stays one readable line.
 */
#define VIGIL_QUOTE_MAX 64

/* Room for a quoted string: every byte escaped (\xNN), and "...". */
struct vigil_quoted {
    char s[VIGIL_QUOTE_MAX * 4 + 4];
};

/*
 * s for a message: at most VIGIL_QUOTE_MAX bytes of it, then "..." when it
 * was longer; control characters, DEL, bytes beyond ASCII and backslashes
 * escaped (\n, \t, \r, \\, \xNN), so that what is printed is one line of
 * plain text that cannot move a terminal's cursor or forge a log line.
 * NULL is "(null)". Use it in the call itself: printf("%s", vigil_quote(s).s).
 */
struct vigil_quoted vigil_quote(const char *s);

/*
 * Most bytes of a whole message from outside shown (the "error" of an API
 * answer): the monitor's own are sentences of up to a few hundred bytes.
 */
#define VIGIL_QUOTE_MSG_MAX 400

struct vigil_quoted_msg {
    char s[VIGIL_QUOTE_MSG_MAX * 4 + 4];
};

/* vigil_quote for a whole message: the same escaping, VIGIL_QUOTE_MSG_MAX bytes. */
struct vigil_quoted_msg vigil_quote_msg(const char *s);

/* Room for any duration vigil_format_duration writes ("-106751d23h47m16.855s" and the NUL). */
#define VIGIL_DURATION_BUF 32

/*
 * A duration for people, with its unit: "0s", "750ns", "40us", "15ms",
 * "1.5ms", "1.5s", "4.529s", "2m30s", "2h03m", "1h00m01s", "3d04h". Below
 * a minute it keeps 4 significant digits (trailing zeros dropped); from a
 * minute on, days, hours, minutes and seconds to the millisecond, at least
 * two units and the smaller ones only when not zero. Negative durations
 * get a "-".
 */
void vigil_format_duration(vigil_time_t ns, char *buf, size_t cap);

/* The same for seconds as a double (from JSON); "-" for a negative or unknown duration. */
void vigil_format_seconds(double s, char *buf, size_t cap);

/* For use in a call's arguments: printf("%s", vigil_dur(ns).s). */
struct vigil_dur {
    char s[VIGIL_DURATION_BUF];
};
struct vigil_dur vigil_dur(vigil_time_t ns);
struct vigil_dur vigil_dur_s(double s);

/* Appends ", what" (or "what" first) to a list in buf, while it fits (cap bytes). */
void vigil_list_append(char *buf, size_t cap, const char *what);

/* Two optional strings are the same: both NULL, or equal. */
bool vigil_str_same(const char *a, const char *b);

#endif

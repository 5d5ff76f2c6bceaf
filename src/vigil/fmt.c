/*
 * Text for people: durations with their units, and outside strings made
 * safe to print (fmt.h). One function for each, so that the CLI, the log,
 * the configuration's messages and `vigil tune` / `explain` all say "1.5s"
 * the same way.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fmt.h"

/* At most max bytes of s into buf (room for 4 * max + 4), escaped; "..." when cut. */
static void quote_into(const char *s, size_t max, char *buf, size_t cap)
{
    size_t o = 0;
    if (!s) {
        snprintf(buf, cap, "(null)");
        return;
    }
    size_t i = 0;
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            buf[o++] = '\\';
            buf[o++] = '\\';
        } else if (c == '\n' || c == '\t' || c == '\r') {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (s[i]) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

struct vigil_quoted vigil_quote(const char *s)
{
    struct vigil_quoted q;
    quote_into(s, VIGIL_QUOTE_MAX, q.s, sizeof(q.s));
    return q;
}

struct vigil_quoted_msg vigil_quote_msg(const char *s)
{
    struct vigil_quoted_msg q;
    quote_into(s, VIGIL_QUOTE_MSG_MAX, q.s, sizeof(q.s));
    return q;
}

/* 10^n for the small n used below. */
static int64_t pow10i(int n)
{
    int64_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* Below a minute: the unit that keeps the value in [1, 1000), 4 significant digits. */
static void format_small(uint64_t ns, char *buf, size_t cap)
{
    static const struct {
        uint64_t ns;
        const char *name;
    } units[] = {{1, "ns"}, {1000, "us"}, {1000000, "ms"}, {1000000000, "s"}};
    /* Rounding can carry into the next unit (999.96 ms is 1 s): at most one more pass. */
    for (int pass = 0; pass < 2; pass++) {
        size_t u = 0;
        while (u + 1 < sizeof(units) / sizeof(units[0]) && ns >= units[u + 1].ns)
            u++;
        uint64_t whole = ns / units[u].ns;
        int int_digits = whole >= 100 ? 3 : whole >= 10 ? 2 : 1;
        int decimals = 4 - int_digits;
        /* The step of the last digit shown, in ns: at least 1. */
        uint64_t step = units[u].ns / (uint64_t)pow10i(decimals);
        if (step == 0)
            step = 1;
        uint64_t rounded = (ns + step / 2) / step * step;
        if (pass == 0 && u + 1 < sizeof(units) / sizeof(units[0]) && rounded >= units[u + 1].ns) {
            ns = rounded;
            continue;
        }
        int64_t scale = pow10i(decimals);
        uint64_t per = units[u].ns;
        uint64_t ip = rounded / per;
        uint64_t frac = (rounded % per) * (uint64_t)scale / per;
        char num[40];
        if (decimals > 0 && frac > 0) {
            int n = snprintf(num, sizeof(num), "%" PRIu64 ".%0*" PRIu64, ip, decimals, frac);
            while (n > 0 && num[n - 1] == '0')
                num[--n] = '\0';
        } else {
            snprintf(num, sizeof(num), "%" PRIu64, ip);
        }
        snprintf(buf, cap, "%s%s", num, units[u].name);
        return;
    }
}

/*
 * From a minute on: days, hours, minutes and seconds to the millisecond,
 * each after the first two digits wide; at least two units, and the
 * smaller ones only when not zero ("2m30s", "2h03m", "1h00m01s",
 * "1h00m00.001s", "3d04h"), so that a setting is shown exactly.
 */
static void format_long(uint64_t ns, char *buf, size_t cap)
{
    uint64_t ms = (ns + 500000) / 1000000;
    uint64_t v[4] = {ms / 86400000, ms / 3600000 % 24, ms / 60000 % 60, ms % 60000};
    static const char unit[4] = {'d', 'h', 'm', 's'};
    int first = 0, last;
    while (first < 2 && v[first] == 0)
        first++;
    last = first + 1;
    for (int k = 3; k > last; k--)
        if (v[k]) {
            last = k;
            break;
        }
    size_t o = 0;
    for (int k = first; k <= last && o < cap; k++) {
        uint64_t whole = k == 3 ? v[3] / 1000 : v[k];
        int n = snprintf(buf + o, cap - o, k == first ? "%" PRIu64 : "%02" PRIu64, whole);
        if (n < 0)
            return;
        o += (size_t)n;
        if (k == 3 && v[3] % 1000 && o < cap) {
            n = snprintf(buf + o, cap - o, ".%03" PRIu64, v[3] % 1000);
            if (n < 0)
                return;
            o += (size_t)n;
            while (o > 0 && o < cap && buf[o - 1] == '0')
                buf[--o] = '\0';
        }
        if (o + 1 < cap) {
            buf[o++] = unit[k];
            buf[o] = '\0';
        }
    }
}

void vigil_format_duration(vigil_time_t ns, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    const char *sign = "";
    uint64_t u;
    if (ns < 0) {
        sign = "-";
        u = (uint64_t)0 - (uint64_t)ns;
    } else {
        u = (uint64_t)ns;
    }
    char body[64];
    const uint64_t sec = 1000000000u;
    if (u == 0) {
        snprintf(body, sizeof(body), "0s");
    } else if (u < 60 * sec - sec / 2000) {
        /* Anything that rounds (to 4 digits) below a minute. */
        format_small(u, body, sizeof(body));
    } else {
        format_long(u, body, sizeof(body));
    }
    snprintf(buf, cap, "%s%s", sign, body);
}

void vigil_format_seconds(double s, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    if (!(s >= 0) || !isfinite(s)) {
        snprintf(buf, cap, "-");
        return;
    }
    /* Beyond what nanoseconds hold (292 years), whole days are plenty. */
    if (s >= 9.2e9) {
        snprintf(buf, cap, "%.0fd", floor(s / 86400));
        return;
    }
    vigil_format_duration((vigil_time_t)llround(s * 1e9), buf, cap);
}

struct vigil_dur vigil_dur(vigil_time_t ns)
{
    struct vigil_dur d;
    vigil_format_duration(ns, d.s, sizeof(d.s));
    return d;
}

struct vigil_dur vigil_dur_s(double s)
{
    struct vigil_dur d;
    vigil_format_seconds(s, d.s, sizeof(d.s));
    return d;
}

void vigil_list_append(char *buf, size_t cap, const char *what)
{
    size_t len = strlen(buf);
    if (len + 3 < cap)
        snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", what);
}

bool vigil_str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/*
 * The pre-scan of a configuration file's raw text, before libconfig sees
 * it.
 *
 * It exists because of defects of libconfig 1.5, the version Debian 12
 * ships (newer versions fix some of them, but vigil builds against 1.5).
 * Each is found here, in the text, because after libconfig has parsed it
 * the evidence is gone (or the harm is done):
 *
 *  - A NUL byte: config_read_string() stops reading there, silently, and
 *    the rest of the file would be ignored.
 *  - @include: libconfig opens whatever path it names, relative to the
 *    working directory, and 1.5 has no way to turn it off. vigil reads
 *    exactly one file, and a mistyped or fuzzed include must not read
 *    another one. The check looks at the start of every line, inside
 *    comments and strings too: stricter than libconfig's rule, and
 *    without state.
 *  - Integer literals beyond 32 bits without an L suffix (or beyond 64 with
 *    one): libconfig wraps or saturates them without a word, so that
 *    "rise = 4294967298" would read as 2 and 0x80000000 as -2147483648.
 *  - A string still open at the end of the text: libconfig drops it and
 *    accepts the file ('a = "x" "y' reads as a = "x").
 *  - A string where the grammar admits none (after "{" or ";", or after
 *    "," in a group): libconfig reports a syntax error but leaks the
 *    string, which the sanitizers flag in the fuzz target.
 *  - Absurdly deep nesting: libconfig builds a tree as deep as the text,
 *    and beyond its parser's stack reports only "memory exhausted".
 *
 * Everything else (every other syntax error) is left to libconfig. The
 * scan therefore only needs to know strings, comments, brackets, integer
 * literals and the few tokens a string may follow; it is not a parser.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

static bool is_name_char(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '_' || ch == '*';
}

/*
 * Records an integer literal t[b..e) that libconfig would wrap around: one
 * beyond 32 bits without an L suffix, or beyond 64 bits with one.
 */
static void scan_integer(struct vcfg__scan *sc, const char *t, size_t b, size_t n, unsigned line,
                         size_t *next)
{
    bool neg = b > 0 && t[b - 1] == '-';
    bool hex = b + 1 < n && t[b] == '0' && (t[b + 1] == 'x' || t[b + 1] == 'X');
    size_t i = hex ? b + 2 : b;
    unsigned long long v = 0;
    bool huge = false;
    for (; i < n && (hex ? isxdigit((unsigned char)t[i]) : isdigit((unsigned char)t[i])); i++) {
        unsigned d = (unsigned)(hex ? vcfg__hexval((unsigned char)t[i]) : t[i] - '0');
        unsigned long long base = hex ? 16 : 10;
        if (v > (ULLONG_MAX - d) / base)
            huge = true;
        else
            v = v * base + d;
    }
    if (!hex && i < n && (t[i] == '.' || t[i] == 'e' || t[i] == 'E')) {
        /* A floating-point literal: its digits and exponent are not an integer. */
        while (i < n &&
               (isdigit((unsigned char)t[i]) || t[i] == '.' || t[i] == 'e' || t[i] == 'E' ||
                ((t[i] == '-' || t[i] == '+') && (t[i - 1] == 'e' || t[i - 1] == 'E'))))
            i++;
        *next = i;
        return;
    }
    bool wide = i < n && t[i] == 'L';
    /* The suffix is L or LL; it belongs to the literal shown in the message. */
    for (int k = 0; k < 2 && i < n && t[i] == 'L'; k++)
        i++;
    unsigned long long lim;
    if (wide)
        lim = neg && !hex ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX;
    else
        lim = neg && !hex ? (unsigned long long)INT32_MAX + 1 : (unsigned long long)INT32_MAX;
    if ((huge || v > lim) && sc->int_line == 0) {
        size_t len = i - b;
        size_t max = sizeof(sc->int_text) - 4;
        sc->int_line = line;
        snprintf(sc->int_text, sizeof(sc->int_text), "%s%.*s%s", neg ? "-" : "",
                 (int)(len < max ? len : max), t + b, len < max ? "" : "...");
    }
    *next = i;
}

void vcfg__prescan(const char *t, size_t n, struct vcfg__scan *sc)
{
    memset(sc, 0, sizeof(*sc));
    /* NUL bytes and @include lines, state-free: libconfig's include rule is per line. */
    unsigned line = 1;
    for (size_t i = 0; i < n; line++) {
        size_t j = i;
        while (j < n && (t[j] == ' ' || t[j] == '\t'))
            j++;
        if (sc->include_line == 0 && n - j >= 8 && !memcmp(t + j, "@include", 8))
            sc->include_line = line;
        const char *nl = memchr(t + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - t) : n;
        if (sc->nul_line == 0 && memchr(t + i, '\0', end - i) != NULL)
            sc->nul_line = line;
        i = end + 1;
    }
    /*
     * Tokens, outside strings and comments: integer literals, and the
     * places strings stand in. libconfig 1.5 leaks a string that stands
     * where the grammar admits none (after a "{" or a ";", or after a ","
     * in a group), so such a string is a syntax error found here, before
     * libconfig sees it. A string may follow "=" or ":", "[" or "(", a ","
     * inside an array or a list, or another string (they concatenate).
     */
    enum { P_NONE, P_VALUE, P_OPEN_LIST, P_COMMA, P_STRING, P_OTHER } prev = P_NONE;
    char stack[VCFG_NEST_MAX];
    size_t depth = 0;
    line = 1;
    for (size_t i = 0; i < n;) {
        char ch = t[i];
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == '"') {
            bool ok = prev == P_VALUE || prev == P_OPEN_LIST || prev == P_STRING ||
                      (prev == P_COMMA && depth > 0 && stack[depth - 1] != '{');
            if (!ok && sc->string_line == 0)
                sc->string_line = line;
            unsigned start = line;
            for (i++; i < n && t[i] != '"'; i++) {
                if (t[i] == '\\' && i + 1 < n)
                    i++;
                if (t[i] == '\n')
                    line++;
            }
            if (i >= n && sc->open_line == 0)
                sc->open_line = start;
            i++;
            prev = P_STRING;
        } else if (ch == '#' || (ch == '/' && i + 1 < n && t[i + 1] == '/')) {
            while (i < n && t[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < n && t[i + 1] == '*') {
            for (i += 2; i < n && !(t[i] == '*' && i + 1 < n && t[i + 1] == '/'); i++)
                if (t[i] == '\n')
                    line++;
            i += 2;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            i++;
        } else if (isalpha((unsigned char)ch) || ch == '*') {
            while (i < n && is_name_char((unsigned char)t[i]))
                i++;
            prev = P_OTHER;
        } else if (isdigit((unsigned char)ch)) {
            scan_integer(sc, t, i, n, line, &i);
            prev = P_OTHER;
        } else if (ch == '.') {
            /* ".5e3": a floating-point literal starting with its point. */
            for (i++;
                 i < n && (isdigit((unsigned char)t[i]) || t[i] == 'e' || t[i] == 'E' ||
                           ((t[i] == '-' || t[i] == '+') && (t[i - 1] == 'e' || t[i - 1] == 'E')));)
                i++;
            prev = P_OTHER;
        } else {
            if (ch == '{' || ch == '[' || ch == '(') {
                if (depth == VCFG_NEST_MAX) {
                    if (sc->deep_line == 0)
                        sc->deep_line = line;
                } else {
                    stack[depth++] = ch;
                }
                prev = ch == '{' ? P_OTHER : P_OPEN_LIST;
            } else if (ch == '}' || ch == ']' || ch == ')') {
                if (depth > 0)
                    depth--;
                prev = P_OTHER;
            } else if (ch == '=' || ch == ':') {
                prev = P_VALUE;
            } else if (ch == ',') {
                prev = P_COMMA;
            } else {
                prev = P_OTHER;
            }
            i++;
        }
    }
}

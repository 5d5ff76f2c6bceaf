/*
 * Small helpers the benchmark programs share: the process's CPU time and
 * the parsing of a bounded number from the command line.
 */
#ifndef VIGIL_BENCH_UTIL_H
#define VIGIL_BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* CPU time of the whole process (every thread, user and system), in seconds. */
static inline double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* s as a number in lo..hi; otherwise "PROG: WHAT must be LO..HI" and exit status 2. */
static inline unsigned long bench_parse_ul(const char *prog, const char *s, unsigned long lo,
                                           unsigned long hi, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be %lu..%lu\n", prog, what, lo, hi);
        exit(2);
    }
    return v;
}

#endif

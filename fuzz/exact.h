/*
 * Copies of exactly their length, without a malloc per copy.
 *
 * A fuzz target that hands a decoder a piece of its input (a line, say)
 * copies it into a block of exactly that length, so that AddressSanitizer
 * reports a read one byte past the end. A malloc per piece costs more than
 * the decoder itself under AddressSanitizer (each block is filled, its
 * stack recorded, and it goes through the quarantine), so struct exact
 * keeps one static buffer, poisoned at rest: exact_copy unpoisons exactly
 * the bytes of the copy (from an 8-byte aligned start, so that both ends
 * are exact to the byte), and exact_done poisons them again. A piece
 * larger than the buffer falls back to malloc. Without AddressSanitizer
 * the poisoning macros do nothing.
 */
#ifndef VIGIL_FUZZ_EXACT_H
#define VIGIL_FUZZ_EXACT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(addr, size)   ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

/* The largest copy (with its NUL) the buffer holds: past the fuzzer's 4096-byte inputs. */
#define EXACT_CAP 8192

struct exact {
    _Alignas(16) char pad[16]; /* poisoned: a read just before the copy is caught too */
    char buf[EXACT_CAP];
    bool poisoned;
};

/*
 * A NUL-terminated copy of the n bytes at data, in a block of exactly
 * n + 1 bytes: anything outside it is poisoned. One copy at a time.
 */
static inline char *exact_copy(struct exact *e, const void *data, size_t n)
{
    if (n + 1 > EXACT_CAP) {
        char *p = malloc(n + 1);
        if (p == NULL)
            abort();
        memcpy(p, data, n);
        p[n] = '\0';
        return p;
    }
    if (!e->poisoned) {
        ASAN_POISON_MEMORY_REGION(e->pad, sizeof(e->pad) + EXACT_CAP);
        e->poisoned = true;
    }
    ASAN_UNPOISON_MEMORY_REGION(e->buf, n + 1);
    if (n)
        memcpy(e->buf, data, n);
    e->buf[n] = '\0';
    return e->buf;
}

/* Ends the use of a copy of n bytes from exact_copy. */
static inline void exact_done(struct exact *e, char *p, size_t n)
{
    if (p != e->buf)
        free(p);
    else
        ASAN_POISON_MEMORY_REGION(e->buf, n + 1);
}

#endif

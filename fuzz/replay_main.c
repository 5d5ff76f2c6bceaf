/*
 * A stand-in for libFuzzer's driver, so that every fuzz target also runs as
 * an ordinary regression test with any C compiler.
 *
 * Linked with one fuzz_*.c file, it calls that file's
 * LLVMFuzzerTestOneInput() with:
 *
 *  1. every regular file under the directory named by argv[1], recursively,
 *     in sorted order (skipped when the directory does not exist);
 *  2. a fixed number of deterministic pseudo-random inputs (20,000 unless
 *     argv[2] says otherwise): half are random bytes of length 0..1300, half
 *     are mutations (bit flips, byte overwrites with boundary values,
 *     truncation, insertion, deletion) of the corpus files and of any seeds
 *     the target offers through the optional vigil_fuzz_seed() hook.
 *
 * Each input sits in a heap block of exactly its length, as libFuzzer
 * does, so that AddressSanitizer catches a read one byte past the end.
 * A target signals a failed property by crashing (abort()); so when this
 * program reaches its last line, nothing crashed, and it prints
 * "N inputs, 0 crashes". The random generator is xorshift64 with a fixed
 * seed, so a failing input is reproduced by running the program again.
 *
 * Both hooks besides LLVMFuzzerTestOneInput() are optional (weak):
 * LLVMFuzzerInitialize() as in libFuzzer, and
 *   int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap);
 * which writes valid input number index into buf and returns its length,
 * or returns a negative number when there are no more.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
__attribute__((weak)) int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap);

/* Random inputs after the corpus, unless argv[2] gives another count. */
#define DEFAULT_RANDOM_INPUTS 20000
/* Random inputs are 0..1300 bytes: a little past the 1200-byte datagram limit. */
#define RANDOM_LEN_MAX 1300
/* Corpus files are read up to 1 MiB; fuzz inputs are small, this is a sanity bound. */
#define FILE_MAX (1u << 20)
/* Directory nesting followed at most; corpora are flat or one level deep. */
#define DEPTH_MAX 16
/* Files fed at most, so that a wrong argument (say "/") cannot run for hours. */
#define FILES_MAX 100000
/* Mutation bases kept: enough variety, bounded memory. */
#define BASES_MAX 256
/* Seeds asked from vigil_fuzz_seed() at most. */
#define SEEDS_MAX 64
/* Seed buffers: every vigil datagram and config seed is far smaller. */
#define SEED_CAP 4096
/* Room a mutation may add past the base's length. */
#define GROW_MAX 64
/* The fixed xorshift seed: any non-zero value; this one is the golden ratio in 64 bits. */
#define RNG_SEED UINT64_C(0x9e3779b97f4a7c15)

struct base {
    uint8_t *data;
    size_t len;
};

struct replay {
    uint64_t rng;
    unsigned long inputs;
    unsigned long files;
    struct base bases[BASES_MAX];
    size_t n_bases;
};

static uint64_t next(struct replay *r)
{
    /* xorshift64 (Marsaglia 2003): shifts 13, 7, 17 give the full period 2^64 - 1. */
    uint64_t x = r->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->rng = x;
    return x;
}

static uint64_t below(struct replay *r, uint64_t n)
{
    return n ? next(r) % n : 0;
}

/* Feeds one input from a heap block of exactly its length. */
static void feed(struct replay *r, const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(2);
    }
    if (len)
        memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    r->inputs++;
}

static void keep_base(struct replay *r, const uint8_t *data, size_t len)
{
    if (r->n_bases >= BASES_MAX || len > SEED_CAP)
        return;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return;
    if (len)
        memcpy(copy, data, len);
    r->bases[r->n_bases].data = copy;
    r->bases[r->n_bases].len = len;
    r->n_bases++;
}

static void feed_file(struct replay *r, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return;
    }
    uint8_t *buf = malloc(FILE_MAX);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "replay: out of memory\n");
        exit(2);
    }
    size_t len = fread(buf, 1, FILE_MAX, f);
    fclose(f);
    feed(r, buf, len);
    keep_base(r, buf, len);
    free(buf);
    r->files++;
}

static void walk(struct replay *r, const char *dir, int depth)
{
    if (depth > DEPTH_MAX)
        return;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && r->files < FILES_MAX) {
            size_t plen = strlen(dir) + 1 + strlen(name) + 1;
            char *path = malloc(plen);
            if (path != NULL) {
                snprintf(path, plen, "%s/%s", dir, name);
                struct stat st;
                /* lstat: symbolic links are not followed, so there are no cycles. */
                if (lstat(path, &st) == 0) {
                    if (S_ISDIR(st.st_mode))
                        walk(r, path, depth + 1);
                    else if (S_ISREG(st.st_mode))
                        feed_file(r, path);
                }
                free(path);
            }
        }
        free(names[i]);
    }
    free(names);
}

/* Byte values at the edges of the ranges decoders check. */
static const uint8_t INTERESTING[] = {0x00, 0x01, 0x02, 0x10, 0x11, 0x1f, 0x20, 0x21,
                                      0x30, 0x40, 0x41, 0x7e, 0x7f, 0x80, 0xfe, 0xff};

/* Applies 1 to 4 random edits to buf (len bytes, room for cap) and returns the new length. */
static size_t mutate(struct replay *r, uint8_t *buf, size_t len, size_t cap)
{
    int edits = 1 + (int)below(r, 4);
    for (int e = 0; e < edits; e++) {
        switch (below(r, 6)) {
        case 0: /* flip one bit */
            if (len)
                buf[below(r, len)] ^= (uint8_t)(1u << below(r, 8));
            break;
        case 1: /* overwrite a byte with a random value */
            if (len)
                buf[below(r, len)] = (uint8_t)next(r);
            break;
        case 2: /* overwrite a byte with a boundary value */
            if (len)
                buf[below(r, len)] = INTERESTING[below(r, sizeof INTERESTING)];
            break;
        case 3: /* truncate */
            len = (size_t)below(r, len + 1);
            break;
        case 4: /* insert a byte */
            if (len < cap) {
                size_t at = (size_t)below(r, len + 1);
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)next(r);
                len++;
            }
            break;
        default: /* delete a byte */
            if (len) {
                size_t at = (size_t)below(r, len);
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    static struct replay r; /* static: the base table is too large to want on the stack */
    r.rng = RNG_SEED;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);

    unsigned long count = DEFAULT_RANDOM_INPUTS;
    if (argc > 2) {
        char *end = NULL;
        count = strtoul(argv[2], &end, 10);
        if (end == argv[2] || *end != '\0') {
            fprintf(stderr, "usage: %s [corpus-dir [random-inputs]]\n", argv[0]);
            return 2;
        }
    }

    if (argc > 1)
        walk(&r, argv[1], 0);

    if (vigil_fuzz_seed) {
        uint8_t seed[SEED_CAP];
        for (size_t i = 0; i < SEEDS_MAX; i++) {
            int n = vigil_fuzz_seed(i, seed, sizeof seed);
            if (n < 0)
                break;
            feed(&r, seed, (size_t)n);
            keep_base(&r, seed, (size_t)n);
        }
    }
    fprintf(stderr, "replay: %lu corpus files, %zu mutation bases, seed 0x%016llx\n", r.files,
            r.n_bases, (unsigned long long)RNG_SEED);

    uint8_t *buf =
        malloc(SEED_CAP + GROW_MAX > RANDOM_LEN_MAX ? SEED_CAP + GROW_MAX : RANDOM_LEN_MAX);
    if (buf == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        return 2;
    }
    for (unsigned long i = 0; i < count; i++) {
        size_t len;
        if (r.n_bases > 0 && (i & 1)) {
            const struct base *b = &r.bases[below(&r, r.n_bases)];
            memcpy(buf, b->data, b->len);
            len = mutate(&r, buf, b->len, b->len + GROW_MAX);
        } else {
            len = (size_t)below(&r, RANDOM_LEN_MAX + 1);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)next(&r);
        }
        feed(&r, buf, len);
    }
    free(buf);
    for (size_t i = 0; i < r.n_bases; i++)
        free(r.bases[i].data);

    printf("%lu inputs, 0 crashes\n", r.inputs);
    return 0;
}

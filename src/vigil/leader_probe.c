/*
 * vigil leader-probe: one candidate of a leader election through etcd
 * (leader.h), printing its view as it changes. Hidden from the usage (the
 * monitor does not use the election yet): it is what the integration test
 * (tests/integration/test_leader.py) runs, two or three at a time, and a
 * way for an operator to try an etcd cluster out.
 *
 *   vigil leader-probe --etcd URL --id ID [--key KEY] [--ttl SECONDS]
 *
 * Lines on standard output, one per change, flushed at once:
 *
 *   LEADER epoch=E
 *   FOLLOWER leader=ID epoch=E
 *   NONE
 *   FENCE epoch=E accepted|refused|failed
 *
 * A FENCE line reports a fenced write (leader_fence_check) made with the
 * epoch E: one as the probe becomes leader (etcd must accept it), and one
 * with its old epoch as it stops being leader (etcd must refuse it as soon
 * as another leader exists). The write puts "ID E" under KEY/fenced.
 *
 * SIGTERM and SIGINT revoke the lease (so another candidate takes over at
 * once; no fenced write then) and end the probe half a second later.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "leader.h"

/* Time a resigning probe gives its revocation before it exits. */
#define PROBE_EXIT_DELAY (500 * VIGIL_NSEC_PER_MSEC)

struct probe {
    struct vio_env *env;
    struct vio_http *fence_http; /* the fenced writes' client (the leader owns its own) */
    struct leader *ld;
    const char *etcd, *key, *id;
    struct leader_view last;
    struct vio_timer exit_timer;
    bool resigning; /* on SIGTERM: the role goes, no fenced write */
};

struct fence_req {
    struct probe *p;
    int64_t epoch;
};

static void on_fence_done(void *arg, const struct vio_http_result *res)
{
    struct fence_req *f = arg;
    const char *what = "failed";
    if (!res->error && res->status == 200) {
        int ok = leader_txn_succeeded(res->body, res->body_len);
        what = ok == 1 ? "accepted" : ok == 0 ? "refused" : "failed";
    }
    printf("FENCE epoch=%" PRId64 " %s\n", f->epoch, what);
    fflush(stdout);
    free(f);
}

/* A write under epoch: "ID EPOCH" into KEY/fenced, only if that epoch still leads. */
static void fenced_write(struct probe *p, int64_t epoch)
{
    char key[512], value[128];
    snprintf(key, sizeof(key), "%s/fenced", p->key);
    snprintf(value, sizeof(value), "%s %" PRId64, p->id, epoch);
    struct fence_req *f = malloc(sizeof(*f));
    json_t *txn =
        leader_fence_check(p->key, p->id, epoch, json_pack("[o]", leader_put_op(key, value)));
    if (f) {
        f->p = p;
        f->epoch = epoch;
    }
    if (!f || !txn ||
        leader_post(p->fence_http, p->etcd, "/v3/kv/txn", txn, 2 * VIGIL_NSEC_PER_SEC, 64 * 1024,
                    on_fence_done, f) != 0) {
        if (!f)
            json_decref(txn);
        printf("FENCE epoch=%" PRId64 " failed\n", epoch);
        fflush(stdout);
        free(f);
    }
}

static void on_change(void *arg, const struct leader_view *v)
{
    struct probe *p = arg;
    struct leader_view old = p->last;
    p->last = *v;
    switch (v->role) {
    case LEADER_ROLE_LEADER:
        printf("LEADER epoch=%" PRId64 "\n", v->epoch);
        break;
    case LEADER_ROLE_FOLLOWER:
        printf("FOLLOWER leader=%s epoch=%" PRId64 "\n", v->leader_id, v->epoch);
        break;
    default:
        printf("NONE\n");
        break;
    }
    fflush(stdout);
    if (p->resigning)
        return;
    if (v->role == LEADER_ROLE_LEADER && old.role != LEADER_ROLE_LEADER)
        fenced_write(p, v->epoch);
    else if (old.role == LEADER_ROLE_LEADER && v->role != LEADER_ROLE_LEADER)
        fenced_write(p, old.epoch);
}

static void on_exit_timer(void *arg, vigil_time_t now)
{
    struct probe *p = arg;
    (void)now;
    vio_loop_stop(p->env->loop);
}

static void on_signal(void *arg, int signo)
{
    struct probe *p = arg;
    if (signo != SIGTERM && signo != SIGINT)
        return;
    p->resigning = true;
    leader_resign(p->ld);
    vio_timer_arm(p->env->loop, &p->exit_timer, vio_now(p->env->loop) + PROBE_EXIT_DELAY);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil leader-probe --etcd URL --id ID [--key KEY] [--ttl SECONDS]\n"
               "  takes part in a leader election through etcd's v3 gateway and prints\n"
               "  LEADER / FOLLOWER / NONE as its view changes (see docs/operations.md)\n");
}

int cmd_leader_probe(int argc, char **argv)
{
    static const struct option opts[] = {
        {"etcd", required_argument, NULL, 'e'}, {"id", required_argument, NULL, 'i'},
        {"key", required_argument, NULL, 'k'},  {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    struct probe p = {.key = LEADER_KEY_DEFAULT};
    long ttl = LEADER_TTL_DEFAULT / VIGIL_NSEC_PER_SEC;
    int o;
    while ((o = getopt_long(argc, argv, "e:i:k:t:h", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'e':
            p.etcd = optarg;
            break;
        case 'i':
            p.id = optarg;
            break;
        case 'k':
            p.key = optarg;
            break;
        case 't':
            errno = 0;
            ttl = strtol(optarg, &end, 10);
            if (errno || *end || ttl < 2 || ttl > 3600) {
                fprintf(stderr, "vigil leader-probe: --ttl wants whole seconds, 2 to 3600\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!p.etcd || !p.id || optind != argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int rc = vio_env_real_new(&p.env, false);
    if (rc) {
        fprintf(stderr, "vigil leader-probe: cannot start the event loop: %s\n", strerror(-rc));
        return CLI_EXIT_FAILURE;
    }
    struct vio_http *http = NULL;
    if (p.env->http_open(p.env, &http) != 0 || p.env->http_open(p.env, &p.fence_http) != 0) {
        fprintf(stderr, "vigil leader-probe: cannot initialise libcurl\n");
        vio_http_close(http);
        vio_env_real_free(p.env);
        return CLI_EXIT_FAILURE;
    }
    struct leader_opts lo = {
        .endpoint = p.etcd,
        .key = p.key,
        .id = p.id,
        .ttl = (vigil_time_t)ttl * VIGIL_NSEC_PER_SEC,
        .on_change = on_change,
        .arg = &p,
    };
    rc = leader_new(p.env->loop, http, &lo, &p.ld);
    if (rc) {
        fprintf(stderr, "vigil leader-probe: %s\n",
                rc == -VIGIL_EINVAL ? "bad --etcd, --id (1 to 64 bytes) or --key"
                                    : "out of memory");
        vio_http_close(http);
        vio_http_close(p.fence_http);
        vio_env_real_free(p.env);
        return CLI_EXIT_USAGE;
    }
    vio_timer_init(&p.exit_timer, on_exit_timer, &p);
    vio_loop_on_signal(p.env->loop, on_signal, &p);
    leader_start(p.ld);
    rc = vio_loop_run(p.env->loop);
    vio_timer_disarm(p.env->loop, &p.exit_timer);
    leader_free(p.ld);
    vio_http_close(p.fence_http);
    vio_env_real_free(p.env);
    if (rc) {
        fprintf(stderr, "vigil leader-probe: the event loop failed: %s\n", strerror(-rc));
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

/*
 * vigil peer: a member of a peer-to-peer cluster (docs/peer.md). The
 * daemon of vigil monitor (monitord.c) with a "peer" section: the SWIM
 * membership protocol on the member's socket (peerd.c) decides the
 * members' states instead of heartbeat detectors, and the same events,
 * API, CLI, log, hooks, actions and leadership serve them. The settings
 * come from the "peer" and "monitor" sections of -c FILE, and the flags
 * below override them. SIGTERM or SIGINT: the member leaves (tells the
 * others, who mark it left) and exits; SIGHUP reads the file again (hooks,
 * actions, log; the peer section needs a restart).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cmds.h"
#include "config.h"
#include "monitord.h"
#include "io/vio.h"

static void usage(FILE *f)
{
    fprintf(
        f, "usage: vigil peer [-c FILE] [--id ID] [--listen IP:PORT] [--seed IP:PORT]...\n"
           "                  [--key-file FILE [--encrypt] | --insecure] [--member-file FILE]\n"
           "                  [--ca FILE] [--api IP:PORT] [--interval DUR] [--no-lifeguard]\n"
           "                  [--log-file FILE] [--check]\n"
           "  A member of a peer-to-peer cluster: SWIM with Lifeguard, no central monitor\n"
           "  (docs/peer.md). Settings: the peer and monitor sections of FILE; flags override.\n"
           "  --id ID          this member's id (peer.id; default: the host name)\n"
           "  --listen IP:PORT its UDP socket (peer.listen)\n"
           "  --seed IP:PORT   a member to join through (peer.seeds; repeat; asked every second\n"
           "                   until one answers)\n"
           "  --key-file FILE  the cluster's key (vigil keygen -o FILE): every message tagged\n"
           "  --encrypt        seal every datagram with the cluster's key (peer.encrypt)\n"
           "  --member-file F  this member's signing key and certificate (vigil peer-cert issue):\n"
           "                   its leave and refutations are signed (peer.member_file)\n"
           "  --ca FILE        the certificates' CA public key (vigil peer-cert ca): unsigned or\n"
           "                   forged leaves and alives are refused (peer.ca_file)\n"
           "  --insecure       no key: anyone may speak to the members\n"
           "  --api IP:PORT    the API (monitor.api; without -c: none unless given), so that\n"
           "                   vigil status and vigil events work against this member\n"
           "  --interval DUR   the protocol period (peer.interval, default 1s)\n"
           "  --check          check the settings and exit\n"
           "SIGTERM or SIGINT: leave (the others mark this member left) and exit 0.\n");
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "vigil peer: out of memory\n");
        exit(1);
    }
    return d;
}

int cmd_peer(int argc, char **argv)
{
    enum {
        OPT_ID = 256,
        OPT_SEED,
        OPT_INSECURE,
        OPT_NOLG,
        OPT_LOGFILE,
        OPT_CHECK,
        OPT_INTERVAL,
        OPT_ENCRYPT,
        OPT_MEMBER,
        OPT_CA
    };
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"id", required_argument, 0, OPT_ID},
                                         {"listen", required_argument, 0, 'l'},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"key-file", required_argument, 0, 'k'},
                                         {"insecure", no_argument, 0, OPT_INSECURE},
                                         {"encrypt", no_argument, 0, OPT_ENCRYPT},
                                         {"member-file", required_argument, 0, OPT_MEMBER},
                                         {"ca", required_argument, 0, OPT_CA},
                                         {"api", required_argument, 0, 'a'},
                                         {"interval", required_argument, 0, OPT_INTERVAL},
                                         {"no-lifeguard", no_argument, 0, OPT_NOLG},
                                         {"log-file", required_argument, 0, OPT_LOGFILE},
                                         {"check", no_argument, 0, OPT_CHECK},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct vcfg cfg;
    vcfg_init(&cfg);
    cfg.role = "peer";
    char err[600];
    bool check = false, api_given = false, seeds_given = false;
    /* The file first, so that flags override it wherever they stand. */
    optind = 1;
    opterr = 1;
    for (int o; (o = getopt_long(argc, argv, "c:l:k:a:h", opts, NULL)) != -1;) {
        if (o == 'h') {
            usage(stdout);
            vcfg_free(&cfg);
            return 0;
        }
        if (o == '?') {
            usage(stderr);
            vcfg_free(&cfg);
            return 2;
        }
        if (o == 'c' && vcfg_load(&cfg, optarg, err, sizeof err)) {
            fprintf(stderr, "vigil peer: %s\n", err);
            vcfg_free(&cfg);
            return 2;
        }
    }
    struct vcfg_peer *p = &cfg.peer;
    optind = 1;
    opterr = 0;
    for (int o; (o = getopt_long(argc, argv, "c:l:k:a:h", opts, NULL)) != -1;) {
        switch (o) {
        case OPT_ID:
            if (!vigil_id_valid(optarg, strlen(optarg))) {
                fprintf(stderr, "vigil peer: --id %s: not a valid member id\n", optarg);
                vcfg_free(&cfg);
                return 2;
            }
            free(p->id);
            p->id = dup_or_die(optarg);
            break;
        case 'l':
            free(p->listen);
            p->listen = dup_or_die(optarg);
            break;
        case OPT_SEED:
            if (!seeds_given) {
                for (size_t i = 0; i < p->n_seeds; i++)
                    free(p->seeds[i]);
                p->n_seeds = 0;
                seeds_given = true;
            }
            if (p->n_seeds == VCFG_PEER_MAX_SEEDS) {
                fprintf(stderr, "vigil peer: at most %d seeds\n", VCFG_PEER_MAX_SEEDS);
                vcfg_free(&cfg);
                return 2;
            }
            p->seeds[p->n_seeds++] = dup_or_die(optarg);
            break;
        case 'k':
            free(p->key_file);
            p->key_file = dup_or_die(optarg);
            break;
        case OPT_INSECURE:
            p->insecure = true;
            break;
        case OPT_ENCRYPT:
            p->encrypt = true;
            break;
        case OPT_MEMBER:
            free(p->member_file);
            p->member_file = dup_or_die(optarg);
            break;
        case OPT_CA:
            free(p->ca_file);
            p->ca_file = dup_or_die(optarg);
            break;
        case 'a':
            free(cfg.monitor.api);
            cfg.monitor.api = dup_or_die(optarg);
            api_given = true;
            break;
        case OPT_INTERVAL:
            if (vcfg_parse_duration(optarg, &p->interval) != 0 ||
                p->interval < 10 * VIGIL_NSEC_PER_MSEC) {
                fprintf(stderr, "vigil peer: --interval %s: a duration of 10ms or more\n", optarg);
                vcfg_free(&cfg);
                return 2;
            }
            break;
        case OPT_NOLG:
            p->lifeguard = false;
            break;
        case OPT_LOGFILE:
            free(cfg.monitor.log_file);
            cfg.monitor.log_file = dup_or_die(optarg);
            break;
        case OPT_CHECK:
            check = true;
            break;
        default:
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil peer: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        vcfg_free(&cfg);
        return 2;
    }
    p->on = true;
    /* Without a file, an API only when asked for: several members may share a host. */
    if (!cfg.path && !api_given) {
        free(cfg.monitor.api);
        cfg.monitor.api = dup_or_die("off");
    }
    if (!p->id) {
        char host[VIGIL_ID_MAX + 1];
        if (vcfg_host_id(host, sizeof host) != 0) {
            fprintf(stderr, "vigil peer: give peer.id (--id): the host name is not a valid id\n");
            vcfg_free(&cfg);
            return 2;
        }
        p->id = dup_or_die(host);
    }
    if (!p->listen || (!p->key_file && !p->insecure)) {
        fprintf(stderr, "vigil peer: %s%s\n",
                cfg.path && !p->given ? "the file has no peer section; " : "",
                !p->listen ? "peer.listen (--listen IP:PORT) is needed"
                           : "no key: give peer.key_file (--key-file, the cluster's key from "
                             "vigil keygen), or peer.insecure (--insecure)");
        usage(stderr);
        vcfg_free(&cfg);
        return 2;
    }
    if (vcfg_check(&cfg, "monitor", err, sizeof err)) {
        fprintf(stderr, "vigil peer: %s\n", err);
        vcfg_free(&cfg);
        return 2;
    }
    if (check) {
        printf("%s: the member's configuration is valid (id %s, listen %s, %zu seeds, %zu "
               "hooks)\n",
               cfg.path ? cfg.path : "(no file)", p->id, p->listen, p->n_seeds,
               cfg.monitor.n_hooks);
        vcfg_free(&cfg);
        return 0;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil peer: libsodium failed to initialise\n");
        vcfg_free(&cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a hook that closes its stdin early must not kill us */
    struct vio_env *env;
    int rc = vio_env_real_new(&env, true);
    if (rc) {
        fprintf(stderr, "vigil peer: cannot start: %s\n", strerror(-rc));
        vcfg_free(&cfg);
        return 1;
    }
    struct monitord *d;
    if (monitord_new(env, &cfg, &d, err, sizeof err)) {
        fprintf(stderr, "vigil peer: %s\n", err);
        vio_env_real_free(env);
        return 1;
    }
    rc = vio_loop_run(env->loop);
    bool stuck = monitord_free(d) != 0;
    vio_env_real_free(env);
    if (stuck)
        _exit(rc ? 1 : 0);
    return rc ? 1 : 0;
}

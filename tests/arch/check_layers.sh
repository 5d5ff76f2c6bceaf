#!/usr/bin/env bash
# The layering of docs/architecture.md, checked:
#  - src/io is the only place that talks to the operating system: outside it,
#    src/ calls no socket, epoll, signalfd, spawn, fork, wait, thread, file,
#    signal-mask or clock function, and uses neither libcurl,
#    libmicrohttpd nor SQLite;
#  - src/core is pure: besides the above, it reads no clock, prints nothing
#    and includes nothing from src/io or the program.
# Comments are stripped before looking, so prose may name these calls.
set -euo pipefail
cd "${VIGIL_SOURCE_DIR:-$(dirname "$0")/../..}"

# Code only: block and line comments removed, string literals emptied.
strip() {
    python3 - "$1" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), s, flags=re.S)
s = re.sub(r'//[^\n]*', '', s)
s = re.sub(r'"(\\.|[^"\\\n])*"', '""', s)
sys.stdout.write(s)
PY
}

os_calls='(^|[^>.[:alnum:]_])(socket|recvmmsg|sendmmsg|recvmsg|sendmsg|recvfrom|sendto|bind|connect|accept4?|signalfd|fork|vfork|waitpid|wait|pthread_create|fopen|open|openat|close|read|write|pread|pwrite|rename|unlink|fsync|fdatasync|mkostemp|mkstemp|stat|fstat|lstat|sigaction|sigprocmask|sigtimedwait|kill|pipe|pipe2|clock_gettime|gettimeofday|nanosleep|usleep|sleep|getaddrinfo|gethostname|poll|select|timerfd_create|eventfd)[[:space:]]*\(|epoll_|posix_spawn|curl_|MHD_|sqlite3_'
core_extra='(^|[^>.[:alnum:]_])(printf|fprintf|puts|perror|time|vigil_clock_mono|vigil_clock_wall_us|getenv|rand|random)[[:space:]]*\(|#include[[:space:]]*"(io|vigil)/'

bad=0
while IFS= read -r f; do
    hits=$(strip "$f" | grep -nE "$os_calls" || true)
    case "$f" in src/core/*)
        hits="$hits$(strip "$f" | grep -nE "$core_extra" || true)" ;;
    esac
    if [ -n "$hits" ]; then
        echo "$f talks to the OS outside src/io:"
        echo "$hits" | sed 's/^/    /'
        bad=1
    fi
done < <(find src -name '*.[ch]' ! -path 'src/io/*' | sort)

if [ "$bad" -ne 0 ]; then
    echo "1 failed: layering"
    exit 1
fi
echo "layering: src/io is the only layer that talks to the OS; src/core is pure"

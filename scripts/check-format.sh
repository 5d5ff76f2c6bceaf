#!/usr/bin/env bash
# Checks every C source and header against .clang-format; lists offenders.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(find include src tests fuzz bench examples -name '*.[ch]' | sort)
bad=0
for f in $files; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run: clang-format -i $f)"
        bad=1
    fi
done
[ "$bad" -eq 0 ] && echo "$(echo "$files" | wc -l) files formatted"
exit "$bad"

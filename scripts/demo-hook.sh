#!/bin/sh
# Demo hook: keeps a "rotation" file of the nodes that should get traffic,
# the way a real hook would drive a load balancer. The event arrives in
# VIGIL_* variables and as JSON on standard input.
set -eu
rotation="${VIGIL_DEMO_DIR:?}/rotation"
# Hooks of different nodes run in parallel: serialise edits of the shared file.
exec 9>"$rotation.lock"
flock 9
touch "$rotation"
cat >> "${VIGIL_DEMO_DIR}/hook-events.jsonl"
case "$VIGIL_NEW_STATE" in
dead | left)
    grep -vx "$VIGIL_NODE" "$rotation" > "$rotation.tmp" || true
    mv "$rotation.tmp" "$rotation"
    if [ "$VIGIL_NEW_STATE" = dead ]; then
        why="silent ${VIGIL_SINCE_LAST}s, level $VIGIL_LEVEL >= $VIGIL_THRESHOLD"
    else
        why="said goodbye"
    fi
    echo "[hook] event $VIGIL_EVENT_SEQ: $VIGIL_NODE is $VIGIL_NEW_STATE ($why): taken out of rotation"
    ;;
alive)
    grep -qx "$VIGIL_NODE" "$rotation" || echo "$VIGIL_NODE" >> "$rotation"
    echo "[hook] event $VIGIL_EVENT_SEQ: $VIGIL_NODE is alive ($VIGIL_REASON): in rotation"
    ;;
*)
    echo "[hook] event $VIGIL_EVENT_SEQ: $VIGIL_NODE is $VIGIL_NEW_STATE"
    ;;
esac

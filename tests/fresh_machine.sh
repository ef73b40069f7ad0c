#!/usr/bin/env bash
# A newcomer's first minutes, replayed: clone the committed state (HEAD) into a temporary
# folder and run the README's two commands there from nothing, timing each. Each command
# gets its own clone, so each pays the set-up (venv + pip install) a newcomer pays:
#   1. make test                       (creates .venv, installs everything, every test)
#   2. make lab PORT=<free port>       in the background, polled until it answers, then stopped
# pip's cache is shared with the machine, as on a learner's machine that has used pip before.
# Usage: [KEEP=1] tests/fresh_machine.sh   (KEEP=1 keeps the clones and logs)
set -euo pipefail

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/byok-fresh.XXXXXX")
lab_pid=
cleanup() {
    if [ -n "$lab_pid" ] && kill -0 "$lab_pid" 2>/dev/null; then
        kill -TERM -- "-$lab_pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$1" "$(now)"; }

head=$(git -C "$repo" rev-parse --short HEAD)
for clone in for-test for-lab; do
    echo "== clone $head into $work/$clone"
    git clone --quiet --no-hardlinks "$repo" "$work/$clone"
done

cd "$work/for-test"

echo "== make test (from nothing: venv, pip install, every test); log: $work/make-test.log"
start=$(now)
if make test >"$work/make-test.log" 2>&1; then status=passed; else status=FAILED; fi
test_s=$(since "$start")
tail -n 3 "$work/make-test.log"
[ "$status" = passed ] || tail -n 60 "$work/make-test.log"
echo "make test: $status in ${test_s} s"

# A free port, so a JupyterLab already on 8888 does not answer for us.
cd "$work/for-lab"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== make lab PORT=$port (background, polled until it answers); log: $work/make-lab.log"
start=$(now)
setsid make lab PORT="$port" >"$work/make-lab.log" 2>&1 &
lab_pid=$!
lab_status=FAILED
for _ in $(seq 3000); do   # up to 10 minutes: the install comes first
    if curl -fs -o /dev/null "http://127.0.0.1:$port/api"; then lab_status=answered; break; fi
    kill -0 "$lab_pid" 2>/dev/null || break
    sleep 0.2
done
lab_s=$(since "$start")
echo "make lab: $lab_status on port $port in ${lab_s} s"
[ "$lab_status" = answered ] || tail -n 40 "$work/make-lab.log"
kill -TERM -- "-$lab_pid" 2>/dev/null || true
wait "$lab_pid" 2>/dev/null || true
lab_pid=

echo "== summary: make test $status in ${test_s} s; make lab $lab_status in ${lab_s} s"
[ "$status" = passed ] && [ "$lab_status" = answered ]

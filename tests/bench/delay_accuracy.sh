#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Delayed task start accuracy (docs/delayed-and-cancel.md): one consumer on
# the embedded broker; N echo tasks submitted at once with not_before spread
# over the next SPREAD ms (so they come due one after another, sharing the
# retry partitions), plus as many undelayed ones. Prints how late each
# delayed task started after its not_before (started_at - not_before, from
# the results): min, p50, p90, p99, max, and how many started early (must
# be 0). Extra arguments go to swarmq-consumer (e.g. -X
# kafka.fetch.wait.max.ms=100, -X delay.hold.max.ms=5000). With FAR=K in
# the environment, K tasks due in one hour are submitted first, ahead of
# the measured ones in every retry partition: the head-of-line case that
# delay.hold.max.ms bounds.
#
#   [FAR=K] tests/bench/delay_accuracy.sh BUILD_DIR [N] [SPREAD_MS] [consumer args...]
set -euo pipefail
build=$(cd "$1" && pwd)
n=${2:-200}
spread=${3:-10000}
shift $(($# < 3 ? $# : 3))
src=$(cd "$(dirname "$0")/../.." && pwd)
source "$src/ops/lib.sh"
work=$(mktemp -d /tmp/swarmq-bench-delay.XXXXXX)
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

"$build/consumer/swarmq-consumer" --embedded-broker --http-port auto "$@" \
        >"$work/c.out" 2>"$work/c.log" &
pid=$!
bootstrap=$(sq_wait_line "$work/c.out" bootstrap.servers 30)
http=$(sq_wait_line "$work/c.out" http.url 10)
wait_until 30 "consumer ready" -- value_is == 200 sq_http_status "$http/readyz" >/dev/null
producer() { "$build/producer/swarmq-producer" -b "$bootstrap" "$@"; }

start=$(($(date +%s%3N) + 3000))
python3 - "$n" "$spread" "$start" "${FAR:-0}" >"$work/tasks.jsonl" <<'PY'
import json, sys
n, spread, start, far = map(int, sys.argv[1:])
for i in range(far):
    print(json.dumps({"id": f"far-{i:06d}", "type": "echo", "payload": "f",
                      "not_before": start + 3600000}))
for i in range(n):
    nb = start + (i * spread) // max(n - 1, 1)
    print(json.dumps({"id": f"d-{i:06d}", "type": "echo", "payload": "d",
                      "not_before": nb}))
    print(json.dumps({"id": f"now-{i:06d}", "type": "echo", "payload": "n"}))
PY
producer -q submit --file "$work/tasks.jsonl" --ids-out "$work/all.ids"
grep -v '^far-' "$work/all.ids" >"$work/ids"
producer wait --ids-file "$work/ids" --timeout-ms $((spread + 120000)) --print --json \
        >"$work/wait.out"
python3 - "$work/wait.out" "$work/tasks.jsonl" <<'PY'
import json, sys
nb = {t["id"]: t["not_before"] for t in map(json.loads, open(sys.argv[2])) if "not_before" in t}
late = sorted(r["started_at"] - nb[r["task_id"]]
              for r in map(json.loads, open(sys.argv[1]))
              if r.get("task_id") in nb)
q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
print(f"delayed tasks: {len(late)}; started after not_before (ms): min {late[0]} "
      f"p50 {q(0.5)} p90 {q(0.9)} p99 {q(0.99)} max {late[-1]}; "
      f"early: {sum(x < 0 for x in late)}")
PY

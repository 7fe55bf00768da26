#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Event latency through GET /events: how long from the moment the instance
# emits a lifecycle event (its `at`, taken in sq_emit_event) to the moment
# a Server-Sent Events client on the same machine has it. One consumer on
# the embedded broker, one /events client (tests/integration/sse_client.py)
# with the per-client rate limit lifted, N echo tasks at a steady rate.
# Prints p50/p90/p99/max in milliseconds.
#
#   tests/bench/events_latency.sh [--build DIR] [--count N] [--rate R]
#
# DIR defaults to ./build (bash ops/build.sh makes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"

build=$root/build
count=3000
rate=500
while (($#)); do
        case $1 in
        --build) build=$(cd "$2" && pwd); shift 2 ;;
        --count) count=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        -h | --help) sed -n '3,14p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
done
[[ -x "$build/consumer/swarmq-consumer" ]] || { echo "no $build/consumer/swarmq-consumer: build first" >&2; exit 2; }

work=$(mktemp -d /tmp/swarmq-evlat.XXXXXX)
pids=()
cleanup() {
        local pid
        for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT

"$build/consumer/swarmq-consumer" --embedded-broker --http-port auto -i bench \
        -X http.events.rate=1000000 -X http.events.buffer=65536 \
        >"$work/c.out" 2>"$work/c.log" &
pids+=($!)
bootstrap=$(sq_wait_line "$work/c.out" bootstrap.servers 30)
url=$(sq_wait_line "$work/c.out" http.url 10)
wait_until 30 "$url/readyz answers 200" -- value_is == 200 sq_http_status "$url/readyz"
seq -f 'lat-%06g' 1 "$count" >"$work/ids"
python3 "$root/tests/integration/sse_client.py" "$url/events" --out "$work/ev.jsonl" \
        --until-ids "$work/ids" --timeout 300 --ready-file "$work/ready" 2>"$work/sse.log" &
sse_pid=$!
pids+=("$sse_pid")
sq_wait_line "$work/ready" ready 10 >/dev/null
"$build/producer/swarmq-producer" -b "$bootstrap" -q submit --count "$count" --type echo \
        --payload x --id-prefix lat --rate "$rate"
wait "$sse_pid"
python3 - "$work/ev.jsonl" "$count" "$rate" <<'PY'
import json, sys
lat = sorted(r["recv_ms"] - r["data"]["at"] for r in map(json.loads, open(sys.argv[1]))
             if r["event"] == "message" and r["data"].get("task_id", "").startswith("lat-"))
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{len(lat)} events of {sys.argv[2]} tasks at {sys.argv[3]} tasks/s: "
      f"emit -> SSE client p50 {q(.5):.2f} ms, p90 {q(.9):.2f} ms, "
      f"p99 {q(.99):.2f} ms, max {lat[-1]:.2f} ms")
PY

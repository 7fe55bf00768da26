#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# An event storm against the /events limits: 4,000 tasks (12,000 events)
# while two clients follow /events at http.events.rate=100, one of them
# reading slowly. Each client gets at most its rate (plus its one-second
# burst), is told what it skipped (event: dropped), and
# swarmq_events_dropped_total counts at least what they were told; a third
# client is refused (http.events.clients=2); /healthz answers throughout;
# RSS stays bounded; after the storm the client still gets new events live.
source "$(dirname "$0")/lib.sh"

# ASan's quarantine (CI's sanitizer pass) would read as RSS growth.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
start_consumer c1 --embedded-broker -X http.events.rate=100 \
        -X http.events.buffer=256 -X http.events.clients=2
wait_ready "$c1_http"
sse=(python3 "$src/tests/integration/sse_client.py")
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$c1_pid/status"; }

# The fast client stays until it sees the task submitted after the storm.
echo after-000001 >"$work/after.ids"
"${sse[@]}" "$c1_http/events" --out "$work/fast.jsonl" --timeout 90 \
        --until-ids "$work/after.ids" --ready-file "$work/fast.ready" 2>"$work/fast.log" &
fast_pid=$!
"${sse[@]}" "$c1_http/events" --out "$work/slow.jsonl" --timeout 12 --read-delay 0.05 \
        --ready-file "$work/slow.ready" 2>"$work/slow.log" &
slow_pid=$!
sq_pids+=("$fast_pid" "$slow_pid")
# The clients are Python processes: on a loaded machine they take seconds
# to start, so the bound on their connecting is generous (an event, not a
# sleep: the test goes on as soon as each says it is connected).
sq_wait_line "$work/fast.ready" ready 60 >/dev/null || fail "fast client did not connect within 60 s"
sq_wait_line "$work/slow.ready" ready 60 >/dev/null || fail "slow client did not connect within 60 s"
t0=$(date +%s.%N)
set +e
"${sse[@]}" "$c1_http/events" --out "$work/third.jsonl" --timeout 5 2>"$work/third.log"
rc=$?
set -e
assert_eq "third client exit (HTTP error)" "$rc" 2
grep -q "HTTP 503: too many /events clients (2, http.events.clients)" "$work/third.log" ||
        fail "third client: $(cat "$work/third.log")"
log "ok: third /events client refused with 503"

rss0=$(rss_kib)
producer -q submit --count 4000 --type noop --id-prefix storm --ids-out "$work/ids" || fail "submit failed"
producer wait --ids-file "$work/ids" --timeout-ms 60000 >/dev/null || fail "storm tasks did not finish"
assert_eq "/healthz after the storm" "$(sq_http_status "$c1_http/healthz")" 200
rss1=$(rss_kib)
# After the storm the fast client still gets new events live.
producer -q submit --count 1 --type noop --id-prefix after || fail "submit failed"
sq_wait_exit "$fast_pid" 60 || fail "no live event after the storm: $(cat "$work/fast.log")"
log "ok: live events after the storm"
sq_wait_exit "$slow_pid" 30 || true
elapsed=$(python3 -c "import time,sys; print(time.time() - float(sys.argv[1]))" "$t0")

dropped_metric=$(metric_sum "$c1_http" '^swarmq_events_dropped_total')
python3 - "$work/fast.jsonl" "$work/slow.jsonl" "$elapsed" "$dropped_metric" <<'PY' || fail "storm limits not kept (see above)"
import json, sys
elapsed, metric = float(sys.argv[3]), float(sys.argv[4])
told_total = 0
for name in sys.argv[1:3]:
    recs = [json.loads(l) for l in open(name)]
    msgs = [r for r in recs if r["event"] == "message"]
    told = sum(r["data"]["dropped"] for r in recs if r["event"] == "dropped")
    told_total += told
    seqs = [r["data"]["seq"] for r in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "out of order or repeated"
    # The rate: 100/s over the client's life plus a 100-event burst and
    # the 50-event backlog it started with.
    bound = 100 * elapsed + 100 + 50
    print(f"{name.split('/')[-1]}: {len(msgs)} events in {elapsed:.1f} s (bound {bound:.0f}), "
          f"told of {told} dropped")
    assert len(msgs) <= bound, (len(msgs), bound)
    assert told > 0, "a client over its rate was never told it skipped events"
print(f"swarmq_events_dropped_total {metric:.0f}, clients were told of {told_total}")
assert metric >= told_total > 0
PY
log "RSS before the storm ${rss0} KiB, after ${rss1} KiB"
((rss1 - rss0 < 32 * 1024)) || fail "RSS grew by $(( (rss1 - rss0) / 1024 )) MiB in the storm"

stop_consumers c1
log "passed"

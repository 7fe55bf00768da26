#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# POST /admin/pause, /admin/resume and /admin/drain: off (404) without a
# token; 401 without or with a wrong bearer token; pause stops intake
# (records wait in Kafka, nothing runs) and resume takes them; drain stops
# intake, finishes what was admitted, commits it and reports not ready,
# while the process keeps serving; resume after a drain finishes the rest.
# Each action is an instance event on /events and on the events topic.
source "$(dirname "$0")/lib.sh"

status_get() { # status_get EXPR: evaluates EXPR on a fresh /status
        sq_http_get "$c1_http/status" >"$work/status.json"
        json_get "$work/status.json" "$1"
}
# wait_status EXPR WANT WHAT: polls /status until EXPR prints WANT (60 s).
wait_status() {
        wait_until 60 "$3 = $2" -- value_is == "$2" status_get "$1"
        log "ok: $3 = $2"
}
post() { # post PATH [curl args]: prints "status body"
        local path=$1
        shift
        curl -s -o "$work/post.body" -w '%{http_code}' -X POST "$@" "$c1_http$path"
}

# Without a token the admin paths do not exist.
start_consumer c0 --embedded-broker
wait_ready "$c0_http"
assert_eq "POST /admin/pause with admin off" \
        "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$c0_http/admin/pause")" 404
assert_eq "/status says admin off" \
        "$(sq_http_get "$c0_http/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["http"]["admin"])')" False
stop_consumers c0

# With a token from a file.
printf '  tok-%s\n' "$RANDOM$RANDOM" >"$work/token"
token=$(tr -d ' \n' <"$work/token")
start_consumer c1 --embedded-broker -X http.admin.token.file="$work/token" \
        -X commit.interval.ms=200 -X admission.high.mark=1000 -X admission.low.mark=500
wait_ready "$c1_http"
assert_eq "no token" "$(post /admin/pause)" 401
grep -q "Authorization: Bearer" "$work/post.body" || fail "401 body does not say what is needed"
hdr=$(curl -s -D - -o /dev/null -X POST "$c1_http/admin/pause" | tr -d '\r' | grep -i '^WWW-Authenticate:')
assert_eq "WWW-Authenticate" "$hdr" 'WWW-Authenticate: Bearer realm="swarmq"'
assert_eq "wrong token" "$(post /admin/pause -H "Authorization: Bearer ${token}x")" 401
assert_eq "token prefix" "$(post /admin/pause -H "Authorization: Bearer ${token:0:5}")" 401
assert_eq "Basic auth" "$(post /admin/pause -H "Authorization: Basic $token")" 401
assert_eq "GET is not an action" \
        "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$c1_http/admin/pause")" 405
assert_eq "unknown action" "$(post /admin/reboot -H "Authorization: Bearer $token")" 404
assert_eq "still running after refusals" "$(status_get 'j["state"]')" running

# Pause: records stay in Kafka, nothing runs; every partition paused.
assert_eq "pause" "$(post /admin/pause -H "Authorization: Bearer $token")" 202
wait_status 'j["state"]' paused "state after pause"
wait_status 'all(p["paused"] for p in j["partitions"])' True "every partition paused"
producer -q submit --count 200 --type noop --id-prefix p --ids-out "$work/p.ids" || fail "submit failed"
# The records are in Kafka (submit waits for the broker's ack). "Nothing
# runs" is a claim over time: watch for 3 s (15 commit intervals, so the
# poll loop ran many times) that nothing is received or finished.
# (The lag of paused partitions is 0008's subject.)
for ((i = 0; i < 30; i++)); do
        got=$(status_get 'j["tasks"]["received"] + j["tasks"]["finished"]')
        [[ "$got" == 0 ]] || fail "tasks received or run while paused: $got"
        sleep 0.1
done
log "ok: nothing received or run in 3 s of pause with 200 records waiting"
assert_eq "/readyz while paused" "$(sq_http_status "$c1_http/readyz")" 200
assert_eq "resume" "$(post /admin/resume -H "Authorization: Bearer $token")" 202
producer wait --ids-file "$work/p.ids" --timeout-ms 60000 --json >"$work/p.json" ||
        fail "paused tasks did not run after resume"
assert_eq "results after resume" "$(json_get "$work/p.json" 'j["arrived"]')" 200

# Drain: 300 tasks of 60 ms on 4 executors (about 4.5 s of work), then
# drain, then 100 more tasks: what was admitted finishes and is committed,
# the late ones wait in Kafka; /readyz says not ready; the process serves
# on. (The window of 1,000 takes the 300 at once; the late 100 arrive
# while intake is stopped.)
producer -q submit --count 300 --type sleep --payload 60 --id-prefix d \
        --ids-out "$work/d.ids" || fail "submit failed"
wait_status 'j["tasks"]["received"]' 500 "drain tasks admitted"
assert_eq "drain" "$(post /admin/drain -H "Authorization: Bearer $token")" 202
readyz=$(sq_http_get "$c1_http/readyz")
[[ "$readyz" == "not ready: draining, "*" tasks in flight" ]] || fail "/readyz during drain: $readyz"
assert_eq "/readyz status during drain" "$(sq_http_status "$c1_http/readyz")" 503
producer -q submit --count 100 --type noop --id-prefix late --ids-out "$work/late.ids" ||
        fail "submit failed"
wait_status 'j["state"]' drained "state after drain"
assert_eq "in flight when drained" "$(json_get "$work/status.json" 'j["admission"]["window"]["tasks"]')" 0
assert_eq "finished when drained" "$(json_get "$work/status.json" 'j["tasks"]["finished"]')" 500
assert_eq "committed = finished" \
        "$(json_get "$work/status.json" 'sum(p["committed"] or 0 for p in j["partitions"] if p["lane"] == "tasks")')" 500
for ((i = 0; i < 30; i++)); do
        got=$(status_get 'j["tasks"]["received"]')
        [[ "$got" == 500 ]] || fail "a task submitted during the drain was admitted ($got received)"
        sleep 0.1
done
log "ok: the 100 tasks submitted during the drain stayed in Kafka for 3 s"
assert_eq "/readyz when drained" "$(sq_http_get "$c1_http/readyz")" \
        "not ready: drained (POST /admin/resume to take work again)"
assert_eq "/healthz when drained" "$(sq_http_status "$c1_http/healthz")" 200
kill -0 "$c1_pid" || fail "consumer exited after the drain"

assert_eq "resume after drain" "$(post /admin/resume -H "Authorization: Bearer $token")" 202
cat "$work/d.ids" "$work/late.ids" >"$work/dl.ids"
producer wait --ids-file "$work/dl.ids" --timeout-ms 60000 --json >"$work/dl.json" ||
        fail "tasks left by the drain did not run after resume"
assert_eq "results after drain and resume" "$(json_get "$work/dl.json" 'j["arrived"]')" 400
assert_eq "duplicates" "$(json_get "$work/dl.json" 'j["duplicates"]')" 0
wait_ready "$c1_http"

# The actions as instance events: on /events and in the events topic.
got=$(python3 - "$c1_http" <<'PY'
import json, sys, urllib.request
since, types = 0, []
while True:
    page = json.load(urllib.request.urlopen(
        f"{sys.argv[1]}/events?format=json&since={since}&limit=1000"))
    if not page["events"]:
        break
    types += [e["type"] for e in page["events"] if e["type"].startswith("instance_")]
    since = page["events"][-1]["seq"]
print(" ".join(types))
PY
)
assert_eq "instance events on /events" "$got" \
        "instance_paused instance_resumed instance_draining instance_drained instance_resumed"
c1_events() { # the events in the events topic with key c1
        kcat -b "$bootstrap" -C -t swarmq-events -e -q -f '%k\n' 2>/dev/null | grep -c '^c1$'
}
wait_until 30 "5 instance events in the events topic" -- value_is -ge 5 c1_events
assert_eq "instance events in the events topic (key = instance id)" "$wait_seen" 5

stop_consumers c1
log "passed"

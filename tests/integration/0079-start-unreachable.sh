#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Start-up against a cluster that does not answer: the instance listens at
# once, so http.url is printed and /healthz, /readyz and /status say what
# it waits for while it looks for its topics (a metadata request with a
# 10 s timeout, then CreateTopics with 35 s); a SIGHUP or a
# POST /admin/cancel meanwhile is refused with why (the producer has no
# topic handles before the topics step), and a SIGTERM ends the wait and the process cleanly.
# Before, nothing listened until start-up gave up (about 45 s) and SIGTERM
# waited as long.
source "$(dirname "$0")/lib.sh"

# A loopback port with nothing listening on it: connections are refused.
dead_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$consumer_bin" --http-port auto -i c1 -b "127.0.0.1:$dead_port" \
        -X http.admin.token=tok-0079 \
        >"$work/c1.out" 2>"$work/c1.log" &
c1_pid=$!
sq_pids+=("$c1_pid")
c1_http=$(sq_wait_line "$work/c1.out" http.url 15) || fail "no http.url while start-up waits"

# The server answers while start-up still waits for the cluster.
wait_until 15 "/readyz says start-up waits for the cluster" -- \
        grep -q "not ready: starting, waiting for the Kafka cluster" \
        < <(curl -s "$c1_http/readyz")
assert_eq "/readyz status while starting" "$(sq_http_status "$c1_http/readyz")" 503
assert_eq "/healthz while starting" "$(curl -s "$c1_http/healthz" | cut -d, -f1)" "ok: starting"
sq_http_get "$c1_http/status" >"$work/status.json"
assert_eq "/status state" "$(json_get "$work/status.json" 'j["state"]')" starting
assert_eq "/status waiting_for" \
        "$(json_get "$work/status.json" 'j["waiting_for"].startswith("the Kafka cluster")')" True
grep -q '^bootstrap.servers=' "$work/c1.out" && fail "bootstrap.servers= printed before the instance started"
log "ok: listening at once; /readyz, /healthz, /status say what start-up waits for"

# A reload while starting is refused, with why, and counted.
kill -HUP "$c1_pid"
wait_until 15 "the SIGHUP is refused while starting" -- \
        grep -q "reload rejected.*still starting" "$work/c1.log"
wait_until 15 "the refused reload is counted" -- \
        value_is -eq 1 metric_sum "$c1_http" '^swarmq_config_reloads_total.*error'

# A cancel while starting: 503, naming what start-up waits for.
code=$(curl -s -o "$work/cancel.out" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer tok-0079" "$c1_http/admin/cancel?id=t79")
assert_eq "POST /admin/cancel while starting" "$code" 503
grep -q "still starting (waiting for the Kafka cluster" "$work/cancel.out" ||
        fail "the 503 does not say the instance is starting: $(cat "$work/cancel.out")"
log "ok: a reload and a cancel while starting are refused with why"

# SIGTERM ends the wait: the process exits 0, long before start-up's
# own deadlines would have.
kill -TERM "$c1_pid"
rc=0
sq_wait_exit "$c1_pid" 30 || rc=$?
((rc != 124)) || fail "c1 did not exit within 30 s of SIGTERM while starting"
assert_eq "exit status after SIGTERM while starting" "$rc" 0
log "passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A Schema Registry that does not answer loses no task. The consumer's
# schema.registry.url points at a TCP relay (tcp_relay.py) in front of the
# real registry of the ctest fixture, so stopping the relay is an outage.
# At start-up, with the relay down: the consumer stays up, logs why it
# cannot register, /readyz answers 503 naming the registry's URL, and
# tasks written meanwhile (by confluent-kafka's AvroSerializer, which
# reaches the registry directly) wait. The relay comes up: the consumer
# registers on its next try, becomes ready and runs them. Mid-run, with
# the relay down again, tasks of a writer schema id the consumer has not
# seen hold their partition (logged, not dead-lettered; one registry
# request per back-off round, not one per partition) and run once the
# relay is back.
source "$(dirname "$0")/../integration/lib.sh"
url=$(sed -n 's/^schema.registry.url=//p' "$SQ_TEST_REGISTRY_STATE/url")
[[ -n "$url" ]] || fail "no registry URL in $SQ_TEST_REGISTRY_STATE/url"
python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
unset SWARMQ_VENV # the consumer reads SWARMQ_* variables as keys

hostport=${url#http://}
hostport=${hostport%%/*}
relay_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
relay_url="http://127.0.0.1:$relay_port/${url#http://*/}"

start_relay() {
        "$python" "$src/tests/registry/tcp_relay.py" "$relay_port" \
                "${hostport%:*}" "${hostport##*:}" >"$work/relay.out" 2>&1 &
        relay_pid=$!
        sq_pids+=("$relay_pid")
        sq_wait_line "$work/relay.out" relay.ready 30 >/dev/null ||
                fail "the relay did not start"
}
stop_relay() {
        kill -KILL "$relay_pid"
        sq_wait_exit "$relay_pid" 30 || true
}
readyz_body() {
        sq_http_get "$c1_http/readyz"
}

start_consumer c1 --embedded-broker -X executor.threads=2 \
        -X retry.max.attempts=1 -X "schema.registry.url=$relay_url" \
        -X schema.registry.timeout.ms=2000
peer=("$python" "$src/tests/registry/registry_peer.py" --bootstrap "$bootstrap"
        --registry "$url")

wait_until 30 "/readyz names the registry it cannot reach" -- \
        value_is == "not ready: schema registry: the schema registry at $relay_url did not answer" \
        eval 'readyz_body | sed "s/ POST.*//"'
grep -q "cannot register swarmq's schemas, no task is taken until they are" \
        "$work/c1.log" || fail "c1 did not log why it takes no task"
"${peer[@]}" produce --topic swarmq-tasks --count 20 --id-prefix early \
        --schema "$src/schemas/task.avsc" --ids-out "$work/ids" >/dev/null ||
        fail "the AvroSerializer producer failed"

start_relay
wait_ready "$c1_http"
"${peer[@]}" check --results swarmq-results --events swarmq-events \
        --ids "$work/ids" --timeout 90 ||
        fail "the tasks written during the outage did not all run"

stop_relay
"${peer[@]}" produce --topic swarmq-tasks --count 20 --id-prefix late \
        --lagging --ids-out "$work/ids" >/dev/null ||
        fail "the AvroSerializer producer (older Task shape) failed"
wait_until 60 "c1 holds a partition on the unreachable registry" -- \
        grep -q "holding topic=swarmq-tasks partition=.* did not answer" "$work/c1.log"
start_relay
"${peer[@]}" check --results swarmq-results --events swarmq-events \
        --ids "$work/ids" --timeout 90 ||
        fail "the tasks held during the outage did not all run"
# One request per back-off round: a partition whose record needs the
# registry while a round's wait runs is held without asking (so a registry
# that times out cannot stall the poll thread once per record). Each
# request's hold is a whole back-off step; a second request within a round
# would hold for what is left of it.
grep "holding topic=.* did not answer" "$work/c1.log" |
        grep -Ev " for (500|1000|2000|4000|8000|16000|30000) ms: " >"$work/extra-requests" &&
        fail "registry requests within a back-off round: $(head -n 3 "$work/extra-requests")"
assert_eq "decode dead letters" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="DECODE_ERROR"')" 0
assert_eq "finished tasks" "$(metric_sum "$c1_http" '^swarmq_tasks_total')" 40

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"

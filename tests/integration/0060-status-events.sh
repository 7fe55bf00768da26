#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# GET /status and GET /events on one consumer: the snapshot names the
# instance, its partitions with committed offsets and lag, lanes and agents,
# and masks secrets; a Server-Sent Events client sees received, started and
# succeeded for every task, in order; Last-Event-ID and ?since= resume
# where a client left off; a JSON page of the ring agrees with the stream.
source "$(dirname "$0")/lib.sh"

# A config file, so SIGHUP can change a feature flag below.
printf 'flag.work_stealing = off\n' >"$work/c1.properties"
start_consumer c1 --embedded-broker -c "$work/c1.properties" \
        -X http.admin.token=very-secret-admin \
        -X kafka.sasl.username=svc-user -X kafka.sasl.password=hunter2 \
        -X kafka.security.protocol=plaintext
wait_ready "$c1_http"
sse=(python3 "$src/tests/integration/sse_client.py")

# The snapshot before any task: wait until the partition snapshot (taken
# every commit interval) lists the assignment.
# status_to FILE EXPR: saves a fresh /status in FILE, prints EXPR on it.
status_to() {
        sq_http_get "$c1_http/status" >"$1"
        json_get "$1" "$2"
}
wait_until 10 "36 partitions in /status" -- \
        value_is -eq 36 status_to "$work/status0.json" 'len(j["partitions"])'
assert_eq "partitions in /status" "$wait_seen" 36
assert_eq "instance" "$(json_get "$work/status0.json" 'j["instance"]')" c1
assert_eq "group" "$(json_get "$work/status0.json" 'j["group"]')" swarmq
assert_eq "version" "$(json_get "$work/status0.json" 'j["version"]')" \
        "$("$consumer_bin" --version | awk '{print $NF}')"
assert_eq "state" "$(json_get "$work/status0.json" 'j["state"]')" running
assert_eq "lanes" "$(json_get "$work/status0.json" 'sorted(j["admission"]["lanes"])')" \
        "['CRITICAL', 'HIGH', 'LOW', 'NORMAL']"
assert_eq "agents" "$(json_get "$work/status0.json" '",".join(a["name"] for a in j["agents"])')" \
        "noop,echo,sleep,sha256,fail,cpu"
assert_eq "masked admin token" "$(json_get "$work/status0.json" 'j["config"]["http.admin.token"]')" '***'
assert_eq "masked sasl password" "$(json_get "$work/status0.json" 'j["config"]["kafka.sasl.password"]')" '***'
assert_eq "masked sasl user" "$(json_get "$work/status0.json" 'j["config"]["kafka.sasl.username"]')" '***'
assert_eq "unmasked protocol" "$(json_get "$work/status0.json" 'j["config"]["kafka.security.protocol"]')" plaintext
if grep -q -e very-secret-admin -e hunter2 -e svc-user "$work/status0.json"; then
        fail "/status shows a secret"
fi
log "ok: no secret in /status"

# A live client, then 300 tasks (ids st-000001.. as the producer names
# them, written first so the client knows what to wait for).
seq -f 'st-%06g' 1 300 >"$work/ids"
seq0=$(json_get "$work/status0.json" 'j["events"]["last_seq"]')
"${sse[@]}" "$c1_http/events?since=$seq0" --out "$work/sse1.jsonl" \
        --until-ids "$work/ids" --timeout 60 --ready-file "$work/sse1.ready" \
        2>"$work/sse1.log" &
sse_pid=$!
sq_pids+=("$sse_pid")
sq_wait_line "$work/sse1.ready" ready 10 >/dev/null || fail "SSE client did not connect"
producer -q submit --count 300 --type echo --payload hi --id-prefix st \
        --ids-out "$work/ids.submitted" || fail "submit failed"
cmp -s "$work/ids" "$work/ids.submitted" || fail "producer named the tasks differently"
producer wait --ids-file "$work/ids" --timeout-ms 60000 --json >"$work/wait.json" ||
        fail "tasks did not finish"
sq_wait_exit "$sse_pid" 60 || fail "SSE client did not see every task finish (status $?)"

python3 - "$work/sse1.jsonl" "$work/ids" "$seq0" <<'PY' || fail "event stream is wrong"
import collections, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ids = [l.strip() for l in open(sys.argv[2])]
seq0 = int(sys.argv[3])
msgs = [r for r in recs if r["event"] == "message"]
seqs = [int(r["id"]) for r in msgs]
assert seqs == list(range(seq0 + 1, seq0 + 1 + len(seqs))), "ids not consecutive from since+1"
assert all(int(r["id"]) == r["data"]["seq"] for r in msgs), "id and seq differ"
by = collections.defaultdict(list)
for r in msgs:
    by[r["data"].get("task_id")].append(r["data"]["type"])
bad = [i for i in ids if by[i] != ["received", "started", "succeeded"]]
assert not bad, f"{len(bad)} tasks with wrong lifecycle, e.g. {bad[0]}: {by[bad[0]]}"
assert all(r["data"]["instance"] == "c1" for r in msgs)
assert all(r["data"]["agent"] == "echo" for r in msgs if r["data"]["type"] != "received")
print(f"{len(msgs)} events for {len(ids)} tasks, seq {seqs[0]}..{seqs[-1]}")
PY
log "ok: every task's received, started, succeeded on /events"

# Resume: Last-Event-ID (what EventSource sends on reconnect) and since=.
mid=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(r[100]["id"])' "$work/sse1.jsonl")
"${sse[@]}" "$c1_http/events" --last-event-id "$mid" --out "$work/sse2.jsonl" \
        --until-count 5 --timeout 20 2>"$work/sse2.log" || fail "Last-Event-ID resume failed"
assert_eq "first event after Last-Event-ID $mid" \
        "$(head -1 "$work/sse2.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" $((mid + 1))
"${sse[@]}" "$c1_http/events?since=$((mid + 10))" --out "$work/sse3.jsonl" \
        --until-count 1 --timeout 20 2>"$work/sse3.log" || fail "since= resume failed"
assert_eq "first event after since=$((mid + 10))" \
        "$(head -1 "$work/sse3.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" $((mid + 11))

# The JSON page of the ring has the same events as the stream.
sq_http_get "$c1_http/events?format=json&since=$mid&limit=50" >"$work/page.json"
python3 - "$work/page.json" "$work/sse1.jsonl" "$mid" <<'PY' || fail "JSON page disagrees with the stream"
import json, sys
page = json.load(open(sys.argv[1]))
stream = {int(r["id"]): r["data"] for r in map(json.loads, open(sys.argv[2])) if r["event"] == "message"}
mid = int(sys.argv[3])
assert [e["seq"] for e in page["events"]] == list(range(mid + 1, mid + 51)), "seqs"
assert all(stream[e["seq"]] == e for e in page["events"]), "contents"
assert page["missed"] == 0
PY
log "ok: ?format=json page matches the stream"
assert_eq "bad since" "$(sq_http_status "$c1_http/events?since=abc")" 400
assert_eq "bad format" "$(sq_http_status "$c1_http/events?format=xml")" 400

# The snapshot after: counts, offsets committed, no lag.
wait_until 10 "committed offsets over all partitions = 300" -- \
        value_is -eq 300 status_to "$work/status1.json" \
        'sum(p["committed"] or 0 for p in j["partitions"] if p["lane"] == "tasks")'
assert_eq "committed offsets over all partitions" "$wait_seen" 300
assert_eq "lag" "$(json_get "$work/status1.json" 'sum(p["lag"] for p in j["partitions"])')" 0
assert_eq "tasks finished" "$(json_get "$work/status1.json" 'j["tasks"]["finished"]')" 300
assert_eq "echo agent finished" "$(json_get "$work/status1.json" '[a for a in j["agents"] if a["name"] == "echo"][0]["finished"]')" 300
assert_eq "echo success rate" "$(json_get "$work/status1.json" '[a for a in j["agents"] if a["name"] == "echo"][0]["success_rate"]')" 1.0
assert_eq "window empty" "$(json_get "$work/status1.json" 'j["admission"]["window"]["tasks"]')" 0

# Feature flags as they are now: SIGHUP after editing the file.
assert_eq "flag before reload" "$(json_get "$work/status1.json" 'j["flags"]["work_stealing"]')" off
printf 'flag.work_stealing = 25%%\n' >"$work/c1.properties"
kill -HUP "$c1_pid"
wait_until 10 "flag after SIGHUP = 25%" -- \
        value_is == 25% status_to "$work/status-hup.json" 'j["flags"]["work_stealing"]'
assert_eq "flag after SIGHUP" "$wait_seen" "25%"

# The config section shows what runs: a reloaded key's new value, and a
# key that only a restart applies (executor.threads) still as started.
threads0=$(json_get "$work/status1.json" 'j["config"]["executor.threads"]')
printf 'flag.work_stealing = 50%%\nexecutor.threads = 7\n' >"$work/c1.properties"
kill -HUP "$c1_pid"
wait_until 10 "flag after the second SIGHUP = 50%" -- \
        value_is == 50% status_to "$work/status2.json" 'j["flags"]["work_stealing"]'
assert_eq "config: reloaded flag" \
        "$(json_get "$work/status2.json" 'j["config"]["flag.work_stealing"]')" "50%"
assert_eq "config: restart-only key keeps its running value" \
        "$(json_get "$work/status2.json" 'j["config"]["executor.threads"]')" "$threads0"
assert_eq "config: secrets still masked after the reload" \
        "$(json_get "$work/status2.json" 'j["config"]["kafka.sasl.password"]')" "***"
# The reload logs this after it published the snapshot read above.
wait_until 10 "the reload says executor.threads waits for a restart" -- \
        grep -q 'changed keys ignored until restart: executor.threads' "$work/c1.log"

stop_consumers c1
log "passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A rate limit applied across the group, on the mock cluster: two
# instances share ratelimit.slow (tasks of type echo, 10 per second for
# the whole group, burst 4) by the partitions they own (6 of 12 each:
# half of it each, /status says so). 60 echo tasks and 30 noop tasks are
# submitted at once:
#   - the limit holds echo tasks back (swarmq_ratelimit_held > 0 and
#     /status rate_limits[].held while it does) without holding the noop
#     tasks: every noop task ends before the last echo task starts;
#   - over the group, no window of time saw more echo starts than the
#     limit allows (10 per second plus the burst of 4, with 500 ms of
#     slack for a task that started after its token);
#   - every task has one SUCCEEDED result;
#   - a SIGHUP with a new rate in the file applies it (rate and burst
#     reload) on both instances.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 4
cat >"$work/swarmq.properties" <<PROPS
ratelimit.slow.type=echo
ratelimit.slow.rate=10
ratelimit.slow.burst=4
PROPS
# A short session: when c2's join reaches the mock cluster after c1's
# first join completed, the mock's rebalance waits for a session timeout.
common=(-b "$bootstrap" -c "$work/swarmq.properties" -X commit.interval.ms=200
        -X kafka.session.timeout.ms=6000
        -X kafka.fetch.wait.max.ms=100)
start_consumer c1 "${common[@]}"
start_consumer c2 "${common[@]}"
wait_ready "$c1_http"
wait_ready "$c2_http"

shares() {
        local a b
        a=$(curl -fsS "$c1_http/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate_limits"][0]["share"])')
        b=$(curl -fsS "$c2_http/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate_limits"][0]["share"])')
        echo "c1 $a c2 $b"
        [[ $a == 0.5 && $b == 0.5 ]]
}
wait_until 30 "each instance takes half of the limit (6 of 12 partitions)" -- shares

producer -q submit --count 60 --id-prefix slow --type echo --payload s \
        --ids-out "$work/slow.ids" || fail "submit failed"
producer -q submit --count 30 --id-prefix fast --type noop \
        --ids-out "$work/fast.ids" || fail "submit failed"
held() {
        local h1 h2
        h1=$(metric_sum "$c1_http" '^swarmq_ratelimit_held\{limit="slow"')
        h2=$(metric_sum "$c2_http" '^swarmq_ratelimit_held\{limit="slow"')
        echo "held: c1 $h1, c2 $h2"
        ((h1 + h2 > 0))
}
wait_until 20 "the limit holds echo tasks back" -- held
status_held=$(curl -fsS "$c1_http/status" "$c2_http/status" | python3 -c '
import json, sys
text = sys.stdin.read()
dec, i, total = json.JSONDecoder(), 0, 0
while i < len(text):
    doc, i = dec.raw_decode(text, i)
    total += doc["rate_limits"][0]["held"]
    while i < len(text) and text[i].isspace(): i += 1
print(total)')
log "while holding: /status says $status_held echo tasks held"

cat "$work/slow.ids" "$work/fast.ids" >"$work/all.ids"
producer wait --ids-file "$work/all.ids" --timeout-ms 60000 --print --json \
        >"$work/wait.out" || fail "not every task reached a result"
python3 - "$work/wait.out" <<'PY' || fail "the rate limit did not hold"
import json, sys
res = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "task_id" in j:  # the last line is wait's summary
        res.setdefault(j["task_id"], []).append(j)
bad = [t for t, rs in res.items() if len(rs) != 1 or rs[0]["status"] != "SUCCEEDED"]
slow = sorted(rs[0]["started_at"] for t, rs in res.items() if t.startswith("slow"))
fast = [rs[0]["finished_at"] for t, rs in res.items() if t.startswith("fast")]
print(f"{len(slow)} echo, {len(fast)} noop results; not one SUCCEEDED each: {bad}")
# Any k+1 consecutive echo starts span at least (k - burst) / rate
# seconds; a task may start later than its token (an executor was busy),
# which can only narrow the gap after it: 500 ms of slack for that. With
# no limit the 60 would all start within a few tens of ms.
worst = None
for i in range(len(slow)):
    for j in range(i + 5, len(slow)):
        need = (j - i - 4) / 10 * 1000 - 500
        if slow[j] - slow[i] < need:
            worst = (i, j, slow[j] - slow[i], need)
span = slow[-1] - slow[0]
print(f"echo starts span {span} ms (the limit allows no less than {(60 - 4) / 10 * 1000:.0f}); "
      f"violation: {worst}")
print(f"last noop ended {max(fast) - slow[-1]} ms after the last echo started")
ok = not bad and len(slow) == 60 and len(fast) == 30 and worst is None \
     and max(fast) < slow[-1]
sys.exit(0 if ok else 1)
PY
((status_held > 0)) || log "note: /status read no held task in its one look (the metric did)"
delayed=$(( $(metric_sum "$c1_http" '^swarmq_ratelimit_delayed_total\{limit="slow"') +
            $(metric_sum "$c2_http" '^swarmq_ratelimit_delayed_total\{limit="slow"') ))
((delayed > 0 && delayed <= 60)) || fail "swarmq_ratelimit_delayed_total $delayed"
log "$delayed of 60 echo tasks were held back"

# rate and burst reload.
sed -i 's/^ratelimit.slow.rate=10$/ratelimit.slow.rate=20/' "$work/swarmq.properties"
kill -HUP "$c1_pid" "$c2_pid"
group_rate() {
        curl -fsS "$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate_limits"][0]["group_rate"])'
}
wait_until 20 "c1 applied rate 20" -- value_is == 20.0 group_rate "$c1_http"
wait_until 20 "c2 applied rate 20" -- value_is == 20.0 group_rate "$c2_http"
if grep -q "ignored until restart:.*ratelimit" "$work/c1.log"; then
        fail "the reload says a rate limit key waits for a restart"
fi
stop_consumers c1 c2
log "ok: the group held echo to 10/s with burst 4, noop ran past it, rate reloaded"

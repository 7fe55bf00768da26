# SPDX-License-Identifier: Apache-2.0
#
# Periodic schedules across a kill -9 of their owner, written once for
# the mock cluster (integration/0025, at least once) and real Kafka
# (broker/0640, exactly once). Sourced after lib.sh; the caller sets
# $bootstrap, the arrays common (consumer arguments) and prod_args
# (swarmq-producer topic arguments), $sched_topic, $tasks_topic and
# $exactly_once (0 or 1).
#
# Two instances declare three schedules ticking every second: beat
# (missed=all), once (missed=once) and skip (missed=skip), with
# schedules.late.ms=1500. One of them owns topic.schedules and fires;
# once it fired 4 beats it is killed with SIGKILL. The other takes the
# partition over when the group notices (kafka.session.timeout.ms), reads
# the last fired ticks from the topic and goes on. Then, from the tick
# records and the task records in Kafka:
#   - every tick of each schedule has one tick record, none fired early;
#   - beat has no gap: the ticks missed during the take-over were fired
#     (missed=all); once and skip have gaps (the take-over), the new
#     owner counted skipped ticks, once fired at most one late tick per
#     gap and skip none;
#   - every beat tick's task is in the tasks topic (twice at most for the
#     one tick the kill interrupted, at least once; exactly once under
#     exactly_once) and has a SUCCEEDED result.

sched=(-X schedule.beat.every.ms=1000 -X schedule.beat.type=echo
       -X schedule.beat.payload=beat
       -X schedule.once.every.ms=1000 -X schedule.once.type=echo
       -X schedule.once.missed=once
       -X schedule.skip.every.ms=1000 -X schedule.skip.type=echo
       -X schedule.skip.missed=skip -X schedules.late.ms=1500)
start_consumer c1 "${common[@]}" "${sched[@]}"
start_consumer c2 "${common[@]}" "${sched[@]}"

role_of() {
        curl -fsS "$1/status" | python3 -c \
                'import json,sys; print(json.load(sys.stdin)["schedules"]["role"])'
}
fired_on() { # URL SCHEDULE
        metric_sum "$1" "^swarmq_schedule_ticks_total\\{schedule=\"$2\",outcome=\"fired\""
}
find_owner() {
        local r1 r2
        r1=$(role_of "$c1_http") r2=$(role_of "$c2_http")
        echo "c1 $r1, c2 $r2"
        if [[ $r1 == owner && $r2 == standby ]]; then
                owner=c1 owner_pid=$c1_pid owner_http=$c1_http
                other=c2 other_http=$c2_http
        elif [[ $r2 == owner && $r1 == standby ]]; then
                owner=c2 owner_pid=$c2_pid owner_http=$c2_http
                other=c1 other_http=$c1_http
        else
                return 1
        fi
}
wait_until 60 "one instance owns the schedules, the other stands by" -- find_owner
wait_until 30 "$owner fired 4 beat ticks" -- value_is -ge 4 fired_on "$owner_http" beat
log "kill -9 $owner, the owner of the schedules, after $(fired_on "$owner_http" beat) beats"
kill -KILL "$owner_pid"
wait "$owner_pid" 2>/dev/null || true
killed_ms=$(date +%s%3N)

wait_until 60 "$other takes the schedules over" -- value_is == owner role_of "$other_http"
wait_until 30 "$other fired 3 on-time skip ticks" -- value_is -ge 3 fired_on "$other_http" skip
log "$other owns the schedules $(($(date +%s%3N) - killed_ms)) ms after the kill"
# The tick gauges: beat's next tick is one every.ms (1 s) after its last.
beat_tick_gap() { # URL
        local next last
        next=$(metric_sum "$1" '^swarmq_schedule_next_tick_timestamp_seconds\{schedule="beat"')
        last=$(metric_sum "$1" '^swarmq_schedule_last_tick_timestamp_seconds\{schedule="beat"')
        ((last > 0)) && echo $((next - last))
}
wait_until 10 "$other's next-tick gauge for beat is 1 s after its last-tick gauge" -- \
        value_is -eq 1 beat_tick_gap "$other_http"
skipped_once=$(metric_sum "$other_http" '^swarmq_schedule_ticks_total\{schedule="once",outcome="skipped"')
skipped_skip=$(metric_sum "$other_http" '^swarmq_schedule_ticks_total\{schedule="skip",outcome="skipped"')
((skipped_once >= 1 && skipped_skip >= 1)) ||
        fail "$other skipped no missed tick: once $skipped_once, skip $skipped_skip"

kcat -C -b "$bootstrap" -t "$sched_topic" -e -q -f '%s\n' >"$work/ticks.jsonl" ||
        fail "cannot read $sched_topic"
kcat -C -b "$bootstrap" -t "$tasks_topic" -e -q -f '%k\n' >"$work/task.ids" ||
        fail "cannot read $tasks_topic"
python3 - "$work/ticks.jsonl" "$work/task.ids" "$exactly_once" "$owner" "$other" \
        "$work/beat.ids" <<'PY' || fail "the ticks in Kafka are wrong"
import collections, json, sys
ticks = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    ticks[r["schedule"]].append(r)
ids = collections.Counter(open(sys.argv[2]).read().split())
exactly_once, owner, other = sys.argv[3] == "1", sys.argv[4], sys.argv[5]
bad = 0
def fail(msg):
    global bad
    print("FAIL:", msg); bad += 1
gaps = {}
for name in ("beat", "once", "skip"):
    rs = ticks[name]
    t = sorted(r["tick"] for r in rs)
    if len(t) != len(set(t)):
        fail(f"{name}: a tick has two records: {[x for x in t if t.count(x) > 1]}")
    for r in rs:
        if r["at"] < r["tick"]:
            fail(f"{name}: tick {r['tick']} fired {r['tick'] - r['at']} ms early")
        if r["tick"] % 1000:
            fail(f"{name}: tick {r['tick']} is not a multiple of every.ms")
    by = {r["by"] for r in rs}
    if by != {owner, other}:
        fail(f"{name}: fired by {sorted(by)}, expected {owner} then {other}")
    gaps[name] = [(a, b) for a, b in zip(t, t[1:]) if b - a != 1000]
    print(f"{name}: {len(t)} ticks {t[0]}..{t[-1]}, gaps {gaps[name]}, "
          f"fired by {sorted(by)}")
if gaps["beat"]:
    fail(f"beat (missed=all) lost ticks: {gaps['beat']}")
# A gap is a time with no owner: the take-over after the kill, and on
# the mock a rebalance when the second instance joined late (the mock
# then waits a session timeout).
for name in ("once", "skip"):
    if not gaps[name]:
        fail(f"{name}: no gap: the take-over's missed ticks were fired")
late = {name: [r["at"] - r["tick"] for r in ticks[name] if r["by"] == other]
        for name in ("once", "skip")}
# once: at most the newest missed tick fires late; skip: nothing late
# (1 s of slack for a loaded machine).
if sum(1 for x in late["once"] if x > 1500 + 1000) > len(gaps["once"]):
    fail(f"once: more than one late tick: {late['once']}")
if late["skip"] and max(late["skip"]) > 1500 + 1000:
    fail(f"skip: a missed tick was fired: {late['skip']}")
# The beat tasks: each tick's task in the tasks topic.
beat_ids = [f"schedule-beat-{r['tick']}" for r in ticks["beat"]]
missing = [i for i in beat_ids if ids[i] == 0]
doubled = [i for i in beat_ids if ids[i] > 1]
if missing:
    fail(f"beat ticks with a record but no task: {missing}")
if len(doubled) > (0 if exactly_once else 1):
    fail(f"beat tasks written more than once: {doubled}")
print(f"beat: {len(beat_ids)} tasks, written twice: {doubled}")
open(sys.argv[6], "w").write("\n".join(beat_ids) + "\n")
sys.exit(1 if bad else 0)
PY

producer "${prod_args[@]}" wait --ids-file "$work/beat.ids" --timeout-ms 60000 \
        --print --json >"$work/wait.out" ||
        fail "not every beat task reached a result"
python3 - "$work/wait.out" "$work/beat.ids" "$exactly_once" <<'PY' || fail "beat results are wrong"
import collections, json, sys
ids = set(open(sys.argv[2]).read().split())
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("task_id") in ids:
        res[j["task_id"]].append(j["status"])
bad = [(i, s) for i, s in res.items()
       if "SUCCEEDED" not in s or (sys.argv[3] == "1" and len(s) != 1)]
print(f"{len(res)} of {len(ids)} beat tasks with a result; wrong: {bad}")
sys.exit(1 if bad or len(res) != len(ids) else 0)
PY
stop_consumers "$other"

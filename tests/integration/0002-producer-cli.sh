#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# 0002-producer-cli: swarmq-producer submit and wait, end to end, against
# `swarmq-consumer --embedded-broker` (librdkafka's mock cluster plus the
# whole consumer pipeline in one process). Checks what a user sees: exit
# codes, the summary lines, the records in the topics (read with kcat) and
# the results that come back.
#
# Usage: 0002-producer-cli.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

BUILD=${1:?usage: $0 BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: $0 BUILD_DIR SOURCE_DIR}
PRODUCER=$BUILD/producer/swarmq-producer
CONSUMER=$BUILD/consumer/swarmq-consumer
WORK=$(mktemp -d)
CONSUMER_PID=

cleanup() {
        if [[ -n $CONSUMER_PID ]]; then
                kill "$CONSUMER_PID" 2>/dev/null || true
                wait "$CONSUMER_PID" 2>/dev/null || true
        fi
        rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
fail() {
        echo "FAIL: $*" >&2
        failed=$((failed + 1))
}
ok() {
        echo "ok: $*"
        passed=$((passed + 1))
}
# expect_rc WANT DESCRIPTION -- COMMAND...: runs COMMAND, output to
# $WORK/out and $WORK/err, and checks its exit code.
expect_rc() {
        local want=$1 what=$2 rc=0
        shift 3
        "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
        if [[ $rc -ne $want ]]; then
                fail "$what: exit code $rc, want $want"
                sed 's/^/  stdout: /' "$WORK/out" >&2
                sed 's/^/  stderr: /' "$WORK/err" >&2
                return 1
        fi
        ok "$what (exit $rc)"
}
# expect_in FILE PATTERN DESCRIPTION: FILE contains the extended regex.
expect_in() {
        if grep -Eq -- "$2" "$1"; then
                ok "$3"
        else
                fail "$3: no /$2/ in $(basename "$1"):"
                sed 's/^/  | /' "$1" >&2
        fi
}

for bin in "$PRODUCER" "$CONSUMER"; do
        [[ -x $bin ]] || { echo "FAIL: $bin not built" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "FAIL: kcat not installed" >&2; exit 1; }
unset SWARMQ_BOOTSTRAP_SERVERS

# --- Help and usage errors (no broker needed) -------------------------
expect_rc 0 "top-level --help" -- "$PRODUCER" --help &&
        expect_in "$WORK/out" "^Exit codes:" "top-level --help lists exit codes"
expect_rc 0 "submit --help" -- "$PRODUCER" submit --help &&
        expect_in "$WORK/out" "--priority-mix" "submit --help lists options"
expect_rc 0 "wait --help" -- "$PRODUCER" wait --help &&
        expect_in "$WORK/out" "--ids-file" "wait --help lists options"
expect_rc 2 "no command" -- "$PRODUCER" -b 127.0.0.1:1
expect_rc 2 "unknown command" -- "$PRODUCER" -b 127.0.0.1:1 frobnicate &&
        expect_in "$WORK/err" 'unknown command "frobnicate"' \
                "unknown command is named"
expect_rc 2 "unknown submit option" -- "$PRODUCER" -b 127.0.0.1:1 submit --bogus
expect_rc 2 "no brokers" -- "$PRODUCER" submit --count 1 &&
        expect_in "$WORK/err" "SWARMQ_BOOTSTRAP_SERVERS" "no brokers explained"
expect_rc 2 "bad --priority-mix" -- "$PRODUCER" -b 127.0.0.1:1 submit \
        --priority-mix LOW:1,URGENT:2 &&
        expect_in "$WORK/err" '"URGENT"' "bad priority is named"
expect_rc 2 "--file with --count" -- "$PRODUCER" -b 127.0.0.1:1 submit \
        --file /dev/null --count 3 &&
        expect_in "$WORK/err" "^swarmq-producer submit: --count generates tasks and cannot be combined with --file$" \
                "the generator option is named, not its value"
expect_rc 2 "unknown command with a near miss" -- "$PRODUCER" -b 127.0.0.1:1 \
        sumbit &&
        expect_in "$WORK/err" 'unknown command "sumbit"; did you mean submit\?' \
                "did-you-mean for a command"
expect_rc 2 "unknown option with a near miss" -- "$PRODUCER" -b 127.0.0.1:1 \
        submit --cout 3 &&
        expect_in "$WORK/err" "unknown option --cout \(did you mean --count\?\)" \
                "did-you-mean for a command's option"
expect_rc 2 "unknown global option with a near miss" -- "$PRODUCER" \
        --borkers 127.0.0.1:1 submit &&
        expect_in "$WORK/err" "unknown option --borkers \(did you mean --brokers\?\)" \
                "did-you-mean for a global option"
expect_rc 2 "global option after the command" -- "$PRODUCER" wait -b \
        127.0.0.1:1 --count 1 &&
        expect_in "$WORK/err" "-b is a global option: give it before the command" \
                "a global option after the command says where it goes"
expect_rc 2 "dlt subcommand with a near miss" -- "$PRODUCER" -b 127.0.0.1:1 \
        dlt redirve &&
        expect_in "$WORK/err" "did you mean redrive\?" "did-you-mean for dlt"
expect_rc 2 "replay --type bogus" -- "$PRODUCER" -b 127.0.0.1:1 replay \
        --type bogus &&
        expect_in "$WORK/err" 'no event type "bogus"' "a bad --type is named"
expect_rc 2 "replay --type with a near miss" -- "$PRODUCER" -b 127.0.0.1:1 \
        replay --type retry_schedule &&
        expect_in "$WORK/err" "did you mean retry_scheduled\?" \
                "did-you-mean for an event type"
expect_rc 0 "replay --help" -- "$PRODUCER" replay --help &&
        if grep -q "^ *retry_scheduled " "$WORK/out" &&
                ! grep -Eq "^ *(failed|timed_out) " "$WORK/out"; then
                ok "replay --help lists retry_scheduled and no event type never written"
        else
                fail "replay --help event types: $(grep -A16 -- '--type TYPE' "$WORK/out")"
        fi
expect_rc 2 "wait with nothing to wait for" -- "$PRODUCER" -b 127.0.0.1:1 wait
expect_rc 2 "bad -X property" -- "$PRODUCER" -b 127.0.0.1:1 \
        -X no.such.property=1 submit &&
        expect_in "$WORK/err" "no.such.property" "bad property is named"
expect_rc 3 "unreachable broker (submit)" -- "$PRODUCER" -b 127.0.0.1:1 \
        --connect-timeout-ms 1500 submit
expect_rc 3 "unreachable broker (wait)" -- "$PRODUCER" -b 127.0.0.1:1 \
        --connect-timeout-ms 1500 wait --count 1

# --- One environment for both binaries --------------------------------
# SWARMQ_BOOTSTRAP_SERVERS is the brokers for the consumer too; the old
# consumer name still works, with a deprecation warning, in both.
expect_rc 0 "consumer reads SWARMQ_BOOTSTRAP_SERVERS" -- \
        env SWARMQ_BOOTSTRAP_SERVERS=env-broker:9092 "$CONSUMER" --dump-config &&
        expect_in "$WORK/out" "^kafka.bootstrap.servers=env-broker:9092$" \
                "SWARMQ_BOOTSTRAP_SERVERS is kafka.bootstrap.servers"
expect_rc 0 "consumer reads SWARMQ_KAFKA_BOOTSTRAP_SERVERS" -- \
        env SWARMQ_KAFKA_BOOTSTRAP_SERVERS=old-broker:9092 "$CONSUMER" \
        --dump-config &&
        {
                expect_in "$WORK/out" \
                        "^kafka.bootstrap.servers=old-broker:9092$" \
                        "the deprecated name still sets the brokers"
                expect_in "$WORK/err" \
                        "SWARMQ_KAFKA_BOOTSTRAP_SERVERS is deprecated: use SWARMQ_BOOTSTRAP_SERVERS" \
                        "consumer: deprecation warning"
        }
expect_rc 3 "producer reads SWARMQ_KAFKA_BOOTSTRAP_SERVERS" -- \
        env SWARMQ_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 "$PRODUCER" \
        --connect-timeout-ms 500 wait --count 1 &&
        expect_in "$WORK/err" \
                "SWARMQ_KAFKA_BOOTSTRAP_SERVERS is deprecated: use SWARMQ_BOOTSTRAP_SERVERS" \
                "producer: deprecation warning"
# ops/kafka.sh's own variables (and a typo) must not stop the consumer: the
# embedded one below runs with them exported, and says it ignored them.
export SWARMQ_KAFKA_CACHE=$WORK/kafka-cache SWARMQ_KAFKA_STATE=$WORK/kafka-state
export SWARMQ_EXECUTOR_THREDS=4

# --- The embedded broker and consumer ---------------------------------
"$CONSUMER" --embedded-broker --http-port 0 >"$WORK/consumer.out" \
        2>"$WORK/consumer.err" &
CONSUMER_PID=$!
BROKERS=
for _ in $(seq 1 100); do
        BROKERS=$(sed -n 's/^bootstrap\.servers=//p' "$WORK/consumer.out" |
                head -n1)
        [[ -n $BROKERS ]] && break
        kill -0 "$CONSUMER_PID" 2>/dev/null || break
        sleep 0.2
done
if [[ -z $BROKERS ]]; then
        echo "FAIL: swarmq-consumer --embedded-broker printed no" \
                "bootstrap.servers= line" >&2
        sed 's/^/  consumer: /' "$WORK/consumer.out" "$WORK/consumer.err" >&2
        exit 1
fi
echo "embedded broker at $BROKERS"
unset SWARMQ_KAFKA_CACHE SWARMQ_KAFKA_STATE SWARMQ_EXECUTOR_THREDS
expect_in "$WORK/consumer.err" \
        "ignoring 3 SWARMQ_\\* environment variables that name no configuration key: .*SWARMQ_KAFKA_CACHE" \
        "consumer starts with ops/kafka.sh's variables and names them ignored"
expect_in "$WORK/consumer.err" \
        "SWARMQ_EXECUTOR_THREDS \\(did you mean SWARMQ_EXECUTOR_THREADS\\?\\)" \
        "a misspelt key variable is reported with the right name"
P=("$PRODUCER" -b "$BROKERS")

# kcat_keys TOPIC: the keys of every record in TOPIC, one per line.
kcat_keys() {
        kcat -b "$BROKERS" -C -t "$1" -o beginning -e -q -f '%k\n' 2>/dev/null
}

# --- submit: 500 tasks with a priority mix ----------------------------
expect_rc 0 "submit 500 mixed tasks" -- "${P[@]}" submit --count 500 \
        --id-prefix mix --priority-mix LOW:1,NORMAL:6,HIGH:2,CRITICAL:1 \
        --payload-size 64 --ids-out "$WORK/ids.txt" &&
        expect_in "$WORK/err" "^submitted 500 tasks in .* 0 failed, ids mix-000001\.\.mix-000500$" \
                "submit summary line names the generated ids"
if [[ $(wc -l <"$WORK/ids.txt") -eq 500 &&
        $(sort -u "$WORK/ids.txt" | wc -l) -eq 500 &&
        $(head -n1 "$WORK/ids.txt") == mix-000001 &&
        $(tail -n1 "$WORK/ids.txt") == mix-000500 ]]; then
        ok "--ids-out has 500 distinct ids mix-000001..mix-000500"
else
        fail "--ids-out content: $(wc -l <"$WORK/ids.txt") lines"
fi

# The mix is deterministic by index: every 10th task (mix-000010, ...) is
# CRITICAL and goes to the fast lane, the 450 others to swarmq-tasks; the
# record key is the task id.
kcat_keys swarmq-tasks-critical | { grep '^mix-' || true; } |
        sort >"$WORK/crit.keys"
kcat_keys swarmq-tasks | { grep '^mix-' || true; } | sort >"$WORK/tasks.keys"
if [[ $(wc -l <"$WORK/crit.keys") -eq 50 &&
        $(grep -cv '0$' "$WORK/crit.keys" || true) -eq 0 ]]; then
        ok "50 CRITICAL tasks on swarmq-tasks-critical, keyed by id"
else
        fail "swarmq-tasks-critical has $(wc -l <"$WORK/crit.keys") mix-" \
                "records (want 50, ids ending in 0)"
fi
if [[ $(wc -l <"$WORK/tasks.keys") -eq 450 ]] &&
        sort -m "$WORK/crit.keys" "$WORK/tasks.keys" |
        cmp -s - <(sort "$WORK/ids.txt"); then
        ok "the other 450 tasks on swarmq-tasks; keys = submitted ids"
else
        fail "swarmq-tasks has $(wc -l <"$WORK/tasks.keys") mix- records" \
                "(want 450) or keys differ from --ids-out"
fi

# --- wait for their results -------------------------------------------
expect_rc 0 "wait --ids-file for the 500" -- "${P[@]}" wait \
        --ids-file "$WORK/ids.txt" --timeout-ms 60000 &&
        {
                expect_in "$WORK/out" "expected: 500, arrived: 500, missing: 0" \
                        "wait summary: all 500 arrived"
                expect_in "$WORK/out" "SUCCEEDED=[0-9]+" \
                        "wait summary: per status counts"
                expect_in "$WORK/out" "^agents: " \
                        "wait summary: per agent counts"
                expect_in "$WORK/out" "complete$" "wait summary: complete"
        }

expect_rc 0 "wait --json --print" -- "${P[@]}" wait --ids-file "$WORK/ids.txt" \
        --json --print --timeout-ms 60000 &&
        if python3 - "$WORK/out" "$WORK/ids.txt" <<'EOF'; then
import json, sys
lines = open(sys.argv[1]).read().splitlines()
ids = set(open(sys.argv[2]).read().split())
summary = json.loads(lines[-1])
results = [json.loads(l) for l in lines[:-1]]
assert summary["expected"] == 500, summary
assert summary["arrived"] == 500, summary
assert summary["missing_count"] == 0 and summary["missing"] == [], summary
assert summary["complete"] is True, summary
assert summary["distinct"] >= 500, summary
assert summary["duplicates"] == summary["total"] - summary["distinct"]
assert sum(summary["status"].values()) == summary["total"], summary
assert sum(summary["agents"].values()) == summary["total"], summary
assert len(results) == summary["total"], (len(results), summary["total"])
assert ids <= {r["task_id"] for r in results}
EOF
                ok "--json summary and --print lines agree with the ids"
        else
                fail "--json summary or --print lines are wrong"
        fi

# The timeout leaves room for the consumer group join (about 3 s).
expect_rc 1 "wait for an id that never comes" -- "${P[@]}" wait \
        --id mix-000001 --id never-submitted --timeout-ms 10000 &&
        {
                expect_in "$WORK/out" "missing: 1" "timeout summary counts 1"
                expect_in "$WORK/out" "missing ids .*: never-submitted$" \
                        "timeout summary lists the missing id"
                expect_in "$WORK/err" "timed out with 1 of 2" \
                        "timeout is reported on stderr"
        }

# --from-end: only results written after the wait joined count. Tasks are
# submitted one a second until the wait sees a result; none of the 500
# older results may show up in its --print output.
"${P[@]}" wait --from-end --count 1 --print --timeout-ms 60000 \
        >"$WORK/late.out" 2>"$WORK/late.err" &
late_pid=$!
for i in $(seq 1 50); do
        kill -0 "$late_pid" 2>/dev/null || break
        "${P[@]}" -q submit --id-prefix "late$i" >/dev/null 2>&1 || true
        sleep 1
done
rc=0
wait "$late_pid" || rc=$?
if [[ $rc -eq 0 ]] && grep -q '"task_id":"late' "$WORK/late.out" &&
        ! grep -q '"task_id":"mix-' "$WORK/late.out"; then
        ok "wait --from-end sees a new result and none of the old ones"
else
        fail "wait --from-end: exit $rc, stdout: $(cat "$WORK/late.out")"
fi

# --- submit --file: JSON lines, a bad line, --skip-bad ----------------
cat >"$WORK/tasks.jsonl" <<'EOF'
{"id":"json-1","type":"noop","priority":"HIGH","payload":"one"}
{"id":"json-2","type":"noop","key":"k2"}

{"id":"json-3","type":"noop",
{"id":"json-4","type":"noop","priority":"CRITICAL"}
EOF
expect_rc 2 "submit --file stops at a bad line" -- "${P[@]}" submit \
        --file "$WORK/tasks.jsonl" --ids-out "$WORK/json-ids.txt" &&
        {
                expect_in "$WORK/err" "tasks.jsonl:4: bad task.*stopped after 2 tasks;" \
                        "bad line named by file and line number"
                expect_in "$WORK/err" "^submitted 2 tasks in .* 0 failed \(exit 2: stopped at the bad task on .*tasks.jsonl:4\)$" \
                        "the summary of a run exiting 2 says why"
        }
expect_rc 0 "submit --stdin --skip-bad" -- "${P[@]}" submit --stdin \
        --skip-bad --ids-out "$WORK/json-ids.txt" <"$WORK/tasks.jsonl" &&
        {
                expect_in "$WORK/err" "stdin:4: skipped bad task" \
                        "skipped line named"
                expect_in "$WORK/err" "submitted 3 tasks.*1 bad line skipped" \
                        "summary counts the skipped line"
        }
if [[ $(tr '\n' ' ' <"$WORK/json-ids.txt") == "json-1 json-2 json-4 " ]]; then
        ok "--ids-out lists the 3 good JSON tasks"
else
        fail "--ids-out after --skip-bad: $(tr '\n' ' ' <"$WORK/json-ids.txt")"
fi
# (Read the topics into files first: grep -q closing a pipe early would
# fail the pipeline under pipefail.)
kcat_keys swarmq-tasks >"$WORK/keys.tasks"
kcat_keys swarmq-tasks-critical >"$WORK/keys.crit"
if grep -qx k2 "$WORK/keys.tasks" && grep -qx json-4 "$WORK/keys.crit"; then
        ok "JSON task key used as record key; CRITICAL JSON task on fast lane"
else
        fail "JSON tasks: key k2 or fast-lane json-4 not found"
fi
expect_rc 0 "wait for the JSON tasks" -- "${P[@]}" wait \
        --ids-file "$WORK/json-ids.txt" --timeout-ms 60000

# --print and the counts cover only the awaited ids, not the 500+ other
# results already in the topic (how many of those it reads before it has
# both depends on the order the partitions are fetched in: some, at least).
expect_rc 0 "wait --print for 2 of many ids" -- "${P[@]}" wait --id json-1 \
        --id json-4 --print --json --timeout-ms 60000 &&
        if python3 - "$WORK/out" <<'EOF'; then
import json, sys
lines = open(sys.argv[1]).read().splitlines()
summary = json.loads(lines[-1])
printed = {json.loads(l)["task_id"] for l in lines[:-1]}
assert printed == {"json-1", "json-4"}, printed
assert summary["total"] == len(lines) - 1, summary
assert summary["distinct"] == 2 and summary["arrived"] == 2, summary
assert sum(summary["status"].values()) == summary["total"], summary
assert summary["other_tasks"] >= 1, summary
EOF
                ok "wait --print prints and counts only the awaited ids"
        else
                fail "wait --print over 2 ids: $(cat "$WORK/out")"
        fi

# --json: one summary object on stdout with every submitted id; one task
# is "1 task".
expect_rc 0 "submit --json" -- "${P[@]}" submit --count 3 --id-prefix js \
        --json &&
        if python3 - "$WORK/out" <<'EOF'; then
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
s = json.loads(lines[0])
assert s["ids"] == ["js-000001", "js-000002", "js-000003"], s
assert s["submitted"] == 3 and s["delivered"] == 3 and s["failed"] == 0, s
assert s["exit_code"] == 0 and "stopped" not in s, s
EOF
                ok "submit --json lists the generated ids"
        else
                fail "submit --json: $(cat "$WORK/out")"
        fi
expect_rc 0 "submit one task" -- "${P[@]}" submit --id-prefix one &&
        expect_in "$WORK/err" "^submitted 1 task in .* 0 failed, id one-000001$" \
                "one task is \"1 task\""

# --- submit --raw-value and --key -------------------------------------
expect_rc 0 "submit --raw-value" -- "${P[@]}" submit --raw-value \
        'this is not a task' --key raw-key-1
kcat -b "$BROKERS" -C -t swarmq-tasks -o beginning -e -q -f '%k %s\n' \
        >"$WORK/records.tasks" 2>/dev/null
if grep -qx 'raw-key-1 this is not a task' "$WORK/records.tasks"; then
        ok "raw record on swarmq-tasks, as-is"
else
        fail "raw record not found on swarmq-tasks"
fi
expect_rc 0 "submit --key" -- "${P[@]}" submit --count 3 --id-prefix keyed \
        --key same-key --ids-out "$WORK/keyed-ids.txt"
kcat_keys swarmq-tasks >"$WORK/keys.tasks"
keyed=$(grep -cx same-key "$WORK/keys.tasks" || true)
if [[ $keyed -eq 3 ]]; then
        ok "--key sets the record key of every task"
else
        fail "--key: $keyed records keyed same-key, want 3"
fi
expect_rc 0 "submit --rate" -- "${P[@]}" submit --count 20 --rate 100 \
        --id-prefix rated &&
        if python3 -c 'import re,sys; s=float(re.search(r"in ([0-9.]+) s",
open(sys.argv[1]).read()).group(1)); sys.exit(0 if s >= 0.15 else 1)' \
                "$WORK/err"; then
                ok "--rate 100 paces 20 tasks over >= 0.15 s"
        else
                fail "--rate did not pace: $(cat "$WORK/err")"
        fi

# --- SIGINT during wait: partial summary, exit 1 ----------------------
rc=0
"${P[@]}" wait --id never-submitted --timeout-ms 60000 >"$WORK/out" \
        2>"$WORK/err" &
wait_pid=$!
sleep 2
kill -INT "$wait_pid"
wait "$wait_pid" || rc=$?
if [[ $rc -eq 1 ]] && grep -q "interrupted" "$WORK/out"; then
        ok "SIGINT stops wait with a partial summary and exit 1"
else
        fail "SIGINT during wait: exit $rc, stdout: $(cat "$WORK/out")"
fi

# --- SIGINT during submit: stop, flush, partial summary, exit 1 --------
rc=0
"${P[@]}" submit --count 1000000 --rate 500 --id-prefix intr \
        --ids-out "$WORK/intr-ids.txt" >"$WORK/out" 2>"$WORK/err" &
submit_pid=$!
sleep 2
kill -INT "$submit_pid"
wait "$submit_pid" || rc=$?
n=$(wc -l <"$WORK/intr-ids.txt")
if [[ $rc -eq 1 ]] &&
        grep -Eq "^submitted $n tasks .* 0 failed, $((1000000 - n)) not submitted, ids intr-000001\.\.intr-0*$n \(exit 1: interrupted\)$" \
                "$WORK/err" && [[ $n -gt 0 && $n -lt 1000000 ]]; then
        ok "SIGINT stops submit after $n tasks, all delivered, exit 1"
else
        fail "SIGINT during submit: exit $rc, $n ids, stderr: $(cat "$WORK/err")"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

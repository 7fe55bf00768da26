# SPDX-License-Identifier: Apache-2.0
#
# Chaos helpers shared by ops/chaos.sh, tests/broker/07xx (real Kafka) and
# tests/integration/003x (mock-cluster faults). Source it after
# tests/integration/lib.sh (it uses $build, $src, $work, producer, fail,
# log, metric_sum).
#
# DESIGN: every check asserts what an operator sees: results in the
# results topic (swarmq-producer wait), offsets committed for the group
# (tests/chaos/group_lag.py, an independent confluent-kafka client), and
# each instance's /healthz and swarmq_consumer_lag. Waits poll a condition
# against a deadline; the only fixed pauses are fault durations (how long
# a broker stays down), which are the experiment, not synchronisation.

# chaos_tasks FILE COUNT PREFIX: writes COUNT JSON tasks of mixed duration,
# deterministic by index: 6 in 10 noop, 3 in 10 sleep of 1-4 ms, 1 in 10
# cpu (2,000 SHA-256 rounds, about 1 ms), ids PREFIX-0000001...
chaos_tasks() {
        awk -v n="$2" -v p="$3" 'BEGIN {
                for (i = 1; i <= n; i++) {
                        k = i % 10
                        id = sprintf("%s-%07d", p, i)
                        if (k < 6)
                                printf("{\"id\":\"%s\",\"type\":\"noop\"}\n", id)
                        else if (k < 9)
                                printf("{\"id\":\"%s\",\"type\":\"sleep\",\"payload\":\"%d\"}\n", id, 1 + i % 4)
                        else
                                printf("{\"id\":\"%s\",\"type\":\"cpu\",\"headers\":{\"rounds\":\"2000\"}}\n", id)
                }
        }' >"$1"
        sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$1" >"${1%.*}.ids"
}

# chaos_python: sets $python (the test venv with confluent-kafka).
chaos_python() {
        [[ -n "${python:-}" ]] && return 0
        python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
}

# group_lag GROUP TOPIC: prints the records of TOPIC after GROUP's
# committed offsets (a partition with no commit counts from its start).
group_lag() {
        chaos_python
        "$python" "$src/tests/chaos/group_lag.py" --bootstrap "$bootstrap" \
                --group "$1" --topic "$2"
}

# wait_drained DEADLINE_S GROUP TOPIC URL...: waits until every instance
# at URL answers /healthz 200 with swarmq_consumer_lag summing to 0, and
# GROUP's committed offsets on TOPIC reach the end; prints the seconds it
# took. Fails naming what was still wrong at the deadline.
wait_drained() {
        local deadline_s=$1 t0=$EPOCHREALTIME url pid
        if ! wait_until "$deadline_s" "healthy, lag 0 and $2 committed on $3" \
                --every 0.5 --no-fail -- drained "${@:2}"; then
                # What a stalled instance was doing: its own account (the
                # /healthz body names the stalled part) and its threads.
                for url in "${@:4}"; do
                        echo "---- $url/healthz: $(sq_http_get "$url/healthz" 2>&1 | head -c 400)" >&2
                done
                for pid in "${sq_pids[@]}"; do
                        [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *swarmq-consumer* ]] &&
                                sq_dump_stacks "$pid"
                done
                fail "healthy, lag 0 and $2 committed on $3: still not so after $deadline_s s (last seen: ${wait_seen:-nothing})"
        fi
        awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }'
}

# drained GROUP TOPIC URL...: succeeds when wait_drained's conditions hold;
# otherwise prints the first that does not.
drained() {
        local group=$1 topic=$2 url lag
        shift 2
        for url in "$@"; do
                if [[ "$(sq_http_status "$url/healthz" 2>/dev/null)" != 200 ]]; then
                        echo "$url/healthz is not 200"
                        return 1
                fi
                lag=$(metric_sum "$url" '^swarmq_consumer_lag')
                if ((lag != 0)); then
                        echo "$url reports swarmq_consumer_lag $lag"
                        return 1
                fi
        done
        lag=$(group_lag "$group" "$topic") || lag=unknown
        [[ "$lag" == 0 ]] && return 0
        echo "group $group has $lag records of $topic uncommitted"
        return 1
}

# check_results IDS_FILE BOUND TIMEOUT_MS [producer topic args...]: every id
# has a result (none lost) and the duplicates stay within BOUND (1000000000:
# checked later with check_dup_bound); sets $distinct and $dups.
check_results() {
        local ids=$1 bound=$2 timeout_ms=$3 want
        shift 3
        want=$(wc -l <"$ids")
        producer "$@" wait --ids-file "$ids" --timeout-ms "$timeout_ms" \
                --json >"$work/results.json" ||
                fail "tasks missing: $(json_get "$work/results.json" 'j["missing_count"]') of $want (first: $(json_get "$work/results.json" '" ".join(j["missing"][:5])'))"
        distinct=$(json_get "$work/results.json" 'j["distinct"]')
        dups=$(json_get "$work/results.json" 'j["duplicates"]')
        ((distinct == want)) || fail "distinct task ids with a result: $distinct, expected $want"
        if ((dups > bound)); then
                classify_duplicates "$@"
                fail "duplicates $dups exceed the bound $bound"
        fi
        if ((bound < 1000000000)); then
                log "ok: $distinct of $want tasks have a result, lost 0, duplicates $dups (bound $bound)"
        else
                log "ok: $distinct of $want tasks have a result, lost 0, duplicates $dups"
        fi
}

# start_fault_broker [args...]: starts swarmq-mock-broker with a control
# FIFO ($work/control); sets $bootstrap and $broker_pid. fault CMD sends a
# command and waits for the broker's "ok N:" answer (fails on "error").
start_fault_broker() {
        fault_seq=0
        start_broker --control "$work/control" "$@"
}

fault() {
        fault_seq=$((fault_seq + 1))
        echo "$*" >"$work/control"
        wait_until 10 "mock broker answers '$*'" --every 0.05 -- fault_answered "$*"
        log "fault: $*"
}

# fault_answered CMD: succeeds when the broker answered "ok" to command
# number $fault_seq; fails the test when it answered "error".
fault_answered() {
        local line
        line=$(grep -E "^(ok|error) $fault_seq:" "$work/broker.out" || true)
        [[ "$line" == ok* ]] && return 0
        [[ -z "$line" ]] || fail "mock broker refused '$1': $line"
        return 1
}

# progress N [producer args...]: waits until N distinct tasks have results.
progress() {
        local n=$1
        shift
        producer "$@" wait --count "$n" --timeout-ms 120000 >/dev/null ||
                fail "fewer than $n results within 120 s"
}

# classify_duplicates [producer topic args...]: tells the duplicates apart:
# the same result record written twice (same task, instance and start
# time: a produce retry the broker did not deduplicate) or the task run
# again (another start time: a re-delivery after a crash or rebalance).
classify_duplicates() {
        producer "$@" replay --results >"$work/results.jsonl" 2>/dev/null ||
                { log "cannot replay the results to classify duplicates"; return 0; }
        python3 - "$work/results.jsonl" <<'PY'
import collections, json, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["task_id"]].append((r.get("instance"), r.get("started_at")))
same = rerun = 0
for tid, rs in runs.items():
    if len(rs) > 1:
        distinct_runs = len(set(rs))
        same += len(rs) - distinct_runs
        rerun += distinct_runs - 1
print(f"duplicates: {same} identical result records (produced twice), "
      f"{rerun} re-runs of a task")
PY
}

# check_dup_bound WHAT BOUND [producer topic args...]: fails when $dups
# (from check_results) exceeds BOUND, after telling the duplicates apart.
check_dup_bound() {
        local what=$1 bound=$2
        shift 2
        if ((dups > bound)); then
                classify_duplicates "$@"
                fail "$what: duplicates $dups exceed the bound $bound"
        fi
        log "ok: $what: duplicates $dups within the bound $bound"
}

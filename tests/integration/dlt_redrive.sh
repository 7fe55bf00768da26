# SPDX-License-Identifier: Apache-2.0
#
# The dead-letter and redrive scenario, shared by tests/integration/0022
# (the mock cluster: every option of dlt list and dlt redrive, checked
# against kcat) and tests/broker/0603 (real Kafka: the Spring Kafka headers
# checked by an independent confluent-kafka + fastavro peer, --since, a
# missing topic). Sourced after lib.sh; an entry runs
#   dlt_dead_letters BOOMS PROPERTIES CONSUMER_ARGS...
#   (its checks of the dead letters and of dlt list)
#   dlt_fix_agent
#   (its redrive, and the checks of what it made)
# dlt_dead_letters: c1 runs with agent "worker" serving `fail` tasks with
# the fail handler, plus PROPERTIES (more agent lines) and CONSUMER_ARGS
# (the retry settings: how many attempts before the DLT). BOOMS `fail`
# tasks (ids boom-00000N, in $work/boom.ids), what the entry's
# dlt_more_dead submits if it defines one (its ids appended to
# $work/dead.ids) and one undecodable record ('not a task at all') are
# submitted; every task of dead.ids gets a DEAD_LETTERED result, and
# `dlt list --json` shows them and the undecodable record
# ($work/list.jsonl). dlt_fix_agent: the agent's handler becomes echo
# (SIGHUP reload), so re-driven tasks succeed.
# The entries differ on purpose where the brokers do: the mock cluster has
# no timestamp lookup (--since) and creates every topic it is asked about
# (no "no such topic"), so 0603 checks those, with its peer; 0022 checks
# every list filter and redrive option, which do not depend on the broker.
# For the entry: $before is the time just before the submits (for
# --since), "${dlt_cli[@]}" the producer CLI on this test's topics; the
# entry sets "${dlt_args[@]}" (the DLT for dlt list; unset: the default).
dlt_dead_letters() {
        local booms=$1 props=$2 n
        shift 2
        {
                echo agent.worker.kind=builtin
                echo agent.worker.handler=fail
                echo agent.worker.capabilities=fail
                printf '%s' "$props"
        } >"$work/c1.properties"
        start_consumer c1 "$@" -c "$work/c1.properties"
        wait_ready "$c1_http"
        dlt_cli=(producer ${producer_topic_args[@]+"${producer_topic_args[@]}"})

        before=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
        "${dlt_cli[@]}" -q submit --count "$booms" --id-prefix boom --type fail --payload boom \
                --ids-out "$work/boom.ids" || fail "submit failed"
        cp "$work/boom.ids" "$work/dead.ids"
        if declare -F dlt_more_dead >/dev/null; then
                dlt_more_dead
        fi
        "${dlt_cli[@]}" -q submit --raw-value 'not a task at all' || fail "raw submit failed"
        n=$(wc -l <"$work/dead.ids")
        "${dlt_cli[@]}" wait --ids-file "$work/dead.ids" --timeout-ms 60000 --json \
                >"$work/wait1.json" || fail "the failing tasks got no results"
        assert_eq "DEAD_LETTERED results" \
                "$(json_get "$work/wait1.json" 'j["status"].get("DEAD_LETTERED", 0)')" "$n"

        # The dead letters are acknowledged before their offsets commit:
        # wait until the list shows them all (deadline, no fixed sleep).
        wait_until 40 "$((n + 1)) dead letters listed" --every 0.2 -- dlt_listed $((n + 1))
        assert_eq "dead letters listed (--json)" "$(wc -l <"$work/list.jsonl")" $((n + 1))
}

# dlt_listed N: dlt list --json (which must work) shows N dead letters or
# more; they are in $work/list.jsonl.
dlt_listed() {
        "${dlt_cli[@]}" dlt list ${dlt_args[@]+"${dlt_args[@]}"} --json \
                >"$work/list.jsonl" 2>"$work/list.err" ||
                fail "dlt list failed: $(cat "$work/list.err")"
        wc -l <"$work/list.jsonl"
        (($(wc -l <"$work/list.jsonl") >= $1))
}

# dlt_fix_agent: `fail` tasks now run on echo (SIGHUP reload, applied).
dlt_fix_agent() {
        sed -i 's/^agent.worker.handler=fail$/agent.worker.handler=echo/' "$work/c1.properties"
        kill -HUP "$c1_pid"
        wait_until 10 "the fixed config applied (reloads ok >= 1)" -- \
                value_is -ge 1 metric_sum "$c1_http" '^swarmq_config_reloads_total\{result="ok"'
}

# dlt_redrive_twice N SELECTION...: the redrive of SELECTION (which sent N
# dead letters just before) run again sends nothing and says all N were
# already re-driven (recorded in the group swarmq-redrive-<DLT>); with
# --force it sends the N again. The JSON lines are in $work/again1.jsonl and
# $work/force.jsonl.
dlt_redrive_twice() {
        local n=$1
        shift
        "${dlt_cli[@]}" dlt redrive ${dlt_args[@]+"${dlt_args[@]}"} "$@" --yes --json \
                >"$work/again1.jsonl" 2>"$work/again1.err" ||
                fail "the second redrive failed: $(cat "$work/again1.err")"
        assert_eq "second redrive: redriven" \
                "$(tail -n 1 "$work/again1.jsonl" | json_get /dev/stdin 'j["redriven"]')" 0
        assert_eq "second redrive: already redriven" \
                "$(tail -n 1 "$work/again1.jsonl" | json_get /dev/stdin 'j["already_redriven"]')" "$n"
        assert_eq "second redrive: already-redriven lines" \
                "$(grep -c '"action":"already-redriven"' "$work/again1.jsonl")" "$n"
        "${dlt_cli[@]}" dlt redrive ${dlt_args[@]+"${dlt_args[@]}"} "$@" --yes \
                >"$work/again2.txt" 2>"$work/again2.err" ||
                fail "the third redrive failed: $(cat "$work/again2.err")"
        grep -q "redriven 0, .* skipped $n already redriven (an earlier redrive sent them, recorded in group swarmq-redrive-.*; --force sends them again)" \
                "$work/again2.err" || fail "the skip is not explained: $(cat "$work/again2.err")"
        "${dlt_cli[@]}" dlt redrive ${dlt_args[@]+"${dlt_args[@]}"} "$@" --yes --force --json \
                >"$work/force.jsonl" 2>"$work/force.err" ||
                fail "redrive --force failed: $(cat "$work/force.err")"
        assert_eq "redrive --force: redriven" \
                "$(tail -n 1 "$work/force.jsonl" | json_get /dev/stdin 'j["redriven"]')" "$n"
}

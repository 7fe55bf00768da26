# SPDX-License-Identifier: Apache-2.0
#
# The replay scenario's steps, shared by tests/integration/0006 (the mock
# cluster) and tests/broker/0300 (real Kafka). Sourced after lib.sh, with
# "${replay_cli[@]}" set to the producer CLI on the test's topics. Both
# entries replay a finished run: the events (each task's received,
# started and terminal event), --results, --with-coordinates, --offset N
# and P:N, --task-id, --max, and a bad --since named in a usage error.
# They differ on purpose in the time filters: the mock cluster has no
# timestamp lookup (offsets-for-times answers -1), so 0006 checks that
# --since fails clearly there and tests --until, which needs none; 0300
# replays by time between two batches on a broker that has it.

# replay_rc NAME [args...]: runs replay with stdout in $work/NAME.jsonl,
# stderr in $work/NAME.err and the exit code in $rc.
replay_rc() {
        local name=$1
        shift
        rc=0
        "${replay_cli[@]}" replay "$@" >"$work/$name.jsonl" 2>"$work/$name.err" || rc=$?
}

# replay_to NAME [args...]: the same, and the replay must exit 0.
replay_to() {
        replay_rc "$@"
        ((rc == 0)) || fail "replay ${*:2}: exit code $rc: $(tail -3 "$work/$1.err")"
}

# wait_events NAME N: replays the events topic into $work/NAME.jsonl
# until it holds N events (the terminal events are acknowledged with the
# results, not before them; replay ends at the end of the topic each time).
wait_events() {
        wait_until 30 "$2 events in the events topic" -- events_in "$1" "$2"
}
events_in() { # events_in NAME N: the replay (exit 0) prints N events or more
        replay_to "$1"
        wc -l <"$work/$1.jsonl"
        (($(wc -l <"$work/$1.jsonl") >= $2))
}

# replay_check_coordinates TOPIC: replays the events --with-coordinates
# (into $work/coords.jsonl): every record names TOPIC and its timestamp,
# which is the event's `at`; offsets increase within each partition.
replay_check_coordinates() {
        replay_to coords --with-coordinates
        python3 - "$work/coords.jsonl" "$1" <<'PY' || fail "coordinates are wrong"
import json, sys
last = {}
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    n += 1
    assert e["_topic"] == sys.argv[2], e
    assert isinstance(e["_timestamp"], int) and e["_timestamp"] > 0, e
    # The record's timestamp is the event's own time (set by swarmq, not
    # read again by librdkafka when it takes the record).
    assert e["_timestamp"] == e["at"], e
    p, o = e["_partition"], e["_offset"]
    assert o > last.get(p, -1), f"partition {p}: offset {o} after {last.get(p)}"
    last[p] = o
print(f"{n} records over {len(last)} partitions, offsets in order")
PY
}

# replay_check_offsets N M: --offset N gives every partition from offset N,
# --offset P:M only partition P from M (P: the partition with the most
# events); counted against $work/coords.jsonl.
replay_check_offsets() {
        local n=$1 m=$2 part want
        want=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["_offset"] >= int(sys.argv[2])))' \
                "$work/coords.jsonl" "$n")
        replay_to offset --offset "$n"
        assert_eq "records at offset >= $n" "$(wc -l <"$work/offset.jsonl")" "$want"
        read -r part want < <(python3 -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["_partition"] for l in open(sys.argv[1]))
p, n = c.most_common(1)[0]
print(p, n - int(sys.argv[2]))' "$work/coords.jsonl" "$m")
        replay_to offsetp --offset "$part:$m" --with-coordinates
        assert_eq "records of partition $part from offset $m" \
                "$(wc -l <"$work/offsetp.jsonl")" "$want"
        assert_eq "records of other partitions" \
                "$(grep -vc "\"_partition\":$part," "$work/offsetp.jsonl" || true)" 0
        assert_eq "first offset of partition $part" \
                "$(head -1 "$work/offsetp.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["_offset"])')" "$m"
}

# replay_check_max N: --max N prints N lines and exits 0.
replay_check_max() {
        replay_to max --max "$1"
        assert_eq "--max $1 lines" "$(wc -l <"$work/max.jsonl")" "$1"
}

# replay_check_bad_since VALUE: --since VALUE is a usage error (exit 2)
# naming VALUE.
replay_check_bad_since() {
        replay_rc bad_since --since "$1"
        assert_eq "bad --since exit code" "$rc" 2
        grep -q "\"$1\"" "$work/bad_since.err" ||
                fail "bad --since value not named: $(cat "$work/bad_since.err")"
        log "ok: $(head -1 "$work/bad_since.err")"
}

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Ordering modes, from the results' own timestamps and source offsets:
# - ordering=key: 4 sleep tasks keyed A and 4 keyed B on one partition:
#   within a key no two run at once and they start in offset order; A and
#   B tasks do run at the same time.
# - ordering=partition: 6 tasks with 6 different keys on one partition run
#   one at a time, in offset order.
# - ordering=unordered (the control, so the check can fail): the A tasks
#   overlap.
source "$(dirname "$0")/lib.sh"

# check FILE: prints, per key prefix (the id before "-"), "serial" or
# "overlap", and whether the starts follow the offsets; then "cross" when
# two different keys overlap.
check() {
        python3 - "$1" <<'PY'
import json, sys
by = {}
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    by.setdefault(r["task_id"].split("-")[0], []).append(
        (r["source"]["offset"], r["started_at"], r["finished_at"]))
spans = []
for key in sorted(by):
    runs = sorted(by[key])
    serial = all(b[1] >= a[2] for a, b in zip(runs, runs[1:]))
    in_order = [s for _, s, _ in runs] == sorted(s for _, s, _ in runs)
    print(key, "serial" if serial else "overlap", "in-order" if in_order else "out-of-order")
    spans += [(key, s, f) for _, s, f in runs]
cross = any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in spans for b in spans)
print("cross" if cross else "no-cross")
PY
}

# run NAME ORDERING: starts a consumer on its own embedded broker (one
# partition), submits the tasks given as "PREFIX:KEY:COUNT" words, waits
# for their results and checks them into $work/NAME.check.
run() {
        local name=$1 ordering=$2 spec prefix key count
        shift 2
        start_consumer "$name" --embedded-broker -X embedded.partitions=1 \
                -X executor.threads=8 -X "ordering=$ordering"
        local http_var=${name}_http
        wait_ready "${!http_var}"
        : >"$work/$name.ids"
        for spec in "$@"; do
                IFS=: read -r prefix key count <<<"$spec"
                local key_args=()
                [[ -n "$key" ]] && key_args=(--key "$key")
                producer -q submit --count "$count" --type sleep --payload 300 \
                        --id-prefix "$prefix" "${key_args[@]}" \
                        --ids-out "$work/$name.part" || fail "submit failed"
                cat "$work/$name.part" >>"$work/$name.ids"
        done
        producer wait --ids-file "$work/$name.ids" --timeout-ms 60000 --print \
                >"$work/$name.results" || fail "$name: results missing"
        check "$work/$name.results" >"$work/$name.check"
        log "$name ($ordering): $(tr '\n' ' ' <"$work/$name.check")"
        stop_consumers "$name"
}

run bykey key A:A:4 B:B:4
grep -qx "A serial in-order" "$work/bykey.check" || fail "ordering=key: tasks keyed A overlapped or ran out of order"
grep -qx "B serial in-order" "$work/bykey.check" || fail "ordering=key: tasks keyed B overlapped or ran out of order"
grep -qx "cross" "$work/bykey.check" || fail "ordering=key: keys A and B never ran at the same time"

run bypart partition P1::1 P2::1 P3::1 P4::1 P5::1 P6::1
python3 - "$work/bypart.results" <<'PY' || fail "ordering=partition: tasks of one partition overlapped or ran out of order"
import json, sys
runs = sorted((r["source"]["offset"], r["started_at"], r["finished_at"])
              for r in map(json.loads, (l for l in open(sys.argv[1]) if l.startswith("{"))))
assert len(runs) == 6, runs
assert all(b[1] >= a[2] for a, b in zip(runs, runs[1:])), runs
PY
log "ok: ordering=partition ran 6 differently keyed tasks one at a time, in offset order"

run control unordered A:A:4
grep -q "^A overlap" "$work/control.check" || fail "control: unordered tasks keyed A never overlapped, so the checks above prove nothing"
log "passed"

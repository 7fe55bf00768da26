#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A/B comparison of a feature flag's variants: with
# flag.ranked_selection=50% (ranked vs least-loaded selection, each task
# by its id's bucket) 200 echo tasks are counted in
# swarmq_flag_tasks_total{flag="ranked_selection",variant="on"|"off"}
# exactly as an independent computation of each id's bucket says
# (fnv1a64("ranked_selection:<id>") mod 10000 < 5000, in Python), every
# other flag under its variant ("on" for work_stealing at 100%), and each
# variant has a run-time histogram with as many observations. With every
# flag at on or off nothing is counted (a second instance).
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker -X flag.ranked_selection=50%
wait_ready "$c1_http"
producer -q submit --count 200 --id-prefix ab --type echo --payload x \
        --ids-out "$work/ab.ids" || fail "submit failed"
producer wait --ids-file "$work/ab.ids" --timeout-ms 60000 >/dev/null ||
        fail "not every task reached a result"
wait_until 10 "200 tasks counted" -- value_is == 200 \
        metric_sum "$c1_http" '^swarmq_tasks_total\{status="SUCCEEDED"'
sq_http_get "$c1_http/metrics" >"$work/metrics.txt"
python3 - "$work/ab.ids" "$work/metrics.txt" <<'PY' || fail "the variant counts are wrong"
import re, sys
def fnv1a64(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
ids = open(sys.argv[1]).read().split()
want_on = sum(1 for i in ids if fnv1a64(f"ranked_selection:{i}".encode()) % 10000 < 5000)
m = {}
for line in open(sys.argv[2]):
    g = re.match(r'^(swarmq_flag_tasks_total|swarmq_flag_task_duration_seconds_count)'
                 r'\{flag="(\w+)",variant="(\w+)"(?:,status="(\w+)")?\} (\S+)', line)
    if g:
        name, flag, variant, status, value = g.groups()
        m[(name, flag, variant, status)] = float(value)
got = {v: m.get(("swarmq_flag_tasks_total", "ranked_selection", v, "SUCCEEDED"), -1)
       for v in ("on", "off")}
ws = {v: m.get(("swarmq_flag_tasks_total", "work_stealing", v, "SUCCEEDED"), -1)
      for v in ("on", "off")}
dur = {v: m.get(("swarmq_flag_task_duration_seconds_count", "ranked_selection", v, None), -1)
       for v in ("on", "off")}
print(f"ranked_selection: on {got['on']:.0f} (want {want_on}), off {got['off']:.0f} "
      f"(want {200 - want_on}); work_stealing: {ws}; run times observed: {dur}")
ok = (got["on"] == want_on and got["off"] == 200 - want_on and 0 < want_on < 200
      and ws == {"on": 200, "off": 0} and dur == {"on": want_on, "off": 200 - want_on})
sys.exit(0 if ok else 1)
PY

# Every flag at on (the defaults): the variants are not counted.
start_consumer c2 --embedded-broker
wait_ready "$c2_http"
bootstrap_c2=$bootstrap
"$producer_bin" -b "$bootstrap_c2" -q submit --count 20 --id-prefix all --type echo \
        --payload x --ids-out "$work/all.ids" || fail "submit failed"
"$producer_bin" -b "$bootstrap_c2" wait --ids-file "$work/all.ids" --timeout-ms 60000 \
        >/dev/null || fail "not every task reached a result"
assert_eq "variant counts with no partial rollout" \
        "$(metric_sum "$c2_http" '^swarmq_flag_tasks_total')" 0
stop_consumers c1 c2
log "ok: each task counted under the variant its id's bucket gives"

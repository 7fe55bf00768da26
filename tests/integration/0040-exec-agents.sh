#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# exec agents on the embedded broker: one process per task. Success with
# the payload on stdin (including one larger than a pipe buffer), a
# non-zero exit (FAILED, status and stderr in the error), a timeout that
# kills the whole process group (a grandchild that ignores SIGTERM is gone
# afterwards), the output cap, the scrubbed environment, and a missing
# binary; 60 tasks through an agent of concurrency 3 (parked jobs handed
# over on the I/O loop).
source "$(dirname "$0")/lib.sh"

marker=sq-marker-0040-$$
cat >"$work/forker.sh" <<EOF
#!/bin/sh
# A grandchild that ignores SIGTERM, in the same process group.
sh -c 'trap "" TERM; touch "$work/grandchild.started"; while :; do sleep 1; done' $marker &
trap "" TERM
while :; do sleep 1; done
EOF
chmod +x "$work/forker.sh"

cat >"$work/swarmq.properties" <<EOF
agent.upper.kind=exec
agent.upper.command=["/usr/bin/tr", "a-z", "A-Z"]
agent.upper.concurrency=3
agent.count.kind=exec
agent.count.command=/usr/bin/wc -c
agent.bad.kind=exec
agent.bad.command=["/bin/sh", "-c", "echo partial; echo 'bad input' >&2; exit 3"]
agent.hang.kind=exec
agent.hang.command=$work/forker.sh
agent.hang.kill.grace.ms=300
agent.big.kind=exec
agent.big.command=["/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\\\0' x"]
agent.big.output.max.bytes=1000
agent.env.kind=exec
agent.env.command=/usr/bin/env
agent.env.env.allow=PATH
agent.env.env.GREETING=hello world
agent.missing.kind=exec
agent.missing.command=/nonexistent/sq-no-such-binary --flag
EOF

SECRET_TOKEN=s3cret HOME=/root start_consumer c1 --embedded-broker \
        -c "$work/swarmq.properties" -X executor.threads=2 -X retry.max.attempts=1 \
        -X executor.critical.reserved=0
wait_ready "$c1_http"

sub() {
        local name=$1
        shift
        producer -q submit --ids-out "$work/ids.$name" --id-prefix "$name" "$@" ||
                fail "submit $name failed"
}
sub upper --count 60 --type upper --payload "hello exec"
sub count --type count --payload-size 300000
sub bad --type bad
sub hang --type hang --timeout-ms 1000
sub big --type big
sub env --type env
sub missing --type missing
cat "$work"/ids.* >"$work/all.ids"

producer wait --ids-file "$work/all.ids" --timeout-ms 60000 --print --json \
        >"$work/wait.out" || fail "not every task got a result"
head -n -1 "$work/wait.out" >"$work/results.jsonl"
assert_eq "distinct results" "$(tail -n 1 "$work/wait.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["distinct"])')" 66

python3 - "$work/results.jsonl" >"$work/check.out" <<'PY' || { cat "$work/check.out"; fail "exec results are wrong"; }
import json, sys
res = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    res.setdefault(r["task_id"].split("-")[0], []).append(r)
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
ups = res["upper"]
check(len(ups) == 60 and all(r["status"] == "SUCCEEDED" and r["output"] == "HELLO EXEC"
                             and r["agent"] == "upper" for r in ups),
      f"upper: {[(r['status'], r['output'], r['error']) for r in ups][:3]}")
c = res["count"][0]
check(c["status"] == "SUCCEEDED" and c["output"].strip() == "300000", f"count: {c}")
b = res["bad"][0]
check(b["status"] == "DEAD_LETTERED" and b["error"] == "exited with status 3: bad input"
      and b["output"] == "partial\n", f"bad: {b}")
h = res["hang"][0]
check(h["status"] == "DEAD_LETTERED" and "process group" in (h["error"] or ""), f"hang: {h}")
g = res["big"][0]
check(g["status"] == "SUCCEEDED" and g["output"] == "x" * 1000
      and "output truncated to 1000 bytes" in (g["error"] or ""), f"big: {g}")
e = res["env"][0]
lines = sorted(e["output"].splitlines())
check(e["status"] == "SUCCEEDED" and len(lines) == 2 and lines[0] == "GREETING=hello world"
      and lines[1].startswith("PATH="), f"env: {lines}")
check("s3cret" not in e["output"] and "HOME=" not in e["output"], f"env leaked: {lines}")
m = res["missing"][0]
check(m["status"] == "DEAD_LETTERED" and m["error"] ==
      'cannot execute "/nonexistent/sq-no-such-binary": No such file or directory', f"missing: {m}")
print("\n".join(errors) if errors else "all exec results as expected")
if h["error"]:
    print("pgid=" + h["error"].split("process group ")[1].split(" ")[0])
sys.exit(1 if errors else 0)
PY
cat "$work/check.out"

# The timed-out task's grandchild had started, and nothing of its process
# group is left (SIGKILL reaches it once the group is killed).
[[ -f "$work/grandchild.started" ]] || fail "the grandchild never started"
pgid=$(sed -n 's/^pgid=//p' "$work/check.out")
[[ -n "$pgid" ]] || fail "no process group in the timeout error"
group_gone() { # nothing of the task's process group is running
        ! pgrep -f "$marker" >/dev/null && ! pgrep -g "$pgid" >/dev/null
}
if ! wait_until 5 "process group $pgid gone" --no-fail -- group_gone; then
        ps -eo pid,pgid,stat,args | grep -E "$marker|^ *[0-9]+ +$pgid " >&2 || true
        pkill -KILL -f "$marker" || true
        fail "processes of the timed-out task's group are still running"
fi
log "ok: nothing of process group $pgid ($marker) left running"

assert_eq "exec tasks by agent upper" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total\{status="SUCCEEDED",agent="upper"')" 60
stop_consumers c1
log "passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A/B comparison of a feature flag's variants (docs/configuration.md, "A/B
# comparison"): one instance on the embedded broker with
# flag.ranked_selection=50% runs a backlog of N tasks of type `work`, which
# two agents can take: `fast` (builtin sleep of the payload's 5 ms) and
# `slow` (exec agent running `sleep 0.02`, fork included), 4 slots each.
# Half the task ids (by their bucket) get ranked selection, the other half
# least-loaded. From /metrics it prints per variant: tasks, success ratio,
# the share that ran in 10 ms or less (about the share the fast agent
# took), p50 / p99 run time (interpolated in the coarse buckets of
# swarmq_flag_task_duration_seconds, 1, 5, 10, 50 ms..., as
# histogram_quantile does) and the mean run time (exact); then the wall
# time of the whole backlog. Both variants share one run, one instance and
# one machine, so only their difference means something.
#
#   ops/bench.sh abtest [--build DIR] [--count N] [--quick] [-X KEY=VALUE]...
#
# --build DIR  a build with the tests (default: a Release build in
#              ./build-bench); --count N tasks (default 4000); --quick 200
#              tasks (a smoke); -X a further swarmq-consumer key.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

die() {
        echo "bench abtest: $*" >&2
        echo "bench abtest: see ops/bench.sh abtest --help" >&2
        exit 2
}
need() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value"; }

b= count= quick=0 extra=()
cmdline="ops/bench.sh abtest"
while (($#)); do
        case $1 in
        --quick) quick=1; cmdline+=" $1"; shift; continue ;;
        -h | --help) sed -n '4,22p' "$0"; exit 0 ;;
        --build | --count | -X) need "$@" ;;
        *) die "unknown option '$1'" ;;
        esac
        case $1 in
        --build) b=$(cd "$2" 2>/dev/null && pwd) || die "--build: no directory '$2'" ;;
        --count) [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$2'"
                count=$2 ;;
        -X) [[ "$2" == *=* ]] || die "-X needs KEY=VALUE, not '$2'"; extra+=(-X "$2") ;;
        esac
        cmdline+=" $1 $2"
        shift 2
done
((quick)) && : "${count:=200}"
: "${count:=4000}"
command -v curl >/dev/null || die "needs curl"
command -v python3 >/dev/null || die "needs python3"
bench_default_build
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/producer/swarmq-producer" ]] ||
        die "--build '$b' has no swarmq-consumer or swarmq-producer"
bench_workdir abtest

# Two agents for one capability, unlike in speed: what a selection
# strategy can get right or wrong. Declaring them replaces the builtins.
"$b/consumer/swarmq-consumer" --embedded-broker --http-port auto -i abtest -l warning \
        -X flag.ranked_selection=50% \
        -X agent.fast.kind=builtin -X agent.fast.handler=sleep \
        -X agent.fast.capabilities=work -X agent.fast.concurrency=4 \
        -X agent.slow.kind=exec -X "agent.slow.command=sleep 0.02" \
        -X agent.slow.capabilities=work -X agent.slow.concurrency=4 \
        "${extra[@]}" >"$work/c.out" 2>"$work/c.log" &
pids+=($!)
bootstrap=$(sq_wait_line "$work/c.out" bootstrap.servers 30) ||
        { cat "$work/c.log" >&2; exit 1; }
url=$(sq_wait_line "$work/c.out" http.url 30)
wait_until 60 "$url/readyz answers 200" --every 0.2 -- \
        value_is == 200 sq_http_status "$url/readyz" >/dev/null

# finished: how many tasks the flag's variants counted so far.
finished() {
        curl -s "$url/metrics" |
                awk '$1 ~ /^swarmq_flag_tasks_total\{flag="ranked_selection",/ { s += $2 }
                     END { printf "%d", s }'
}
t0=$(date +%s.%N)
"$b/producer/swarmq-producer" -b "$bootstrap" -q submit --count "$count" --type work \
        --payload 5 --id-prefix ab
wait_until $((60 + count / 10)) "$count tasks counted" --every 0.2 -- \
        value_is -ge "$count" finished >/dev/null
t1=$(date +%s.%N)
curl -s "$url/metrics" >"$work/metrics.txt"
bench_stop_pids

echo "$count \`work\` tasks (agents fast: builtin sleep 5 ms, slow: exec \`sleep 0.02\`;" \
        "4 slots each), one instance, embedded broker, flag.ranked_selection=50%"
echo
python3 - "$work/metrics.txt" "$count" "$t0" "$t1" <<'PY'
import re, sys
metrics, count, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
lab = lambda s: dict(re.findall(r'(\w+)="([^"]*)"', s))
tasks, buckets, sums = {}, {}, {}
for line in open(metrics):
    g = re.match(r'^(swarmq_flag_\w+)\{([^}]*)\} (\S+)$', line.strip())
    if not g:
        continue
    name, l, v = g.group(1), lab(g.group(2)), float(g.group(3))
    if l.get("flag") != "ranked_selection" or "variant" not in l:
        continue
    var = l["variant"]
    if name == "swarmq_flag_tasks_total":
        tasks.setdefault(var, {})[l["status"]] = v
    elif name == "swarmq_flag_task_duration_seconds_bucket":
        le = float("inf") if l["le"] == "+Inf" else float(l["le"])
        buckets.setdefault(var, []).append((le, v))
    elif name == "swarmq_flag_task_duration_seconds_sum":
        sums[var] = v

def quantile(q, bs):
    # histogram_quantile: linear within the bucket holding rank q * total.
    bs = sorted(bs)
    total = bs[-1][1]
    if total == 0:
        return float("nan")
    rank, lo, below = q * total, 0.0, 0.0
    for le, c in bs:
        if c >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * (rank - below) / max(c - below, 1e-12)
        lo, below = le, c
    return lo

names = {"on": "on (ranked)", "off": "off (least-loaded)"}
print("| variant | tasks | succeeded | run ≤ 10 ms | p50 run ms | p99 run ms | mean run ms |")
print("|---|---|---|---|---|---|---|")
seen = 0
for var in ("on", "off"):
    st = tasks.get(var, {})
    n = sum(st.values())
    seen += n
    ok = st.get("SUCCEEDED", 0)
    bs = buckets.get(var, [])
    p50 = quantile(0.5, bs) * 1000 if bs else float("nan")
    p99 = quantile(0.99, bs) * 1000 if bs else float("nan")
    mean = sums.get(var, 0) / n * 1000 if n else float("nan")
    # The buckets (1, 5, 10, 50 ms...) are coarse: the share at or under
    # 10 ms is about the share the fast agent ran, exactly counted.
    fast = sum(c for le, c in bs if abs(le - 0.01) < 1e-9)
    print(f"| {names[var]} | {n:.0f} | {100 * ok / n if n else 0:.1f} % | "
          f"{100 * fast / n if n else 0:.1f} % | {p50:.1f} | {p99:.1f} | {mean:.1f} |")
wall = t1 - t0
print()
print(f"Backlog of {count} (both variants together): {wall:.1f} s from the start of the "
      f"submit, {wall / count * 1000:.2f} ms wall per task, {count / wall:.0f} tasks/s.")
# Both variants must have run: with the flag at 50 % each takes about half.
sys.exit(0 if seen == count and all(sum(tasks.get(v, {}).values()) for v in ("on", "off")) else 1)
PY
echo
echo "Command: \`$cmdline\`"

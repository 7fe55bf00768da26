#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Every input of the kept fuzz corpus (tests/fuzz/corpus/task/) goes to the
# tasks topic of a running instance as one record (kcat, bytes untouched).
# Each one the decoder refuses (fuzz-replay-task says which, and why)
# lands in the dead-letter topic exactly once, with its original bytes and
# the decoder's reason in kafka_dlt-exception-message; the instance stays
# healthy and serves a good task submitted after them all.
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"
chaos_python

corpus=$src/tests/fuzz/corpus/task
FUZZ_REPLAY_VERDICTS=1 "$build/tests/fuzz/fuzz-replay-task" "$corpus" \
        >"$work/verdicts.tsv" 2>"$work/replay.log" || fail "fuzz-replay-task failed"
bad=$(grep -c '^error' "$work/verdicts.tsv" || true)
good=$(grep -c '^ok' "$work/verdicts.tsv" || true)
((bad > 0)) || fail "the corpus has no undecodable input: the test proves nothing"
log "corpus: $bad undecodable inputs, $good decodable"

start_consumer c1 --embedded-broker -X retry.max.attempts=1
wait_ready "$c1_http"
mapfile -t files < <(cut -f2 "$work/verdicts.tsv")
kcat -b "$bootstrap" -P -t swarmq-tasks "${files[@]}" 2>"$work/kcat.log" ||
        fail "kcat could not produce the corpus"
producer -q submit --type sha256 --payload after --id-prefix after \
        --ids-out "$work/after.ids" || fail "submit failed"
producer wait --ids-file "$work/after.ids" --timeout-ms 60000 >/dev/null ||
        fail "the good task after the corpus got no result"
log "ok: a good task after the corpus got its result"

"$python" - "$bootstrap" "$work/verdicts.tsv" <<'PY' || fail "dead letters are wrong"
import sys, time
from confluent_kafka import Consumer
bootstrap, verdicts = sys.argv[1], sys.argv[2]
want = {}  # bytes -> [reasons], one per bad input
for line in open(verdicts):
    f = line.rstrip("\n").split("\t")
    if f[0] == "error":
        want.setdefault(open(f[1], "rb").read(), []).append(f[2])
nbad = sum(len(v) for v in want.values())
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlt-check",
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe(["swarmq-tasks-dlt"])
# Reasons of the dead letters of decodable tasks that ran (or found no
# agent): not the decoder's.
RAN = (b"FAILED", b"TIMED_OUT", b"NO_AGENT")
got, deadline = [], time.time() + 60
while len(got) < nbad and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    if dict(m.headers() or []).get("swarmq-reason") in RAN:
        continue  # a decodable task that ran and failed (no agent for it)
    got.append(m)
# Anything more than one per bad input would show up within a moment.
end = time.time() + 2
while time.time() < end:
    m = c.poll(0.2)
    if m is not None and not m.error() and dict(m.headers() or []).get(
            "swarmq-reason") not in RAN:
        got.append(m)
c.close()
ok = len(got) == nbad
print(f"dead letters: {len(got)}, undecodable inputs: {nbad}")
for m in got:
    value = m.value() or b""
    h = {k: (v or b"").decode() for k, v in (m.headers() or [])}
    reason = h.get("kafka_dlt-exception-message", "")
    if value not in want or not want[value]:
        print(f"unexpected or repeated dead letter {value[:40]!r}")
        ok = False
        continue
    expected = want[value]
    if reason not in expected:
        print(f"{value[:40]!r}: reason {reason!r}, the decoder said {expected!r}")
        ok = False
    else:
        expected.remove(reason)
    if h.get("swarmq-reason") != "DECODE_ERROR":
        print(f"{value[:40]!r}: swarmq-reason={h.get('swarmq-reason')!r}")
        ok = False
left = [k for k, v in want.items() for _ in v]
for v in left:
    print(f"no dead letter for {v[:40]!r}")
sys.exit(0 if ok and not left else 1)
PY
log "ok: one dead letter per undecodable input, original bytes, the decoder's reason"
assert_eq "metric: dead letters" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="DECODE_ERROR"')" "$bad"
assert_eq "healthz after the corpus" "$(sq_http_status "$c1_http/healthz")" 200
kill -TERM "$c1_pid"
sq_wait_exit "$c1_pid" 60 || fail "consumer did not exit 0 after SIGTERM"
log "passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What librdkafka 2.0.2 (Debian's, which swarmq links) cannot do against
# Apache Kafka 4.x, part two (0120 is KIP-848): log in with SCRAM. Its
# SCRAM client-final-message repeats the client nonce
# (confluentinc/librdkafka#4895, fixed in 2.6.1); Kafka 3.9.1 lets that
# pass, 4.x compares the nonce strictly and refuses the login as if the
# password were wrong. librdkafka retries a refused login for ever, so
# swarmq names it and stops instead of running with nothing to do:
#   swarmq-consumer exits 1, swarmq-producer submit and wait exit 3,
#   each saying "cannot log in to the cluster: ... SASL authentication
#   error: Authentication failed during authentication due to invalid
#   credentials with SASL mechanism SCRAM-SHA-512 ..." and that librdkafka
#   2.0.2 cannot log in to Kafka 4.x (fixed in 2.6.1).
# A secured Kafka 4.4.0 broker of its own (ops/kafka.sh start --secure
# --allow-kafka4-scram), every ACL of ops/kafka/acls.py granted, and the
# same users and passwords logging in with a newer librdkafka (the venv's
# confluent-kafka): the password is right, the client is what fails.
# See docs/operations.md, "Secured clusters". The secured tests (072x)
# run on Kafka 3.9.1 for this reason.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/secure_lib.sh"

state=$build/tests/kafka4-secure
# A broker left by an interrupted run would be reused and then kept.
bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true
trap 'sq_cleanup; bash "$src/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true' EXIT
bash "$src/ops/kafka.sh" start --secure --kafka-version 4.4.0 --allow-kafka4-scram \
        --state-dir "$state" >"$work/kafka-start.out" 2>&1 ||
        { tail -n 20 "$work/kafka-start.out" >&2; fail "cannot start a secured Kafka 4.4.0 broker"; }
SQ_KAFKA_SECURE_STATE=$state use_secure_kafka
acl grant 2>"$work/acl.txt" || fail "granting the ACLs failed: $(cat "$work/acl.txt")"

# The users' passwords are right: a newer librdkafka logs in with them.
for user in swarmq producer; do
        "$python" - "$sec/client-$user.properties" "$t_tasks" <<'EOF' ||
import sys
from confluent_kafka.admin import AdminClient
conf = dict(l.strip().split("=", 1) for l in open(sys.argv[1])
            if "=" in l and not l.startswith("#"))
md = AdminClient(conf).list_topics(topic=sys.argv[2], timeout=20)
sys.exit(0 if md.topics[sys.argv[2]].error is None else 1)
EOF
                fail "User:$user cannot log in with the venv's confluent-kafka either"
done
log "ok: User:swarmq and User:producer log in to Kafka 4.4.0 with librdkafka" \
        "$("$python" -c 'import confluent_kafka as c; print(c.libversion()[0])') (confluent-kafka)"

cause="cannot log in to the cluster: sasl_ssl://$bootstrap/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
note="with SCRAM, librdkafka 2.0.2 (this program's) cannot log in to Kafka 4.x even with the right password (fixed in librdkafka 2.6.1"

# expect_refused NAME STATUS CMD...: CMD exits with STATUS within 60 s and
# its stderr names the refused login and librdkafka's limit.
expect_refused() {
        local name=$1 want=$2 rc=0 t0=$SECONDS
        shift 2
        timeout 60 "$@" >"$work/$name.out" 2>"$work/$name.log" || rc=$?
        [[ $rc != 124 ]] || fail "$name still ran after 60 s (it should stop at a refused login)"
        assert_eq "$name's exit status" "$rc" "$want"
        grep -qF -- "$cause" "$work/$name.log" ||
                fail "$name did not name the refused login: $(grep -v RDK: "$work/$name.log" | tail -n 3)"
        grep -qF -- "$note" "$work/$name.log" ||
                fail "$name did not name librdkafka's limit: $(grep -v RDK: "$work/$name.log" | tail -n 3)"
        log "ok: $name: exit $rc after $((SECONDS - t0)) s: $(grep -F -- "$cause" "$work/$name.log" | head -n 1)"
}

expect_refused consumer 1 "$consumer_bin" --http-port 0 "${consumer_secure_args[@]}"
expect_refused submit 3 "${psec[@]}" --connect-timeout-ms 5000 submit --count 1
expect_refused wait 3 "${psec[@]}" --connect-timeout-ms 5000 wait --count 1
no_secret_in "the logs" "$work"/*.log "$work"/*.out
log "passed"

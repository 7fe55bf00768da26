# SPDX-License-Identifier: Apache-2.0
#
# Shared by the secured-cluster tests (0720, 0721): the broker of the ctest
# fixture "kafka-secure" (ops/kafka.sh start --secure --kafka-version
# 3.9.1, state in $SQ_KAFKA_SECURE_STATE): SASL_SSL with SCRAM-SHA-512,
# TLS certificates made by ops/kafka.sh (openssl), ACLs on. Kafka 3.9.1,
# because librdkafka 2.0.2 cannot log in with SCRAM to Kafka 4.x (its
# SCRAM client-final-message repeats the client nonce, which 4.x refuses
# since CVE-2024-56128; fixed in librdkafka 2.6.1): 0121 shows that on a
# secured 4.4.0 broker of its own (SQ_KAFKA_SECURE_STATE set to it); see
# docs/operations.md.
#
# use_secure_kafka sets $bootstrap, $sec (the state directory), topics and
# group unique to the test (test_topics, as use_real_kafka), creates the
# topics as the super user, and sets:
#   consumer_secure_args   swarmq-consumer's login (--config FILE: the
#                          password never on a command line) and topics
#   psec                   the command array of swarmq-producer logged in
#                          as User:producer (-F FILE: the password never
#                          on a command line either), with the test's
#                          topics
#   acl CMD [args]         ops/kafka/acls.py on this test's names
#                          (prefix, group), as the super user
#   secrets                the three users' passwords, one a line
# Source after tests/integration/lib.sh.

use_secure_kafka() {
        local state=${SQ_KAFKA_SECURE_STATE:-$build/tests/kafka-secure}
        sec=$state
        [[ -f "$sec/secure" ]] ||
                fail "no secured Kafka broker in $sec (ops/kafka.sh start --secure --state-dir $sec)"
        bootstrap=$(bash "$src/ops/kafka.sh" env --state-dir "$sec" |
                sed -n 's/^bootstrap.servers=//p')
        [[ -n "$bootstrap" ]] || fail "the secured broker of $sec is not running"
        python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
        test_topics
        consumer_secure_args=(--config "$sec/swarmq-consumer.properties"
                "${consumer_topic_args[@]}")
        psec=("$producer_bin" -F "$sec/client-producer.properties"
                "${producer_topic_args[@]}")
        secrets=$(cut -d= -f2- "$sec/secrets")
        acl topics --partitions 3 --workflows --schedules ||
                fail "cannot create the topics as admin"
        log "secured Kafka $(cat "$sec/kafka-version") at $bootstrap" \
                "(SASL_SSL, SCRAM-SHA-512, ACLs on), topics $prefix-*"
}

acl() {
        local cmd=$1
        shift
        "$python" "$src/ops/kafka/acls.py" "$cmd" --admin "$sec/client-admin.properties" \
                --prefix "$prefix" --group "$group" "$@"
}

# no_secret_in WHAT FILE...: none of the users' passwords appears in the
# files (logs, HTTP answers, dumps).
no_secret_in() {
        local what=$1 pw
        shift
        while read -r pw; do
                [[ -n "$pw" ]] || continue
                if grep -qF -- "$pw" "$@"; then
                        fail "a password appears in $what: $(grep -lF -- "$pw" "$@" | tr '\n' ' ')"
                fi
        done <<<"$secrets"
        log "ok: no password in $what"
}

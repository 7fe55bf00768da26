#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs real Apache Kafka on loopback for tests, benchmarks, chaos runs and
# the demo: Kafka 4.4.0 by default (3.9.1 with --kafka-version 3.9.1), one
# KRaft node that is both broker and controller, or with --brokers N a
# cluster of N such nodes (each its own JVM and ports, replication factor
# 3, min.insync.replicas 2), from Maven Central jars (no tarball, no
# docker). See /work/shared/KAFKA.md section 2 and docs/operations.md.
#
# DESIGN: the jars of a version (ops/kafka/pom-VERSION.xml's runtime
# dependencies, ~40 files) are copied by Maven into a cache outside the
# repository, one folder per version, once; a marker file holding the pom's
# sha256 is written only after a complete download, so an interrupted or
# outdated download is redone. (The folders are kafka-jars-VERSION: the
# script of before versions kept its 3.9.1 jars in kafka-3.9.1 with a
# marker of its own pom; sharing that folder, each script would fetch
# again, replacing the jars under the other's running broker.) A state
# directory holds one broker or one cluster: kafka-version (the version
# that formatted it: a restart must use the same jars, since a log
# formatted by 4.x crashes 3.9.1), brokers (the node count), bootstrap
# (the "bootstrap.servers=..." line) and, per node,
# a node directory with server.properties, data/, kafka.pid and kafka.log.
# A single broker's node directory is the state directory itself (the
# layout of before clusters); node N of a cluster lives in STATE/nodeN.
# Each node runs in its own session (setsid + nohup) so it outlives the
# script that started it; a pid file counts only while /proc/PID/cmdline
# is a kafka.Kafka JVM of that node's server.properties, so a stale pid
# (reused by another process) is ignored.
# Ports are picked by the kernel at a fresh start, so runs can share a
# machine; "halt" stops nodes but keeps their data and ports, and the next
# "start" (or "restart") brings the same nodes back on the same ports, so
# clients reconnect to the addresses they know (the chaos suite's broker
# outages; --node N does it to one node of a cluster).
# --secure: the state directory also holds secure (the marker), tls/ (a
# CA and the brokers' key and certificate, PEM), secrets (the users'
# passwords, mode 600, given to the storage format as SCRAM credentials,
# KIP-900) and client-USER.properties; readiness is checked as admin,
# with kcat, or on Kafka 4.x (--allow-kafka4-scram only: librdkafka 2.0.2,
# kcat's, cannot log in there) with the venv's confluent-kafka (its own,
# newer librdkafka).
# A node is ready when a metadata request to it answers and lists itself
# (a KRaft broker lists only unfenced brokers, so a restarted node counts
# once the controller let it back in); a fresh cluster is ready when every
# node lists all N. Polled every 0.2 s; there is no fixed sleep anywhere.
set -euo pipefail

default_version=4.4.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SWARMQ_KAFKA_CACHE:-$HOME/.cache/swarmq}
state=${SWARMQ_KAFKA_STATE:-/tmp/swarmq-kafka}
partitions=12
timeout_s=120
signal=TERM
version_opt=
brokers_opt=
node_opt=
secure_opt=0
allow4_opt=0
listen_ip_opt=
venv_python= # ops/venv.sh's python, once asked for (venv_metadata)

# The versions this script can run: one pom per version.
known_versions() {
        local f
        for f in "$root"/ops/kafka/pom-*.xml; do
                f=${f##*/pom-}
                printf '%s ' "${f%.xml}"
        done
}

usage() {
        cat <<EOF
Usage: ops/kafka.sh COMMAND [--state-dir DIR] [options]

Runs Apache Kafka (KRaft, combined broker and controller nodes) on
127.0.0.1 with kernel-chosen ports, from Maven Central jars: one node, or
a cluster of --brokers N nodes, each its own process and ports.

Commands:
  start   fetch the jars if needed, format storage, start the node(s) in the
          background, wait until they answer metadata requests, and print
          "bootstrap.servers=127.0.0.1:PORT[,...]" on stdout. If the nodes
          of DIR already run, says so (stderr) and prints the bootstrap.
          After a halt, start brings the same nodes back: same data, same
          ports, same Kafka version (no format). --node N: only node N of
          a cluster (after "halt --node N").
  stop    SIGTERM (controlled shutdown) to every node, SIGKILL after 60 s
          (15 s for a cluster); removes the data (kafka.log is kept).
          Exit 0 also when none ran.
  halt    stop the node(s) but keep data and ports for the next start:
          SIGTERM (controlled shutdown) by default, --signal KILL for a
          crash; --node N: only node N. Exit 0 also when none ran.
  restart halt, then start again on the same ports and data (--node N: one
          node).
  status  one line per node: whether it runs, its pid and port, and the
          Kafka version; exit 0 when every node runs, 1 otherwise.
  env     prints "bootstrap.servers=..." while a node runs; exit 1 if none.
  fetch   only download the jars of --kafka-version into the cache (start
          does this itself); --kafka-version all: every known version.

Options:
  --state-dir DIR   the broker's or cluster's directory (default
                    \$SWARMQ_KAFKA_STATE or /tmp/swarmq-kafka; current: $state)
  --kafka-version V start, fetch: the Apache Kafka version, one of:
                    $(known_versions)(default $default_version). A state
                    directory remembers the version that formatted it; a
                    later start uses it (a different V is refused).
  --brokers N       start: a cluster of N nodes (default 1). N >= 3 sets
                    default.replication.factor=3 and min.insync.replicas=2
                    (internal topics too); N = 2 uses 2 and 1.
  --secure          start: a secured cluster: clients connect with SASL_SSL
                    (SCRAM-SHA-512) over TLS with certificates made here
                    (openssl; the CA in DIR/tls/ca.pem), ACLs on
                    (StandardAuthorizer), brokers and controllers on mutual
                    TLS; users admin (super user), swarmq and producer,
                    with no ACL until granted (ops/kafka/acls.py grant).
                    Prints the client settings of user swarmq after the
                    bootstrap line; every user's, password included, are
                    in DIR/client-USER.properties. Runs Kafka 3.9.1:
                    librdkafka 2.0.2's SCRAM cannot log in to Kafka 4.x
                    (fixed in librdkafka 2.6.1); a 4.x version is refused
                    unless --allow-kafka4-scram.
  --allow-kafka4-scram  start --secure: run the 4.x version asked for
                    anyway, to show the error swarmq gives there
                    (tests/broker/0121); readiness is then checked with
                    the confluent-kafka of ops/venv.sh.
  --listen-ip IP    start: a second PLAINTEXT listener on IP (an address of
                    this machine, e.g. the host end of a veth pair) with
                    a port of its own, advertised as IP: clients in a
                    network namespace reach the brokers there, while
                    127.0.0.1 serves the others (the chaos suite's network
                    partitions). Its bootstrap line is in
                    DIR/bootstrap-listen-ip. Not with --secure.
  --node N          halt, start, restart: only node N (1..N) of a cluster
  --partitions N    start: num.partitions of auto-created topics (default 12)
  --timeout S       start: seconds to wait for readiness (default 120)
  --signal TERM|KILL  halt, restart: how to stop the node(s) (default TERM)
  -h, --help        this help

Environment:
  SWARMQ_KAFKA_CACHE  jar cache root; version V in its kafka-jars-V folder
                      (default ~/.cache/swarmq; current: $cache_root)
  SWARMQ_KAFKA_STATE  default state directory
  KAFKA_HEAP_OPTS     JVM heap of each node (default -Xms128m -Xmx512m
                      for one node, -Xms64m -Xmx256m per cluster node)

Needs java (11+) and mvn to start (apt-get install -y
openjdk-17-jre-headless maven), and kcat to check readiness
(apt-get install -y kcat); bash ops/deps.sh --test installs all three and
fetches the jars.
EOF
}

die() {
        echo "kafka.sh: $*" >&2
        exit 1
}

cmd=${1:-}
case "$cmd" in
-h | --help | help)
        usage
        exit 0
        ;;
start | stop | halt | restart | status | env | fetch) shift ;;
"") usage >&2 && exit 2 ;;
*) echo "kafka.sh: unknown command '$cmd'" >&2 && usage >&2 && exit 2 ;;
esac

# Options: "--name value" is rewritten to "--name=value", then read.
while (($#)); do
        case "$1" in
        --state-dir | --partitions | --timeout | --signal | --kafka-version | \
                --brokers | --node | --listen-ip)
                (($# >= 2)) || die "$1 needs a value"
                set -- "$1=$2" "${@:3}"
                ;;
        esac
        case "$1" in
        --state-dir=*) state=${1#*=} ;;
        --partitions=*) partitions=${1#*=} ;;
        --timeout=*) timeout_s=${1#*=} ;;
        --signal=*) signal=${1#*=} ;;
        --kafka-version=*) version_opt=${1#*=} ;;
        --brokers=*) brokers_opt=${1#*=} ;;
        --node=*) node_opt=${1#*=} ;;
        --secure) secure_opt=1 ;;
        --allow-kafka4-scram) allow4_opt=1 ;;
        --listen-ip=*) listen_ip_opt=${1#*=} ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/kafka.sh --help)" ;;
        esac
        shift
done
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] ||
        die "--partitions must be a positive integer, not '$partitions'"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] ||
        die "--timeout must be a positive integer, not '$timeout_s'"
[[ "$signal" == TERM || "$signal" == KILL ]] ||
        die "--signal must be TERM or KILL, not '$signal'"
[[ -z "$brokers_opt" || "$brokers_opt" =~ ^[1-9]$ ]] ||
        die "--brokers must be a number from 1 to 9, not '$brokers_opt'"
[[ -z "$node_opt" || "$node_opt" =~ ^[1-9]$ ]] ||
        die "--node must be a node id from 1 to 9, not '$node_opt'"
[[ -z "$listen_ip_opt" || "$listen_ip_opt" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
        die "--listen-ip must be an IPv4 address, not '$listen_ip_opt'"
((!secure_opt)) || [[ -z "$listen_ip_opt" ]] ||
        die "--listen-ip and --secure do not go together"
((!allow4_opt || secure_opt)) ||
        die "--allow-kafka4-scram goes with --secure"
if [[ -n "$version_opt" && "$version_opt" != all &&
        ! -f "$root/ops/kafka/pom-$version_opt.xml" ]]; then
        die "--kafka-version $version_opt is not one this script runs (known:" \
                "$(known_versions)); each needs ops/kafka/pom-VERSION.xml"
fi
[[ -n "$state" ]] || die "the state directory is empty"
[[ "$cmd" != start && "$cmd" != restart ]] || mkdir -p "$state"
if [[ -d "$state" ]]; then
        state=$(cd "$state" && pwd)
fi

# --- the state directory's layout -----------------------------------------

# state_brokers: the node count of the state directory (1 for a single
# broker, also one formatted before clusters existed).
state_brokers() {
        if [[ -f "$state/brokers" ]]; then
                cat "$state/brokers"
        else
                echo 1
        fi
}

# state_version: the Kafka version that formatted the state directory; a
# folder from before versions were recorded was formatted by 3.9.1.
state_version() {
        if [[ -f "$state/kafka-version" ]]; then
                cat "$state/kafka-version"
        else
                echo 3.9.1
        fi
}

# node_dir ID: the directory of node ID (the state directory itself when
# the state holds one broker).
node_dir() {
        if (($(state_brokers) == 1)); then
                echo "$state"
        else
                echo "$state/node$1"
        fi
}

# node_ids: the ids to act on: --node N, or every node of the state.
node_ids() {
        local n
        n=$(state_brokers)
        if [[ -n "$node_opt" ]]; then
                ((node_opt <= n)) ||
                        die "--node $node_opt: $state holds $n node(s)"
                echo "$node_opt"
        else
                seq 1 "$n"
        fi
}

# running_pid DIR: prints the pid of the node of DIR and returns 0 when it
# runs; returns 1 otherwise.
running_pid() {
        local dir=$1 pid cmdline
        [[ -f "$dir/kafka.pid" ]] || return 1
        pid=$(<"$dir/kafka.pid")
        [[ "$pid" =~ ^[0-9]+$ ]] || return 1
        [[ -r "/proc/$pid/cmdline" ]] || return 1 # a stale pid file
        cmdline=$( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null) || return 1
        [[ "$cmdline" == *kafka.Kafka*"$dir/server.properties"* ]] ||
                return 1
        echo "$pid"
}

# node_port DIR: the clients' port (PLAINTEXT, or SASL_SSL) in DIR's
# server.properties.
node_port() {
        sed -n 's/^listeners=[A-Z_]*:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' \
                "$1/server.properties" 2>/dev/null
}

# kcat_auth: kcat's options to log in as admin on a secured cluster.
kcat_auth() {
        if is_secure; then
                echo "-F $state/client-admin.properties"
        fi
}

bootstrap_line() {
        [[ -f "$state/bootstrap" ]] || return 1
        cat "$state/bootstrap"
}

# need TOOL PACKAGE: fails with how to install TOOL when it is missing.
need() {
        command -v "$1" >/dev/null 2>&1 && return 0
        die "'$1' is missing: the real Kafka broker needs Java 11+ and Maven" \
                "(and kcat for the readiness check). Install them with" \
                "'apt-get install -y $2' (bash ops/deps.sh --test does it)."
}

# --- jars ---------------------------------------------------------------

# fetch_jars VERSION: makes the cache's kafka-jars-VERSION/lib hold the
# runtime jars of ops/kafka/pom-VERSION.xml, downloading them with Maven
# unless the marker says a previous download of the same pom completed. A lock
# serializes concurrent callers on one cache folder.
fetch_jars() {
        local v=$1 pom=$root/ops/kafka/pom-$1.xml cache=$cache_root/kafka-jars-$1
        local lib=$cache/lib marker=$cache/complete
        local sum tmp out
        sum=$(sha256sum "$pom" | cut -d' ' -f1)
        if [[ -f "$marker" && "$(<"$marker")" == "$sum" && -d "$lib" ]]; then
                return 0
        fi
        need mvn "openjdk-17-jre-headless maven"
        mkdir -p "$cache"
        exec 8>"$cache/.lock"
        flock 8
        if [[ -f "$marker" && "$(<"$marker")" == "$sum" && -d "$lib" ]]; then
                exec 8>&-
                return 0
        fi
        echo "kafka.sh: fetching Apache Kafka $v jars from Maven Central" \
                "into $cache" >&2
        rm -f "$marker"
        tmp=$cache/lib.tmp.$$
        rm -rf "$tmp"
        if ! out=$(mvn -B -q -f "$pom" \
                org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
                -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1); then
                rm -rf "$tmp"
                exec 8>&-
                echo "$out" | tail -n 40 >&2
                die "Maven could not fetch the Kafka $v jars (output above)"
        fi
        ls "$tmp"/kafka_2.13-"$v".jar >/dev/null 2>&1 ||
                die "Maven ran but $tmp has no kafka_2.13-$v.jar"
        rm -rf "$lib"
        mv "$tmp" "$lib"
        echo "$sum" >"$marker"
        echo "kafka.sh: $(find "$lib" -name '*.jar' | wc -l) jars of Kafka $v" \
                "cached" >&2
        exec 8>&-
}

# log_opts VERSION: the JVM options that point the broker's logging at our
# configuration: reload4j (log4j 1 syntax) up to 3.x, log4j2 from 4.0 on.
log_opts() {
        if [[ "$1" == 3.* ]]; then
                echo "-Dlog4j.configuration=file:$root/ops/kafka/log4j.properties"
        else
                echo "-Dlog4j2.configurationFile=$root/ops/kafka/log4j2.properties"
        fi
}

# --- a secured cluster (--secure) -----------------------------------------

# is_secure: the state directory holds a cluster started with --secure.
is_secure() {
        [[ -f "$state/secure" ]]
}

# The SCRAM users of a secured cluster: admin is a super user (what
# kafka.sh itself and a test's ACL changes use), swarmq is what
# swarmq-consumer runs as and producer what swarmq-producer runs as;
# neither of the two has any ACL until it is granted one.
secure_users="admin swarmq producer"

# make_tls DIR: a CA and the brokers' certificate (CN=broker, for
# 127.0.0.1 and localhost) signed by it, in PEM: ca.pem is what clients
# trust, broker-keystore.pem the key and certificate chain a broker
# presents on every listener and, as a client, on the internal and
# controller listeners (mutual TLS: principal User:broker).
make_tls() {
        local dir=$1 out
        mkdir -p "$dir"
        chmod 700 "$dir"
        if ! out=$({
                set -e
                cd "$dir"
                openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
                        -subj "/CN=swarmq-test-ca" -keyout ca.key -out ca.pem
                openssl req -newkey rsa:2048 -nodes -subj "/CN=broker" \
                        -keyout broker.key -out broker.csr
                printf '%s\n' \
                        "subjectAltName=IP:127.0.0.1,DNS:localhost" \
                        "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
                openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key \
                        -CAcreateserial -days 3650 -extfile broker.ext \
                        -out broker.pem
                openssl pkcs8 -topk8 -nocrypt -in broker.key \
                        -out broker.pk8
                cat broker.pk8 broker.pem ca.pem >broker-keystore.pem
                rm -f broker.csr broker.ext broker.pk8 ca.srl
        } 2>&1); then
                echo "$out" | tail -n 20 >&2
                die "openssl could not make the test certificates in $dir"
        fi
}

# write_secrets: a random password per user in $state/secrets (mode 600),
# and per user a librdkafka properties file $state/client-USER.properties
# (kcat -F, swarmq-producer -F, any librdkafka client); for swarmq also
# $state/swarmq-consumer.properties (swarmq-consumer --config: kafka.*).
write_secrets() {
        local u pw f
        (
                umask 077
                : >"$state/secrets"
                for u in $secure_users; do
                        pw=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
                        echo "$u=$pw" >>"$state/secrets"
                done
        )
}

# user_password USER: USER's password from $state/secrets.
user_password() {
        sed -n "s/^$1=//p" "$state/secrets"
}

# write_client_files BOOTSTRAP: the client properties of every user.
write_client_files() {
        local u f
        (
                umask 077
                for u in $secure_users; do
                        f=$state/client-$u.properties
                        {
                                echo "# Written by ops/kafka.sh start --secure: user $u."
                                echo "bootstrap.servers=$1"
                                echo "security.protocol=SASL_SSL"
                                echo "sasl.mechanisms=SCRAM-SHA-512"
                                echo "sasl.username=$u"
                                echo "sasl.password=$(user_password "$u")"
                                echo "ssl.ca.location=$state/tls/ca.pem"
                        } >"$f"
                done
                sed -e '/^#/d' -e 's/^/kafka./' "$state/client-swarmq.properties" \
                        >"$state/swarmq-consumer.properties"
        )
}

# scram_args: StorageTool's --add-scram option for every user (KIP-900:
# the credentials are in the cluster's first metadata, so the first
# client can log in).
scram_args() {
        local u
        for u in $secure_users; do
                printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' \
                        "$u" "$(user_password "$u")"
        done
}

# print_client_settings: what a swarmq-consumer (user swarmq) needs, on
# stdout after the bootstrap line; the password is only in the files.
print_client_settings() {
        sed -n -e '/^#/d' -e '/^bootstrap/d' -e '/^sasl.password/d' -e p \
                "$state/client-swarmq.properties"
        echo "kafka.sh: SASL_SSL (SCRAM-SHA-512, TLS with the CA" \
                "$state/tls/ca.pem), ACLs on (StandardAuthorizer). Users:" \
                "admin (super user), swarmq and producer, with no ACL until" \
                "granted (python ops/kafka/acls.py grant --admin" \
                "$state/client-admin.properties ...). Their settings, password" \
                "included: $state/client-USER.properties (librdkafka," \
                "kcat -F, swarmq-producer -F), and for swarmq-consumer" \
                "--config: $state/swarmq-consumer.properties" >&2
}

# --- a fresh start --------------------------------------------------------

# free_ports N: prints N distinct free loopback TCP ports, below the
# ephemeral range (ops/free_ports.py says why).
free_ports() {
        python3 "$root/ops/free_ports.py" "$1"
}

# cluster_id: a random 22-character base64url Kafka Uuid that does not start
# with '-' (which an argument parser would take for an option).
cluster_id() {
        python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode()[:22]
    if not s.startswith("-"):
        print(s)
        break'
}

# write_properties DIR ID PORT CPORT VOTERS N IPORT: server.properties of
# node ID of an N-node cluster (N = 1: the single broker). Secured
# (--secure), clients connect to SASL_SSL on PORT, and the brokers talk
# to each other (IPORT) and to the controllers (CPORT) over mutual TLS as
# User:broker, a super user like admin; everyone else needs an ACL.
write_properties() {
        local dir=$1 id=$2 port=$3 cport=$4 voters=$5 n=$6 iport=${7:-} rf=1 isr=1
        local listeners
        if ((n >= 3)); then
                rf=3
                isr=2
        elif ((n == 2)); then
                rf=2
        fi
        if is_secure; then
                listeners="listeners=SASL_SSL://127.0.0.1:$port,INTERNAL://127.0.0.1:$iport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$port,INTERNAL://127.0.0.1:$iport
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:SSL,INTERNAL:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$state/tls/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$state/tls/ca.pem
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]*)\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:broker;User:admin
allow.everyone.if.no.acl.found=false"
        elif [[ -n "$listen_ip_opt" ]]; then
                # A client gets the addresses of the listener it came in
                # on: 127.0.0.1 for some, the IP for the others.
                listeners="listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,LISTENIP://$listen_ip_opt:$iport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,LISTENIP://$listen_ip_opt:$iport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,LISTENIP:PLAINTEXT"
        else
                listeners="listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        fi
        cat >"$dir/server.properties" <<EOF
# Written by ops/kafka.sh start: node $id of $n, KRaft broker and controller.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
$listeners
log.dirs=$dir/data
num.partitions=$partitions
auto.create.topics.enable=true
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$n
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=$n
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
EOF
}

# format_state VERSION N: a fresh state directory of N nodes, formatted by
# VERSION with one cluster id.
format_state() {
        local v=$1 n=$2 lib=$cache_root/kafka-jars-$1/lib voters= id i dir
        local -a p scram=()
        rm -rf "$state/data" "$state"/node[0-9] "$state/server.properties" \
                "$state/secure" "$state/tls" "$state/secrets" \
                "$state"/client-*.properties "$state/swarmq-consumer.properties"
        read -r -a p <<<"$(free_ports $((3 * n)))"
        for ((i = 1; i <= n; i++)); do
                voters+="${voters:+,}$i@127.0.0.1:${p[2 * i - 1]}"
        done
        echo "$n" >"$state/brokers"
        echo "$v" >"$state/kafka-version"
        rm -f "$state/bootstrap-listen-ip"
        if [[ -n "$listen_ip_opt" ]]; then
                local extra=
                for ((i = 1; i <= n; i++)); do
                        extra+="${extra:+,}$listen_ip_opt:${p[2 * n + i - 1]}"
                done
                echo "bootstrap.servers=$extra" >"$state/bootstrap-listen-ip"
        fi
        if ((secure_opt)); then
                touch "$state/secure"
                make_tls "$state/tls"
                write_secrets
                mapfile -t scram < <(scram_args)
                local servers=
                for ((i = 1; i <= n; i++)); do
                        servers+="${servers:+,}127.0.0.1:${p[2 * i - 2]}"
                done
                write_client_files "$servers"
        fi
        id=$(cluster_id)
        # The nodes are formatted side by side (a JVM start each).
        local -a fpids=()
        for ((i = 1; i <= n; i++)); do
                dir=$(node_dir "$i")
                mkdir -p "$dir"
                write_properties "$dir" "$i" "${p[2 * i - 2]}" "${p[2 * i - 1]}" \
                        "$voters" "$n" "${p[2 * n + i - 1]}"
                # shellcheck disable=SC2046
                java $(log_opts "$v") -cp "$lib/*" kafka.tools.StorageTool \
                        format -t "$id" -c "$dir/server.properties" -g \
                        "${scram[@]}" >"$dir/format.log" 2>&1 &
                fpids+=($!)
        done
        for ((i = 1; i <= n; i++)); do
                dir=$(node_dir "$i")
                if ! wait "${fpids[i - 1]}"; then
                        cat "$dir/format.log" >&2
                        die "formatting node $i's storage in $dir/data failed"
                fi
                rm -f "$dir/format.log"
        done
}

# --- running nodes --------------------------------------------------------

# launch_node ID VERSION: starts node ID's JVM in its own session, stdin
# from /dev/null and output to its log: it outlives this script and holds
# none of its caller's pipes (nor the start lock: 7>&-).
launch_node() {
        local dir v=$2 heap lib=$cache_root/kafka-jars-$2/lib
        dir=$(node_dir "$1")
        heap=${KAFKA_HEAP_OPTS:-}
        if [[ -z "$heap" ]]; then
                if (($(state_brokers) == 1)); then
                        heap="-Xms128m -Xmx512m"
                else
                        heap="-Xms64m -Xmx256m"
                fi
        fi
        [[ -f "$dir/kafka.log" ]] &&
                mv "$dir/kafka.log" "$dir/kafka.log.$(date +%s%N)"
        rm -f "$dir/halted"
        # shellcheck disable=SC2046,SC2086
        setsid nohup java $heap -XX:+UseSerialGC \
                -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
                $(log_opts "$v") -cp "$lib/*" \
                kafka.Kafka "$dir/server.properties" \
                </dev/null >"$dir/kafka.log" 2>&1 7>&- &
        echo "$!" >"$dir/kafka.pid"
}

# venv_metadata BOOTSTRAP: the brokers a metadata request to BOOTSTRAP
# lists, as kcat -L prints them ("  broker ID at HOST:PORT"), asked as
# admin with the confluent-kafka of ops/venv.sh: a secured Kafka 4.x
# refuses the SCRAM login of kcat's librdkafka 2.0.2.
venv_metadata() {
        [[ -n "$venv_python" ]] ||
                venv_python=$(bash "$root/ops/venv.sh" | tail -n 1) ||
                die "ops/venv.sh failed (a secured Kafka 4.x needs its" \
                        "confluent-kafka for the readiness check)"
        "$venv_python" - "$state/client-admin.properties" "$1" <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
conf = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line and not line.startswith("#"):
        k, v = line.split("=", 1)
        conf[k] = v
conf["bootstrap.servers"] = sys.argv[2]
conf["log_level"] = "0"
md = AdminClient(conf).list_topics(timeout=2)
for b in md.brokers.values():
    print(f"  broker {b.id} at {b.host}:{b.port}")
EOF
}

# node_ready ID WANT: node ID answers a metadata request that lists itself
# and at least WANT brokers.
node_ready() {
        local port out
        port=$(node_port "$(node_dir "$1")")
        if is_secure && [[ "$(state_version)" != 3.* ]]; then
                out=$(venv_metadata "127.0.0.1:$port") || return 1
        else
                # shellcheck disable=SC2046
                out=$(kcat $(kcat_auth) -b "127.0.0.1:$port" -L -m 2 \
                        2>/dev/null) || return 1
        fi
        [[ "$out" == *"broker $1 at"* ]] || return 1
        (($(grep -c '^  *broker [0-9]* at' <<<"$out") >= $2))
}

# since T0: prints the seconds elapsed since T0 (an $EPOCHREALTIME value).
since() {
        awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# wait_nodes WANT ID...: waits until each node ID is ready and lists WANT
# brokers; on a node's exit or at the deadline, shows its log and fails
# (stopping the nodes this start launched).
wait_nodes() {
        local want=$1 id dir pid deadline
        shift
        deadline=$((SECONDS + timeout_s))
        for id in "$@"; do
                dir=$(node_dir "$id")
                pid=$(<"$dir/kafka.pid")
                until node_ready "$id" "$want"; do
                        if ! kill -0 "$pid" 2>/dev/null; then
                                tail -n 40 "$dir/kafka.log" >&2 || true
                                rm -f "$dir/kafka.pid"
                                halt_nodes TERM "$@"
                                die "node $id exited during startup (log" \
                                        "above: $dir/kafka.log)"
                        fi
                        if ((SECONDS >= deadline)); then
                                tail -n 40 "$dir/kafka.log" >&2 || true
                                echo "kafka.sh: node $id (pid $pid) did not" \
                                        "answer a metadata request listing" \
                                        "$want broker(s) within ${timeout_s}s" \
                                        "(log above: $dir/kafka.log);" \
                                        "stopping what this start launched" >&2
                                halt_nodes TERM "$@"
                                exit 1
                        fi
                        sleep 0.2
                done
        done
}

do_start() {
        local pid id v n t_start t_run resume=0 dir
        local -a launch=()
        # One start at a time per state directory (the nodes do not
        # inherit the lock: 7>&- in launch_node).
        exec 7>"$state/.start.lock"
        flock 7
        # Resume when a node runs or was halted; otherwise a fresh start.
        n=$(state_brokers)
        if [[ -f "$(node_dir 1)/server.properties" ]]; then
                for ((id = 1; id <= n; id++)); do
                        dir=$(node_dir "$id")
                        if running_pid "$dir" >/dev/null ||
                                [[ -f "$dir/halted" ]]; then
                                resume=1
                        fi
                done
        fi
        if ((resume)); then
                v=$(state_version)
                [[ -z "$version_opt" || "$version_opt" == "$v" ]] ||
                        die "$state was formatted by Kafka $v; it restarts" \
                                "only with those jars (not $version_opt):" \
                                "ops/kafka.sh stop --state-dir $state first"
                [[ -z "$brokers_opt" || "$brokers_opt" == "$n" ]] ||
                        die "$state holds $n node(s), not $brokers_opt:" \
                                "ops/kafka.sh stop --state-dir $state first"
                ((!secure_opt)) || is_secure ||
                        die "$state holds a cluster started without --secure:" \
                                "ops/kafka.sh stop --state-dir $state first"
        else
                [[ -z "$node_opt" ]] ||
                        die "--node $node_opt: no cluster in $state to" \
                                "start a node of (start it without --node)"
                v=${version_opt:-$default_version}
                n=${brokers_opt:-1}
                if ((secure_opt)); then
                        # librdkafka 2.0.2 (kcat's, swarmq's) fails SCRAM
                        # against 4.x: "SASL authentication error:
                        # Authentication failed during authentication due
                        # to invalid credentials with SASL mechanism
                        # SCRAM-SHA-512" (seen with 4.4.0).
                        [[ -n "$version_opt" ]] || v=3.9.1
                        [[ "$v" == 3.* ]] || ((allow4_opt)) ||
                                die "--secure runs Kafka 3.9.1: librdkafka" \
                                        "2.0.2 (swarmq's, kcat's) cannot log in" \
                                        "with SCRAM to Kafka $v (it repeats the" \
                                        "client nonce, which 4.x refuses since" \
                                        "the fix of CVE-2024-56128; librdkafka" \
                                        "2.6.1 fixed it; --allow-kafka4-scram" \
                                        "runs it anyway); see docs/operations.md"
                fi
        fi
        for id in $(node_ids); do
                if pid=$(running_pid "$(node_dir "$id")"); then
                        echo "kafka.sh: node $id of $state is already" \
                                "running (pid $pid)" >&2
                else
                        launch+=("$id")
                fi
        done
        if ((resume && ${#launch[@]} == 0)); then
                bootstrap_line || die "it has no bootstrap file in $state"
                if is_secure; then
                        print_client_settings
                fi
                return 0
        fi
        need java "openjdk-17-jre-headless maven"
        need mvn "openjdk-17-jre-headless maven"
        need kcat kcat
        need python3 python3
        t_start=$EPOCHREALTIME
        fetch_jars "$v"
        if ((resume)); then
                for id in "${launch[@]}"; do
                        [[ -f "$(node_dir "$id")/data/meta.properties" ]] ||
                                die "node $id of $state has no formatted" \
                                        "data to restart from"
                done
                echo "kafka.sh: restarting node(s) ${launch[*]} of $state" \
                        "(Kafka $v) on the same ports and data" >&2
        else
                format_state "$v" "$n"
                launch=($(seq 1 "$n"))
        fi

        t_run=$EPOCHREALTIME
        for id in "${launch[@]}"; do
                launch_node "$id" "$v"
        done
        # A fresh cluster is ready when every node sees all of them; a
        # restarted node when it is back (unfenced) and lists itself.
        if ((resume)); then
                wait_nodes 1 "${launch[@]}"
        else
                wait_nodes "$n" "${launch[@]}"
                local servers=
                for ((id = 1; id <= n; id++)); do
                        servers+="${servers:+,}127.0.0.1:$(node_port "$(node_dir "$id")")"
                done
                echo "bootstrap.servers=$servers" >"$state/bootstrap"
        fi
        echo "kafka.sh: Apache Kafka $v ready in $(since "$t_run") s" \
                "($(since "$t_start") s with jars and format; node(s)" \
                "${launch[*]} of $n, state $state)" >&2
        cat "$state/bootstrap"
        if is_secure; then
                print_client_settings
        fi
}

# any_alive PID...: true while one of the processes still exists.
any_alive() {
        local p
        for p in "$@"; do
                kill -0 "$p" 2>/dev/null && return 0
        done
        return 1
}

# halt_nodes SIGNAL ID...: signals every node ID at once, then waits for
# each to exit, SIGKILL after 60 s, or after 15 s when the nodes left
# running are no controller majority (a node's controlled shutdown would
# wait for the quorum that has gone until the SIGKILL); their data stays.
halt_nodes() {
        local sig=$1 id dir pid i grace
        local -a pids=() ids=()
        shift
        for id in "$@"; do
                dir=$(node_dir "$id")
                if pid=$(running_pid "$dir"); then
                        kill "-$sig" "$pid" 2>/dev/null || true
                        pids+=("$pid")
                        ids+=("$id")
                fi
        done
        ((${#pids[@]})) || {
                echo "kafka.sh: no node of $state was running" \
                        "(node(s) $*)" >&2
                return 0
        }
        # 60 s, or 15 s when the nodes left running are no controller
        # quorum (a majority): the stopping nodes' controlled shutdown
        # would wait for one until the SIGKILL.
        grace=600
        local n left=0
        n=$(state_brokers)
        for ((id = 1; id <= n; id++)); do
                running_pid "$(node_dir "$id")" >/dev/null && left=$((left + 1))
        done
        left=$((left - ${#pids[@]}))
        ((n == 1 || 2 * left > n)) || grace=150
        for ((i = 0; i < grace; i++)); do
                any_alive "${pids[@]}" || break
                sleep 0.1
        done
        for pid in "${pids[@]}"; do
                if kill -0 "$pid" 2>/dev/null; then
                        echo "kafka.sh: pid $pid still runs $((grace / 10)) s" \
                                "after SIG$sig; sending SIGKILL" >&2
                        kill -KILL "$pid" 2>/dev/null || true
                        for ((i = 0; i < 100; i++)); do
                                kill -0 "$pid" 2>/dev/null || break
                                sleep 0.1
                        done
                fi
        done
        echo "kafka.sh: stopped node(s) ${ids[*]} of $state (pid(s)" \
                "${pids[*]}, SIG$sig)" >&2
}

do_stop() {
        local -a ids
        [[ -d "$state" ]] || {
                echo "kafka.sh: no broker of $state was running" >&2
                return 0
        }
        [[ -z "$node_opt" ]] ||
                die "stop removes every node's data; for one node use" \
                        "halt --node $node_opt"
        ids=($(node_ids))
        halt_nodes TERM "${ids[@]}"
        rm -rf "$state/data" "$state/kafka.pid" "$state/bootstrap" \
                "$state/server.properties" "$state/.start.lock" \
                "$state/halted" "$state"/node[0-9]/data \
                "$state"/node[0-9]/kafka.pid "$state"/node[0-9]/server.properties \
                "$state"/node[0-9]/halted "$state/brokers" "$state/kafka-version" \
                "$state/secure" "$state/tls" "$state/secrets" \
                "$state"/client-*.properties "$state/swarmq-consumer.properties" \
                "$state/bootstrap-listen-ip"
}

do_halt() {
        local id dir
        local -a ids
        [[ -d "$state" ]] || {
                echo "kafka.sh: no broker of $state was running" >&2
                return 0
        }
        ids=($(node_ids))
        halt_nodes "$signal" "${ids[@]}"
        for id in "${ids[@]}"; do
                dir=$(node_dir "$id")
                rm -f "$dir/kafka.pid"
                [[ -f "$dir/server.properties" ]] && touch "$dir/halted"
        done
        return 0
}

do_status() {
        local id dir pid n all=0 v
        n=$(state_brokers)
        v=$(state_version)
        if [[ ! -f "$(node_dir 1)/server.properties" ]]; then
                echo "not running (state $state)"
                return 1
        fi
        if ((n == 1)); then
                if pid=$(running_pid "$state"); then
                        echo "running pid=$pid $(bootstrap_line ||
                                echo 'bootstrap.servers=(not ready)')" \
                                "kafka=$v state=$state"
                        return 0
                fi
                echo "not running (state $state, kafka=$v)"
                return 1
        fi
        for ((id = 1; id <= n; id++)); do
                dir=$(node_dir "$id")
                if pid=$(running_pid "$dir"); then
                        echo "node $id running pid=$pid port=$(node_port "$dir")"
                else
                        echo "node $id not running port=$(node_port "$dir")" \
                                "$([[ -f "$dir/halted" ]] && echo halted)"
                        all=1
                fi
        done
        echo "$(bootstrap_line || echo 'bootstrap.servers=(not ready)')" \
                "kafka=$v state=$state"
        return "$all"
}

do_env() {
        local id
        for ((id = 1; id <= $(state_brokers); id++)); do
                if running_pid "$(node_dir "$id")" >/dev/null; then
                        bootstrap_line ||
                                die "the broker of $state is not ready yet"
                        return 0
                fi
        done
        die "no broker of $state is running (ops/kafka.sh start --state-dir $state)"
}

case "$cmd" in
start) do_start ;;
stop) do_stop ;;
halt) do_halt ;;
restart)
        do_halt
        do_start
        ;;
status) do_status ;;
env) do_env ;;
fetch)
        need java "openjdk-17-jre-headless maven"
        if [[ "$version_opt" == all ]]; then
                for v in $(known_versions); do
                        fetch_jars "$v"
                done
        else
                fetch_jars "${version_opt:-$default_version}"
        fi
        echo "kafka.sh: jars in $cache_root/kafka-jars-*/lib" >&2
        ;;
esac

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs a real Apache Kafka 3.9.1 broker on loopback for tests, benchmarks and
# the demo: one KRaft node that is both broker and controller, from Maven
# Central jars (no tarball, no docker). See /work/shared/KAFKA.md section 2.
#
# DESIGN: the jars (ops/kafka/pom.xml's runtime dependencies, ~40 files) are
# copied by Maven into a cache outside the repository, once; a marker file
# holding the pom's sha256 is written only after a complete download, so an
# interrupted or outdated download is redone. A state directory holds one
# broker: server.properties, data/, kafka.pid, bootstrap (the
# "bootstrap.servers=..." line) and kafka.log. The broker runs in its own
# session (setsid + nohup) so it outlives the script that started it; a pid
# file counts only while /proc/PID/cmdline is a kafka.Kafka JVM of this
# state directory, so a stale pid (reused by another process) is ignored.
# Ports are picked by the kernel at a fresh start, so runs can share a
# machine; "halt" stops the broker but keeps its data and ports, and the
# next "start" (or "restart") brings the same broker back on the same port,
# so clients reconnect to the address they know (the chaos suite's broker
# outages).
# Start is ready when a metadata request to the broker answers (kcat -L),
# polled every 0.2 s; there is no fixed sleep anywhere.
set -euo pipefail

kafka_version=3.9.1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pom=$root/ops/kafka/pom.xml
log4j=$root/ops/kafka/log4j.properties
cache=${SWARMQ_KAFKA_CACHE:-$HOME/.cache/swarmq/kafka-$kafka_version}
state=${SWARMQ_KAFKA_STATE:-/tmp/swarmq-kafka}
partitions=12
timeout_s=120
signal=TERM

usage() {
        cat <<EOF
Usage: ops/kafka.sh COMMAND [--state-dir DIR] [options]

Runs one Apache Kafka $kafka_version broker (KRaft, combined broker and
controller) on 127.0.0.1 with kernel-chosen ports, from Maven Central jars.

Commands:
  start   fetch the jars if needed, format storage, start the broker in the
          background, wait until it answers a metadata request, and print
          "bootstrap.servers=127.0.0.1:PORT" on stdout. If the broker of DIR
          is already running, says so (stderr) and prints its bootstrap.
          After a halt, start brings the same broker back: same data, same
          ports (no format).
  stop    SIGTERM (controlled shutdown), SIGKILL after 60 s; removes the
          broker's data (kafka.log is kept). Exit 0 also when none ran.
  halt    stop the broker but keep its data and ports for the next start:
          SIGTERM (controlled shutdown) by default, --signal KILL for a
          crash. Exit 0 also when none ran.
  restart halt, then start again on the same port and data.
  status  prints whether it runs, its pid and bootstrap; exit 0 running,
          1 not running.
  env     prints "bootstrap.servers=..." of the running broker; exit 1 if
          none runs.
  fetch   only download the jars into the cache (start does this itself).

Options:
  --state-dir DIR   the broker's directory (default \$SWARMQ_KAFKA_STATE or
                    /tmp/swarmq-kafka; current: $state)
  --partitions N    start: num.partitions of auto-created topics (default 12)
  --timeout S       start: seconds to wait for readiness (default 120)
  --signal TERM|KILL  halt, restart: how to stop the broker (default TERM)
  -h, --help        this help

Environment:
  SWARMQ_KAFKA_CACHE  jar cache (default ~/.cache/swarmq/kafka-$kafka_version;
                      current: $cache)
  SWARMQ_KAFKA_STATE  default state directory

Needs java (11+) and mvn to start (apt-get install -y
openjdk-17-jre-headless maven), and kcat to check readiness
(apt-get install -y kcat); bash ops/deps.sh --test installs all three.
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

while (($#)); do
        case "$1" in
        --state-dir)
                (($# >= 2)) || die "--state-dir needs a directory"
                state=$2
                shift 2
                ;;
        --state-dir=*) state=${1#*=} && shift ;;
        --partitions)
                (($# >= 2)) || die "--partitions needs a number"
                partitions=$2
                shift 2
                ;;
        --partitions=*) partitions=${1#*=} && shift ;;
        --timeout)
                (($# >= 2)) || die "--timeout needs seconds"
                timeout_s=$2
                shift 2
                ;;
        --timeout=*) timeout_s=${1#*=} && shift ;;
        --signal)
                (($# >= 2)) || die "--signal needs TERM or KILL"
                signal=$2
                shift 2
                ;;
        --signal=*) signal=${1#*=} && shift ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/kafka.sh --help)" ;;
        esac
done
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] ||
        die "--partitions must be a positive integer, not '$partitions'"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] ||
        die "--timeout must be a positive integer, not '$timeout_s'"
[[ "$signal" == TERM || "$signal" == KILL ]] ||
        die "--signal must be TERM or KILL, not '$signal'"
[[ -n "$state" ]] || die "the state directory is empty"
[[ "$cmd" != start && "$cmd" != restart ]] || mkdir -p "$state"
if [[ -d "$state" ]]; then
        state=$(cd "$state" && pwd)
fi
lib=$cache/lib
marker=$cache/complete

# running_pid: prints the pid of the broker of $state and returns 0 when it
# runs; returns 1 otherwise.
running_pid() {
        local pid cmdline
        [[ -f "$state/kafka.pid" ]] || return 1
        pid=$(<"$state/kafka.pid")
        [[ "$pid" =~ ^[0-9]+$ ]] || return 1
        [[ -r "/proc/$pid/cmdline" ]] || return 1 # a stale pid file
        cmdline=$( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null) || return 1
        [[ "$cmdline" == *kafka.Kafka*"$state/server.properties"* ]] ||
                return 1
        echo "$pid"
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

# fetch_jars: makes $lib hold the runtime jars of $pom, downloading them
# with Maven unless the marker says a previous download of the same pom
# completed. A lock serializes concurrent callers on one cache.
fetch_jars() {
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
        echo "kafka.sh: fetching Apache Kafka $kafka_version jars from" \
                "Maven Central into $cache" >&2
        rm -f "$marker"
        tmp=$cache/lib.tmp.$$
        rm -rf "$tmp"
        if ! out=$(mvn -B -q -f "$pom" \
                org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
                -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1); then
                rm -rf "$tmp"
                exec 8>&-
                echo "$out" | tail -n 40 >&2
                die "Maven could not fetch the Kafka jars (output above)"
        fi
        ls "$tmp"/kafka_2.13-"$kafka_version".jar >/dev/null 2>&1 ||
                die "Maven ran but $tmp has no kafka_2.13-$kafka_version.jar"
        rm -rf "$lib"
        mv "$tmp" "$lib"
        echo "$sum" >"$marker"
        echo "kafka.sh: $(find "$lib" -name '*.jar' | wc -l) jars cached" >&2
        exec 8>&-
}

# free_ports: prints two distinct free loopback TCP ports.
free_ports() {
        python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
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

write_properties() {
        local port=$1 cport=$2
        cat >"$state/server.properties" <<EOF
# Written by ops/kafka.sh start: one KRaft node, broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$state/data
num.partitions=$partitions
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
EOF
}

# ready PORT: true when the broker answers a metadata request listing itself.
ready() {
        local out
        out=$(kcat -b "127.0.0.1:$1" -L -m 2 2>/dev/null) || return 1
        [[ "$out" == *"broker 1 at"* ]]
}

# since T0: prints the seconds elapsed since T0 (an $EPOCHREALTIME value).
since() {
        awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

do_start() {
        local pid port cport ports id out i deadline t_start t_run
        # One start at a time per state directory (the broker itself does
        # not inherit the lock: 7>&- below).
        exec 7>"$state/.start.lock"
        flock 7
        if pid=$(running_pid); then
                echo "kafka.sh: a broker of $state is already running" \
                        "(pid $pid)" >&2
                bootstrap_line || die "it has no bootstrap file in $state"
                return 0
        fi
        need java "openjdk-17-jre-headless maven"
        need mvn "openjdk-17-jre-headless maven"
        need kcat kcat
        need python3 python3
        t_start=$EPOCHREALTIME
        fetch_jars

        rm -f "$state/kafka.pid" "$state/bootstrap"
        if [[ -f "$state/halted" && -f "$state/server.properties" &&
                -f "$state/data/meta.properties" ]]; then
                # The broker of a halt: same data, same ports.
                port=$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' \
                        "$state/server.properties")
                [[ -n "$port" ]] || die "no PLAINTEXT port in $state/server.properties"
                echo "kafka.sh: restarting the halted broker of $state on" \
                        "127.0.0.1:$port" >&2
                mv "$state/kafka.log" "$state/kafka.log.$(date +%s)" 2>/dev/null || true
        else
                rm -rf "$state/data"
                ports=$(free_ports)
                port=${ports% *}
                cport=${ports#* }
                write_properties "$port" "$cport"
                id=$(cluster_id)
                if ! out=$(java -Dlog4j.configuration="file:$log4j" -cp "$lib/*" \
                        kafka.tools.StorageTool format -t "$id" \
                        -c "$state/server.properties" -g 2>&1); then
                        echo "$out" >&2
                        die "formatting the broker's storage in $state/data failed"
                fi
        fi
        rm -f "$state/halted"

        # Its own session, stdin from /dev/null and output to the log: the
        # broker outlives this script and holds none of its caller's pipes.
        t_run=$EPOCHREALTIME
        setsid nohup java -Xms128m -Xmx512m -XX:+UseSerialGC \
                -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
                -Dlog4j.configuration="file:$log4j" -cp "$lib/*" \
                kafka.Kafka "$state/server.properties" \
                </dev/null >"$state/kafka.log" 2>&1 7>&- &
        pid=$!
        echo "$pid" >"$state/kafka.pid"

        deadline=$((SECONDS + timeout_s))
        for ((i = 0; ; i++)); do
                if ready "$port"; then
                        break
                fi
                if ! kill -0 "$pid" 2>/dev/null; then
                        tail -n 40 "$state/kafka.log" >&2 || true
                        rm -f "$state/kafka.pid"
                        die "the broker exited during startup (log above:" \
                                "$state/kafka.log)"
                fi
                if ((SECONDS >= deadline)); then
                        tail -n 40 "$state/kafka.log" >&2 || true
                        echo "kafka.sh: the broker (pid $pid) did not" \
                                "answer a metadata request on" \
                                "127.0.0.1:$port within ${timeout_s}s (log" \
                                "above: $state/kafka.log); stopping it" >&2
                        do_stop
                        exit 1
                fi
                sleep 0.2
        done
        echo "bootstrap.servers=127.0.0.1:$port" >"$state/bootstrap"
        echo "kafka.sh: Apache Kafka $kafka_version ready in $(since "$t_run") s" \
                "($(since "$t_start") s with jars and format; pid $pid," \
                "state $state)" >&2
        cat "$state/bootstrap"
}

# halt_broker SIGNAL: stops the broker of $state and waits for its exit
# (SIGKILL after 60 s of SIGTERM); its data stays.
halt_broker() {
        local pid i
        if pid=$(running_pid); then
                kill "-$1" "$pid" 2>/dev/null || true
                for ((i = 0; i < 600; i++)); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                if kill -0 "$pid" 2>/dev/null; then
                        echo "kafka.sh: pid $pid still runs 60 s after" \
                                "SIGTERM; sending SIGKILL" >&2
                        kill -KILL "$pid" 2>/dev/null || true
                        for ((i = 0; i < 100; i++)); do
                                kill -0 "$pid" 2>/dev/null || break
                                sleep 0.1
                        done
                fi
                echo "kafka.sh: stopped the broker of $state (pid $pid," \
                        "SIG$1)" >&2
        else
                echo "kafka.sh: no broker of $state was running" >&2
        fi
}

do_stop() {
        halt_broker TERM
        rm -rf "$state/data" "$state/kafka.pid" "$state/bootstrap" \
                "$state/server.properties" "$state/.start.lock" "$state/halted"
}

do_halt() {
        halt_broker "$signal"
        rm -f "$state/kafka.pid" "$state/bootstrap"
        [[ -f "$state/server.properties" ]] && touch "$state/halted"
        return 0
}

do_status() {
        local pid
        if pid=$(running_pid); then
                echo "running pid=$pid $(bootstrap_line || echo 'bootstrap.servers=(not ready)') state=$state"
                return 0
        fi
        echo "not running (state $state)"
        return 1
}

do_env() {
        running_pid >/dev/null ||
                die "no broker of $state is running (ops/kafka.sh start --state-dir $state)"
        bootstrap_line || die "the broker of $state is not ready yet"
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
        fetch_jars
        echo "kafka.sh: jars in $lib" >&2
        ;;
esac

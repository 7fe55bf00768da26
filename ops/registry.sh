#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs a real Schema Registry on loopback for tests and the demo: Apicurio
# Registry 3.0.9 (in-memory storage) on Java 17, which serves the Confluent
# Schema Registry API under /apis/ccompat/v7, the API that swarmq's
# schema.registry.url and the standard Avro serializers speak.
#
# DESIGN: the application (Maven Central artifact
# io.apicurio:apicurio-registry-app:3.0.9:tar.gz:all, a Quarkus runner jar
# and its lib/) is fetched by Maven into a cache outside the repository,
# once, and unpacked there; a marker file is written only after a complete
# unpack, so an interrupted download is redone. Maven Central does not serve
# the artifact's parent POM (io.apicurio:apicurio-registry:3.0.9), which
# Maven reads before it copies anything, so the fetch uses a Maven local
# repository of its own in the cache holding a stub of that parent
# (ops/registry/parent-stub.pom): nothing is built, only the tarball is
# copied. A state directory holds one registry: registry.pid, url (the
# "schema.registry.url=..." line) and registry.log. The registry runs in
# its own session (setsid + nohup) so it outlives the script that started
# it; a pid file counts only while /proc/PID/cmdline is an Apicurio JVM of
# this state directory, so a stale pid (reused by another process) is
# ignored. The port is picked by the kernel at each start, so runs can
# share a machine. Start is ready when GET /apis/ccompat/v7/subjects
# answers 200, polled every 0.2 s; there is no fixed sleep anywhere.
set -euo pipefail

version=3.0.9
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stub=$root/ops/registry/parent-stub.pom
cache=${SWARMQ_REGISTRY_CACHE:-$HOME/.cache/swarmq/apicurio-registry-$version}
state=${SWARMQ_REGISTRY_STATE:-/tmp/swarmq-registry}
timeout_s=120

usage() {
        cat <<EOF
Usage: ops/registry.sh COMMAND [--state-dir DIR] [--timeout S]

Runs one Apicurio Registry $version (in-memory storage) on 127.0.0.1 with a
kernel-chosen port. Its Confluent-compatible API, the one swarmq's
schema.registry.url takes, is http://127.0.0.1:PORT/apis/ccompat/v7.

Commands:
  start   fetch the application if needed, start it in the background,
          wait until the API answers, and print
          "schema.registry.url=http://127.0.0.1:PORT/apis/ccompat/v7" on
          stdout. If the registry of DIR already runs, says so (stderr)
          and prints its URL.
  stop    SIGTERM, SIGKILL after 30 s; the schemas (in memory) are gone.
          Exit 0 also when none ran.
  status  prints whether it runs, its pid and URL; exit 0 running, 1 not.
  env     prints "schema.registry.url=..." of the running registry; exit 1
          if none runs.
  fetch   only download and unpack the application (start does this).

Options:
  --state-dir DIR   the registry's directory (default \$SWARMQ_REGISTRY_STATE
                    or /tmp/swarmq-registry; current: $state)
  --timeout S       start: seconds to wait for readiness (default 120)
  -h, --help        this help

Environment:
  SWARMQ_REGISTRY_CACHE  application cache (default
                         ~/.cache/swarmq/apicurio-registry-$version; current:
                         $cache)
  SWARMQ_REGISTRY_STATE  default state directory

Needs java (17+), mvn and curl (apt-get install -y openjdk-17-jre-headless
maven curl); bash ops/deps.sh --test installs them and fetches the
application.
EOF
}

die() {
        echo "registry.sh: $*" >&2
        exit 1
}

cmd=${1:-}
case "$cmd" in
-h | --help | help)
        usage
        exit 0
        ;;
start | stop | status | env | fetch) shift ;;
"") usage >&2 && exit 2 ;;
*) echo "registry.sh: unknown command '$cmd'" >&2 && usage >&2 && exit 2 ;;
esac

while (($#)); do
        case "$1" in
        --state-dir)
                (($# >= 2)) || die "--state-dir needs a directory"
                state=$2
                shift 2
                ;;
        --state-dir=*) state=${1#*=} && shift ;;
        --timeout)
                (($# >= 2)) || die "--timeout needs seconds"
                timeout_s=$2
                shift 2
                ;;
        --timeout=*) timeout_s=${1#*=} && shift ;;
        -h | --help) usage && exit 0 ;;
        *) die "unknown option '$1' (see ops/registry.sh --help)" ;;
        esac
done
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] ||
        die "--timeout must be a positive integer, not '$timeout_s'"
[[ -n "$state" ]] || die "the state directory is empty"
[[ "$cmd" != start ]] || mkdir -p "$state"
if [[ -d "$state" ]]; then
        state=$(cd "$state" && pwd)
fi
app=$cache/app
marker=$cache/complete
runner=$app/apicurio-registry-app-$version-runner.jar

# running_pid: prints the pid of the registry of $state and returns 0 when
# it runs; returns 1 otherwise.
running_pid() {
        local pid cmdline
        [[ -f "$state/registry.pid" ]] || return 1
        pid=$(<"$state/registry.pid")
        [[ "$pid" =~ ^[0-9]+$ ]] || return 1
        [[ -r "/proc/$pid/cmdline" ]] || return 1 # a stale pid file
        cmdline=$( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null) || return 1
        [[ "$cmdline" == *"-Dswarmq.registry.state=$state "*apicurio-registry-app* ]] ||
                return 1
        echo "$pid"
}

url_line() {
        [[ -f "$state/url" ]] || return 1
        cat "$state/url"
}

# need TOOL PACKAGE: fails with how to install TOOL when it is missing.
need() {
        command -v "$1" >/dev/null 2>&1 && return 0
        die "'$1' is missing: the registry needs Java 17+, Maven and curl." \
                "Install them with 'apt-get install -y $2' (bash ops/deps.sh" \
                "--test does it)."
}

# fetch_app: makes $app hold the unpacked application, downloading it with
# Maven unless the marker says a previous download completed. A lock
# serializes concurrent callers on one cache.
fetch_app() {
        local repo tmp out tarball
        if [[ -f "$marker" && -f "$runner" ]]; then
                return 0
        fi
        need mvn "openjdk-17-jre-headless maven"
        mkdir -p "$cache"
        exec 8>"$cache/.lock"
        flock 8
        if [[ -f "$marker" && -f "$runner" ]]; then
                exec 8>&-
                return 0
        fi
        echo "registry.sh: fetching Apicurio Registry $version from Maven" \
                "Central into $cache" >&2
        rm -f "$marker"
        repo=$cache/m2
        mkdir -p "$repo/io/apicurio/apicurio-registry/$version"
        cp "$stub" "$repo/io/apicurio/apicurio-registry/$version/apicurio-registry-$version.pom"
        tmp=$cache/dl.tmp.$$
        rm -rf "$tmp"
        if ! out=$(mvn -B -q -Dmaven.repo.local="$repo" \
                org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
                -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
                -DoutputDirectory="$tmp" 2>&1); then
                rm -rf "$tmp"
                exec 8>&-
                echo "$out" | tail -n 40 >&2
                die "Maven could not fetch the registry (output above)"
        fi
        tarball=$tmp/apicurio-registry-app-$version-all.tar.gz
        [[ -f "$tarball" ]] || die "Maven ran but $tmp has no $(basename "$tarball")"
        mkdir -p "$tmp/app"
        tar xzf "$tarball" -C "$tmp/app" ||
                die "cannot unpack $tarball"
        [[ -f "$tmp/app/$(basename "$runner")" ]] ||
                die "$tarball has no $(basename "$runner")"
        rm -rf "$app"
        mv "$tmp/app" "$app"
        rm -rf "$tmp" "$repo/io/apicurio/apicurio-registry-app"
        touch "$marker"
        echo "registry.sh: Apicurio Registry $version cached in $app" >&2
        exec 8>&-
}

# free_port: prints a free loopback TCP port, below the ephemeral range
# (ops/free_ports.py says why).
free_port() {
        python3 "$root/ops/free_ports.py" 1
}

# ready URL: true when the Confluent API lists its subjects.
ready() {
        curl -sf -o /dev/null --max-time 2 "$1/subjects"
}

since() {
        awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

do_start() {
        local pid port url i deadline t_start t_run
        exec 7>"$state/.start.lock"
        flock 7
        if pid=$(running_pid); then
                echo "registry.sh: a registry of $state is already running" \
                        "(pid $pid)" >&2
                url_line || die "it has no url file in $state"
                return 0
        fi
        need java "openjdk-17-jre-headless maven curl"
        need curl curl
        need python3 python3
        t_start=$EPOCHREALTIME
        fetch_app
        rm -f "$state/registry.pid" "$state/url"
        port=$(free_port)
        url=http://127.0.0.1:$port/apis/ccompat/v7

        # Its own session, stdin from /dev/null and output to the log: the
        # registry outlives this script and holds none of its caller's
        # pipes. The -D marker names the state dir for running_pid; the
        # import work dir and snapshots stay in it.
        t_run=$EPOCHREALTIME
        (cd "$state" && exec setsid nohup java -Xms64m -Xmx256m \
                -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
                -Djava.awt.headless=true \
                "-Dswarmq.registry.state=$state" \
                -Dquarkus.http.host=127.0.0.1 \
                "-Dquarkus.http.port=$port" \
                -Dquarkus.http.access-log.enabled=false \
                "-Dapicurio.import.work-dir=$state" \
                "-Dapicurio.storage.snapshot.location=$state" \
                -jar "$runner" \
                </dev/null >"$state/registry.log" 2>&1 7>&-) &
        pid=$!
        echo "$pid" >"$state/registry.pid"

        deadline=$((SECONDS + timeout_s))
        for ((i = 0; ; i++)); do
                if ready "$url"; then
                        break
                fi
                if ! kill -0 "$pid" 2>/dev/null; then
                        tail -n 40 "$state/registry.log" >&2 || true
                        rm -f "$state/registry.pid"
                        die "the registry exited during startup (log above:" \
                                "$state/registry.log)"
                fi
                if ((SECONDS >= deadline)); then
                        tail -n 40 "$state/registry.log" >&2 || true
                        echo "registry.sh: the registry (pid $pid) did not" \
                                "answer $url/subjects within ${timeout_s}s" \
                                "(log above: $state/registry.log); stopping" \
                                "it" >&2
                        do_stop
                        exit 1
                fi
                sleep 0.2
        done
        echo "schema.registry.url=$url" >"$state/url"
        echo "registry.sh: Apicurio Registry $version ready in" \
                "$(since "$t_run") s ($(since "$t_start") s with the fetch;" \
                "pid $pid, state $state)" >&2
        cat "$state/url"
}

do_stop() {
        local pid i
        if pid=$(running_pid); then
                kill -TERM "$pid" 2>/dev/null || true
                for ((i = 0; i < 300; i++)); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                if kill -0 "$pid" 2>/dev/null; then
                        echo "registry.sh: pid $pid still runs 30 s after" \
                                "SIGTERM; sending SIGKILL" >&2
                        kill -KILL "$pid" 2>/dev/null || true
                fi
                echo "registry.sh: stopped the registry of $state (pid $pid)" >&2
        else
                echo "registry.sh: no registry of $state was running" >&2
        fi
        rm -f "$state/registry.pid" "$state/url" "$state/.start.lock"
}

do_status() {
        local pid
        if pid=$(running_pid); then
                echo "running pid=$pid $(url_line || echo 'schema.registry.url=(not ready)') state=$state"
                return 0
        fi
        echo "not running (state $state)"
        return 1
}

do_env() {
        running_pid >/dev/null ||
                die "no registry of $state is running (ops/registry.sh start --state-dir $state)"
        url_line || die "the registry of $state is not ready yet"
}

case "$cmd" in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
env) do_env ;;
fetch)
        need java "openjdk-17-jre-headless maven"
        fetch_app
        ;;
esac

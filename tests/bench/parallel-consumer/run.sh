#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds and runs the parallel-consumer harness (PcSweep.java) of the key
# sweep. The jars (parallel-consumer-core 0.5.3.3 from Maven Central and
# what it needs) are fetched by mvn into a cache outside the repository,
# never committed; PcSweep.java is compiled there with javac.
#
#   tests/bench/parallel-consumer/run.sh prepare   fetch and compile only
#   tests/bench/parallel-consumer/run.sh ARGS...   run PcSweep with ARGS
#
# Exit 77 (and a sentence on stderr) when java, javac or mvn is missing.
# Environment: SWARMQ_PC_CACHE (default ~/.cache/swarmq/parallel-consumer-0.5.3.3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SWARMQ_PC_CACHE:-$HOME/.cache/swarmq/parallel-consumer-0.5.3.3}

for tool in java javac mvn; do
        if ! command -v "$tool" >/dev/null; then
                echo "parallel-consumer: $tool not found (apt-get install -y openjdk-17-jdk-headless maven)" >&2
                exit 77
        fi
done

mkdir -p "$cache"
# One preparer at a time (ctest and a benchmark may share the cache).
exec 8>"$cache/.lock"
flock 8
if [[ ! -f "$cache/lib/.complete" || "$here/pom.xml" -nt "$cache/lib/.complete" ]]; then
        echo "parallel-consumer: fetching jars into $cache/lib" >&2
        rm -rf "$cache/lib"
        mvn -B -q -f "$here/pom.xml" \
                org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
                -DoutputDirectory="$cache/lib" -DincludeScope=runtime >&2
        touch "$cache/lib/.complete"
fi
if [[ ! -f "$cache/classes/PcSweep.class" || "$here/PcSweep.java" -nt "$cache/classes/PcSweep.class" ]]; then
        rm -rf "$cache/classes"
        mkdir -p "$cache/classes"
        javac -nowarn -d "$cache/classes" -cp "$cache/lib/*" "$here/PcSweep.java" >&2
fi
flock -u 8
[[ "${1:-}" == prepare ]] && exit 0
exec java -Xms64m -Xmx512m -XX:+UseSerialGC \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$cache/classes:$cache/lib/*" PcSweep "$@"

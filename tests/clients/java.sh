#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs the Java client's JUnit tests (clients/java, mvn test) as ctest's
# clients.java.kafka: bash java.sh BUILD_DIR SOURCE_DIR
#
# Maven's output goes into the build tree (-Dswarmq.build.dir), artifacts
# into the usual ~/.m2 cache (Maven Central). The tests find the real
# Kafka broker and the registry through the ctest fixtures'
# SQ_KAFKA_STATE and SQ_TEST_REGISTRY_STATE, swarmq-consumer through
# SWARMQ_BUILD.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
out=$build/tests/out/clients-java
rm -rf "$out"
mkdir -p "$out"
SWARMQ_BUILD=$build SWARMQ_SRC=$src exec mvn -B -ntp \
        -f "$src/clients/java/pom.xml" -Dswarmq.build.dir="$out" test

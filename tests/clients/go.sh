#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs the Go client's tests (clients/go, go test) as ctest's
# clients.go.kafka: bash go.sh BUILD_DIR SOURCE_DIR
#
# The Go command comes from ops/go.sh (fetched when none is new enough);
# modules come from the Go module proxy into the usual module cache. The
# tests find the real Kafka broker and the registry through the ctest
# fixtures' SQ_KAFKA_STATE and SQ_TEST_REGISTRY_STATE, swarmq-consumer
# through SWARMQ_BUILD.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
go=$(bash "$src/ops/go.sh" | tail -n 1)
cd "$src/clients/go"
SWARMQ_BUILD=$build SWARMQ_SRC=$src exec "$go" test -count=1 -v ./...

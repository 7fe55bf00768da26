#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Configures and builds swarmq with CMake.
#
#   ops/build.sh [BUILD_DIR] [extra cmake -D options...]
#
# BUILD_DIR defaults to ./build. Set SWARMQ_WERROR=ON in the environment to
# treat warnings as errors (CI does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
cmake -S "$root" -B "$build" -DSWARMQ_WERROR="${SWARMQ_WERROR:-OFF}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs the Python client's pytest suite (clients/python/tests) as ctest's
# clients.python.* tests: bash python.sh BUILD_DIR SOURCE_DIR TEST_FILE...
#
# DESIGN: the package is pip-installed (no dependencies, no build
# isolation: they are in the venv of ops/venv.sh already) into a folder of
# the build tree, and pytest imports it from there, so what is tested is
# what `pip install clients/python` gives a user, not the source tree.
# Which broker and registry the tests use comes from the ctest fixtures
# (SQ_KAFKA_STATE, SQ_TEST_REGISTRY_STATE; clients/python/tests/conftest.py).
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2

python=$(bash "$src/ops/venv.sh" | tail -n 1)
name=$(basename "$1" .py)
out=$build/tests/out/clients-python-$name
site=$out/site
rm -rf "$out"
mkdir -p "$site" "$out/pkg"
# Built from a copy: setuptools writes build/ and *.egg-info next to the
# sources it builds, and the source tree stays clean.
cp -r "$src/clients/python/pyproject.toml" "$src/clients/python/README.md" \
        "$src/clients/python/src" "$out/pkg/"
"$python" -m pip install -q --disable-pip-version-check --no-deps \
        --no-build-isolation --target "$site" "$out/pkg" ||
        {
                echo "python.sh: pip install clients/python failed" >&2
                exit 1
        }
cd "$src/clients/python"
tests=()
for t in "$@"; do
        tests+=("tests/$t")
done
# -p no:cacheprovider: write nothing into the source tree.
PYTHONDONTWRITEBYTECODE=1 SWARMQ_BUILD=$build PYTHONPATH=$site exec "$python" -m pytest -q \
        -p no:cacheprovider --basetemp "$out/tmp" \
        "${tests[@]}"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Creates (or reuses) the Python virtual environment that the peer tests of
# tests/broker/02xx use, and prints its python's path on the last line.
#
# DESIGN: the venv lives outside the repository (default
# ~/.cache/swarmq/venv, or $SWARMQ_VENV), so a clean checkout stays clean
# and runs share it. A stamp file in the venv holds the sha256 of
# tests/peers/requirements.txt and the interpreter's version; pip runs only
# when the stamp differs, so a second call returns in well under a second.
# The stamp is written after pip succeeded, so an interrupted install is
# redone. A venv whose python no longer runs (its base interpreter was
# removed or upgraded) is rebuilt from scratch. Concurrent calls (tests
# under ctest -j) take turns on a lock file next to the venv.
#
#   ops/venv.sh            create or update, print the python path
#   SWARMQ_VENV=DIR ...    use DIR instead of ~/.cache/swarmq/venv
#   PYTHON=python3.11 ...  the base interpreter (default python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req=$root/tests/peers/requirements.txt
venv=${SWARMQ_VENV:-$HOME/.cache/swarmq/venv}
base=${PYTHON:-python3}

die() {
        echo "venv.sh: $*" >&2
        exit 1
}

case "${1:-}" in
-h | --help)
        sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
"") ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

[[ -f "$req" ]] || die "$req is missing"
command -v "$base" >/dev/null 2>&1 ||
        die "no '$base' on PATH: install python3 (bash ops/deps.sh --test)"

# One creator at a time: tests that run in parallel (ctest -j) may all
# call this on a fresh machine; the others wait and then find it ready.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

py=$venv/bin/python
if [[ -e "$venv" ]] && ! "$py" -c 'import sys' >/dev/null 2>&1; then
        echo "venv.sh: $venv is broken (its python does not run); rebuilding" >&2
        rm -rf "$venv"
fi
if [[ ! -e "$py" ]]; then
        mkdir -p "$(dirname "$venv")"
        "$base" -m venv "$venv" >&2 ||
                die "'$base -m venv' failed: on Debian install python3-venv (bash ops/deps.sh --test)"
fi

want="$(sha256sum <"$req" | cut -d' ' -f1) $("$py" -c 'import sys; print(sys.version.split()[0])')"
stamp=$venv/.swarmq-requirements
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        echo "venv.sh: installing $(grep -v '^#' "$req" | xargs) into $venv" >&2
        "$py" -m pip install -q --disable-pip-version-check -r "$req" >&2 ||
                die "pip install -r $req failed"
        echo "$want" >"$stamp"
fi
echo "$py"

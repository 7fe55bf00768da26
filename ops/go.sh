#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Prints the path of a Go command new enough for clients/go (the "go" line
# of its go.mod), fetching one when there is none; the last line of output
# is the path.
#
# DESIGN: a go on PATH (or /usr/local/go/bin/go) that is new enough is used
# as it is. Otherwise Go ${toolchain} is taken from the Go module proxy the
# way the go command's own toolchain switch does (the module
# golang.org/toolchain, v0.0.1-<version>.<os>-<arch>), downloaded by any
# older go (Debian's golang-go, installed when there is none: bookworm's
# is 1.19, too old for franz-go but able to download modules), and unpacked
# into ~/.cache/swarmq/<version> (module zips keep no file modes: the
# binaries are made executable again). A second call returns at once.
#
#   ops/go.sh              print the go to use (fetch it if needed)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
toolchain=go1.26.8
cache=${XDG_CACHE_HOME:-$HOME/.cache}/swarmq/$toolchain
need=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$root/clients/go/go.mod")
[[ -n "$need" ]] || {
        echo "go.sh: no go line in clients/go/go.mod" >&2
        exit 1
}

# new_enough GO: its version is at least go.mod's.
new_enough() {
        local have
        have=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
        have=${have#go}
        [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" == "$need" ]]
}

for go in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go \
        "$cache/bin/go"; do
        if [[ -n "$go" && -x "$go" ]] && new_enough "$go"; then
                echo "$go"
                exit 0
        fi
done

boot=$(command -v go 2>/dev/null || true)
if [[ -z "$boot" ]]; then
        echo "go.sh: no go on PATH: installing Debian's golang-go to fetch $toolchain" >&2
        SUDO=
        [[ $(id -u) -eq 0 ]] || SUDO=sudo
        $SUDO apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
                --no-install-recommends golang-go >&2
        boot=$(command -v go)
fi
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac
module=golang.org/toolchain@v0.0.1-$toolchain.linux-$arch
echo "go.sh: $("$boot" version) is older than $need: fetching $module" >&2
dir=$(GOTOOLCHAIN=local GOFLAGS=-modcacherw "$boot" mod download -json "$module" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n "$dir" && -d "$dir" ]] || {
        echo "go.sh: could not download $module" >&2
        exit 1
}
rm -rf "$cache.tmp"
mkdir -p "$(dirname "$cache")"
cp -r "$dir" "$cache.tmp"
chmod -R u+w "$cache.tmp"
chmod +x "$cache.tmp"/bin/* "$cache.tmp"/pkg/tool/*/*
rm -rf "$cache"
mv "$cache.tmp" "$cache"
new_enough "$cache/bin/go" || {
        echo "go.sh: $cache/bin/go does not run as Go $need" >&2
        exit 1
}
echo "$cache/bin/go"

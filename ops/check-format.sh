#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checks that every C file follows .clang-format (CI runs this from
# ops/test.sh). Fix with: clang-format -i --style=file <files>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.c' '*.h')
bad=0
for f in "${files[@]}"; do
        if ! clang-format --style=file --dry-run --Werror "$f" 2>/dev/null; then
                echo "format: $f differs from .clang-format" >&2
                bad=1
        fi
done
if ((bad)); then
        echo "format: run clang-format -i --style=file on the files above" >&2
        exit 1
fi
echo "format: ${#files[@]} files follow .clang-format"

#!/usr/bin/env bash
# clang-format over our C and CUDA sources: rewrite in place, or --check to only report.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- 'src/*.c' 'src/*.h' 'src/*.cu' \
    'tests/*.c' 'tests/*.h' 'bench/*.c' 'bench/*.h' 2>/dev/null)
[ ${#files[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--check" ]; then
    if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/vela-format.log; then
        head -n 40 /tmp/vela-format.log
        echo "formatting differs: run scripts/format.sh"
        exit 1
    fi
    echo "formatting ok (${#files[@]} files)"
else
    clang-format -i "${files[@]}"
fi

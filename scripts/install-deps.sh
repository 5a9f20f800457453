#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages vela builds and tests with.
#   scripts/install-deps.sh          install what is missing (needs root or sudo)
#   scripts/install-deps.sh --check  exit 0 when everything is present, 1 otherwise
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
      libjansson-dev libpcre2-dev libutf8proc-dev libjpeg-dev libpng-dev libwebp-dev
      libevent-dev libcurl4-openssl-dev zlib1g-dev curl)

missing=()
for p in "${PKGS[@]}"; do
    # libjpeg-dev is a virtual name on Debian (libjpeg62-turbo-dev provides it).
    if [ "$p" = libjpeg-dev ]; then
        pkg-config --exists libjpeg 2>/dev/null || missing+=("$p")
        continue
    fi
    if [ "$p" = libclang-rt-14-dev ]; then
        # Only needed for fuzzing with clang; any clang runtime version will do.
        ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
            || missing+=("libclang-rt-dev")
        continue
    fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${1:-}" = "--check" ]; then
    [ ${#missing[@]} -eq 0 ] && exit 0
    echo "missing packages: ${missing[*]}" >&2
    exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

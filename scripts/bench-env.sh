#!/usr/bin/env bash
# Prints the python of the bench environment, making it first when needed. It lives outside the
# checkout ($PROVTRACE_CACHE, default ~/.cache/provtrace) under a digest of bench/requirements.txt
# and pyproject.toml, so that the peers (Traceloop, Logfire) never enter the project's own venv
# and a changed requirement makes a new environment. provtrace is installed editable from this
# checkout, so source changes need no reinstall.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${PROVTRACE_CACHE:-$HOME/.cache/provtrace}"
digest="$(cat "$root/bench/requirements.txt" "$root/pyproject.toml" | sha256sum | cut -c1-12)"
venv="$cache/bench/$digest"
if [ ! -f "$venv/.installed" ]; then
    mkdir -p "$cache/bench"
    "${PYTHON:-python3}" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -r "$root/bench/requirements.txt" -e "$root" -e "$root/instrumentation/openai" >&2
    touch "$venv/.installed"
fi
# The editable install points at the checkout that made the environment; another checkout with
# the same inputs shares it, so this checkout is put first on the path.
echo "$venv/bin/python"

#!/usr/bin/env bash
# Set up .venv (if needed) and run `ci-migrate check` on the bundled example app, with the
# embedded SQLite sandbox. Extra arguments go to `ci-migrate check`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/ci-migrate ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e .
fi
cd examples/blog
exec ../../.venv/bin/ci-migrate check "$@"

#!/usr/bin/env bash
# Set up and run `ci-migrate check` on the bundled example app, with the embedded SQLite sandbox,
# the way a project uses it: ci-migrate in a venv of its own (.venv), the app's requirements in the
# app's venv (examples/blog/.venv), which ci-migrate finds and runs the app's migrations in.
# Extra arguments go to `ci-migrate check`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/ci-migrate ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e .
fi
if [ ! -x examples/blog/.venv/bin/python ]; then
  python3 -m venv examples/blog/.venv
  examples/blog/.venv/bin/python -m pip install -q -r examples/blog/requirements.txt
fi
cd examples/blog
exec ../../.venv/bin/ci-migrate check "$@"

#!/usr/bin/env bash
# Regenerate requirements/image.txt: the pinned, hashed dependencies of the container image
# (pyproject.toml's dependencies + requirements/image.in), resolved once for every Python the
# project supports (>= 3.10) and every platform, so the same file builds on python:3.12-slim and
# on the Debian-bookworm (3.11) base the image tests use.
#
# Usage: requirements/lock.sh [--upgrade]      (needs `uv` on PATH: pip install uv)
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile pyproject.toml requirements/image.in \
    --universal --python-version 3.10 --generate-hashes \
    --custom-compile-command "requirements/lock.sh" \
    -o requirements/image.txt "$@"

#!/usr/bin/env bash
# Set up a virtualenv and run the test suite against real PostgreSQL, MariaDB and SQLite.
#
#   scripts/test.sh [pytest args]            newest supported libraries (.venv)
#   CI_MIGRATE_DEPS=oldest scripts/test.sh   oldest supported combination (.venv-oldest):
#                                            SQLAlchemy 1.4, Flask-SQLAlchemy 2.5.1, Flask-Migrate 2.5
# Tests run in parallel, one worker per core (pytest-xdist); CI_MIGRATE_TEST_WORKERS=N sets the
# number, and an explicit -n in the pytest args wins. docs/testing.md says what runs where.
# The database servers are the local ones (127.0.0.1:5432 postgres, 127.0.0.1:3306 root); the
# test fixtures start them with the machine's own commands when they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."
deps="${CI_MIGRATE_DEPS:-newest}"
case "$deps" in
  newest) venv=.venv; constraints=() ;;
  oldest) venv=.venv-oldest; constraints=(-c tests/requirements-oldest.txt psycopg2-binary) ;;
  *) echo "CI_MIGRATE_DEPS must be newest or oldest (got $deps)" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[test]' "${constraints[@]}"
echo "== test suite on the $deps supported libraries:"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(sqlalchemy|flask|flask-sqlalchemy|flask-migrate|alembic)==' | tr '\n' ' '
echo
workers=(-n "${CI_MIGRATE_TEST_WORKERS:-auto}")
for arg in "$@"; do
  case "$arg" in -n|-n*|--numprocesses*|no:xdist) workers=() ;; esac
done
exec "$venv/bin/python" -m pytest "${workers[@]}" "$@"

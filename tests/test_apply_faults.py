"""Fault tests for ``ci-migrate apply`` on the real PostgreSQL and MariaDB (single runs; the
stress script bench/stress_apply.py runs the same scenarios in loops)."""

from __future__ import annotations

import pytest

from apply_support import (scenario_concurrent, scenario_half_applied, scenario_kill_mid_revision,
                           scenario_lock_timeout, scenario_multidb)

KINDS = ["postgresql", "mysql"]


@pytest.fixture
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")
    return request.param


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_killed_connection_leaves_the_previous_revision_and_a_rerun_completes(kind, tmp_path):
    scenario_kill_mid_revision(kind, tmp_path)


@pytest.mark.parametrize("kind", ["mysql"], indirect=True)
def test_mariadb_half_applied_revision_is_reported_and_the_gate_refuses_a_rerun(kind, tmp_path):
    scenario_half_applied(tmp_path)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_four_concurrent_applies_apply_each_revision_once(kind, tmp_path):
    scenario_concurrent(kind, tmp_path)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_lock_timeout_is_retried_then_fails_with_nothing_partial(kind, tmp_path):
    scenario_lock_timeout(kind, tmp_path)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_multidb_every_bind_under_its_own_lock(kind, tmp_path):
    scenario_multidb(kind, tmp_path)

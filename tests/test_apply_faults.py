"""Fault tests for ``ci-migrate apply`` on the real PostgreSQL and MariaDB (single runs; the
stress script bench/stress_apply.py runs the same scenarios in loops)."""

from __future__ import annotations

import pytest

from apply_support import (scenario_concurrent, scenario_half_applied, scenario_kill_mid_revision,
                           scenario_killed_inside_a_revision, scenario_lock_timeout, scenario_multidb)

KINDS = ["postgresql", "mysql"]


@pytest.fixture
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")
    return request.param


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_killed_connection_leaves_the_previous_revision_and_a_rerun_completes(kind, tmp_path):
    scenario_kill_mid_revision(kind, tmp_path)


@pytest.mark.parametrize("kind", ["mysql"], indirect=True)
def test_mariadb_half_applied_revision_is_reported_and_named_again_by_the_rerun(kind, tmp_path):
    scenario_half_applied(tmp_path)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_kill_9_inside_a_revision_is_named_by_the_rerun_and_finished_by_resume(kind, tmp_path):
    """MariaDB keeps the 3 operations that ran (CM810, then --resume-interrupted); PostgreSQL rolls them back."""
    assert scenario_killed_inside_a_revision(kind, tmp_path, step=3) == (
        "left 3 of 7 operations" if kind == "mysql" else "left nothing")


@pytest.mark.parametrize("kind", ["mysql"], indirect=True)
def test_kill_9_before_the_first_statement_leaves_nothing_and_the_rerun_applies_it(kind, tmp_path):
    assert scenario_killed_inside_a_revision(kind, tmp_path, step=0) == "left nothing"


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_four_concurrent_applies_apply_each_revision_once(kind, tmp_path):
    scenario_concurrent(kind, tmp_path)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_lock_timeout_is_retried_then_fails_with_nothing_partial(kind, tmp_path):
    scenario_lock_timeout(kind, tmp_path)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_multidb_every_bind_under_its_own_lock(kind, tmp_path):
    scenario_multidb(kind, tmp_path)

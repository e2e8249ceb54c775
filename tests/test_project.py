"""Loading the app: library version floor, dialect mismatch notice."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from packaging.version import Version

from ci_migrate.errors import EnvironmentProblem
from ci_migrate.project import MINIMUM_VERSIONS, check_versions, installed_versions
from support import by_name, copy_app


def test_installed_versions_are_supported():
    check_versions()
    found = installed_versions()
    assert set(found) == {"SQLAlchemy", "Flask-SQLAlchemy", "Flask-Migrate", "alembic", "Flask"}
    assert found == {dist: metadata.version(dist) for dist in found}
    assert all(Version(found[dist]) >= Version(floor) for dist, floor in MINIMUM_VERSIONS.items())


@pytest.mark.parametrize("dist, old", [("SQLAlchemy", "1.3.24"), ("Flask-SQLAlchemy", "2.4.4"), ("Flask-Migrate", "2.4.0")])
def test_below_the_floor_names_found_and_minimum(dist, old):
    versions = dict(installed_versions(), **{dist: old})
    with pytest.raises(EnvironmentProblem) as err:
        check_versions(versions)
    assert str(err.value).startswith(f"{dist} {old} is installed, but ci-migrate supports {dist} >= {MINIMUM_VERSIONS[dist]}")


def test_missing_library():
    with pytest.raises(EnvironmentProblem, match="Flask-Migrate is not installed"):
        check_versions(dict(installed_versions(), **{"Flask-Migrate": None}))


def test_sqlite_sandbox_for_a_postgresql_target_is_a_warning(cli, tmp_path, pg_server):
    app_dir = copy_app("tutorial_drift", tmp_path)
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  production:\n    url-env: PROD_URL\n")
    result = cli("check", "--format", "json", cwd=app_dir, env={"PROD_URL": pg_server + "prod"})
    report = json.loads(result.out)
    mismatch = [f for f in by_name(report, "replay")["findings"] if f["rule_id"] == "CM204"]
    assert mismatch and mismatch[0]["severity"] == "warning"
    assert "the sandbox is sqlite but production is postgresql (target 'production')" == mismatch[0]["title"]
    assert by_name(report, "drift")["facts"]["approximate"] is True

"""The words the drift check uses for autogenerate's differences (ci_migrate/probe/describe.py)."""

from __future__ import annotations

import sqlalchemy as sa

from ci_migrate.probe.describe import describe, dialect_named


def _fk(ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    metadata = sa.MetaData()
    sa.Table("project", metadata, sa.Column("id", sa.Integer, primary_key=True))
    child = sa.Table("version", metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("project_id", sa.Integer, sa.ForeignKey("project.id", ondelete=ondelete)))
    (constraint,) = child.foreign_key_constraints
    return constraint


def test_a_foreign_key_that_differs_only_in_its_options_says_how():
    """Autogenerate drops and re-adds a foreign key whose ON DELETE changed: both lines must show the difference."""
    dialect = dialect_named("postgresql")
    dropped = describe(("remove_fk", _fk()), dialect)["text"]
    added = describe(("add_fk", _fk("CASCADE")), dialect)["text"]
    assert dropped == "drops foreign key `version` (project_id) → `project` (id)"
    assert added == "adds foreign key `version` (project_id) → `project` (id) ON DELETE CASCADE"


def test_the_drift_title_counts_every_item_its_message_lists():
    """An exact difference and a possible sandbox-dialect artefact: "and 1 more", with both listed."""
    from ci_migrate.checks.drift import _finding
    from ci_migrate.facts import ProjectFacts
    from ci_migrate.report import BindDrift, DiffItem, DriftFacts, TableDiff

    items = [DiffItem(kind="add_column", table="user", text="adds column `user.bio` VARCHAR(250), nullable"),
             DiffItem(kind="modify_type", table="user", text="changes `user.about_me` VARCHAR(140) → VARCHAR(300)",
                      approximate=True)]
    drift = BindDrift(tables=[TableDiff(table="user", change="changed", items=items)])
    project = ProjectFacts.from_data({"app_name": "app", "root": "/app", "migrations_dir": "/app/migrations",
                                      "migrations": "migrations", "bind_keys": [None], "multidb": False})
    finding = _finding(project, drift, DriftFacts(dialect="sqlite", binds=[drift]))
    assert finding.title.endswith("adds column `user.bio` VARCHAR(250), nullable and 1 more")
    assert finding.message.count("\n- ") == 2

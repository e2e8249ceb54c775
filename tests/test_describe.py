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

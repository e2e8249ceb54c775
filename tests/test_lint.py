"""The lint rules (CM501–CM514, CM520 squawk) on real revisions: tests/apps/risky_more, whose history
carries one risk (or its safe form) per revision, planned against its first revision in a git
repository, on PostgreSQL SQL and on a real MariaDB target; plus inline suppression, per-rule
severity from the config, and the rule docs."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from support import ROOT, copy_app
from test_plan import RISKY_BASE, check_of, findings, flask_upgrade, plan_target, pr_repo, report_of, staging_db

__all__ = ["staging_db"]  # the target database fixture of test_plan

MORE_BASE = ["b8de59cc596e"]  # create account, invoice, audit_entry and tag tables
PG_APP_URL = {"DATABASE_URL": "postgresql://app@db.internal/billing"}  # production dialect; never connected


@pytest.fixture(scope="module")
def risky_more_pg(tmp_path_factory):
    """`check --base main --only graph,plan,lint` on the risky_more pull request (PostgreSQL SQL)."""
    from support import run_cli

    repo = pr_repo(tmp_path_factory.mktemp("more"), "risky_more", MORE_BASE)
    result = run_cli("check", "--base", "main", "--app", "app.py", "--only", "graph,plan,lint", "--format", "json",
                     cwd=repo, env=PG_APP_URL)
    return result, report_of(result)


def lint_findings(report: dict) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for f in check_of(report, "lint")["findings"]:
        out.setdefault((f["rule_id"], f["revision"]), []).append(f)
    return out


def test_each_risk_is_flagged_once_and_safe_forms_are_not(risky_more_pg):
    result, report = risky_more_pg
    assert result.code == 1, result.text  # CM512 is an error
    assert findings(report, "lint") == [
        ("CM501", "2fa5c85aea0a"),  # drop audit_entry table
        ("CM503", "1ba51d97f874"),  # rename account.notes
        ("CM503", "1ba51d97f874"),  # rename tag: silenced inline, kept at info with its reason
        ("CM505", "4b9c33bb3804"),  # make account.email NOT NULL
        ("CM506", "773dad30a2a0"),  # VARCHAR(20) -> VARCHAR(8)
        ("CM506", "773dad30a2a0"),  # INTEGER -> BIGINT rewrites; VARCHAR(100) -> VARCHAR(200) does not
        ("CM507", "e665dbf96c9d"),  # op.execute('CREATE INDEX ...'): found by squawk, reported as CM507
        ("CM508", "020b29ecccef"),  # foreign key without NOT VALID
        ("CM509", "166c3aafa700"),  # unique constraint on account
        ("CM510", "7ad341d3bcbc"),  # ALTER TYPE ... ADD VALUE in the transaction
        ("CM511", "29565fd9f7e7"),  # downgrade: pass
        ("CM512", "020b29ecccef"),  # create_foreign_key(None ...) / drop_constraint(None ...)
        ("CM513", "29565fd9f7e7"),  # UPDATE invoice in the revision that adds invoice.currency
        ("CM520", "2c26a3e4ade4"),  # squawk adding-field-with-default: gen_random_uuid() rewrites invoice
    ]
    renames = sorted(lint_findings(report)[("CM503", "1ba51d97f874")], key=lambda f: f["line"])
    assert [(f["line"], f["severity"]) for f in renames] == [(21, "info"), (23, "warning")]
    assert renames[0]["title"].endswith("silenced inline: label is only read by the nightly export job, which is "
                                        "deployed with this")
    facts = check_of(report, "lint")["facts"]
    assert facts["suppressed"] == 1 and re.fullmatch(r"\d+\.\d+\.\d+", facts["squawk"])
    assert "CM520" in facts["rules"] and "CM514" not in facts["rules"]  # MySQL-only rule not evaluated


def test_findings_point_at_the_operation_and_carry_the_recipe(risky_more_pg):
    _, report = risky_more_pg
    found = lint_findings(report)
    (unnamed,) = found[("CM512", "020b29ecccef")]
    assert unnamed["severity"] == "error" and unnamed["line"] == 33  # the drop that cannot run
    assert unnamed["details"]["lines"] == [22, 33]  # upgrade create_foreign_key, downgrade drop_constraint
    assert "naming_convention" in unnamed["fix"]
    (raw_index,) = found[("CM507", "e665dbf96c9d")]
    assert raw_index["file"] == "migrations/versions/e665dbf96c9d_index_invoice_currency.py"
    assert raw_index["line"] == 20 and raw_index["details"]["squawk_rule"] == "require-concurrent-index-creation"
    assert raw_index["title"].startswith("e665dbf96c9d: op.execute(): CREATE INDEX ix_invoice_currency")
    assert "autocommit_block" in raw_index["fix"]
    (squawk,) = found[("CM520", "2c26a3e4ade4")]
    assert squawk["line"] == 22 and squawk["details"]["squawk_rule"] == "adding-field-with-default"
    assert "https://squawkhq.com/docs/adding-field-with-default" in squawk["fix"]
    narrow, rewrite = sorted(found[("CM506", "773dad30a2a0")], key=lambda f: f["line"])
    assert narrow["title"].endswith("narrows `account.legacy_code` from VARCHAR(20) to VARCHAR(8)")
    assert rewrite["title"].endswith("changes the type of `invoice.amount` from INTEGER to BIGINT")
    assert "rewrites `invoice`" in rewrite["message"]
    (enum,) = found[("CM510", "7ad341d3bcbc")]
    assert enum["line"] == 25 and "autocommit_block" in enum["fix"]
    (rename,) = [f for f in found[("CM503", "1ba51d97f874")] if f["severity"] == "warning"]
    assert rename["title"].endswith("renames column `account.notes` to `remarks`")


def test_config_sets_rule_severity_or_turns_a_rule_off(cli, tmp_path):
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    (repo / ".ci-migrate.yml").write_text("app: app.py\nrules:\n  CM507: off\n  CM502: error\n")
    result = cli("check", "--base", "main", "--only", "graph,plan,lint", "--format", "json", cwd=repo,
                 env=PG_APP_URL)
    report = report_of(result)
    assert {f["rule_id"]: f["severity"] for f in check_of(report, "lint")["findings"]} == {
        "CM502": "error", "CM504": "error"}


@pytest.mark.parametrize("staging_db", ["mysql"], indirect=True)
def test_mariadb_rules_differ(cli, tmp_path, staging_db):
    """On MariaDB: several DDL statements cannot roll back together (CM514); index builds are online
    (no CM507); FK/CHECK NOT VALID and ALTER TYPE are PostgreSQL matters; appending an ENUM value
    is in place; mixing data and schema is not atomic."""
    app = copy_app("risky_more", tmp_path)
    flask_upgrade(app, staging_db, MORE_BASE[0])
    report = report_of(plan_target(cli, app, staging_db))
    assert check_of(report, "plan")["facts"]["dialect"] == "mysql"
    assert findings(report, "lint") == [
        ("CM501", "2fa5c85aea0a"), ("CM503", "1ba51d97f874"), ("CM503", "1ba51d97f874"),  # one silenced
        ("CM505", "4b9c33bb3804"), ("CM506", "773dad30a2a0"), ("CM506", "773dad30a2a0"), ("CM509", "166c3aafa700"),
        ("CM511", "29565fd9f7e7"), ("CM512", "020b29ecccef"), ("CM513", "29565fd9f7e7"),
        ("CM514", "1ba51d97f874"), ("CM514", "773dad30a2a0"),
    ]
    found = lint_findings(report)
    (ddl,) = found[("CM514", "773dad30a2a0")]
    assert ddl["severity"] == "info" and ddl["title"].endswith(
        "3 DDL statements on existing tables; MySQL/MariaDB cannot roll them back together")
    assert ddl["details"]["statements"][0] == "ALTER TABLE account MODIFY name VARCHAR(200) NOT NULL;"
    (mixed,) = found[("CM513", "29565fd9f7e7")]
    assert "commit every DDL statement implicitly" in mixed["message"]
    (enum_sql,) = [p for p in check_of(report, "plan")["facts"]["pending"] if p["revision"] == "7ad341d3bcbc"]
    assert "MODIFY status ENUM('active','disabled','archived')" in enum_sql["sql"]


@pytest.mark.parametrize("staging_db", ["postgresql"], indirect=True)
def test_tables_the_plan_creates_are_not_flagged(cli, tmp_path, staging_db):
    """On an empty target every revision is pending: adding NOT NULL columns or indexes to tables
    created earlier in the same deploy locks nothing that has rows."""
    app = copy_app("risky", tmp_path)
    report = report_of(plan_target(cli, app, staging_db))
    plan = check_of(report, "plan")["facts"]
    assert plan["current"] == [] and len(plan["pending"]) == 5
    assert check_of(report, "lint")["findings"] == []


@pytest.mark.parametrize(("old", "new", "dialect", "expected"), [
    (sa.String(20), sa.String(8), "postgresql", "narrowing"),
    (sa.String(100), sa.String(200), "postgresql", None),
    (sa.String(100), sa.Text(), "postgresql", None),
    (sa.String(100), sa.Text(), "mysql", "rewriting"),
    (sa.Text(), sa.String(50), "postgresql", "narrowing"),
    (sa.INTEGER(), sa.BigInteger(), "postgresql", "rewriting"),
    (sa.INTEGER(), sa.BigInteger(), "sqlite", None),
    (sa.BigInteger(), sa.SmallInteger(), "mysql", "narrowing"),
    (sa.Numeric(10, 2), sa.Numeric(12, 2), "postgresql", None),
    (sa.Numeric(10, 2), sa.Numeric(10, 0), "postgresql", "narrowing"),
    (sa.Integer(), sa.String(20), "postgresql", "rewriting"),
    (None, sa.String(20), "postgresql", "unknown"),
    (sa.Enum("a", name="e"), sa.Enum("a", "b", name="e"), "postgresql", None),  # CM510's
], ids=lambda v: repr(v) if not isinstance(v, str) else v)
def test_type_change_classification(old, new, dialect, expected):
    """The types as the probe describes them (compiled for the dialect, with their class names)."""
    from ci_migrate.checks.lint.type_change import classify
    from ci_migrate.facts import TypeInfo
    from ci_migrate.probe.describe import dialect_named, type_info

    compiled = dialect_named(dialect)
    old_info = TypeInfo.from_data(type_info(old, compiled))
    new_info = TypeInfo.from_data(type_info(new, compiled))
    assert classify(old_info, new_info, dialect) == expected


def test_every_rule_has_a_unique_id_and_a_doc_page():
    from ci_migrate.checks import lint

    modules = [*lint.RULES, lint.squawk]
    ids = [m.RULE.id for m in modules]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"CM5\d\d", i) for i in ids)
    for rule_id in [*ids, "CM401", "CM402", "CM403", "CM404", "CM405"]:
        page = ROOT / "docs" / "rules" / f"{rule_id}.md"
        assert page.is_file(), page
        text = page.read_text()
        assert text.startswith(f"# {rule_id} — ")
        for heading in ("## What it detects", "## Why it matters", "## Example", "## How to fix", "## Silence it"):
            assert heading in text, (rule_id, heading)
        assert f"{rule_id}: off" in text
    squawk_names = [n for m in lint.RULES for n in m.RULE.squawk]
    assert len(squawk_names) == len(set(squawk_names))
    assert not set(squawk_names) & lint.squawk.SAFETY


def test_the_not_null_recipe_suggests_a_default_of_the_columns_type():
    """CM504's "constant server_default" fits the column: '' for text, false for booleans, 0 for numbers."""
    from ci_migrate.checks.lint.add_not_null import _constant

    assert _constant("sa.String(length=250)") == "sa.text(\"''\")"
    assert _constant("sa.Text()") == "sa.text(\"''\")"
    assert _constant("sa.Boolean()") == "sa.text('false')"
    assert _constant("sa.Integer()") == "sa.text('0')"


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_the_not_valid_recipe_names_the_revisions_own_foreign_key(cli, tmp_path, server):
    """CM508's fix is written for the foreign key it found (name, tables, columns, the quoted table
    in VALIDATE), not for an example one."""
    repo = pr_repo(tmp_path, "clean", ["2a5ab8d32f0e", "647cefc691b5", "bd1b00e93290", "d6a012b31354",
                                       "77e171e7ca87", "632a428d5a9a", "39b9f101090f", "b00feacf1d63",
                                       "1217fcb42dcc", "e655c2b3178d", "e6125838f08e"])
    result = cli("check", "--app", "blogapp:create_app('testing')", "--sandbox", server, "--base", "main",
                 "--format", "json", cwd=repo, env={"DATABASE_URL": "sqlite://"})
    (found,) = lint_findings(report_of(result))[("CM508", "9458ded74214")]
    assert found["fix"].splitlines()[1:3] == [
        "    op.create_foreign_key('fk_user_role_id_role', 'user', 'role', ['role_id'], ['id'], postgresql_not_valid=True)",
        "    # next revision:"]
    assert "op.execute('ALTER TABLE \"user\" VALIDATE CONSTRAINT fk_user_role_id_role')" in found["fix"]


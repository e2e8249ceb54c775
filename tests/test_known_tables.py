"""The catalog of tables libraries create outside migrations (checks/known_tables.yaml) and the drift
judgement that turns drift on them into CM303 (info) — on the drift facts of a real check run of an
app with Flask-Session's `sessions` model, and on a live database's extra tables."""

from __future__ import annotations

import json
import re

import pytest
from support import copy_app, run_cli

from ci_migrate.checks.known_tables import CONFIG_SOURCE, catalog, entry_named, judge, known_table
from ci_migrate.report import BindDrift, DiffItem, DriftFacts, TableDiff

# What Flask-Session's SqlAlchemySessionInterface defines on the app's db (create_session_model);
# the library creates the table itself when the app starts, so the migrations never do.
FLASK_SESSION_MODEL = '''

class Session(db.Model):
    __tablename__ = 'sessions'
    id = db.Column(db.Integer, primary_key=True)
    session_id = db.Column(db.String(255), unique=True)
    data = db.Column(db.LargeBinary)
    expiry = db.Column(db.DateTime)
'''


def test_every_entry_says_who_creates_it_why_and_where():
    names = [e.name for e in catalog()]
    assert len(names) == len(set(names))
    assert {"sessions", "apscheduler_jobs", "celery_taskmeta", "celery_tasksetmeta", "spatial_ref_sys",
            "topology.topology", "topology.layer"} <= set(names)
    for entry in catalog():
        assert entry.library and len(entry.reason) > 60, entry
        # the source names a repository and a file in it
        assert re.match(r"[\w.-]+/[\w.-]+ [\w/.-]+\.(py|sql\.in)\b", entry.source), entry


def test_lookup_by_name_and_schema():
    assert known_table("sessions").library.startswith("Flask-Session")
    assert known_table("SESSIONS", "app").name == "sessions"  # any schema, any case
    assert known_table("layer") is None and known_table("layer", "topology").name == "topology.layer"
    assert known_table("users") is None
    assert known_table("sessions", setting=False) is None
    assert known_table("sessions", setting={"sessions": False}) is None
    assert known_table("sessions", "app", setting={"public.sessions": False}).name == "sessions"
    own = known_table("jobs", "legacy", setting={"legacy.jobs": "made by the cron container at start-up"})
    assert (own.reason, own.source, own.schema) == ("made by the cron container at start-up", CONFIG_SOURCE, "legacy")
    assert known_table("jobs", setting={"legacy.jobs": "made by cron"}) is None  # another schema
    assert entry_named("Topology.Layer").table == "layer" and entry_named("layer") is None


@pytest.fixture(scope="module")
def session_app_drift(tmp_path_factory) -> DriftFacts:
    """The drift facts of `ci-migrate check` on tutorial_drift (which lacks a migration for user.bio)
    with Flask-Session's `sessions` model added."""
    app = copy_app("tutorial_drift", tmp_path_factory.mktemp("sessions"))
    (app / "app.py").write_text((app / "app.py").read_text() + FLASK_SESSION_MODEL)
    result = run_cli("check", "--app", "app.py", "--only", "graph,replay,drift", "--format", "json", cwd=app)
    report = json.loads(result.out)
    drift = next(c for c in report["checks"] if c["name"] == "drift")
    # the check already set the known table apart (CM303); put it back to judge the probe's own facts here
    assert [(f["rule_id"], f["severity"]) for f in drift["findings"]] == [("CM303", "info"), ("CM301", "error")]
    facts = DriftFacts.model_validate(drift["facts"])
    for bind in facts.binds:
        bind.tables, bind.known_tables = bind.known_tables + bind.tables, []
    return facts


def test_drift_on_a_known_table_is_info_with_its_reason(session_app_drift):
    facts = session_app_drift
    assert sorted(t.table for t in facts.binds[0].tables) == ["sessions", "user"]
    judged, findings = judge(facts)
    (bind,) = judged.binds
    assert [t.table for t in bind.tables] == ["user"]  # left for CM301
    assert [(t.table, t.change) for t in bind.known_tables] == [("sessions", "added")]
    (finding,) = findings
    assert (finding.check, finding.rule_id, finding.severity) == ("drift", "CM303", "info")
    assert finding.title == ("adds table `sessions` (id INTEGER, session_id VARCHAR(255), data BLOB, expiry DATETIME)"
                             ' — expected: Flask-Session (SESSION_TYPE = "sqlalchemy") creates `sessions` outside '
                             "migrations")
    assert "__table__.create(checkfirst=True)" in finding.message
    assert "Source: pallets-eco/flask-session src/flask_session/defaults.py" in finding.message
    assert "ignore: {known-tables: {sessions: off}}" in finding.fix
    assert sorted(t.table for t in facts.binds[0].tables) == ["sessions", "user"]  # the input is left alone


def test_config_can_turn_the_catalog_or_one_entry_off(session_app_drift):
    for setting in (False, {"sessions": False}):
        judged, findings = judge(session_app_drift, setting)
        assert findings == [] and judged == session_app_drift
    judged, findings = judge(session_app_drift, {"user": "the auth service owns it"})
    assert [f.details["table"] for f in findings] == ["sessions", "user"]
    assert judged.binds[0].tables == [] and findings[1].details["library"] == "this app"
    assert "ignore: {known-tables: {user: off}}" in findings[1].fix


def test_tables_of_a_live_database_that_no_model_has():
    """The other direction (e.g. a drift gate on a live database): extension and worker tables that
    the app's models do not know are dropped by autogenerate's diff; expected, in their schema only."""
    def removed(table: str) -> TableDiff:
        return TableDiff(table=table, change="removed",
                         items=[DiffItem(kind="remove_table", table=table, text=f"drops table `{table}`")])

    facts = DriftFacts(dialect="postgresql", binds=[
        BindDrift(tables=[removed("spatial_ref_sys"), removed("topology.layer"), removed("public.layer"),
                          removed("celery_taskmeta")]),
        BindDrift(bind="jobs", tables=[removed("apscheduler_jobs")])])
    judged, findings = judge(facts)
    assert [t.table for t in judged.binds[0].tables] == ["public.layer"]
    assert [t.table for t in judged.binds[0].known_tables] == ["spatial_ref_sys", "topology.layer", "celery_taskmeta"]
    assert judged.binds[1].tables == [] and findings[-1].bind == "jobs"
    assert [f.title for f in findings][:2] == [
        "drops table `spatial_ref_sys` — expected: PostGIS creates `spatial_ref_sys` outside migrations",
        "drops table `topology.layer` — expected: PostGIS topology (postgis_topology) creates `topology.layer` "
        "outside migrations"]
    assert "ignore: {known-tables: {topology.layer: off}}" in findings[1].fix


def test_the_suggested_revision_body_leaves_the_known_tables_out(tmp_path):
    """The library creates `sessions` itself: a revision that creates it too fails on every database where the app
    has run (the table exists). The body CM301 suggests holds the app's own drift only."""
    app = copy_app("tutorial_drift", tmp_path)
    (app / "app.py").write_text((app / "app.py").read_text() + FLASK_SESSION_MODEL)
    result = run_cli("check", "--app", "app.py", "--only", "graph,replay,drift", "--format", "json", cwd=app)
    drift = next(c for c in json.loads(result.out)["checks"] if c["name"] == "drift")
    (cm301,) = [f for f in drift["findings"] if f["rule_id"] == "CM301"]
    (bind,) = drift["facts"]["binds"]
    for code in (cm301["details"]["upgrade_code"], bind["upgrade_code"], bind["downgrade_code"]):
        assert "sessions" not in code and "'bio'" in code, code
    assert [t["table"] for t in bind["known_tables"]] == ["sessions"]

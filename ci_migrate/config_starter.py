"""The config file: its name, where a run finds it (:func:`find_config`), and the commented starter
``.ci-migrate.yml`` that ``ci-migrate init`` writes (every key, explained). Light on purpose: the
early probe finds the file before the settings (pydantic) are imported."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ci_migrate.errors import ConfigError

CONFIG_FILENAME = ".ci-migrate.yml"
ENV_CONFIG = "CI_MIGRATE_CONFIG"  # path of the config file; not a setting


def find_config(config_path: str | Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """The config file of a run in ``cwd``: ``config_path`` (``--config``), else ``CI_MIGRATE_CONFIG``,
    else ``<cwd>/.ci-migrate.yml`` if it exists, else None. Raises ConfigError for a named file that
    is missing or is a directory."""
    origin = ""
    if config_path is None and env.get(ENV_CONFIG, "").strip():
        config_path, origin = env[ENV_CONFIG].strip(), f" (from {ENV_CONFIG})"
    if config_path is None:
        default = cwd / CONFIG_FILENAME
        return default if default.is_file() else None
    path = cwd / Path(config_path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{config_path}: is a directory, not a config file{origin} — "
                          f"did you mean {Path(config_path) / CONFIG_FILENAME}?")
    if not path.is_file():
        raise ConfigError(f"{config_path}: config file not found{origin}")
    return path

_STARTER: list[tuple[str, str, bool]] = [  # (explanation, YAML, shown uncommented?)
    ("Flask app to load, as for FLASK_APP (default: discovered like the `flask` command does).",
     'app: "myapp:create_app()"', False),
    ("Migrations directory, relative to this file (default: the one Flask-Migrate is set up with),\n"
     "or a list adding plugins' directories: - {path: plugins/x/migrations, version-table: alembic_version_x}",
     "migrations: migrations", False),
    ("The app's Python (default: $VIRTUAL_ENV, then .venv/ or venv/ here, then the one ci-migrate runs in).",
     "python: .venv/bin/python", False),
    ("Time limit for the app's migrations in seconds (default 1200 for check and plan; 0: none).",
     "timeout: 1200", False),
    ("Drop sandbox databases that killed runs left on the sandbox server after this long (or off).",
     "prune-after: 24h", False),
    ("Scratch database for replaying migrations: sqlite, or a server URL without a password.",
     "sandbox: sqlite   # or postgresql://ci@localhost:5432/ or mysql+pymysql://root@localhost/", True),
    ("Environment variable holding the sandbox server's password.",
     "sandbox-password-env: PGPASSWORD", False),
    ("Named databases for plan/apply; url-env names the variable holding the URL, lock-wait is in seconds.",
     "targets:\n  production:\n    url-env: DATABASE_URL\n    lock-wait: 300", False),
    ("Turn checks on/off or override their severity: on, off, info, warning, error, or {enabled, severity}.",
     ("checks:\n  roundtrip: off\n  lint: {enabled: true, severity: warning}\n  locks: {scope: all}   # locks/roundtrip: "
      "pending (default) or all revisions"), False),
    ("Override one rule's severity: off, info, warning or error.",
     "rules:\n  CM106: off", False),
    ("Leave out of the drift check: tables and index/constraint names (globs), autogenerate diff kinds.",
     'ignore:\n  tables: [spatial_ref_sys, "audit_*"]\n  objects: ["ix_legacy_*"]\n  diff-kinds: [modify_comment]',
     False),
    ("Start replay at a revision built from a SQL file (schema: ...) or from db.create_all() (create-all: true).",
     "baseline:\n  revision: 1a2b3c4d\n  schema: db/schema.sql", False),
    ("PostgreSQL extensions to create in the sandbox before anything else (ignored on other sandboxes).",
     "extensions: [pg_trgm, citext]", False),
    ("Lowest severity that makes the run fail: error or warning.", "fail-on: error", True),
    ("Keep the sandbox database after the run, for debugging.", "keep-sandbox: false", False),
    ("Where pull-request runs keep snapshots of the base branch's sandbox (default ~/.cache/ci-migrate; off: none).",
     "cache-dir: .ci-migrate-cache", False),
    ("Report format on stdout: console or json.", "format: console", False),
    ("Also write the JSON report to this file.", "output: ci-migrate-report.json", False),
    ("Target that plan/apply use when --target is not given.", "target: production", False),
    ("Base branch whose migrations count as merged (default: the PR's base branch in GitHub/GitLab CI).",
     "base: origin/main", False),
    ("PR/MR comment: always (update every run), on-change (only when the body changes) or never.",
     "comment: always", False),
    ("Also write JUnit XML, SARIF 2.1.0 and GitLab Code Quality reports to these files.",
     "junit: ci-migrate-junit.xml\nsarif: ci-migrate.sarif\ncodequality: gl-code-quality-report.json", False),
    ("Where rule ids link to (a fork's or a mirror's docs/rules/ folder; default: this release's).",
     "rules-url: https://github.com/me/ci-migrate/blob/main/docs/rules/", False),
]


def starter_config(commented: bool = True) -> str:
    """The commented starter ``.ci-migrate.yml`` written by ``ci-migrate init``.

    Every key appears with a one-line explanation; all but ``sandbox`` and
    ``fail-on`` (shown with their defaults) are commented out.  ``commented=False``
    uncomments every example (used by the tests to prove the examples are valid).
    """
    lines = ["# ci-migrate configuration — reference: docs/config.md",
             "# Every key is optional. Relative paths are relative to this file.",
             "# Each top-level key can also be set with CI_MIGRATE_<KEY> (e.g. CI_MIGRATE_FAIL_ON=warning)",
             "# or a command-line flag; flags beat environment variables, which beat this file."]
    for about, snippet, active in _STARTER:
        lines += ["", *(f"# {line}" for line in about.splitlines())]
        lines += [line if active or not commented else f"# {line}" for line in snippet.splitlines()]
    return "\n".join(lines) + "\n"


def write_starter(path: Path, force: bool = False) -> None:
    """Write :func:`starter_config` to ``path``. ConfigError if it exists and not ``force``, or cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory — did you mean {path / CONFIG_FILENAME}?")
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; use --force to overwrite it")
    try:
        path.write_text(starter_config(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc}") from None

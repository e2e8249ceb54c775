"""Configuration: ``.ci-migrate.yml``, ``CI_MIGRATE_*`` environment variables and CLI flags.

:func:`load` merges the three sources (flags > environment > file > defaults),
validates the result with the pydantic models below and returns a
:class:`Settings`.  Anything wrong raises :class:`ConfigError` listing *every*
problem, each located (``path:line:column``, ``CI_MIGRATE_FAIL_ON`` or
``--fail-on``).  See ``docs/config.md`` for the user-facing reference.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from ci_migrate.config_errors import (FLAG, ConfigError, Sources, allowed_keys, custom, did_you_mean, explain,
                                      one_of, show, type_at)

__all__ = [
    "CHECK_NAMES", "CONFIG_FILENAME", "DIFF_KINDS", "ENV_CONFIG", "ENV_PREFIX", "Baseline", "CheckSetting",
    "ConfigError", "Ignore", "RuleLevel", "Settings", "Severity", "Target", "load", "starter_config",
    "write_starter",
]

CONFIG_FILENAME = ".ci-migrate.yml"
ENV_PREFIX = "CI_MIGRATE_"
ENV_CONFIG = "CI_MIGRATE_CONFIG"  # path of the config file; not a setting
SEVERITIES = ("info", "warning", "error")
CHECK_NAMES = ("graph", "replay", "drift", "plan", "lint", "locks", "roundtrip")
DIFF_KINDS = (
    "add_table", "remove_table", "add_column", "remove_column", "modify_type", "modify_nullable",
    "modify_default", "modify_comment", "add_index", "remove_index", "add_constraint", "remove_constraint",
    "add_fk", "remove_fk", "add_table_comment", "remove_table_comment",
)
SANDBOX_BACKENDS = ("postgresql", "mysql", "mariadb")
SCOPES = ("pending", "all")  # which revisions the locks/roundtrip checks walk
SCOPED_CHECKS = ("locks", "roundtrip")

Severity = Literal["info", "warning", "error"]
RuleLevel = Literal["off", "info", "warning", "error"]


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise custom("env_name", f"must be the name of an environment variable, such as DATABASE_URL "
                                 f"(got {show(value)})")
    return value


def _rule_id(value: str) -> str:
    if not re.fullmatch(r"CM\d{3}", value):
        hint = did_you_mean(value, [value.upper()]) if re.fullmatch(r"CM\d{3}", value.upper()) else ""
        raise custom("rule_id", f"rule ids look like CM101 (got {show(value)}){hint}")
    return value


def _rule_level(value: Any) -> Any:
    if value is False:  # YAML reads `off` as false
        return "off"
    if value is True:
        raise custom("rule_on", "'on' is not a severity — use 'info', 'warning' or 'error', "
                                "or delete the line to keep the rule's own severity")
    return value


def _number_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


EnvName = Annotated[str, AfterValidator(_env_name)]
CheckName = Annotated[str, one_of("check_name", CHECK_NAMES, "check")]
DiffKind = Annotated[str, one_of("diff_kind", DIFF_KINDS, "diff kind")]
RuleId = Annotated[str, AfterValidator(_rule_id)]


class _Model(BaseModel):
    """Shared config: unknown keys refused, hyphenated YAML keys, python names also accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=lambda n: n.replace("_", "-"))

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        """``targets:`` with nothing under it (YAML null) means the default, not an error."""
        if not isinstance(data, dict):
            return data
        def keep(key: str, value: Any) -> bool:
            info = next((f for n, f in cls.model_fields.items() if key in (n, f.alias)), None)
            return value is not None or info is None or info.is_required() or info.default is None
        return {k: v for k, v in data.items() if keep(k, v)}


class Target(_Model):
    """A named database environment, used by ``apply`` (see docs/apply.md).

    Times are in seconds (≥ 0): ``lock_wait`` bounds the wait for the migration lock;
    ``lock_timeout``/``statement_timeout`` are set on the migrating session (0 = no limit);
    a lock timeout is retried ``retries`` times, waiting ``retry_backoff`` × 2ⁿ between tries.
    ``binds`` maps each extra bind of a multidb app to the variable holding its URL.
    """

    url_env: EnvName = Field(description="the name of the environment variable holding this target's "
                                         "database URL, e.g. url-env: DATABASE_URL")
    lock_wait: float = Field(300, ge=0)
    lock_timeout: float = Field(5, ge=0)
    statement_timeout: float = Field(0, ge=0)
    retries: int = Field(3, ge=0)
    retry_backoff: float = Field(2, ge=0)
    backup_command: str | None = None
    drift_gate: bool = False
    binds: dict[str, EnvName] = {}


class CheckSetting(_Model):
    """On/off and severity override for one check; ``scope`` for the locks and roundtrip checks.

    In YAML also a shorthand: ``true``/``false``/``on``/``off`` (enabled), a severity string, or a
    scope (``pending``: the revisions the plan check found pending; ``all``: every revision, base → head).
    """

    enabled: bool = True
    severity: Severity | None = None
    scope: Literal["pending", "all"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("on", "true", "yes", "off", "false", "no"):
                return {"enabled": word in ("on", "true", "yes")}
            if word in SEVERITIES:
                return {"severity": word}
            if word in SCOPES:
                return {"scope": word}
        if isinstance(value, (dict, CheckSetting)):
            return value
        choices = ("on", "off", *SEVERITIES, *SCOPES)
        raise custom("check_setting", "must be on, off, a severity ('info', 'warning', 'error'), a scope "
                                      "('pending', 'all') or a mapping {enabled: ..., severity: ..., scope: ...}"
                                      f" (got {show(value)}){did_you_mean(value, choices)}")


class Ignore(_Model):
    """What the drift check leaves out. Entries are case-insensitive fnmatch globs."""

    tables: list[str] = []
    objects: list[str] = []
    diff_kinds: list[DiffKind] = []

    def table_ignored(self, name: str, schema: str | None = None) -> bool:
        """True if table ``name`` (in ``schema``, None = default) matches a ``tables`` glob.

        A glob without a dot matches the bare name in any schema; ``schema.table``
        globs only match when ``schema`` is given.
        """
        full = f"{schema}.{name}".lower() if schema else None
        for pattern in (p.lower() for p in self.tables):
            if fnmatchcase(name.lower(), pattern) if "." not in pattern else (full and fnmatchcase(full, pattern)):
                return True
        return False

    def object_ignored(self, name: str | None) -> bool:
        """True if an index/constraint ``name`` matches an ``objects`` glob (unnamed: never)."""
        return name is not None and any(fnmatchcase(name.lower(), p.lower()) for p in self.objects)


class Baseline(_Model):
    """Where replay starts: ``revision`` plus exactly one of ``schema_file`` (SQL file) or ``create_all``."""

    revision: Annotated[str, BeforeValidator(_number_to_str)] = Field(
        min_length=1, description="the revision whose schema the SQL file (or create_all()) produces")
    schema_file: str | None = Field(None, alias="schema")
    create_all: bool = False

    @field_validator("schema_file")
    @classmethod
    def _schema_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        root = (info.context or {}).get("root")
        if value is not None and root is not None and not (Path(root) / value).is_file():
            raise custom("schema_missing", f"file not found: {show(value)} (paths are relative to {root})")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Baseline:
        if self.schema_file is not None and self.create_all:
            raise custom("baseline_start", "give either 'schema' or 'create-all: true', not both")
        if self.schema_file is None and not self.create_all:
            raise custom("baseline_start", "needs 'schema: <SQL file>' or 'create-all: true' to say how the "
                                           "database at that revision is built")
        return self


class _Keys(_Model):
    """The settings a user can write (file keys, env vars, flags)."""

    app: str | None = None
    migrations: str | None = None
    sandbox: str = "sqlite"
    sandbox_password_env: EnvName | None = None
    targets: dict[str, Target] = {}
    checks: dict[CheckName, CheckSetting] = {}
    rules: dict[RuleId, Annotated[RuleLevel, BeforeValidator(_rule_level)]] = {}
    ignore: Ignore = Field(default_factory=Ignore)
    baseline: Baseline | None = None
    fail_on: Literal["error", "warning"] = "error"
    keep_sandbox: bool = False
    format: Literal["console", "json"] = "console"
    output: str | None = None
    target: str | None = None
    base: str | None = None
    comment: Literal["always", "on-change", "never"] = "always"
    junit: str | None = None
    sarif: str | None = None
    codequality: str | None = None
    rules_url: str | None = None

    @field_validator("rules_url")
    @classmethod
    def _rules_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s]+", value.strip()):
            raise custom("rules_url", "must be the http(s) URL of the folder holding the rule pages "
                                      "(<rule id>.md), e.g. https://github.com/me/ci-migrate/blob/main/docs/rules/ "
                                      f"(got {show(value)})")
        return value.strip() if value is not None else None

    @field_validator("checks")
    @classmethod
    def _scoped(cls, value: dict[str, CheckSetting]) -> dict[str, CheckSetting]:
        wrong = [name for name, setting in value.items() if setting.scope and name not in SCOPED_CHECKS]
        if wrong:
            raise custom("check_scope", f"a scope ('pending', 'all') only applies to the {' and '.join(SCOPED_CHECKS)} "
                                        f"checks (got one for {', '.join(map(show, wrong))})")
        return value

    @field_validator("sandbox")
    @classmethod
    def _sandbox(cls, value: str, info: ValidationInfo) -> str:
        if value == "sqlite":
            return value
        from sqlalchemy.engine import make_url
        try:
            url = make_url(value)
        except Exception:
            url = None
        if url is None or url.get_backend_name() not in SANDBOX_BACKENDS:
            raise custom("sandbox_url", "must be 'sqlite' or a PostgreSQL/MySQL server URL such as "
                                        "postgresql://user@host:5432/ or mysql+pymysql://root@host/ "
                                        f"(got {show(value)}){did_you_mean(value, ['sqlite'])}")
        if url.password is not None and "sandbox" in (info.context or {}).get("file_keys", ()):
            raise custom("sandbox_password", "the URL contains a password, which would be committed with this file "
                                             "— put the password in an environment variable named by "
                                             "'sandbox-password-env', or pass the URL via CI_MIGRATE_SANDBOX")
        return value


class Settings(_Keys):
    """Validated settings.

    ``root`` is the directory the config file was found in (else the working
    directory); relative paths (``migrations``, ``output``, ``baseline.schema``)
    are relative to it — see :meth:`resolve_path`.  ``config_path`` is the file
    loaded, if any.  Neither is a YAML key.
    """

    root: Path = Field(default_factory=Path.cwd)
    config_path: Path | None = None

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` resolved against :attr:`root` (absolute paths are kept)."""
        return self.root / value

    def check_enabled(self, name: str) -> bool:
        """Whether check ``name`` (one of :data:`CHECK_NAMES`) runs; default True. ValueError for unknown names."""
        _known_check(name)
        return self.checks.get(name, CheckSetting()).enabled

    def check_scope(self, name: str) -> Literal["pending", "all"]:
        """Which revisions check ``name`` (locks, roundtrip) walks: ``checks.<name>.scope``, default ``pending``."""
        _known_check(name)
        return self.checks.get(name, CheckSetting()).scope or "pending"

    def severity_for(self, check: str, rule_id: str, default: str) -> str | None:
        """Severity of a finding: ``rules[rule_id]`` beats ``checks[check].severity`` beats ``default``.

        None when the rule is ``off`` or (without a rule override) the check is disabled.
        """
        _known_check(check)
        level = self.rules.get(rule_id)
        if level is not None:
            return None if level == "off" else level
        setting = self.checks.get(check, CheckSetting())
        return (setting.severity or default) if setting.enabled else None

    def sandbox_url(self, env: Mapping[str, str] | None = None) -> str:
        """``'sqlite'``, or the sandbox server URL with the password from ``sandbox_password_env`` filled in.

        ``env`` defaults to ``os.environ``. ConfigError if that variable is unset or empty.
        """
        if self.sandbox == "sqlite" or not self.sandbox_password_env:
            return self.sandbox
        env = os.environ if env is None else env
        password = env.get(self.sandbox_password_env, "")
        if not password:
            state = "empty" if self.sandbox_password_env in env else "not set"
            raise ConfigError(f"sandbox-password-env: environment variable {self.sandbox_password_env} is {state} "
                              "(it should hold the sandbox server's password)")
        from sqlalchemy.engine import make_url
        return make_url(self.sandbox).set(password=password).render_as_string(hide_password=False)

    def target_url(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """The database URL of target ``name``, read from its ``url_env`` variable in ``env`` (default os.environ).

        ConfigError if the target is not configured (with did-you-mean) or the variable is unset/empty.
        """
        target = self.targets.get(name)
        if target is None:
            if not self.targets:
                raise ConfigError(f"unknown target '{name}': no targets are configured — "
                                  f"add one to {CONFIG_FILENAME}:\n"
                                  f"    targets:\n      {name}:\n        url-env: DATABASE_URL")
            raise ConfigError(f"unknown target '{name}'{did_you_mean(name, self.targets)}\n"
                              f"    configured targets: {', '.join(self.targets)}")
        env = os.environ if env is None else env
        url = env.get(target.url_env, "")
        if not url.strip():
            state = "empty" if target.url_env in env else "not set"
            raise ConfigError(f"target '{name}': environment variable {target.url_env} is {state} "
                              f"(targets.{name}.url-env names it; it should hold the database URL)")
        return url


def _known_check(name: str) -> None:
    if name not in CHECK_NAMES:
        raise ValueError(f"unknown check {name!r}{did_you_mean(name, CHECK_NAMES)}")


KEYS = allowed_keys(_Keys)  # YAML top-level keys, in order
_ALIAS_OF = {name: info.alias for name, info in _Keys.model_fields.items()}
_RAW_ENV = {key for key in KEYS if type_at(_Keys, (key,)) is str}  # taken literally from env, not as YAML
_RAW_YAML = {("baseline", "revision")}  # a plain 012345 here is text, not an octal number
_HINTS = {("Target", "url"): "a literal URL would put a password in the repository; "
                             "name the environment variable that holds it with 'url-env'"}


def _find_config(config_path: str | Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
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


def load(config_path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
         env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Load and validate the settings.

    Precedence: ``overrides`` (CLI flags; keys are python field names such as
    ``fail_on``; None values are ignored) > ``env`` (``CI_MIGRATE_*``; default
    ``os.environ``) > the config file > defaults.  A flag or variable replaces
    the whole top-level key.  ``config_path`` None → ``CI_MIGRATE_CONFIG``, else
    ``<cwd>/.ci-migrate.yml`` if it exists, else no file; relative paths are
    relative to ``cwd`` (default: the working directory).

    Raises ConfigError (every problem, located) for a missing explicit config
    file, unreadable or invalid YAML, or invalid settings; ValueError for an
    unknown ``overrides`` key (a programming error).
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else Path(cwd)
    path = _find_config(config_path, env, cwd)
    src = Sources(aliases={"schema": "schema_file"}, raw_paths=_RAW_YAML)
    if path is not None:
        src.read_file(path, str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path))
    src.read_env(env, ENV_PREFIX, KEYS, literal=_RAW_ENV, skip={ENV_CONFIG})
    for name, value in (overrides or {}).items():
        if name not in _ALIAS_OF:
            raise ValueError(f"unknown setting {name!r} in overrides{did_you_mean(name, _ALIAS_OF)}")
        if value is not None:
            src.put(_ALIAS_OF[name], value, FLAG, "--" + _ALIAS_OF[name])

    root = path.parent.resolve() if path is not None else cwd.resolve()
    try:
        user = _Keys.model_validate(src.data, context={"file_keys": src.from_file(), "root": root})
    except ValidationError as exc:
        src.problems += explain(exc, _Keys, src.locate, _HINTS)
    src.raise_problems()
    fields = {name: getattr(user, name) for name in user.model_fields_set}
    return Settings.model_validate({**fields, "root": root, "config_path": path})


# ------------------------------------------------------------------ starter

_STARTER: list[tuple[str, str, bool]] = [  # (one-line explanation, YAML, shown uncommented?)
    ("Flask app to load, as for FLASK_APP (default: discovered like the `flask` command does).",
     'app: "myapp:create_app()"', False),
    ("Migrations directory, relative to this file (default: the one Flask-Migrate is set up with).",
     "migrations: migrations", False),
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
    ("Lowest severity that makes the run fail: error or warning.", "fail-on: error", True),
    ("Keep the sandbox database after the run, for debugging.", "keep-sandbox: false", False),
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
        lines += ["", f"# {about}"]
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

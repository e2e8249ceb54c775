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

from pydantic import (AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from ci_migrate.cache import location as cache_location
from ci_migrate.config_errors import (FLAG, ConfigError, Sources, allowed_keys, custom, did_you_mean, explain,
                                      one_of, show, type_at)
from ci_migrate.config_checks import app_problem, rule_problem
from ci_migrate.config_migrations import Migrations, MigrationsDir
from ci_migrate.config_model import ConfigModel as _Model
from ci_migrate.config_starter import CONFIG_FILENAME, ENV_CONFIG, find_config, starter_config, write_starter
from ci_migrate.urls import parse_url, sandbox_problem

__all__ = [
    "CHECK_NAMES", "CONFIG_FILENAME", "DIFF_KINDS", "ENV_CONFIG", "ENV_PREFIX", "Baseline", "CheckSetting",
    "ConfigError", "Ignore", "MigrationsDir", "RuleLevel", "Settings", "Severity", "Target", "load", "starter_config",
    "write_starter",
]

ENV_PREFIX = "CI_MIGRATE_"
SEVERITIES = ("info", "warning", "error")
CHECK_NAMES = ("graph", "replay", "drift", "plan", "lint", "locks", "roundtrip")
DIFF_KINDS = (
    "add_table", "remove_table", "add_column", "remove_column", "modify_type", "modify_nullable",
    "modify_default", "modify_comment", "add_index", "remove_index", "add_constraint", "remove_constraint",
    "add_fk", "remove_fk", "add_table_comment", "remove_table_comment",
)
SCOPES = ("pending", "all")  # which revisions the locks/roundtrip checks walk
SCOPED_CHECKS = ("locks", "roundtrip")

Severity = Literal["info", "warning", "error"]
RuleLevel = Literal["off", "info", "warning", "error"]


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise custom("env_name", f"must be the name of an environment variable, such as DATABASE_URL "
                                 f"(got {show(value)})")
    return value


def _checked(kind: str, problem_of: Any) -> AfterValidator:
    """An AfterValidator raising ``problem_of(value)`` (a :mod:`ci_migrate.config_checks` check), if any."""
    def check(value: str) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise custom(kind, problem)
        return value
    return AfterValidator(check)


def _rule_level(value: Any) -> Any:
    if value is False:  # YAML reads `off` as false
        return "off"
    if value is True:
        raise custom("rule_on", "'on' is not a severity — use 'info', 'warning' or 'error', "
                                "or delete the line to keep the rule's own severity")
    return value


def _duration_or_off(value: Any) -> Any:
    """``prune-after``: a duration (``36h``, ``90m``, ``2d``, seconds as a number) or off (false/``off``: 0)."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "false", "no", "never")):
        return 0.0
    from ci_migrate.sandbox import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        raise custom("duration", f"must be a duration such as 12h, 90m, 2d or a number of seconds, or off "
                                 f"(got {show(value)})") from None


def _number_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _extension_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", value):
        raise custom("extension_name", "must be a PostgreSQL extension name such as pg_trgm, citext or uuid-ossp "
                                       f"(got {show(value)})")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
ExtensionName = Annotated[str, AfterValidator(_extension_name)]
CheckName = Annotated[str, one_of("check_name", CHECK_NAMES, "check")]
DiffKind = Annotated[str, one_of("diff_kind", DIFF_KINDS, "diff kind")]
RuleId = Annotated[str, _checked("rule_id", rule_problem)]
AppImport = Annotated[str, _checked("app_import", app_problem)]


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
    known_tables: bool | dict[str, bool | str] = True

    @field_validator("known_tables", mode="before")
    @classmethod
    def _known_tables(cls, value: Any) -> Any:
        """``true``/``false``, or ``{table: off | on | "reason"}``: off hides a catalog entry
        (checks/known_tables.yaml), a reason adds a table of the app's own."""
        from ci_migrate.checks.known_tables import catalog, entry_named

        words = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
        if isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        if not isinstance(value, (dict, bool)):
            raise custom("known_tables", "must be on, off or a mapping {table: off | \"reason\"} "
                                         f"(got {show(value)})")
        if isinstance(value, bool):
            return value
        out = {}
        for name, setting in value.items():
            setting = words.get(setting.strip().lower(), setting) if isinstance(setting, str) else setting
            if isinstance(setting, bool) and entry_named(str(name)) is None:
                names = [e.name for e in catalog()]
                raise custom("known_table", f"{show(name)} is not a known table{did_you_mean(name, names)} "
                                            f"(known: {', '.join(names)}); to add a table of your own, give "
                                            "the reason it is made outside migrations as the value")
            out[name] = setting
        return out

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
    """Where replay starts: exactly one of ``schema_file`` (SQL file) or ``create_all``, and ``revision``.

    ``revision`` is required with a schema file; with ``create_all`` it may be left out (None): the
    models' schema is then taken as that of the heads (a full run) or of the base branch's heads (a
    pull request run).
    """

    revision: Annotated[str | None, BeforeValidator(_number_to_str)] = Field(
        None, min_length=1, description="the revision whose schema the SQL file (or create_all()) produces")
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
        if self.schema_file is not None and self.revision is None:
            raise custom("baseline_revision", "a schema file needs 'revision: <id>', the revision the file's schema "
                                              "corresponds to (the sandbox is stamped there)")
        return self


class _Keys(_Model):
    """The settings a user can write (file keys, env vars, flags)."""

    app: AppImport | None = None
    migrations: Migrations = None
    python: str | None = None
    timeout: float | None = Field(None, ge=0)
    prune_after: Annotated[float, BeforeValidator(_duration_or_off), Field(ge=0)] = 86400.0  # seconds; 0 = off
    sandbox: str = "sqlite"
    sandbox_password_env: EnvName | None = None
    targets: dict[str, Target] = {}
    checks: dict[CheckName, CheckSetting] = {}
    rules: dict[RuleId, Annotated[RuleLevel, BeforeValidator(_rule_level)]] = {}
    ignore: Ignore = Field(default_factory=Ignore)
    baseline: Baseline | None = None
    extensions: list[ExtensionName] = []
    fail_on: Literal["error", "warning"] = "error"
    keep_sandbox: bool = False
    cache_dir: Annotated[str | None, BeforeValidator(cache_location.normalize)] = None  # None: the user cache dir
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

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir(cls, value: str | None, info: ValidationInfo) -> str | None:
        problem = cache_location.problem(value, (info.context or {}).get("root")) if value is not None else None
        if problem is not None:
            raise custom("cache_dir", problem)
        return value

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
        problem = sandbox_problem(value, in_file="sandbox" in (info.context or {}).get("file_keys", ()))
        if problem is not None:
            raise custom("sandbox_url", problem)
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
    python_source: str = "python"

    @property
    def app_migrations(self) -> str | None:
        """The app's own migrations directory (the ``migrations`` entry without a version table);
        None: the one the app's ``Migrate`` extension is configured with."""
        return next((d.path for d in self.migrations or () if d.version_table is None), None)

    @property
    def extra_migrations(self) -> list[MigrationsDir]:
        """The extra script directories, in the order their histories are upgraded after the app's own."""
        return [d for d in self.migrations or () if d.version_table is not None]

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

        ConfigError if the target is not configured (with did-you-mean), the variable is unset/empty or
        its URL cannot be read (:func:`ci_migrate.urls.url_problem`: the part that is wrong, password masked).
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
        parse_url(url, f"{target.url_env} (targets.{name}.url-env)")
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
    path = find_config(config_path, env, cwd)
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
    return Settings.model_validate({**fields, "root": root, "config_path": path,
                                    "python_source": _python_source(overrides or {}, env, path)})


def _python_source(overrides: Mapping[str, Any], env: Mapping[str, str], path: Path | None) -> str:
    """Where ``python`` came from, in words (for messages and the report)."""
    if overrides.get("python") is not None:
        return "--python"
    if env.get(ENV_PREFIX + "PYTHON", "").strip():
        return ENV_PREFIX + "PYTHON"
    return f"python: in {path.name}" if path is not None else "python"

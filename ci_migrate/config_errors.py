"""Located, plain-words configuration errors for :mod:`ci_migrate.config`.

This module knows nothing about ci-migrate's settings.  It merges the settings'
sources (the YAML file read by :mod:`ci_migrate.config_yaml`, environment variables,
flags) remembering where every key came from, and turns
pydantic validation errors into one line per problem that says where
(``path:line:column``, an environment variable name or a ``--flag``), what is
wrong, what is allowed, and a did-you-mean for typos.
"""

from __future__ import annotations

import difflib
import re
import types
from pathlib import Path
from typing import Annotated, Any, Callable, Collection, Iterable, Mapping, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from ci_migrate.config_yaml import Parsed, Path_, dotted, parse_yaml, read_config_text, yaml_problem
from ci_migrate.errors import ConfigError
from ci_migrate.masking import mask_urls

__all__ = ["ConfigError", "Sources", "allowed_keys", "custom", "did_you_mean", "explain", "one_of", "show",
           "suggest", "type_at"]


def suggest(word: object, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice closest to ``word`` (case-insensitive difflib ratio ≥ ``cutoff``, else the
    only choice ``word`` abbreviates), or None."""
    choices = list(choices)
    by_lower = {c.lower(): c for c in choices}
    hit = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=cutoff)
    if not hit and len(str(word)) >= 3:  # an abbreviation: 'prod' → 'production'
        hit = [c for c in by_lower if c.startswith(str(word).lower())][:2]
        hit = hit if len(hit) == 1 else []
    return by_lower[hit[0]] if hit else None


def did_you_mean(word: object, choices: Iterable[str], quote: str = "'") -> str:
    """`` — did you mean 'x'?`` for the closest choice, or ``''``."""
    hit = suggest(word, choices)
    return f" — did you mean {quote}{hit}{quote}?" if hit and hit != word else ""


def show(value: Any) -> str:
    """A short, password-masked rendering of a user-supplied value for ``(got ...)``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        text = mask_urls(value)
        return repr(text if len(text) <= 80 else text[:77] + "...")
    return mask_urls(str(value))


def one_of(kind: str, known: Collection[str], label: str) -> AfterValidator:
    """An AfterValidator accepting only the ``known`` names, refusing others with a did-you-mean."""
    def check(value: str) -> str:
        if value not in known:
            raise custom(kind, f"unknown {label} {show(value)}{did_you_mean(value, known)}\n"
                               f"    known {label}s: {', '.join(known)}")
        return value
    return AfterValidator(check)


def custom(kind: str, message: str) -> PydanticCustomError:
    """A pydantic error whose message is exactly ``message`` (raise it from validators)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


# ------------------------------------------------------------------ sources

FILE, ENV, FLAG = 0, 1, 2  # kinds of source, in the order their problems are listed


class Sources:
    """Top-level settings merged from a file, env vars and flags, remembering where each came from.

    ``data`` is the merged mapping (later :meth:`put` calls replace a whole key);
    ``problems`` collects ``(sort_key, message)``; ``aliases`` maps extra
    spellings of a key (``{'schema': 'schema_file'}``) besides ``-``/``_`` swaps;
    ``raw_paths`` go to :func:`parse_yaml`.
    """

    def __init__(self, aliases: dict[str, str] | None = None, raw_paths: Collection[Path_] = ()):
        self.data: dict[str, Any] = {}
        self.origin: dict[str, tuple[int, int, str]] = {}  # key → (kind, order, where)
        self.problems: list[tuple[tuple, str]] = []
        self.parsed: Parsed | None = None
        self.shown = ""
        self.raw_paths = raw_paths
        self.aliases = {**(aliases or {}), **{v: k for k, v in (aliases or {}).items()}}

    def spellings(self, key: Any) -> list[Any]:
        """``key`` and the other ways a user may have written it."""
        if not isinstance(key, str):
            return [key]
        extra = [self.aliases[key]] if key in self.aliases else []
        return [key, key.replace("-", "_"), key.replace("_", "-"), *extra]

    def read_file(self, path: Path, shown: str) -> None:
        """Take every top-level key of the YAML file ``path`` (named ``shown`` in messages).

        Raises ConfigError at once if it cannot be read, is too large, not UTF-8, not
        valid YAML or past the YAML bounds (:mod:`ci_migrate.config_yaml`), or its top
        level is not a mapping; an empty file adds nothing.
        """
        try:
            parsed = parse_yaml(read_config_text(path, shown), self.raw_paths)
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_problem(exc, shown)) from None
        if parsed.data is not None and not isinstance(parsed.data, dict):
            raise ConfigError(f"{shown}:1:1: the top level must be a mapping of settings (key: value), "
                              f"got {show(parsed.data)}")
        self.shown, self.parsed = shown, parsed
        self.problems += [((FILE, *m), f"{shown}:{m[0]}:{m[1]}: {msg}") for m, msg in parsed.problems]
        for key, value in (parsed.data or {}).items():
            self.data[key], self.origin[key] = value, (FILE, 0, shown)

    def read_env(self, env: Mapping[str, str], prefix: str, keys: list[str], literal: Collection[str] = (),
                 skip: Collection[str] = ()) -> None:
        """Take ``<prefix><KEY>`` variables (``fail-on`` → ``CI_MIGRATE_FAIL_ON``) for the top-level ``keys``.

        Values are YAML (scalar or flow collection) except for keys in ``literal``,
        taken as plain text.  Empty values count as unset.  A name in ``skip`` is
        ignored, as is any other prefixed name unless it looks like a typo of a key.
        """
        def var(key: str) -> str:
            return prefix + key.upper().replace("-", "_")
        for name, value in sorted(env.items()):
            if not name.startswith(prefix) or name in skip:
                continue
            key = name[len(prefix):].lower().replace("_", "-")
            if key not in keys:
                hit = suggest(key, keys, cutoff=0.75)
                if hit:
                    self.problem(ENV, f"{name}: unknown setting — did you mean {var(hit)}?\n"
                                      f"    settings: {', '.join(map(var, keys))}")
            elif not value.strip():  # GitHub Actions passes unset inputs as ''
                continue
            elif key in literal:
                self.put(key, value, ENV, name)
            else:
                try:
                    parsed = parse_yaml(value, self.raw_paths, base=(key,))
                except yaml.YAMLError as exc:
                    self.problem(ENV, yaml_problem(exc, name, line_offset=False))
                    continue
                for _, msg in parsed.problems:
                    self.problem(ENV, f"{name}: {msg}")
                self.put(key, parsed.data, ENV, name)

    def put(self, key: str, value: Any, kind: int, where: str) -> None:
        """Set ``key`` (replacing any spelling of it) from an env var or flag shown as ``where``."""
        for spelling in self.spellings(key):
            self.data.pop(spelling, None)
            self.origin.pop(spelling, None)
        self.data[key], self.origin[key] = value, (kind, len(self.origin), where)

    def problem(self, kind: int, message: str) -> None:
        """Record a problem that is not tied to a file position."""
        self.problems.append(((kind, len(self.problems)), message))

    def from_file(self) -> set[str]:
        """The top-level keys whose value came from the file."""
        return {key for key, (kind, _, _) in self.origin.items() if kind == FILE}

    def locate(self, node_path: Path_, at_key: bool) -> tuple[tuple, str, bool]:
        """``(sort_key, where, in_file)`` for the value (or key, when ``at_key``) at ``node_path``."""
        top = next((s for s in self.spellings(node_path[0]) if s in self.origin), None) if node_path else None
        kind, order, where = self.origin[top] if top is not None else (FILE, 0, self.shown)
        if kind != FILE or self.parsed is None:
            return (kind, order), where or "configuration", False
        resolved: Path_ = ()
        for part in node_path:  # walk the marks with the spelling the user actually wrote
            step = next((resolved + (s,) for s in self.spellings(part) if resolved + (s,) in self.parsed.marks), None)
            if step is None:
                at_key = True
                break
            resolved = step
        key_mark, value_mark, prefer_key = self.parsed.marks[resolved]
        line, col = key_mark if key_mark and (at_key or prefer_key) else value_mark
        return (FILE, line, col), f"{self.shown}:{line}:{col}", True

    def raise_problems(self) -> None:
        """Raise ConfigError listing every problem (file ones in line order first), if there are any."""
        if self.problems:
            raise ConfigError([msg for _, msg in sorted(self.problems, key=lambda p: p[0])])


# ---------------------------------------------------------------- pydantic


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to X."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _field(model: type[BaseModel], key: Any):
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def type_at(model: type[BaseModel], path: Path_) -> Any:
    """The (unwrapped) type expected at ``path`` inside ``model``, or None if unknown."""
    tp: Any = model
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = _field(tp, part)
            if info is None:
                return None
            tp = info.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            return None
    return _unwrap(tp)


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a user may write for ``model``: aliases in declaration order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _describe(err: dict[str, Any], model: type[BaseModel],
              unknown_key_hints: dict[tuple[str, str], str]) -> tuple[Path_, Path_, bool, str]:
    """→ (path shown in the message, path of the node to point at, point at key?, message)."""
    loc, kind, given = tuple(err["loc"]), err["type"], err.get("input")
    if loc and loc[-1] == "[key]":  # a dict key failed its validator
        return loc[:-2], loc[:-1], True, err["msg"]
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        owner = type_at(model, parent)
        keys = allowed_keys(owner) if isinstance(owner, type) and issubclass(owner, BaseModel) else []
        hint = unknown_key_hints.get((getattr(owner, "__name__", ""), key))
        if hint:
            return parent, loc, True, f"unknown key '{key}' — {hint}"
        return parent, loc, True, (f"unknown key '{key}'{did_you_mean(key, keys)}\n"
                                   f"    allowed keys: {', '.join(keys)}")
    if kind == "missing":
        owner = type_at(model, loc[:-1])
        info = _field(owner, loc[-1]) if isinstance(owner, type) and issubclass(owner, BaseModel) else None
        about = f" — {info.description}" if info is not None and info.description else ""
        return loc[:-1], loc[:-1], True, f"missing required key '{loc[-1]}'{about}"
    got = f" (got {show(given)})"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        msg = f"must be one of {', '.join(map(repr, choices))}{got}" + did_you_mean(given, choices)
    elif kind in ("bool_type", "bool_parsing"):
        msg = f"must be true or false (on/off){got}"
    elif kind == "int_from_float":
        msg = f"must be a whole number{got}"
    elif kind.startswith(("float_", "int_")):
        msg = f"must be a number{got}"
    elif kind in ("greater_than_equal", "greater_than"):
        op = "at least" if kind == "greater_than_equal" else "more than"
        msg = f"must be {op} {next(iter(err.get('ctx', {}).values()), '?'):g}{got}"
    elif kind == "string_type":
        quote = " — put it in quotes" if isinstance(given, (int, float, bool)) or hasattr(given, "isoformat") else ""
        msg = f"must be a string{got}{quote}"
    elif kind == "string_too_short":
        msg = "must not be empty"
    elif kind == "list_type":
        msg = f"must be a list such as [a, b]{got}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        msg = f"must be a mapping of key: value pairs{got}"
    elif "ctx" in err and "message" in err["ctx"]:  # raised with custom()
        msg = err["msg"]
    else:
        msg = err["msg"][:1].lower() + err["msg"][1:] + got
    return loc, loc, False, msg


def explain(exc: ValidationError, model: type[BaseModel],
            locate: Callable[[Path_, bool], tuple[tuple, str, bool]],
            unknown_key_hints: dict[tuple[str, str], str] | None = None) -> list[tuple[tuple, str]]:
    """One ``(sort_key, "where: path: message")`` per pydantic error.

    ``locate(node_path, at_key)`` returns ``(sort_key, where, in_file)`` for the
    node at ``node_path`` (its key when ``at_key``); outside a file a lone
    top-level key is not repeated after ``where`` (``CI_MIGRATE_FAIL_ON: must be ...``).  ``unknown_key_hints`` maps
    ``(model class name, key)`` to a replacement explanation for that unknown key.
    """
    out, hints = [], unknown_key_hints or {}
    errors = [_describe(err, model, hints) + (err,) for err in exc.errors(include_url=False)]
    hinted = {node[:-1] for _, node, _, msg, err in errors if err["type"] == "extra_forbidden" and "[key]" not in node
              and (getattr(type_at(model, node[:-1]), "__name__", ""), node[-1]) in hints}
    for shown, node_path, at_key, msg, err in errors:
        if err["type"] == "missing" and node_path in hinted:
            continue  # "unknown key 'url'" already says what to write instead

        sort_key, where, in_file = locate(node_path, at_key)
        if not in_file and len(shown) == 1:
            shown = ()
        out.append((sort_key, f"{where}: {dotted(shown) + ': ' if shown else ''}{msg}"))
    return out

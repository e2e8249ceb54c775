"""The config's YAML: parsed with the place every key and value came from.

Plain data only (``yaml.SafeLoader``); mapping keys are kept as their literal text; duplicate keys
are reported. This module knows nothing about ci-migrate's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection

import yaml

Path_ = tuple[Any, ...]  # a location inside the data: keys (str) and list indexes (int)


@dataclass
class Parsed:
    """YAML data plus the marks it came from.

    ``marks[path] = (key_mark, value_mark, prefer_key)``; marks are 1-based
    ``(line, column)``; ``key_mark`` is None for list items and the document;
    ``prefer_key`` is true for collections and empty values.
    ``problems`` are ``((line, column), message)`` found while reading
    (duplicate keys, non-scalar keys).
    """

    data: Any
    marks: dict[Path_, tuple[tuple[int, int] | None, tuple[int, int], bool]] = field(default_factory=dict)
    problems: list[tuple[tuple[int, int], str]] = field(default_factory=list)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def dotted(path: Path_) -> str:
    """``('targets', 'prod', 'url')`` → ``targets.prod.url``; list indexes as ``[i]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_yaml(text: str, raw_paths: Collection[Path_] = (), base: Path_ = ()) -> Parsed:
    """Parse one YAML document, keeping marks and reporting duplicate keys.

    Mapping keys are always taken as their literal text (``2024:`` is ``'2024'``).
    Plain scalars at a path in ``raw_paths`` (``base`` included) are kept as text
    too (a revision ``012345`` is not an octal number).  An empty document is
    ``None``.  ``base`` is prepended to paths shown in ``problems``.  Raises
    ``yaml.YAMLError`` (``yaml.MarkedYAMLError`` has marks) on a syntax error.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        out = Parsed(None)
        if root is not None:
            out.data = _walk(loader, root, (), None, out, raw_paths, base)
        return out
    finally:
        loader.dispose()


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, key_node: yaml.Node | None,
          out: Parsed, raw_paths: Collection[Path_], base: Path_) -> Any:
    # errors about collections and empty values point at the key, others at the value
    at_key = isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) or node.value == ""
    out.marks[path] = (_mark(key_node) if key_node else None, _mark(node), at_key)
    where = f"{dotted(base + path)}: " if base + path else ""
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, path + (i,), None, out, raw_paths, base) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for k, _ in node.value:  # duplicates among the keys written here (not '<<' merges)
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                if k.value in seen:
                    out.problems.append((_mark(k), f"{where}duplicate key '{k.value}' (also on line "
                                         f"{_mark(seen[k.value])[0]}) — YAML keeps only the last one; remove one"))
                seen[k.value] = k
        loader.flatten_mapping(node)  # resolve '<<: *anchor' merge keys; later keys win
        result: dict[str, Any] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                out.problems.append((_mark(k), f"{where}keys must be plain names, not a list or mapping"))
                continue
            result[k.value] = _walk(loader, v, path + (k.value,), k, out, raw_paths, base)
        return result
    if base + path in raw_paths and node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:null"):
        return node.value
    return loader.construct_object(node, deep=True)


def yaml_problem(exc: yaml.YAMLError, where: str, line_offset: bool = True) -> str:
    """``<where>:line:col: invalid YAML: <problem>`` for a syntax error (no marks when ``line_offset`` is false)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if "'\\t'" in problem:
        problem += " (YAML does not allow tabs for indentation; use spaces)"
    if mark is not None and line_offset:
        where = f"{where}:{mark.line + 1}:{mark.column + 1}"
    context = getattr(exc, "context", None)
    return f"{where}: invalid YAML: {problem}" + (f" ({context})" if context else "")

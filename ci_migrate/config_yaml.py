"""The config's YAML: read within bounds, parsed with the place every key and value came from.

Plain data only (``yaml.SafeLoader``); mapping keys are kept as their literal text; duplicate keys
are reported. Input is bounded so that a wrong file or a hostile one fails at once instead of
hanging: at most :data:`MAX_BYTES`, :data:`MAX_VALUES` values once aliases are expanded (the
"billion laughs" document), :data:`MAX_DEPTH` levels of nesting, no alias inside itself.
This module knows nothing about ci-migrate's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

import yaml

from ci_migrate.errors import ConfigError

Path_ = tuple[Any, ...]  # a location inside the data: keys (str) and list indexes (int)

#: Largest config file (or ``CI_MIGRATE_*`` value) read; a real one is a few kilobytes.
MAX_BYTES = 1_048_576
#: Most values (scalars, lists, mappings) a document may hold once its aliases are expanded.
MAX_VALUES = 100_000
#: Deepest nesting of lists and mappings.
MAX_DEPTH = 64


class YAMLLimitError(yaml.MarkedYAMLError):
    """A document refused for its size or shape, not its syntax (``problem_mark`` may be None)."""


def read_config_text(path: Path, shown: str) -> str:
    """The text of the config file ``path`` (named ``shown`` in messages), a UTF-8 BOM dropped.

    Raises ConfigError when it cannot be read, is larger than :data:`MAX_BYTES`, or is not UTF-8
    text — naming the byte and its ``line:column`` — or holds characters YAML forbids (a binary file).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the config file: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        size = path.stat().st_size / 1_048_576
        raise ConfigError(f"{shown}: the file is {size:.1f} MiB; a config file is read only up to "
                          f"{MAX_BYTES // 1_048_576} MiB — is this the right file?")
    binary = " (this looks like a binary file, not a config file)" if b"\0" in data else ""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
        utf16 = " (it is UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigError(f"{shown}:{line}:{column}: not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be "
                          f"decoded{utf16 or binary}; save the file as UTF-8") from None
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise ConfigError(f"{shown}:{line}:{column}: character U+{ord(bad.group()):04X} is not allowed in YAML"
                          f"{binary}")
    return text


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
    ``yaml.YAMLError`` (``yaml.MarkedYAMLError`` has marks) on a syntax error, and
    :class:`YAMLLimitError` past the bounds of this module.
    """
    if len(text) > MAX_BYTES:
        raise YAMLLimitError(problem=f"longer than {MAX_BYTES:,} characters")
    _check_depth(text)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        out = Parsed(None)
        if root is not None:
            _count_values(root)
            out.data = _walk(loader, root, (), None, out, raw_paths, base)
        return out
    finally:
        loader.dispose()


_OPEN = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.BlockMappingStartToken)
_CLOSE = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


def _check_depth(text: str) -> None:
    """YAMLLimitError past :data:`MAX_DEPTH` levels of nesting, found from the tokens alone.

    Checked before the document is built: PyYAML's scanner slows down with every open flow
    level (``[[[[…``) and its composer recurses once per level.
    """
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        depth += isinstance(token, _OPEN) - isinstance(token, _CLOSE)
        if depth > MAX_DEPTH:
            raise YAMLLimitError(problem=f"lists and mappings nested more than {MAX_DEPTH} levels deep",
                                 problem_mark=token.start_mark)


def _count_values(root: yaml.Node) -> int:
    """Values in the document with every alias expanded; YAMLLimitError past the bounds.

    Linear in the document's size: a node shared through an anchor is counted once and its
    count reused wherever an alias repeats it.
    """
    counts: dict[int, int] = {}
    open_nodes: set[int] = set()

    def count(node: yaml.Node, depth: int) -> int:
        if id(node) in counts:
            return counts[id(node)]
        if id(node) in open_nodes:
            raise YAMLLimitError(problem="an alias refers to the list or mapping it is in", problem_mark=node.start_mark)
        if depth > MAX_DEPTH:
            raise YAMLLimitError(problem=f"lists and mappings nested more than {MAX_DEPTH} levels deep",
                                 problem_mark=node.start_mark)
        open_nodes.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        total = 1 + sum(count(child, depth + 1) for child in children)
        open_nodes.discard(id(node))
        if total > MAX_VALUES:
            raise YAMLLimitError(problem=f"this value expands to more than {MAX_VALUES:,} values through aliases "
                                 "(*name repeats what &name holds); a config needs far fewer",
                                 problem_mark=node.start_mark)
        counts[id(node)] = total
        return total

    return count(root, 0)


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
    """``<where>:line:col: invalid YAML: <problem>`` for a syntax error, ``… refused: <problem>`` for a
    document past the bounds (no marks when ``line_offset`` is false)."""
    if isinstance(exc, YAMLLimitError):
        mark = exc.problem_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None and line_offset else ""
        return f"{where}{at}: refused: {exc.problem}"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if "'\\t'" in problem:
        problem += " (YAML does not allow tabs for indentation; use spaces)"
    if mark is not None and line_offset:
        where = f"{where}:{mark.line + 1}:{mark.column + 1}"
    context = getattr(exc, "context", None)
    return f"{where}: invalid YAML: {problem}" + (f" ({context})" if context else "")

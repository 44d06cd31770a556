"""YAML files validated by pydantic models, with errors that name file, line and field.

Both the config and the playbooks load through here, so an operator sees one error format:
``fleet.yaml:12: inventory.hosts[1].name: duplicate host name 'web-1'``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lazarus.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

MAX_BYTES = 4 << 20  # a fleet of thousands of hosts fits; /dev/zero does not
MAX_NODES = 100_000  # values after every alias is expanded: an alias bomb stops here
MAX_DEPTH = 64  # nesting of mappings and lists


class Located(ValueError):
    """A validator error that knows the path below its model where it belongs."""

    def __init__(self, message: str, loc: tuple[str | int, ...]):
        super().__init__(message)
        self.loc = loc


class ConfigErrorGroup(ConfigError):
    """Every problem in one file, each a ConfigError naming its line and field."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.reason, path=first.path, line=first.line, field=first.field)
        self.args = ("\n".join(str(e) for e in errors),)


class _LineLoader(yaml.SafeLoader):
    """Keeps each node's line so a validation error can point at it."""


# libyaml's parser, when PyYAML has it, reads first: a 5,000-host config in a fraction of the
# pure-Python parser's time, which a deployment's watch run pays every cycle. Both keep node
# lines; a document libyaml refuses is read again by the pure-Python one, whose messages
# (and checks, such as control characters) are the ones the operator sees.
_FAST = getattr(yaml, "CSafeLoader", None)


class Lines:
    """Mirror of a YAML document where every mapping/sequence knows its children's lines."""

    def __init__(self, line: int, children: dict[Any, tuple[int, int, Any]]):
        self.line, self.children = line, children

    @classmethod
    def of(cls, node: yaml.Node) -> Lines | None:
        if isinstance(node, yaml.MappingNode):
            return cls(
                node.start_mark.line + 1,
                {
                    k.value: (v.start_mark.line + 1, k.start_mark.line + 1, cls.of(v))
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode)
                },
            )
        if isinstance(node, yaml.SequenceNode):
            return cls(
                node.start_mark.line + 1,
                {
                    i: (v.start_mark.line + 1, v.start_mark.line + 1, cls.of(v))
                    for i, v in enumerate(node.value)
                },
            )
        return None

    def find(self, loc: tuple[Any, ...]) -> int:
        """Line of the deepest element of ``loc`` present in the document."""
        node: Lines | None = self
        line = self.line
        for part in loc:
            if node is None or part not in node.children:
                break
            value_line, key_line, node = node.children[part]
            line = key_line if node is None else value_line
        return line


def field_path(loc: tuple[Any, ...]) -> str:
    """``("hosts", 1, "name")`` -> ``hosts[1].name``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path) -> tuple[dict[str, Any], Lines]:
    """The document (a mapping) and its line map; ConfigError for unreadable or invalid YAML,
    and for files past the size, nesting and alias-expansion caps (which guard memory)."""
    text = _read_text(path)
    parsed = None
    if _FAST is not None:
        with contextlib.suppress(yaml.YAMLError, RecursionError):
            parsed = _parse(text, path, _FAST)
    node, data = parsed or _parse_reporting(text, path)
    if not isinstance(data, dict) or node is None:
        raise ConfigError("the top level must be a mapping", path=str(path), line=1)
    return data, Lines.of(node) or Lines(1, {})


def _parse(text: str, path: Path, kind: type) -> tuple[yaml.Node | None, Any]:
    """The document's node graph, checked against the caps, and its data."""
    loader = kind(text)
    try:
        node = loader.get_single_node()
        if node is not None:  # without an anchor (``&``) nothing is shared: a tree
            (_check_shape if "&" in text else _check_tree)(node, path)
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _parse_reporting(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """``_parse`` by the pure-Python parser, its errors as ConfigErrors naming the line."""
    try:
        return _parse(text, path, _LineLoader)  # its reader refuses control characters at once
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"not valid YAML: {problem}", path=str(path), line=mark.line + 1 if mark else None
        ) from None
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", path=str(path)) from None


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"larger than {MAX_BYTES >> 20} MiB: is this the right file?", path=str(path)
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})", path=str(path), line=line
        ) from None


def _check_shape(root: yaml.Node, path: Path) -> None:
    """Refuse a document nested deeper than MAX_DEPTH or with more than MAX_NODES values once
    aliases are expanded, or with an alias that contains itself. Shared nodes are measured once
    (memoised), so the check is linear in the text even for an alias bomb."""
    seen: dict[int, tuple[int, int]] = {}  # id -> (values, height) once measured
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            measured = [seen[id(c)] for c in _children(node)]
            size = 1 + sum(m[0] for m in measured)
            height = 1 + max((m[1] for m in measured), default=0)
            seen[id(node)] = (size, height)
            _within_caps(size, height, node, path)
            continue
        if id(node) in seen:
            continue
        seen[id(node)] = _IN_PROGRESS  # met again below itself: a recursive alias
        stack.append((node, True))
        for child in _children(node):
            if seen.get(id(child)) is _IN_PROGRESS:
                raise ConfigError(
                    "an alias refers to a value that contains it",
                    path=str(path),
                    line=child.start_mark.line + 1,
                )
            if id(child) not in seen:
                stack.append((child, False))


_IN_PROGRESS = (-1, -1)


def _within_caps(values: int, depth: int, node: yaml.Node, path: Path) -> None:
    if values > MAX_NODES or depth > MAX_DEPTH:
        what = (
            f"more than {MAX_NODES} values once aliases are expanded"
            if values > MAX_NODES
            else f"nested deeper than {MAX_DEPTH} levels"
        )
        raise ConfigError(what, path=str(path), line=node.start_mark.line + 1)


def _check_tree(root: yaml.Node, path: Path) -> None:
    """``_check_shape`` for a document without anchors, whose nodes form a tree: one pass
    counts values and depth (a tenth of the time on a 5,000-host config)."""
    count, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        _within_caps(count, depth, node, path)
        stack.extend((child, depth + 1) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def validate(
    model: type[M],
    data: dict[str, Any],
    lines: Lines,
    path: Path,
    *,
    tags: frozenset[str] = frozenset(),
) -> M:
    """``model`` from ``data``; every validation problem as a ConfigError with its line.

    ``tags`` are pydantic's discriminated-union tags, which appear in error locations but not
    in the YAML (``sources.0.prometheus.url``): they are dropped before looking up the line.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrorGroup(
            [_error(err, lines, str(path), tags) for err in exc.errors()]
        ) from None


def _error(err: Any, lines: Lines, path: str, tags: frozenset[str]) -> ConfigError:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in tags))
    message = err["msg"].removeprefix("Value error, ")
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, Located):
        loc, message = loc + cause.loc, str(cause)
    if err["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}"
    elif err["type"] == "missing":
        message = f"missing required field {loc[-1]!r}"
    return ConfigError(message, path=path, line=lines.find(loc), field=field_path(loc))

"""Read YAML safely and remember where every value came from.

`yaml.compose` with the SafeLoader keeps each node's start mark; we build plain Python values from
the nodes and a map from each value's path (`("steps", 1, "approvers")`) to its (line, column).
Hostile input is refused before it costs anything: files over `MAX_BYTES`, nesting deeper than
`MAX_DEPTH`, anchors and aliases (the "billion laughs" shape), explicit non-standard tags such as
`!!python/object`, and duplicate keys (YAML would silently keep the last one).
"""

from __future__ import annotations

from typing import Any

import yaml

from policies.errors import PolicyError, Problem

MAX_BYTES = 1_000_000
MAX_DEPTH = 40
Path_ = tuple[str | int, ...]
KEY = "<key>"  # marks[(*path, KEY)] is where the key of `path` is written (for "unknown key" errors)
Marks = dict[Path_, tuple[int, int]]

_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}
_scalars = yaml.constructor.SafeConstructor()


def read_yaml(text: str, *, file: str) -> tuple[Any, Marks]:
    """Parse one YAML document into plain values and the (line, col) of every path, 1-based."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise PolicyError([Problem(file, 1, 1, f"file is larger than {MAX_BYTES // 1000} kB",
                                   "a policy is a few hundred lines; split it or check the file")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PolicyError([Problem(file, line, col, f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([Problem(file, 1, 1, f"not valid YAML: {exc}")]) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise PolicyError([Problem(file, 1, 1, f"nested deeper than {MAX_DEPTH} levels")]) from None
    if node is None:
        raise PolicyError([Problem(file, 1, 1, "the file is empty")])
    marks: Marks = {}
    problems: list[Problem] = []
    value = _build(node, (), 0, marks, problems, file, set())
    if problems:
        raise PolicyError(problems)
    return value, marks


def _build(node: yaml.Node, path: Path_, depth: int, marks: Marks, problems: list[Problem],
           file: str, seen: set[int]) -> Any:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    marks[path] = (line, col)
    if depth > MAX_DEPTH:
        problems.append(Problem(file, line, col, f"nested deeper than {MAX_DEPTH} levels"))
        return None
    if id(node) in seen or getattr(node, "anchor", None):
        # compose() resolves aliases to the same node object: a node met twice is an alias.
        problems.append(Problem(file, line, col, "anchors and aliases (&, *) are not allowed in policies",
                                "write the value out where it is needed"))
        return None
    seen.add(id(node))
    if node.tag not in _STANDARD_TAGS:
        problems.append(Problem(file, line, col, f"tag {node.tag!r} is not allowed",
                                "remove the '!' tag; policies hold plain values"))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            kl, kc = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _STANDARD_TAGS:
                problems.append(Problem(file, kl, kc, "a key must be a plain word"))
                continue
            key = _construct_scalar(key_node)
            if key is _BAD or key == "<<":
                problems.append(Problem(file, kl, kc, "a key must be a plain word (merge keys `<<` are not allowed)"))
                continue
            marks[(*path, key, KEY)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                kl, kc = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                problems.append(Problem(file, kl, kc, f"duplicate key {key!r}",
                                        "YAML would keep only the last one; remove one of them"))
                continue
            result[key] = _build(value_node, (*path, key), depth + 1, marks, problems, file, seen)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), depth + 1, marks, problems, file, seen)
                for i, item in enumerate(node.value)]
    value = _construct_scalar(node)
    if value is _BAD:
        kind = node.tag.rsplit(":", 1)[-1]
        problems.append(Problem(file, line, col, f"bad value {node.value!r} for its type {kind}"))
        return None
    return value


_BAD = object()


def _construct_scalar(node: yaml.Node) -> Any:
    """The scalar's value, or _BAD: PyYAML's constructors raise KeyError, IndexError, AttributeError
    and more on malformed explicitly-typed scalars such as `!!bool maybe`."""
    try:
        return _scalars.construct_object(node)
    except Exception:
        return _BAD


def mark_for(marks: Marks, loc: tuple[Any, ...]) -> tuple[int, int]:
    """The position of the deepest existing prefix of `loc` (pydantic error locations)."""
    for end in range(len(loc), -1, -1):
        key = tuple(loc[:end])
        if key in marks:
            return marks[key]
    return (1, 1)

"""Load policy files: YAML → typed policy, with every problem reported as file:line:col at once."""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from policies.errors import PolicyError, Problem
from policies.models import ApprovalPolicy, CalendarPolicy, Policy, validation_context
from policies.yaml_source import KEY, Marks, mark_for, read_yaml

KINDS: dict[str, type[BaseModel]] = {"approval": ApprovalPolicy, "calendar": CalendarPolicy}


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with where it came from and the hash that names this version of it."""

    policy: Policy
    source: str
    text: str
    content_hash: str
    profile: str = ""
    marks: Marks = field(default_factory=dict, compare=False, repr=False)  # path → (line, col), for lint

    def where(self, *path: str | int) -> tuple[int, int]:
        """The 1-based line and column of `path` (or of its nearest written parent)."""
        return mark_for(self.marks, path)

    @property
    def profile_dir(self) -> Path:
        return Path(self.source).parent

    @property
    def id(self) -> str:
        return self.policy.id


def load_policy_text(text: str, *, file: str = "<text>") -> LoadedPolicy:
    """Parse and validate one policy; raise PolicyError listing every problem."""
    data, marks = read_yaml(text, file=file)
    if not isinstance(data, dict):
        raise PolicyError([Problem(file, 1, 1, "a policy is a mapping of keys (kind, id, title, ...)")])
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        line, col = marks.get(("kind",), (1, 1))
        raise PolicyError([Problem(file, line, col, f"kind: expected one of {', '.join(KINDS)}, got {kind!r}",
                                   "every policy starts with `kind: approval` or `kind: calendar`")])
    try:
        policy = model.model_validate(data, context=validation_context(data))
    except ValidationError as exc:
        raise PolicyError(_problems(exc.errors(), marks, file, model)) from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedPolicy(policy=policy, source=file, text=text, content_hash=digest, marks=marks)  # type: ignore[arg-type]


ORGANISATION_FILE = "organisation.yaml"
"""A profile folder may hold its sample organisation under this name; it is not a policy."""


def load_policy(path: Path) -> LoadedPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PolicyError([Problem(str(path), 1, 1, "the file is not UTF-8 text")]) from None
    except IsADirectoryError:
        raise PolicyError([Problem(str(path), 1, 1, "this is a folder, not a policy file")]) from None
    except OSError as exc:
        raise PolicyError([Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror or exc}")]) from None
    loaded = load_policy_text(text, file=str(path))
    return replace(loaded, profile=path.parent.name)


def policy_files(paths: Iterable[Path]) -> list[Path]:
    """Every *.yaml / *.yml file under the given files and folders (but organisation files), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            # a folder named like a file (`old.yaml/`) is searched, not read
            found.extend(sorted(p for p in path.rglob("*")
                                if p.suffix in (".yaml", ".yml") and p.name != ORGANISATION_FILE and p.is_file()))
        else:
            found.append(path)
    return found


def load_policies(paths: Iterable[Path], *, unique_ids: Literal["profile", "all"] = "profile") -> list[LoadedPolicy]:
    """Load every policy; raise one PolicyError with the problems of all files.

    Organisation profiles are folders (`policies/library/hospital/`); ids must be unique within a profile
    (`unique_ids="profile"`, for checking a whole library) or across everything loaded (`"all"`, for a
    running system, which can hold one version of each id).
    """
    paths = list(paths)
    loaded: list[LoadedPolicy] = []
    problems: list[Problem] = []
    for path in policy_files(paths):
        if not path.exists():
            problems.append(Problem(str(path), 1, 1, "no such file or folder"))
            continue
        try:
            loaded.append(load_policy(path))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if not loaded and not problems:
        problems.append(Problem(", ".join(str(p) for p in paths) or ".", 1, 1, "no policy files (*.yaml) found"))
    first: dict[tuple[str, str], LoadedPolicy] = {}
    for item in loaded:
        key = (str(item.profile_dir) if unique_ids == "profile" else "", item.id)
        if key in first:
            other = first[key].source
            hint = None if unique_ids == "profile" else "load one organisation profile (one folder) at a time"
            problems.append(Problem(item.source, 1, 1, f"policy id {item.id!r} is also used by {other}", hint))
        first.setdefault(key, item)
    if problems:
        raise PolicyError(problems)
    return loaded


def _problems(errors: list[Any], marks: Any, file: str, model: type[BaseModel]) -> list[Problem]:
    """Pydantic errors as problems, minus the echoes: "missing key X" where an unknown key is a typo
    of X, and "too short" for a list whose items failed."""
    for err in errors:
        err["loc"] = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # union tags
    typos = {(e["loc"][:-1], c) for e in errors if e["type"] == "extra_forbidden"
             for c in difflib.get_close_matches(str(e["loc"][-1]), _allowed_keys(model, e["loc"][:-1]), n=1)}
    failed = [e["loc"] for e in errors]
    kept = [e for e in errors
            if not (e["type"] == "missing" and (e["loc"][:-1], e["loc"][-1]) in typos)
            and not (e["type"] == "too_short" and any(len(f) > len(e["loc"]) and f[:len(e["loc"])] == e["loc"]
                                                       for f in failed))]
    return [_problem(e, marks, file, model) for e in kept]


def _problem(err: Any, marks: Any, file: str, model: type[BaseModel]) -> Problem:
    loc = err["loc"]
    line, col = mark_for(marks, loc)
    where = _dotted(loc)
    message, hint = err["msg"], (err.get("ctx") or {}).get("hint")  # policies/models/common.py: hinted_error
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        line, col = marks.get((*loc, KEY), (line, col))
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = f"unknown key {loc[-1]!r}"
        where = _dotted(loc[:-1])
        hint = (f"did you mean {close[0]!r}? " if close else "") + f"(allowed: {', '.join(allowed)})"
    elif err["type"] == "missing":
        message = f"missing key {loc[-1]!r}"
        where = _dotted(loc[:-1])
    elif err["type"] == "literal_error":
        message = f"{message}, got {err.get('input')!r}"
    return Problem(file, line, col, f"{where}: {message}" if where else message, hint)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking `loc` through nested models, lists and dicts."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            info = current.model_fields.get(part)
            if info is None:
                return []
            current = info.annotation
        elif typing.get_origin(current) in (list, tuple, dict):
            args = [a for a in typing.get_args(current) if a is not Ellipsis]
            current = args[-1] if args else Any
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(info.alias or name for name, info in current.model_fields.items())  # `in`, not `within`
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else annotation
            if len(options) != 1:
                return annotation
        else:
            return annotation

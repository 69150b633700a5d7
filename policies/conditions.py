"""Conditions on form fields: a small safe grammar, compiled once at load time.

Grammar (Python-like surface, but only these forms are accepted; nothing is ever evaluated as code):
    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison | "(" condition ")"
    comparison := operand (("<" | "<=" | ">" | ">=" | "==" | "!=" | "in" | "not in") operand)+
    operand    := field name | number | 'string' | "string" | true | false | [literal, ...]
Numbers are compared as Decimal, so `amount <= 50000` is exact for money (¥50,000.00 is not above it).
A name that is not a field of the form is an error at load time, with a suggestion.
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Evaluator = Callable[[Mapping[str, Any]], Any]
MAX_LENGTH = 500

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_LITERAL_NAMES = {"true": True, "false": False, "True": True, "False": False}


class ConditionError(ValueError):
    """A condition that is not in the grammar or names an unknown field."""


@dataclass(frozen=True)
class Condition:
    """A compiled condition; call `holds(form)` with the validated form values."""

    text: str
    fields: frozenset[str]
    _evaluate: Evaluator

    def holds(self, form: Mapping[str, Any]) -> bool:
        try:
            return bool(self._evaluate(form))
        except TypeError as exc:  # e.g. comparing a missing optional field (None) with a number
            raise ConditionError(f"condition {self.text!r} cannot be decided for this form: {exc}") from None


def compile_condition(text: str, known_fields: set[str] | frozenset[str]) -> Condition:
    """Compile `text`; raise ConditionError naming the first unsupported construct or unknown field."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("a condition must be a non-empty text such as 'amount > 50000'")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"a condition is at most {MAX_LENGTH} characters; split the rule into steps")
    try:
        tree = ast.parse(text.strip(), mode="eval")
        used: set[str] = set()
        evaluate = _compile(tree.body, known_fields, used)
    except SyntaxError as exc:
        raise ConditionError(f"cannot read condition {text!r}: {exc.msg} at column {exc.offset}") from None
    except RecursionError:
        raise ConditionError("the condition is nested too deeply") from None
    return Condition(text=text, fields=frozenset(used), _evaluate=evaluate)


def _compile(node: ast.AST, known: set[str] | frozenset[str], used: set[str]) -> Evaluator:
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, known, used) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda form: all(p(form) for p in parts)
        return lambda form: any(p(form) for p in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, known, used)
        return lambda form: not inner(form)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = _literal(node.operand)
        return lambda form: -value
    if isinstance(node, ast.Compare):
        left = _compile(node.left, known, used)
        rights = [_compile(c, known, used) for c in node.comparators]
        ops = [_COMPARE[type(op)] for op in node.ops if type(op) in _COMPARE]
        if len(ops) != len(node.ops):
            raise ConditionError("only <, <=, >, >=, ==, !=, in and not in compare values")

        def compare(form: Mapping[str, Any]) -> bool:
            a = left(form)
            for op, right in zip(ops, rights, strict=True):
                b = right(form)
                if not op(a, b):
                    return False
                a = b
            return True

        return compare
    if isinstance(node, ast.Name):
        if node.id in _LITERAL_NAMES:
            value = _LITERAL_NAMES[node.id]
            return lambda form: value
        if node.id not in known:
            close = difflib.get_close_matches(node.id, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; fields are: {', '.join(sorted(known))}"
            raise ConditionError(f"unknown field {node.id!r} in condition{hint}")
        used.add(node.id)
        name = node.id
        return lambda form: _as_decimal(form.get(name))
    if isinstance(node, ast.Constant):
        value = _literal(node)
        return lambda form: value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_compile(e, known, used) for e in node.elts]
        return lambda form: [i(form) for i in items]
    raise ConditionError(
        f"{type(node).__name__} is not allowed in a condition; use fields, numbers, quoted text, "
        "comparisons, and/or/not, in"
    )


def _literal(node: ast.Constant) -> Any:
    if isinstance(node.value, bool) or node.value is None or isinstance(node.value, str):
        return node.value
    if isinstance(node.value, int | float):
        return Decimal(str(node.value))
    raise ConditionError(f"unsupported literal {node.value!r}")


def _as_decimal(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value

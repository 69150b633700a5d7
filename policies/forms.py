"""Validate a request's form against its policy: types, limits, required fields; every problem at once.

Rules:
- money and number values are exact Decimals (never floats): `50000.00` is not above `50000`; money has at
  most two decimals (fen) and is normalised to two; numbers are finite and below 10^15;
- a date is ISO (2026-11-15); text has no NUL and at most `max_length` characters; a choice is one of
  `choices`; a person / department value names one in the organisation;
- an attachment value is a reference: a non-empty id string (the file store's id, or the registration
  number of a sealed paper copy), or an object `{name, kind}` whose kind is one of the field's `kinds`
  (a `paper: true` field takes kind `paper`);
- a required field may not be empty; a key that is not a field is a problem; every problem is reported.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from policies.models import ApprovalPolicy, FormField
from policies.org import Organisation

MAX_NUMBER = Decimal(10) ** 15
MAX_REFERENCE = 500


class FormError(ValueError):
    """A form that does not satisfy its policy; `problems` maps field name to message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def validate_form(policy: ApprovalPolicy, raw: Any, org: Organisation) -> dict[str, Any]:
    """Return the form with normalised values (money and numbers as Decimal, dates as date)."""
    if not isinstance(raw, dict):
        raise FormError({"form": "expected an object of field values"})
    problems: dict[str, str] = {}
    for key in raw:
        if key not in policy.form:
            problems[str(key)] = f"not a field of {policy.id} (fields: {', '.join(policy.form)})"
    values: dict[str, Any] = {}
    for name, spec in policy.form.items():
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                problems[name] = f"{spec.label} is required"
            values[name] = None
            continue
        try:
            values[name] = _coerce(spec, value, org)
        except ValueError as exc:
            problems[name] = f"{spec.label}: {exc}"
    if problems:
        raise FormError(problems)
    return values


def form_to_json(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy: Decimal → "50000.00" strings, dates → ISO strings."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, dt.date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def _attachment(spec: FormField, value: Any) -> str | dict[str, str]:
    if isinstance(value, str):
        if not value.strip() or len(value) > MAX_REFERENCE or "\x00" in value:
            raise ValueError(f"expected an attachment id of 1-{MAX_REFERENCE} characters")
        return value.strip()
    if not isinstance(value, dict):
        raise ValueError("expected an attachment id, or an object {name, kind}")
    unknown = sorted(str(k) for k in value if k not in ("name", "kind"))
    if unknown:
        raise ValueError(f"unknown attachment key(s) {', '.join(unknown)} (allowed: name, kind)")
    name, kind = value.get("name"), value.get("kind")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_REFERENCE or "\x00" in name:
        raise ValueError(f"an attachment needs a name of 1-{MAX_REFERENCE} characters")
    allowed = ("paper",) if spec.paper else spec.kinds
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"an attachment needs a kind ({', '.join(allowed or ('pdf', 'image', '...'))})")
    if allowed is not None and kind not in allowed:
        what = "a sealed paper copy" if spec.paper else "an attachment"
        raise ValueError(f"{what} of kind {kind!r} is not accepted here (kinds: {', '.join(allowed)})")
    return {"name": name.strip(), "kind": kind}


def _coerce(spec: FormField, value: Any, org: Organisation) -> Any:
    if spec.type in ("money", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expected a number")
        try:
            number = Decimal(str(value).replace(",", "").strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
        if not number.is_finite() or abs(number) >= MAX_NUMBER:
            raise ValueError("expected a finite number below 10^15")
        if spec.type == "money":
            if number.as_tuple().exponent < -2:  # type: ignore[operator]
                raise ValueError("money has at most two decimals (fen)")
            number = number.quantize(Decimal("0.01"))
        if spec.min is not None and number < spec.min:
            raise ValueError(f"must be at least {spec.min}")
        if spec.max is not None and number > spec.max:
            raise ValueError(f"must be at most {spec.max}")
        return number
    if spec.type == "attachment":
        return _attachment(spec, value)
    if spec.type == "date":
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"expected a date like 2026-11-15, got {value!r}") from None
    if not isinstance(value, str):
        raise ValueError("expected text")
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    if len(value) > spec.max_length:
        raise ValueError(f"at most {spec.max_length} characters")
    if spec.type == "choice" and value not in (spec.choices or ()):
        raise ValueError(f"expected one of {', '.join(spec.choices or ())}")
    if spec.type == "person" and value not in org.people:
        raise ValueError(f"no person with id {value!r}")
    if spec.type == "department" and value not in org.departments:
        raise ValueError(f"no department with code {value!r}")
    return value

"""Conditions on form fields: a small grammar compiled at load time, never evaluated as code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.conditions import ConditionError, compile_condition

FIELDS = frozenset({"amount", "category", "urgent"})


def holds(text: str, **form: object) -> bool:
    return compile_condition(text, FIELDS).holds(form)


def refusal(text: str) -> str:
    with pytest.raises(ConditionError) as excinfo:
        compile_condition(text, FIELDS)
    return str(excinfo.value)


class TestMoneyThresholds:
    def test_exactly_fifty_thousand_is_not_above_the_threshold(self) -> None:
        assert holds("amount <= 50000", amount=Decimal("50000.00"))

    def test_one_fen_over_fifty_thousand_is_above_the_threshold(self) -> None:
        assert not holds("amount <= 50000", amount=Decimal("50000.01"))
        assert holds("amount > 50000", amount=Decimal("50000.01"))

    def test_decimal_literal_is_compared_exactly(self) -> None:
        """0.1 in a condition is Decimal("0.1"), not the binary float 0.1000000000000000055…"""
        assert holds("amount == 0.1", amount=Decimal("0.1"))
        assert not holds("amount > 0.1", amount=Decimal("0.1"))

    def test_negative_literal_is_allowed(self) -> None:
        assert holds("amount > -5", amount=Decimal("-4.99"))

    def test_chained_comparison_checks_both_ends(self) -> None:
        assert holds("1000 < amount <= 50000", amount=Decimal("50000"))
        assert not holds("1000 < amount <= 50000", amount=Decimal("1000"))

    @given(a=st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9),
           t=st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9))
    def test_greater_than_agrees_with_decimal_comparison(self, a: Decimal, t: Decimal) -> None:
        assert holds(f"amount > {t}", amount=a) == (a > t)


class TestLogic:
    @pytest.mark.parametrize(("amount", "urgent", "expected"), [
        (Decimal(200), True, True), (Decimal(200), False, False), (Decimal(50), True, False),
    ])
    def test_and_needs_both(self, amount: Decimal, urgent: bool, expected: bool) -> None:
        assert holds("amount > 100 and urgent == true", amount=amount, urgent=urgent) is expected

    @pytest.mark.parametrize(("amount", "urgent", "expected"), [
        (Decimal(200), False, True), (Decimal(50), True, True), (Decimal(50), False, False),
    ])
    def test_or_needs_either(self, amount: Decimal, urgent: bool, expected: bool) -> None:
        assert holds("amount > 100 or urgent == true", amount=amount, urgent=urgent) is expected

    def test_not_negates(self) -> None:
        assert holds("not amount > 100", amount=Decimal(50))
        assert not holds("not amount > 100", amount=Decimal(500))

    def test_parentheses_group_before_and(self) -> None:
        form = {"amount": Decimal(50), "category": "it", "urgent": False}
        assert not compile_condition("(category == 'it' or urgent) and amount > 100", FIELDS).holds(form)
        assert compile_condition("category == 'it' or (urgent and amount > 100)", FIELDS).holds(form)

    def test_string_equality_is_exact(self) -> None:
        assert holds("category == 'it'", category="it")
        assert holds('category == "it"', category="it")
        assert not holds("category == 'it'", category="IT")
        assert holds("category != 'it'", category="hr")

    def test_in_and_not_in_a_list(self) -> None:
        assert holds("category in ['it', 'hr']", category="hr")
        assert not holds("category in ['it', 'hr']", category="finance")
        assert holds("category not in ['it', 'hr']", category="finance")

    def test_compiled_condition_remembers_the_fields_it_uses(self) -> None:
        condition = compile_condition("amount > 1 and category == 'it'", FIELDS)
        assert condition.fields == frozenset({"amount", "category"})

    def test_missing_value_cannot_be_compared_with_a_number(self) -> None:
        condition = compile_condition("amount > 5", FIELDS)
        with pytest.raises(ConditionError) as excinfo:
            condition.holds({"amount": None})
        assert "cannot be decided for this form" in str(excinfo.value)


class TestRefusedAtCompileTime:
    def test_unknown_field_suggests_the_close_one(self) -> None:
        assert refusal("amout > 5") == "unknown field 'amout' in condition; did you mean 'amount'?"

    def test_unknown_field_without_a_close_one_lists_the_fields(self) -> None:
        assert refusal("zzz > 5") == "unknown field 'zzz' in condition; fields are: amount, category, urgent"

    @pytest.mark.parametrize(("text", "construct"), [
        ("len(category) > 1", "Call"),
        ("__import__('os') == 1", "Call"),
        ("amount.__class__ == 1", "Attribute"),
        ("category[0] == 'i'", "Subscript"),
        ("(lambda: 1) == 1", "Lambda"),
        ("f'{amount}' == '1'", "JoinedStr"),
        ("amount * 2 > 100", "BinOp"),
        ("amount + 1 > 100", "BinOp"),
        ("-amount > 5", "UnaryOp"),
        ("amount if urgent else 0", "IfExp"),
        ("[c for c in category] == []", "ListComp"),
    ])
    def test_code_constructs_are_refused_by_name(self, text: str, construct: str) -> None:
        assert refusal(text).startswith(f"{construct} is not allowed in a condition")

    @pytest.mark.parametrize("text", ["amount is None", "amount is not None"])
    def test_identity_comparison_is_refused(self, text: str) -> None:
        assert refusal(text) == "only <, <=, >, >=, ==, !=, in and not in compare values"

    @pytest.mark.parametrize("text", ["amount := 5", "amount > 5; import os", "amount >"])
    def test_text_that_is_not_an_expression_is_refused(self, text: str) -> None:
        assert refusal(text).startswith(f"cannot read condition {text!r}")

    @pytest.mark.parametrize("text", ["", "   "])
    def test_empty_condition_is_refused(self, text: str) -> None:
        assert refusal(text).startswith("a condition must be a non-empty text")

    def test_bytes_literal_is_refused(self) -> None:
        assert refusal("category == b'it'") == "unsupported literal b'it'"

    def test_deeply_nested_not_is_refused_not_a_crash(self) -> None:
        refusal("not " * 1000 + "urgent")

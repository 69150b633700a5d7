"""Form values of an approval request: attachments as references, exact money, every problem at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policies.forms import FormError, form_to_json, validate_form
from policies.loader import load_policy
from policies.models import ApprovalPolicy
from policies.org import Organisation
from store.organisation import read_organisation_file

DATA = Path(__file__).resolve().parent / "data"
SEED = read_organisation_file(DATA / "approval-organisation.yaml")
ORG = Organisation.of(SEED.organisation, SEED.departments, SEED.people)
_loaded = load_policy(DATA / "approval-policies" / "committee-review.yaml").policy
assert isinstance(_loaded, ApprovalPolicy)
POLICY: ApprovalPolicy = _loaded
BASE = {"subject": "评审", "amount": "100"}


def values(**extra: Any) -> dict[str, Any]:
    return validate_form(POLICY, {**BASE, **extra}, ORG)


def problems(**extra: Any) -> dict[str, str]:
    with pytest.raises(FormError) as excinfo:
        validate_form(POLICY, {**BASE, **extra}, ORG)
    return excinfo.value.problems


class TestAttachments:
    def test_an_attachment_id_is_a_reference(self) -> None:
        assert values(report=" f-20261115-0042 ")["report"] == "f-20261115-0042"

    def test_an_object_with_an_accepted_kind(self) -> None:
        assert values(report={"name": "评审报告.pdf", "kind": "pdf"})["report"] == {"name": "评审报告.pdf",
                                                                                    "kind": "pdf"}

    def test_a_kind_the_field_does_not_accept_is_refused(self) -> None:
        assert problems(report={"name": "x.png", "kind": "image"}) == {
            "report": "评审报告: an attachment of kind 'image' is not accepted here (kinds: pdf, word)"}

    def test_a_sealed_paper_copy_takes_the_kind_paper(self) -> None:
        assert values(sealed={"name": "盖章件 2026-11", "kind": "paper"})["sealed"]["kind"] == "paper"
        assert problems(sealed={"name": "x", "kind": "pdf"}) == {
            "sealed": "盖章纸质件: a sealed paper copy of kind 'pdf' is not accepted here (kinds: paper)"}

    @pytest.mark.parametrize(("value", "message"), [
        ({"name": "", "kind": "pdf"}, "an attachment needs a name of 1-500 characters"),
        ({"name": "a.pdf"}, "an attachment needs a kind (pdf, word)"),
        ({"name": "a.pdf", "kind": "pdf", "size": 3}, "unknown attachment key(s) size (allowed: name, kind)"),
        (42, "expected an attachment id, or an object {name, kind}"),
        ("x" * 501, "expected an attachment id of 1-500 characters"),
    ])
    def test_a_malformed_attachment_is_a_problem(self, value: object, message: str) -> None:
        assert problems(report=value) == {"report": f"评审报告: {message}"}

    def test_an_optional_attachment_may_be_left_out_and_is_kept_as_json(self) -> None:
        form = values(report={"name": "a.pdf", "kind": "pdf"})
        assert form["sealed"] is None
        assert form_to_json(form)["report"] == {"name": "a.pdf", "kind": "pdf"}


class TestMoney:
    def test_amounts_are_exact_decimals_at_the_threshold(self) -> None:
        assert values(amount="100000.00")["amount"] == Decimal("100000.00")
        leaders = POLICY.step("leaders")
        assert leaders.when is not None
        assert not leaders.when.holds(values(amount="100000.00"))
        assert leaders.when.holds(values(amount="100000.01"))

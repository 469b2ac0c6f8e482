"""Tax operators: assess a transfer (once per case), and check whether it has been paid."""
from __future__ import annotations

from typing import Any

from adapters.tax import TransferForTax
from handlers.departments import departments, dump, parse
from handlers.registry import REGISTRY, Param


@REGISTRY.register("tax.assess", [Param("transfer", "dict", description="TransferForTax fields from the case")])
def assess(ctx: Any, transfer: dict[str, Any]) -> dict[str, Any]:
    """核税: the tax authority's assessment of this transfer, line by line."""
    request = parse(TransferForTax, {**transfer, "case_number": ctx.case_number}, "核税申报")
    return dump(departments(ctx).tax.assess(request, ctx.idempotency_key))


@REGISTRY.register("tax.check_paid", [Param("assessment_no", "str")])
def check_paid(ctx: Any, assessment_no: str) -> dict[str, Any]:
    """完税核验: has the applicant paid? (The diagram waits and asks again, or waits for the payment message.)"""
    assessment = departments(ctx).tax.get(assessment_no)
    return {"paid": assessment.status == "paid", "voucher_no": assessment.voucher_no,
            "total_payable": str(assessment.total_payable), "status": assessment.status}

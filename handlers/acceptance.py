"""一窗受理: the window's acceptance decision and one-time notification, and 容缺 items arriving later.

The checklists are data (processes/materials/<business>.json); the rules are in domain.materials.
A deferral that cannot be granted (an essential item, a past date) is BusinessError DEFERRAL_REFUSED
and an unknown item code MATERIALS_UNKNOWN: the diagram routes both back to the window clerk.
"""
from __future__ import annotations

from typing import Any

from domain import materials
from domain.clock import SHANGHAI
from handlers.registry import REGISTRY, Param


def _today(ctx: Any) -> Any:
    return ctx.now().astimezone(SHANGHAI).date()


@REGISTRY.register("acceptance.evaluate", [
    Param("business", "str", description="business code, e.g. secondhand_transfer"),
    Param("provided", "list", description="codes of the items the applicant handed over"),
    Param("deferred", "list", required=False, description='容缺: [{"code": …, "promised_by": "YYYY-MM-DD"}]'),
    Param("facts", "dict", required=False, description="facts that make items conditional or the case not one trip"),
])
def evaluate(ctx: Any, business: str, provided: list[Any], deferred: list[Any] | None = None,
             facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """受理: accepted, accepted with deficiencies (容缺受理) or not accepted, with the 一次性告知书."""
    return materials.evaluate(business, provided, deferred or [], facts or {}, _today(ctx),
                              case_number=ctx.case_number)


@REGISTRY.register("acceptance.receive_deferred", [
    Param("acceptance", "dict", description="the result of acceptance.evaluate"),
    Param("received", "list", description="codes of the deferred items handed in now"),
])
def receive_deferred(ctx: Any, acceptance: dict[str, Any], received: list[Any]) -> dict[str, Any]:
    """容缺补交: the promised items that arrived leave `deferred`; `all_received` says whether any is still owed."""
    return materials.receive_deferred(acceptance, received, _today(ctx))

"""Deadline operators 限时办结 (processes/INTERFACES.md): start, pause and resume a case's clock, and
record stage times. They write through the engine step's session, so the clock moves in the same
transaction as the case. The rules are in domain/deadlines.py; times come back in Asia/Shanghai.

- `deadline.start(business)`: the clock starts now (acceptance 受理) with the business kind's
  promised limit; one clock per case, a second call returns the first clock unchanged.
- `deadline.pause(reason)`: the clock stops (supplement | notice | inspection | unpaid_tax |
  policy_housing | land_premium | purchase_restriction); pausing a paused clock keeps its pause.
- `deadline.resume()`: runs again, the due date moved by the working time it stood still.
- `deadline.stage(stage, event)`: acceptance | review | certificate, start | end; the end of the
  certificate stage also ends the clock (the limit counts to registration 登簿).

Unknown codes, or a pause before the clock started, are BusinessErrors (UNKNOWN_BUSINESS,
UNKNOWN_PAUSE_REASON, UNKNOWN_STAGE, UNKNOWN_EVENT, NO_CLOCK, CLOCK_COMPLETED): an incident
unless the diagram catches them.
"""
from __future__ import annotations

from typing import Any

from domain import deadlines
from domain.deadlines import local_iso
from handlers.registry import REGISTRY, Param


@REGISTRY.register("deadline.start", [Param("business", "str", description="business kind code")])
def start(ctx: Any, business: str) -> dict[str, Any]:
    """受理计时: start the case's clock with the business kind's promised limit."""
    clock = deadlines.start_clock(ctx.session, ctx.case_id, ctx.case_number, business, ctx.now())
    return {
        "business": clock.business,
        "limit": {"kind": clock.limit_kind, "value": clock.limit_value},
        "accepted_at": local_iso(clock.accepted_at),
        "due_at": local_iso(clock.due_at),
        "light": clock.light,
    }


@REGISTRY.register("deadline.pause", [Param("reason", "str", description="why the clock stops (seed 003 §五)")])
def pause(ctx: Any, reason: str) -> dict[str, Any]:
    """时限中止: the clock stops while materials are supplemented, a notice or inspection runs, tax is unpaid…"""
    clock = deadlines.pause_clock(ctx.session, ctx.case_id, reason, ctx.now())
    return {"paused": True, "reason": clock.pause_reason, "since": local_iso(clock.paused_since)}


@REGISTRY.register("deadline.resume")
def resume(ctx: Any) -> dict[str, Any]:
    """时限恢复: the clock runs again; the due date moves by the working time it stood still."""
    clock = deadlines.resume_clock(ctx.session, ctx.case_id, ctx.now())
    return {"paused": False, "due_at": local_iso(clock.due_at)}


@REGISTRY.register("deadline.stage", [
    Param("stage", "str", description="acceptance | review | certificate"),
    Param("event", "str", description="start | end"),
])
def stage(ctx: Any, stage: str, event: str) -> dict[str, Any]:
    """环节计时 (受理、审批、出证 各20分钟, seed 001): record a stage's start or end."""
    row = deadlines.record_stage(ctx.session, ctx.case_id, stage, event, ctx.now())
    if event == "start":
        return {"stage": stage, "event": event, "at": local_iso(row.started_at)}
    return {"stage": stage, "event": event, "at": local_iso(row.ended_at),
            "minutes": float(row.minutes) if row.minutes is not None else None}

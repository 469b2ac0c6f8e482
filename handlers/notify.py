"""Telling applicants: written to the outbox in the step's transaction, sent by the worker."""
from __future__ import annotations

from typing import Any

from adapters.notify import Notification
from handlers.departments import parse
from handlers.registry import REGISTRY, Param


@REGISTRY.register("notify.applicant", [Param("channel", "str"), Param("to", "str"), Param("text", "str")])
def applicant(ctx: Any, channel: str, to: str, text: str) -> dict[str, Any]:
    """短信/邮件告知申请人. Checked now (a bad number is the case's problem), sent once by the worker."""
    note = parse(Notification, {"channel": channel, "to": to, "text": text, "case_number": ctx.case_number},
                 "告知")
    ctx.outbox("notify.applicant", note.model_dump(mode="json"))
    return {"queued": True, "channel": channel, "to": to}

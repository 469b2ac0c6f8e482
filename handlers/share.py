"""Sharing the registration result with housing and tax (信息共享), each exactly once."""
from __future__ import annotations

from typing import Any

from handlers.registry import REGISTRY, Param

SHARE_TOPICS = ("share.housing", "share.tax")


@REGISTRY.register("share.push_result", [Param("result", "dict")])
def push_result(ctx: Any, result: dict[str, Any]) -> dict[str, Any]:
    """登簿结果推送: one outbox message per department, keyed by case, so a retry never sends twice."""
    payload = {"case_number": ctx.case_number, "result": result}
    for topic in SHARE_TOPICS:
        ctx.outbox(topic, payload, key=f"{ctx.case_number}:{topic}")
    return {"shared_with": ["housing", "tax"]}

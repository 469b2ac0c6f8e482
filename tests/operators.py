"""Operators used only by tests: a court check whose behaviour each test sets."""
from __future__ import annotations

from typing import Any, ClassVar

from handlers.registry import BusinessError, OperatorRegistry, Param, TransientError

TEST_REGISTRY = OperatorRegistry()


class CourtStub:
    """What the fake court answers: a list of outcomes consumed per call ('ok', 'down', 'seized')."""

    outcomes: ClassVar[list[str]] = []
    calls: ClassVar[list[dict[str, Any]]] = []

    @classmethod
    def reset(cls, *outcomes: str) -> None:
        cls.outcomes = list(outcomes)
        cls.calls = []


@TEST_REGISTRY.register("test.court_check", [Param("unit", "str")])
def court_check(ctx: Any, unit: str) -> dict[str, Any]:
    CourtStub.calls.append({"unit": unit, "key": ctx.idempotency_key, "attempt": ctx.attempt})
    outcome = CourtStub.outcomes.pop(0) if CourtStub.outcomes else "ok"
    if outcome == "down":
        raise TransientError("court system timed out after 5 s")
    if outcome == "seized":
        raise BusinessError("SEIZED", "该不动产单元已被查封", court="杭州市西湖区人民法院",
                            doc_no="(2026)浙0106执123号")
    if outcome == "crash":
        raise KeyError("unexpected field")
    ctx.outbox("notify.applicant", {"unit": unit, "text": "核查完成"})
    return {"seized": False, "unit": unit}

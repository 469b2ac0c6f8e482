"""Working-day arithmetic as service operators, for diagrams that compute promised dates."""
from __future__ import annotations

from typing import Any

from domain import calendar
from handlers.registry import REGISTRY, BusinessError, Param


@REGISTRY.register("calendar.add_workdays", [Param("start", "str"), Param("days", "int")])
def add_workdays(start: str, days: int) -> dict[str, Any]:
    """The date `days` Chinese working days after `start` (the start day not counted)."""
    try:
        due = calendar.add_workdays(start, days)
    except ValueError as err:
        raise BusinessError("BAD_DATE", str(err)) from None
    return {"start": start, "days": days, "due": due}


@REGISTRY.register("calendar.workdays_between", [Param("start", "str"), Param("end", "str")])
def workdays_between(start: str, end: str) -> dict[str, Any]:
    """Working days after `start` up to and including `end`."""
    try:
        return {"workdays": calendar.workdays_between(start, end)}
    except ValueError as err:
        raise BusinessError("BAD_DATE", str(err)) from None

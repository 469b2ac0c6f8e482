"""Court operators: seizures on a unit (and on its parcel)."""
from __future__ import annotations

from typing import Any

from handlers.departments import departments, dump
from handlers.registry import REGISTRY, Param


@REGISTRY.register("court.check_seizure", [Param("unit_number", "str")])
def check_seizure(ctx: Any, unit_number: str) -> dict[str, Any]:
    """法院查封核查: every seizure in force on the unit or its parcel."""
    seizures = departments(ctx).court.check_seizures(unit_number)
    return {"seized": bool(seizures), "seizures": [dump(s) for s in seizures]}

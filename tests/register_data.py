"""Believable people, units and dates shared by the register and rules tests."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from domain import register as reg
from domain.clock import SHANGHAI

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
FLAT = "320684413219GB00029F00010002"
FLAT_NEXT_DOOR = "320684413219GB00029F00010003"
LAND = "320684413219GB00029W00000000"
OTHER_PARCEL_FLAT = "320684413219GB00030F00010101"

ZHANG = {"name": "张伟", "id_type": "居民身份证", "id_number": "320684198003150012"}
WANG = {"name": "王芳", "id_type": "居民身份证", "id_number": "32068419820704002X"}
LI = {"name": "李娜", "id_type": "居民身份证", "id_number": "330106199001010021"}
ZHAO = {"name": "赵强", "id_type": "居民身份证", "id_number": "330106198812120035"}
ICBC = {"name": "中国工商银行股份有限公司海门支行", "id_type": "统一社会信用代码", "id_number": "91320684MA1MXXXX1A"}
CCB = {"name": "中国建设银行股份有限公司海门支行", "id_type": "统一社会信用代码", "id_number": "91320684MA1MYYYY2B"}
DEVELOPER = {"name": "海门锦绣置业有限公司", "id_type": "统一社会信用代码", "id_number": "91320684MA1NZZZZ3C"}
COURT = "海门市人民法院"
COURT2 = "南通市中级人民法院"


def add_units(s: Session, *numbers: str) -> None:
    for number in numbers or (FLAT, FLAT_NEXT_DOOR, LAND):
        land = number.endswith("W00000000")
        reg.add_unit(s, number, address="海门市海门街道锦绣花园" + ("" if land else f"{int(number[-4:])}室"),
                     use="residential", area=None if land else "89.35", building=None if land else "1幢",
                     floor=None if land else 1, room=None if land else number[-4:], case_number="2026-000001",
                     now=NOW)


def owned_flat(s: Session, owners: list[dict] | None = None, unit: str = FLAT) -> reg.RightInfo:
    """FLAT (and its neighbour and land unit) in the register, owned by 张伟 alone unless told otherwise."""
    add_units(s)
    if unit not in (FLAT, FLAT_NEXT_DOOR, LAND):
        add_units(s, unit)
    return reg.register_ownership(s, unit, owners or [ZHANG], case_number="2026-000002", now=NOW)

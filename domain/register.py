"""The register 不动产登记簿: units, rights and encumbrances, their history, and certificates.

Every function takes the caller's SQLAlchemy `Session` and writes nothing outside it, so a
service handler records a transfer inside the engine step's transaction: the register entry,
the case's state and its audit trail commit together or not at all. Call the writing functions
inside a write transaction (`Database.write()`); they lock the unit's row first (FOR UPDATE on
PostgreSQL; SQLite write transactions are already serialized), so two cases registering on the
same unit at the same moment take turns instead of both ending the same ownership.

Rules of the register that this module keeps:

- A right is never deleted. It ends: `status = "ended"`, with `ended_at`, `end_reason` and the
  case that ended it. `history(unit)` is every right of the unit, current and ended, in order.
- Every write records the case number 受理编号 that made it.
- At most one current ownership per unit (also a partial unique index in the database).
- A transfer ends the current ownership and creates the new one; the unit's current mortgages
  stay current and travel with it (民法典 第406条): their mortgagor becomes the new owner and the
  result lists the mortgagees to notify. A seized unit (or a unit on a seized parcel) is not
  transferred or mortgaged (城市房地产管理法 第38条, 民法典 第399条) unless the court itself
  orders it: the register re-checks this at entry time, because a court's seizure is registered
  at once and may arrive after the case was reviewed.
- A second seizure while one is current is queued 轮候查封 with a position; releasing the seizure
  in effect makes the first queued one take effect (查封扣押冻结规定 第26条), recorded in it.
- An objection 异议 lapses unless its applicant sues within 15 days (民法典 第220条).
- Certificates are numbered per office, kind and year from a gapless counter; a voided
  certificate keeps its number, which is never issued again.

The legal checks a reviewer sees (seizure blocks, pre-notice consent, …) are in domain/rules.py;
this module only refuses what would make the register itself wrong.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import calendar
from domain.clock import SHANGHAI
from domain.errors import BusinessError
from domain.unit_number import UnitNumberError
from domain.unit_number import parse as parse_unit_number
from storage.counters import next_counter
from storage.models import RegisterCertificate, RegisterRight, RegisterRightHolder, RegisterUnit

__all__ = [
    "CURRENT",
    "ENDED",
    "JOINT",
    "KIND_LABELS",
    "MORTGAGE_MODES",
    "MORTGAGE_PRE_NOTICES",
    "OBJECTION_SUIT_DAYS",
    "PRE_NOTICE_KINDS",
    "SALE_PRE_NOTICES",
    "CertificateInfo",
    "Holder",
    "Office",
    "RightInfo",
    "SeizureRelease",
    "TransferResult",
    "UnitInfo",
    "add_unit",
    "expire_seizures",
    "cancel_mortgage",
    "cancel_objection",
    "cancel_pre_notice",
    "certificate_number",
    "certificates_for_right",
    "current_ownership",
    "current_rights",
    "get_certificate",
    "get_right",
    "get_unit",
    "history",
    "holders_of",
    "issue_certificate",
    "lapse_objections",
    "objection_lapses_on",
    "parse_certificate_number",
    "record_objection_suit",
    "register_mortgage",
    "register_objection",
    "register_ownership",
    "register_pre_notice",
    "register_seizure",
    "release_seizure",
    "renew_seizure",
    "transfer_ownership",
    "units_on_parcel",
    "void_certificate",
]

CURRENT = "current"
ENDED = "ended"
KIND_LABELS = {
    "ownership": "所有权",
    "mortgage": "抵押权",
    "pre_notice": "预告登记",
    "seizure": "查封登记",
    "objection": "异议登记",
}
USES = {"residential": "住宅", "non_residential": "非住宅"}
MORTGAGE_MODES = {"ordinary": "一般抵押", "maximum_amount": "最高额抵押"}
PRE_NOTICE_KINDS = ("预售商品房买卖预告", "其它不动产买卖预告", "预售商品房抵押权预告", "其它不动产抵押权预告")
SALE_PRE_NOTICES = frozenset(PRE_NOTICE_KINDS[:2])
MORTGAGE_PRE_NOTICES = frozenset(PRE_NOTICE_KINDS[2:])
SEIZURE_KINDS = ("查封", "预查封")
JOINT = "共同共有"
SHARE_MODES = {"sole": "单独所有", "share": "按份共有", "joint": "共同共有"}
OBJECTION_SUIT_DAYS = 15
CERTIFICATE_KINDS = {"title": "不动产权", "registration": "不动产证明"}
CERTIFICATE_LABELS = {"title": "不动产权证书", "registration": "不动产登记证明"}
# which rights each certificate documents
_CERTIFIED_KINDS = {"title": frozenset({"ownership"}),
                    "registration": frozenset({"mortgage", "pre_notice", "objection"})}
_SHARE_PLACES = Decimal("0.000001")
_MONEY_PLACES = Decimal("0.01")


# -- values ------------------------------------------------------------------------------------


def _fail(code: str, message: str, **detail: Any) -> BusinessError:
    return BusinessError(code, message, **detail)


def _unit(value: str) -> str:
    try:
        return parse_unit_number(value).value
    except UnitNumberError as err:
        raise _fail("invalid_unit_number", str(err), unit_number=value, part=err.part,
                    start=err.start, end=err.end) from None


def _land_unit(unit_number: str) -> str:
    return unit_number[:19] + "W00000000"


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError(f"`now` must be an aware datetime, not {now!r}")
    return now


def _local_day(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def _case(case_number: str | None, *, required: bool = True) -> str | None:
    if case_number is None or not str(case_number).strip():
        if required:
            raise _fail("invalid_request", "缺少受理编号：登记簿的每一次记载都须注明办理案件的受理编号")
        return None
    return str(case_number).strip()


def _date(value: date | str | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _fail("invalid_request", f"{what}应为日期（YYYY-MM-DD），实为{value!r}") from None


def _money(value: Decimal | int | str | float, what: str) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(_MONEY_PLACES, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise _fail("invalid_request", f"{what}应为金额（元），实为{value!r}") from None
    if amount <= 0:
        raise _fail("invalid_request", f"{what}应大于0元，实为{amount}")
    return amount


def _norm_id(id_number: str) -> str:
    """ID numbers compare without spaces and case (the check character of a 身份证 may be x or X)."""
    return "".join(str(id_number).split()).upper()


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _parse_share(value: Any) -> Fraction | str | None:
    """A share as given on an application: 1/3, 0.5, 50%, a Decimal, or 共同共有 (JOINT)."""
    if value is None or value == "":
        return None
    if isinstance(value, Fraction):
        return value
    text = str(value).strip()
    if text in (JOINT, "joint"):
        return JOINT
    try:
        if text.endswith("%"):
            return Fraction(Decimal(text[:-1])) / 100
        if "/" in text:
            num, den = text.split("/", 1)
            return Fraction(int(num), int(den))
        return Fraction(Decimal(text))
    except (ValueError, ZeroDivisionError, InvalidOperation):
        raise _fail("invalid_request", f"份额应为分数（如1/2）、小数、百分比或“共同共有”，实为{value!r}") from None


@dataclass(frozen=True)
class Holder:
    """A holder 权利人 of a right as written in the register.

    `share_mode` is sole 单独所有, share 按份共有 or joint 共同共有; `share` is the fraction held
    (1 for a sole holder, None for joint holders). Build from case data with `Holder.of(mapping)`;
    a list of holders is checked by `holders_of` (shares must add up to 1, or all be 共同共有).
    """

    name: str
    id_number: str
    id_type: str = "居民身份证"
    share: Decimal | None = None
    share_mode: str | None = None

    @classmethod
    def of(cls, value: Holder | Mapping[str, Any]) -> Holder:
        if isinstance(value, Holder):
            return value
        if not isinstance(value, Mapping):
            raise _fail("invalid_request", f"权利人应为包含姓名（name）和证件号（id_number）的对象，实为{value!r}")
        name = str(value.get("name") or "").strip()
        id_number = str(value.get("id_number") or "").strip()
        if not name or not id_number:
            raise _fail("invalid_request", f"权利人须有姓名/名称和证件号码：{dict(value)!r}")
        share = value.get("share")
        mode = value.get("share_mode")
        return cls(name=name, id_number=id_number, id_type=str(value.get("id_type") or "居民身份证"),
                   share=share, share_mode=mode)  # type: ignore[arg-type]  # normalised by holders_of

    @property
    def share_label(self) -> str:
        """单独所有, 共同共有, or 按份共有 1/3 (the fraction as registered, shown as a simple fraction)."""
        if self.share_mode == "joint":
            return JOINT
        if self.share_mode == "share" and self.share is not None:
            frac = Fraction(self.share).limit_denominator(1000)
            return f"按份共有 {frac.numerator}/{frac.denominator}"
        return SHARE_MODES["sole"]

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "id_type": self.id_type, "id_number": self.id_number,
                "share_mode": self.share_mode, "share": _iso(self.share)}


def holders_of(values: Iterable[Holder | Mapping[str, Any]], *, ownership: bool = True) -> list[Holder]:
    """Check and normalise the holders of one right.

    One holder holds alone (share 1). Several holders either all hold 共同共有 (joint, no shares)
    or hold shares that add up to exactly 1 (按份共有). For an ownership an unstated 共有方式 is
    refused: the register must say which, and 民法典 第308条's presumption is a reviewer's call,
    not the software's. For other rights (several mortgagees, several objection applicants) no
    shares are recorded and several holders are joint.
    """
    holders = [Holder.of(v) for v in values]
    if not holders:
        raise _fail("invalid_request", "至少须有一名权利人")
    seen: set[str] = set()
    for h in holders:
        key = _norm_id(h.id_number)
        if key in seen:
            raise _fail("invalid_request", f"权利人证件号码重复：{h.id_number}")
        seen.add(key)
    if len(holders) == 1:
        share = _parse_share(holders[0].share)
        if share not in (None, 1, JOINT):
            raise _fail("invalid_request", f"单独所有的权利人份额应为1（全部），实为{holders[0].share}")
        return [replace(holders[0], share=Decimal(1), share_mode="sole")]
    if not ownership:
        return [replace(h, share=None, share_mode="joint") for h in holders]
    shares = [_parse_share(h.share) for h in holders]
    if all(s == JOINT for s in shares):
        return [replace(h, share=None, share_mode="joint") for h in holders]
    if any(s is None or s == JOINT for s in shares):
        names = "、".join(h.name for h in holders)
        raise _fail("invalid_request", f"共有人（{names}）须全部写明份额（按份共有）或全部为“共同共有”")
    fractions = [s for s in shares if isinstance(s, Fraction)]
    if any(f <= 0 or f > 1 for f in fractions):
        raise _fail("invalid_request", "每个共有人的份额应大于0且不超过1")
    total = sum(fractions, Fraction(0))
    if abs(total - 1) > Fraction(1, 100_000):
        raise _fail("invalid_request", f"按份共有的份额合计应为1，实为{float(total):.6f}")
    return [replace(h, share=(Decimal(f.numerator) / Decimal(f.denominator)).quantize(_SHARE_PLACES),
                    share_mode="share") for h, f in zip(holders, fractions, strict=True)]


@dataclass(frozen=True)
class UnitInfo:
    unit_number: str
    parcel_number: str
    district_code: str
    address: str
    area: Decimal | None
    use: str
    building: str | None
    floor: str | None
    room: str | None
    created_at: datetime
    created_by_case: str | None
    details: dict[str, Any]

    @property
    def land_unit(self) -> str:
        return _land_unit(self.unit_number)

    @property
    def residential(self) -> bool:
        return self.use == "residential"

    def to_data(self) -> dict[str, Any]:
        return {
            "unit_number": self.unit_number, "parcel_number": self.parcel_number,
            "district_code": self.district_code, "address": self.address, "area": _iso(self.area),
            "use": self.use, "use_label": USES.get(self.use, self.use), "building": self.building,
            "floor": self.floor, "room": self.room, "created_at": _iso(self.created_at),
            "created_by_case": self.created_by_case, "details": dict(self.details),
        }


@dataclass(frozen=True)
class RightInfo:
    """A right as the register shows it, detached from the session (safe to keep and to JSON)."""

    id: int
    unit_number: str
    kind: str
    status: str
    registered_at: datetime
    case_number: str
    ended_at: datetime | None
    end_reason: str | None
    ended_by_case: str | None
    document_number: str | None
    queue_position: int | None
    lapses_on: date | None
    details: dict[str, Any]
    holders: tuple[Holder, ...] = field(default_factory=tuple)

    @property
    def current(self) -> bool:
        return self.status == CURRENT

    @property
    def queued(self) -> bool:
        """A queued seizure 轮候查封, not (yet) in effect."""
        return self.kind == "seizure" and self.queue_position is not None

    @property
    def kind_label(self) -> str:
        if self.queued:
            return "轮候查封"
        if self.kind == "pre_notice":
            return str(self.details.get("pre_notice_kind") or KIND_LABELS["pre_notice"])
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def holder_names(self) -> str:
        return "、".join(h.name for h in self.holders)

    def holder_ids(self) -> frozenset[str]:
        return frozenset(_norm_id(h.id_number) for h in self.holders)

    def to_data(self) -> dict[str, Any]:
        return {
            "id": self.id, "unit_number": self.unit_number, "kind": self.kind, "kind_label": self.kind_label,
            "status": self.status, "registered_at": _iso(self.registered_at), "case_number": self.case_number,
            "ended_at": _iso(self.ended_at), "end_reason": self.end_reason, "ended_by_case": self.ended_by_case,
            "document_number": self.document_number, "queue_position": self.queue_position,
            "queued": self.queued, "lapses_on": _iso(self.lapses_on), "details": dict(self.details),
            "holders": [h.to_data() for h in self.holders],
        }


@dataclass(frozen=True)
class TransferResult:
    """What a transfer did: the ended and the new ownership, and what travelled with the unit."""

    previous: RightInfo
    ownership: RightInfo
    mortgages: tuple[RightInfo, ...]
    """Mortgages on the unit that stay current and now name the new owner as mortgagor."""
    notify_mortgagees: tuple[dict[str, Any], ...]
    """One entry per travelling mortgage: the mortgagee to notify (民法典 第406条)."""
    ended_pre_notices: tuple[RightInfo, ...]
    """Sale pre-notices held by the new owners, now converted into the ownership (预转本)."""
    voided_certificates: tuple[str, ...]
    """Certificates of the previous ownership, voided (收回作废)."""

    def to_data(self) -> dict[str, Any]:
        return {
            "previous_right_id": self.previous.id, "right_id": self.ownership.id,
            "ownership": self.ownership.to_data(),
            "mortgages": [m.to_data() for m in self.mortgages],
            "notify_mortgagees": [dict(n) for n in self.notify_mortgagees],
            "ended_pre_notices": [p.id for p in self.ended_pre_notices],
            "voided_certificates": list(self.voided_certificates),
        }


@dataclass(frozen=True)
class SeizureRelease:
    """A released seizure, the queued seizure that took effect because of it (if any), the queue left."""

    released: RightInfo
    took_effect: RightInfo | None
    queue: tuple[RightInfo, ...]

    def to_data(self) -> dict[str, Any]:
        return {"released": self.released.to_data(),
                "took_effect": self.took_effect.to_data() if self.took_effect else None,
                "queue": [q.to_data() for q in self.queue]}


@dataclass(frozen=True)
class CertificateInfo:
    number: str
    kind: str
    office_code: str
    province: str
    office_name: str
    year: int
    serial: int
    right_id: int
    unit_number: str
    case_number: str
    issued_at: datetime
    voided_at: datetime | None
    void_reason: str | None
    voided_by_case: str | None

    @property
    def voided(self) -> bool:
        return self.voided_at is not None

    @property
    def kind_label(self) -> str:
        return CERTIFICATE_LABELS[self.kind]

    def to_data(self) -> dict[str, Any]:
        return {
            "number": self.number, "kind": self.kind, "kind_label": self.kind_label,
            "office_code": self.office_code, "province": self.province, "office_name": self.office_name,
            "year": self.year, "serial": self.serial, "right_id": self.right_id, "unit_number": self.unit_number,
            "case_number": self.case_number, "issued_at": _iso(self.issued_at), "voided": self.voided,
            "voided_at": _iso(self.voided_at), "void_reason": self.void_reason, "voided_by_case": self.voided_by_case,
        }


def _unit_info(u: RegisterUnit) -> UnitInfo:
    return UnitInfo(u.unit_number, u.parcel_number, u.district_code, u.address, u.area, u.use, u.building,
                    u.floor, u.room, u.created_at, u.created_by_case, dict(u.details or {}))


def _right_info(r: RegisterRight) -> RightInfo:
    holders = tuple(Holder(h.name, h.id_number, h.id_type, h.share, h.share_mode) for h in r.holders)
    return RightInfo(r.id, r.unit_number, r.kind, r.status, r.registered_at, r.case_number, r.ended_at,
                     r.end_reason, r.ended_by_case, r.document_number, r.queue_position, r.lapses_on,
                     dict(r.details or {}), holders)


def _cert_info(c: RegisterCertificate) -> CertificateInfo:
    return CertificateInfo(c.number, c.kind, c.office_code, c.province, c.office_name, c.year, c.serial,
                           c.right_id, c.unit_number, c.case_number, c.issued_at, c.voided_at, c.void_reason,
                           c.voided_by_case)


# -- units -------------------------------------------------------------------------------------


def add_unit(session: Session, unit_number: str, *, address: str, use: str, now: datetime,
             area: Decimal | int | str | float | None = None, building: str | None = None,
             floor: str | int | None = None, room: str | None = None, case_number: str | None = None,
             details: Mapping[str, Any] | None = None) -> UnitInfo:
    """Enter a unit (from the survey or the housing authority's building table 楼盘表).

    `use` is residential or non_residential (住宅 / 非住宅: the registration fee and taxes follow it).
    A unit number already in the register is refused (unit_exists).
    """
    number = _unit(unit_number)
    now = _aware(now)
    if use not in USES:
        raise _fail("invalid_request", f"用途应为 residential（住宅）或 non_residential（非住宅），实为{use!r}")
    if not str(address or "").strip():
        raise _fail("invalid_request", "坐落（address）不能为空")
    area_value = None
    if area is not None and area != "":
        try:
            area_value = Decimal(str(area)).quantize(_MONEY_PLACES, rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise _fail("invalid_request", f"面积应为平方米数，实为{area!r}") from None
        if area_value <= 0:
            raise _fail("invalid_request", f"面积应大于0，实为{area_value}")
    if session.scalar(select(RegisterUnit.id).where(RegisterUnit.unit_number == number)) is not None:
        raise _fail("unit_exists", f"不动产单元{number}已在登记簿中", unit_number=number)
    row = RegisterUnit(unit_number=number, parcel_number=number[:19], district_code=number[:6],
                       address=str(address).strip(), area=area_value, use=use, building=building,
                       floor=None if floor is None else str(floor), room=room, created_at=now,
                       created_by_case=_case(case_number, required=False), details=dict(details or {}))
    session.add(row)
    session.flush()
    return _unit_info(row)


def get_unit(session: Session, unit_number: str) -> UnitInfo | None:
    row = session.scalar(select(RegisterUnit).where(RegisterUnit.unit_number == _unit(unit_number)))
    return _unit_info(row) if row else None


def units_on_parcel(session: Session, parcel: str) -> list[UnitInfo]:
    """The units on a parcel (宗地代码, or any unit number on it), land-only unit included."""
    code = "".join(str(parcel).split()).upper()[:19]
    rows = session.scalars(select(RegisterUnit).where(RegisterUnit.parcel_number == code)
                           .order_by(RegisterUnit.unit_number))
    return [_unit_info(u) for u in rows]


def _lock_unit(session: Session, unit_number: str) -> RegisterUnit:
    number = _unit(unit_number)
    row = session.scalar(select(RegisterUnit).where(RegisterUnit.unit_number == number).with_for_update())
    if row is None:
        raise _fail("unit_not_found", f"不动产单元{number}不在登记簿中，请先录入该单元", unit_number=number)
    return row


# -- reading rights ----------------------------------------------------------------------------


def get_right(session: Session, right_id: int) -> RightInfo:
    row = session.get(RegisterRight, right_id)
    if row is None:
        raise _fail("right_not_found", f"登记簿中没有编号为{right_id}的权利", right_id=right_id)
    return _right_info(row)


def _current_rows(session: Session, unit_numbers: Sequence[str], kinds: Iterable[str] | None = None,
                  *, lock: bool = False) -> list[RegisterRight]:
    q = (select(RegisterRight).where(RegisterRight.unit_number.in_(list(unit_numbers)),
                                     RegisterRight.status == CURRENT)
         .order_by(RegisterRight.registered_at, RegisterRight.id))
    if kinds is not None:
        q = q.where(RegisterRight.kind.in_(list(kinds)))
    if lock:
        q = q.with_for_update()
    return list(session.scalars(q))


def current_rights(session: Session, unit_number: str, kinds: Iterable[str] | None = None, *,
                   include_parcel: bool = False) -> list[RightInfo]:
    """Current rights of a unit, oldest first; with include_parcel also those on its parcel's land-only unit."""
    number = _unit(unit_number)
    units = [number]
    if include_parcel and _land_unit(number) != number:
        units.append(_land_unit(number))
    return [_right_info(r) for r in _current_rows(session, units, kinds)]


def current_ownership(session: Session, unit_number: str) -> RightInfo | None:
    """The current ownership with its holders and shares, or None."""
    rows = _current_rows(session, [_unit(unit_number)], ["ownership"])
    return _right_info(rows[0]) if rows else None


def history(session: Session, unit_number: str) -> list[RightInfo]:
    """Every right ever registered on the unit, current and ended, in the order registered."""
    rows = session.scalars(select(RegisterRight).where(RegisterRight.unit_number == _unit(unit_number))
                           .order_by(RegisterRight.registered_at, RegisterRight.id))
    return [_right_info(r) for r in rows]


# -- writing rights ----------------------------------------------------------------------------


def _new_right(session: Session, unit_number: str, kind: str, holders: Sequence[Holder], *, case_number: str,
               now: datetime, details: Mapping[str, Any], **typed: Any) -> RegisterRight:
    row = RegisterRight(unit_number=unit_number, kind=kind, status=CURRENT, registered_at=now,
                        case_number=case_number, details=dict(details), **typed)
    row.holders = [RegisterRightHolder(position=i, name=h.name, id_type=h.id_type, id_number=h.id_number,
                                       share_mode=h.share_mode or "sole", share=h.share)
                   for i, h in enumerate(holders, start=1)]
    session.add(row)
    session.flush()
    return row


def _end(session: Session, row: RegisterRight, *, reason: str, case_number: str | None, now: datetime
         ) -> list[str]:
    """End a right (never delete it) and void its certificates still in force; returns their numbers."""
    row.status = ENDED
    row.ended_at = now
    row.end_reason = reason
    row.ended_by_case = case_number
    if row.kind == "seizure":
        row.queue_position = None
    voided = []
    certs = list(session.scalars(select(RegisterCertificate).where(RegisterCertificate.right_id == row.id,
                                                                   RegisterCertificate.voided_at.is_(None))))
    for cert in certs:
        cert.voided_at = now
        cert.void_reason = f"权利已终止（{reason}），原证书收回作废"
        cert.voided_by_case = case_number
        voided.append(cert.number)
    session.flush()
    return voided


def _owners(row: RegisterRight | None) -> list[dict[str, Any]]:
    if row is None:
        return []
    return [{"name": h.name, "id_type": h.id_type, "id_number": h.id_number} for h in row.holders]


def _seizure_rows(session: Session, unit_number: str) -> list[RegisterRight]:
    units = [unit_number] if unit_number == _land_unit(unit_number) else [unit_number, _land_unit(unit_number)]
    return _current_rows(session, units, ["seizure"])


def _refuse_if_seized(session: Session, unit_number: str, what: str, basis: str) -> None:
    seized = _seizure_rows(session, unit_number)
    if seized:
        s = seized[0]
        where = "该不动产单元" if s.unit_number == unit_number else f"该不动产单元所在宗地（{s.unit_number}）"
        court = s.details.get("court", "")
        raise _fail("unit_seized", f"{where}已被{court}查封（{s.document_number}），不得{what}（{basis}）",
                    unit_number=unit_number, right_id=s.id, document_number=s.document_number)


def register_ownership(session: Session, unit_number: str, holders: Iterable[Holder | Mapping[str, Any]], *,
                       case_number: str, now: datetime, details: Mapping[str, Any] | None = None) -> RightInfo:
    """First registration 首次登记 of ownership on a unit that has no current ownership.

    On a land-only unit (…W00000000) the ownership stands for the land use right 建设用地使用权.
    """
    now, case = _aware(now), _case(case_number)
    unit = _lock_unit(session, unit_number)
    if _current_rows(session, [unit.unit_number], ["ownership"]):
        raise _fail("ownership_exists", f"不动产单元{unit.unit_number}已有现势所有权登记，应办理转移登记",
                    unit_number=unit.unit_number)
    people = holders_of(holders, ownership=True)
    row = _new_right(session, unit.unit_number, "ownership", people, case_number=case, now=now,
                     details={"registration": "首次登记", **dict(details or {})})
    return _right_info(row)


def transfer_ownership(session: Session, unit_number: str, holders: Iterable[Holder | Mapping[str, Any]], *,
                       case_number: str, now: datetime, reason: str = "买卖", court_ordered: bool = False,
                       expected_previous: int | None = None, details: Mapping[str, Any] | None = None
                       ) -> TransferResult:
    """Transfer registration 转移登记: end the current ownership, create the new one.

    The unit's current mortgages stay current and travel with it (民法典 第406条): each one's
    mortgagor becomes the new owners (the change is recorded in the mortgage's details) and the
    result lists the mortgagees the office must notify. A current sale pre-notice held by exactly
    the new owners is converted (预告登记转本登记) and ends. Certificates of the previous ownership
    are voided. A seized unit, or one on a seized parcel, is refused (unit_seized) unless
    `court_ordered` (a court's ruling transferring it 协助执行).

    `expected_previous` is the id of the ownership the case was reviewed against: if another case
    has transferred the unit since, the transfer is refused (ownership_changed) instead of
    transferring from someone who never applied.
    """
    now, case = _aware(now), _case(case_number)
    unit = _lock_unit(session, unit_number)
    number = unit.unit_number
    if not court_ordered:
        _refuse_if_seized(session, number, "办理转移登记", "城市房地产管理法第三十八条")
    previous_rows = _current_rows(session, [number], ["ownership"], lock=True)
    if not previous_rows:
        raise _fail("no_current_ownership", f"不动产单元{number}没有现势所有权登记，不能办理转移登记，应先办理首次登记",
                    unit_number=number)
    previous = previous_rows[0]
    if expected_previous is not None and previous.id != expected_previous:
        owners = _right_info(previous).holder_names
        raise _fail("ownership_changed", f"不动产单元{number}的所有权在审核后已变更（现权利人{owners}，"
                    f"登记簿权利编号{previous.id}），请重新审核", unit_number=number, right_id=previous.id)
    people = holders_of(holders, ownership=True)
    old_owners = _owners(previous)
    voided = _end(session, previous, reason=f"转移登记（{reason}）", case_number=case, now=now)
    new = _new_right(session, number, "ownership", people, case_number=case, now=now,
                     details={"registration": "转移登记", "reason": reason, "previous_right_id": previous.id,
                              "court_ordered": court_ordered, **dict(details or {})})
    new_owners = _owners(new)
    new_ids = frozenset(_norm_id(h.id_number) for h in people)

    travelling: list[RegisterRight] = []
    notify: list[dict[str, Any]] = []
    for m in _current_rows(session, [number], ["mortgage"], lock=True):
        d = dict(m.details or {})
        changes = list(d.get("mortgagor_changes", []))
        changes.append({"at": now.isoformat(), "case_number": case, "from": d.get("mortgagor", old_owners),
                        "to": new_owners, "ownership_right_id": new.id})
        d["mortgagor"] = new_owners
        d["mortgagor_changes"] = changes
        m.details = d
        travelling.append(m)
        notify.append({
            "mortgage_id": m.id, "mortgagee": d.get("mortgagee"), "amount": d.get("amount"),
            "mode": d.get("mode"), "unit_number": number, "case_number": case,
            "previous_owners": old_owners, "new_owners": new_owners,
            "reason": "抵押财产已转让，抵押权不受影响，依法通知抵押权人（民法典第四百零六条）",
        })
    ended_notices: list[RegisterRight] = []
    for p in _current_rows(session, [number], ["pre_notice"], lock=True):
        holder_ids = frozenset(_norm_id(h.id_number) for h in p.holders)
        if p.details.get("pre_notice_kind") in SALE_PRE_NOTICES and holder_ids == new_ids:
            voided += _end(session, p, reason="预告登记转为本登记（转移登记）", case_number=case, now=now)
            ended_notices.append(p)
    session.flush()
    return TransferResult(previous=_right_info(previous), ownership=_right_info(new),
                          mortgages=tuple(_right_info(m) for m in travelling), notify_mortgagees=tuple(notify),
                          ended_pre_notices=tuple(_right_info(p) for p in ended_notices),
                          voided_certificates=tuple(voided))


def register_mortgage(session: Session, unit_number: str, *, mortgagee: Holder | Mapping[str, Any]
                      | Sequence[Holder | Mapping[str, Any]], amount: Decimal | int | str | float,
                      term_start: date | str, term_end: date | str, case_number: str, now: datetime,
                      mode: str = "ordinary", details: Mapping[str, Any] | None = None) -> RightInfo:
    """Mortgage registration 抵押权登记 on a unit with a current ownership (its holders are the mortgagor).

    `mode` is ordinary 一般抵押 (amount = 被担保主债权数额) or maximum_amount 最高额抵押
    (amount = 最高债权额). A seized unit is refused (民法典 第399条). A current mortgage pre-notice
    held by the same mortgagee converts into this mortgage and ends.
    """
    now, case = _aware(now), _case(case_number)
    if mode not in MORTGAGE_MODES:
        raise _fail("invalid_request",
                    f"抵押方式应为 ordinary（一般抵押）或 maximum_amount（最高额抵押），实为{mode!r}")
    money = _money(amount, "最高债权额" if mode == "maximum_amount" else "被担保主债权数额")
    start, end = _date(term_start, "债务履行期限起"), _date(term_end, "债务履行期限止")
    if start is None or end is None or end < start:
        raise _fail("invalid_request", f"债务履行期限应为起止日期且止不早于起，实为{term_start}至{term_end}")
    unit = _lock_unit(session, unit_number)
    number = unit.unit_number
    _refuse_if_seized(session, number, "设定抵押", "民法典第三百九十九条")
    owners = _current_rows(session, [number], ["ownership"])
    if not owners:
        raise _fail("no_current_ownership", f"不动产单元{number}没有现势所有权登记，不能办理抵押权登记",
                    unit_number=number)
    given = [mortgagee] if isinstance(mortgagee, Holder | Mapping) else list(mortgagee)
    banks = holders_of(given, ownership=False)
    rank = len(_current_rows(session, [number], ["mortgage"])) + 1
    row = _new_right(session, number, "mortgage", banks, case_number=case, now=now, details={
        "mortgagee": [h.to_data() for h in banks] if len(banks) > 1 else banks[0].to_data(),
        "mortgagor": _owners(owners[0]), "amount": str(money), "currency": "CNY",
        "term_start": start.isoformat(), "term_end": end.isoformat(), "mode": mode,
        "mode_label": MORTGAGE_MODES[mode], "rank": rank, **dict(details or {}),
    })
    bank_ids = frozenset(_norm_id(h.id_number) for h in banks)
    for p in _current_rows(session, [number], ["pre_notice"], lock=True):
        if p.details.get("pre_notice_kind") in MORTGAGE_PRE_NOTICES and \
                frozenset(_norm_id(h.id_number) for h in p.holders) == bank_ids:
            _end(session, p, reason="预告登记转为本登记（抵押权登记）", case_number=case, now=now)
    return _right_info(row)


def cancel_mortgage(session: Session, mortgage_id: int, *, case_number: str, now: datetime,
                    reason: str = "抵押权注销（主债权消灭）") -> RightInfo:
    """Mortgage cancellation 抵押权注销登记: the mortgage ends; its registration certificate is voided."""
    return _end_kind(session, mortgage_id, "mortgage", reason=reason, case_number=case_number, now=now)


def _end_kind(session: Session, right_id: int, kind: str, *, reason: str, case_number: str, now: datetime
              ) -> RightInfo:
    now, case = _aware(now), _case(case_number)
    row = session.get(RegisterRight, right_id)
    if row is None or row.kind != kind:
        raise _fail("right_not_found", f"登记簿中没有编号为{right_id}的{KIND_LABELS[kind]}", right_id=right_id)
    _lock_unit(session, row.unit_number)
    session.refresh(row)
    if row.status != CURRENT:
        raise _fail("right_not_current",
                    f"{KIND_LABELS[kind]}（编号{right_id}）已于{row.ended_at}终止：{row.end_reason}", right_id=right_id)
    _end(session, row, reason=reason, case_number=case, now=now)
    return _right_info(row)


def register_pre_notice(session: Session, unit_number: str, *, kind: str,
                        holders: Iterable[Holder | Mapping[str, Any]], case_number: str, now: datetime,
                        obligors: Iterable[Holder | Mapping[str, Any]] | None = None,
                        details: Mapping[str, Any] | None = None) -> RightInfo:
    """Pre-notice registration 预告登记 of `kind` (one of PRE_NOTICE_KINDS) for its holders (the buyers,
    or the mortgagee for a mortgage pre-notice). `obligors` (the seller or developer) are kept in details.

    No current ownership is needed: a flat sold off-plan has none yet (the developer's right sits on
    the parcel's land-only unit). Consent and seizure questions are the reviewer's (domain/rules.py).
    """
    now, case = _aware(now), _case(case_number)
    if kind not in PRE_NOTICE_KINDS:
        raise _fail("invalid_request", f"预告登记种类应为{'、'.join(PRE_NOTICE_KINDS)}之一，实为{kind!r}")
    unit = _lock_unit(session, unit_number)
    people = holders_of(holders, ownership=kind in SALE_PRE_NOTICES)
    others = [h.to_data() for h in holders_of(obligors, ownership=False)] if obligors else []
    row = _new_right(session, unit.unit_number, "pre_notice", people, case_number=case, now=now, details={
        "pre_notice_kind": kind, "holder": [h.to_data() for h in people], "obligors": others,
        **dict(details or {}),
    })
    return _right_info(row)


def cancel_pre_notice(session: Session, right_id: int, *, case_number: str, now: datetime,
                      reason: str = "预告登记注销") -> RightInfo:
    return _end_kind(session, right_id, "pre_notice", reason=reason, case_number=case_number, now=now)


def register_seizure(session: Session, unit_number: str, *, court: str, document_number: str,
                     term_start: date | str, term_end: date | str | None, case_number: str, now: datetime,
                     seizure_kind: str = "查封", details: Mapping[str, Any] | None = None) -> RightInfo:
    """Seizure registration 查封登记 on the court's notice (registered at once).

    If the unit already has a current seizure (in effect or queued), this one is queued 轮候查封
    behind the others: `queue_position` 1 is next in line. It takes effect when the seizures
    before it are released (查封扣押冻结规定 第26条). A document number already current on the
    unit is refused (a duplicate notice).
    """
    now, case = _aware(now), _case(case_number)
    if seizure_kind not in SEIZURE_KINDS:
        raise _fail("invalid_request", f"查封类型应为{'、'.join(SEIZURE_KINDS)}之一，实为{seizure_kind!r}")
    if not str(court or "").strip() or not str(document_number or "").strip():
        raise _fail("invalid_request", "查封登记须有查封机关（court）和查封文号（document_number）")
    start, end = _date(term_start, "查封期限起"), _date(term_end, "查封期限止")
    if start is None or (end is not None and end < start):
        raise _fail("invalid_request", f"查封期限应有起始日期且止不早于起，实为{term_start}至{term_end}")
    unit = _lock_unit(session, unit_number)
    number = unit.unit_number
    existing = _current_rows(session, [number], ["seizure"], lock=True)
    doc = str(document_number).strip()
    if any(s.document_number == doc for s in existing):
        raise _fail("duplicate_seizure", f"文号{doc}的查封已登记在不动产单元{number}上", unit_number=number,
                    document_number=doc)
    position = None
    if existing:
        position = max((s.queue_position or 0) for s in existing) + 1
    row = _new_right(session, number, "seizure", [], case_number=case, now=now, document_number=doc,
                     queue_position=position, details={
                         "court": str(court).strip(), "document_number": doc, "seizure_kind": seizure_kind,
                         "term_start": start.isoformat(), "term_end": end.isoformat() if end else None,
                         "queued": position is not None, "queue_position_at_registration": position,
                         **dict(details or {}),
                     })
    return _right_info(row)


def _find_seizure(session: Session, right_id: int | None, document_number: str | None,
                  unit_number: str | None) -> RegisterRight:
    if right_id is not None:
        row = session.get(RegisterRight, right_id)
        if row is None or row.kind != "seizure":
            raise _fail("seizure_not_found", f"登记簿中没有编号为{right_id}的查封", right_id=right_id)
        return row
    if not document_number:
        raise _fail("invalid_request", "解封须指明查封（right_id）或原查封文号（document_number）")
    q = select(RegisterRight).where(RegisterRight.kind == "seizure", RegisterRight.document_number == document_number,
                                    RegisterRight.status == CURRENT)
    if unit_number:
        q = q.where(RegisterRight.unit_number == _unit(unit_number))
    rows = list(session.scalars(q))
    if not rows:
        raise _fail("seizure_not_found", f"登记簿中没有文号为{document_number}的现势查封",
                    document_number=document_number)
    if len(rows) > 1:
        raise _fail("invalid_request", f"文号{document_number}查封了多个不动产单元，请指明不动产单元号",
                    units=[r.unit_number for r in rows])
    return rows[0]


def release_seizure(session: Session, *, case_number: str, now: datetime, right_id: int | None = None,
                    document_number: str | None = None, unit_number: str | None = None,
                    release_document_number: str | None = None, court: str | None = None) -> SeizureRelease:
    """Release 解封 a seizure, named by its id or by the court's original document number.

    Releasing the seizure in effect makes the first queued seizure take effect, recorded in its
    details (took_effect_at, took_effect_by_case, took_effect_on_release_of). Its term is moved
    to run from that day for the length the court set, as practised for 轮候查封 (法发〔2004〕5号);
    the term as queued is kept. The seizures behind it move up one place.
    """
    now, case = _aware(now), _case(case_number)
    found = _find_seizure(session, right_id, document_number, unit_number)
    _lock_unit(session, found.unit_number)
    session.refresh(found)
    if found.status != CURRENT:
        raise _fail("right_not_current", f"查封（{found.document_number}）已于{found.ended_at}终止：{found.end_reason}",
                    right_id=found.id)
    was_in_effect = found.queue_position is None
    d = dict(found.details or {})
    d["release"] = {"document_number": release_document_number, "court": court, "case_number": case,
                    "at": now.isoformat()}
    found.details = d
    label = f"解除查封（{release_document_number}）" if release_document_number else "解除查封"
    if not was_in_effect:
        label = f"撤销轮候查封（{release_document_number}）" if release_document_number else "撤销轮候查封"
    _end(session, found, reason=label, case_number=case, now=now)

    took_effect, queue = _advance_queue(session, found, was_in_effect, case_number=case, now=now)
    return SeizureRelease(released=_right_info(found),
                          took_effect=_right_info(took_effect) if took_effect else None,
                          queue=tuple(_right_info(s) for s in queue))


def _advance_queue(session: Session, found: RegisterRight, was_in_effect: bool, *, case_number: str | None,
                   now: datetime) -> tuple[RegisterRight | None, list[RegisterRight]]:
    """After a seizure ends: the first queued one takes effect (if the ended one was in effect),
    the others move up one place."""
    case = case_number
    queue = sorted((s for s in _current_rows(session, [found.unit_number], ["seizure"], lock=True)
                    if s.queue_position is not None), key=lambda s: s.queue_position or 0)
    took_effect = None
    if was_in_effect and queue:
        first = queue.pop(0)
        fd = dict(first.details or {})
        today = _local_day(now)
        fd["term_as_queued"] = {"term_start": fd.get("term_start"), "term_end": fd.get("term_end")}
        if fd.get("term_start") and fd.get("term_end"):
            length = date.fromisoformat(fd["term_end"]) - date.fromisoformat(fd["term_start"])
            fd["term_end"] = (today + length).isoformat()
        fd["term_start"] = today.isoformat()
        fd.update(queued=False, took_effect_at=now.isoformat(), took_effect_by_case=case,
                  took_effect_on_release_of=found.id)
        first.details = fd
        first.queue_position = None
        took_effect = first
    for i, s in enumerate(queue, start=1):
        s.queue_position = i
    session.flush()
    return took_effect, queue


def expire_seizures(session: Session, as_of: date, *, now: datetime) -> list[SeizureRelease]:
    """End every seizure in effect whose term ended before `as_of` without renewal.

    A seizure lapses when its term runs out unless the court renewed it (最高法 查封扣押冻结规定
    第二十七条); the first queued seizure then takes effect, as on a release. Run by the worker.
    """
    now = _aware(now)
    rows = list(session.scalars(
        select(RegisterRight).where(RegisterRight.kind == "seizure", RegisterRight.status == CURRENT,
                                    RegisterRight.queue_position.is_(None))
        .order_by(RegisterRight.id).with_for_update()))
    ended = []
    for row in rows:
        term_end = (row.details or {}).get("term_end")
        if not term_end or date.fromisoformat(term_end) >= as_of:
            continue
        reason = f"查封期限于{term_end}届满未续封，查封失效（最高法查封扣押冻结规定第二十七条）"
        _end(session, row, reason=reason, case_number=None, now=now)
        took_effect, queue = _advance_queue(session, row, True, case_number=None, now=now)
        ended.append(SeizureRelease(released=_right_info(row),
                                    took_effect=_right_info(took_effect) if took_effect else None,
                                    queue=tuple(_right_info(s) for s in queue)))
    return ended


def renew_seizure(session: Session, right_id: int, *, term_end: date | str, document_number: str,
                  case_number: str, now: datetime) -> RightInfo:
    """Renewal 续封: the court extends a current seizure's term; the renewal is appended to its details."""
    now, case = _aware(now), _case(case_number)
    row = _find_seizure(session, right_id, None, None)
    _lock_unit(session, row.unit_number)
    session.refresh(row)
    if row.status != CURRENT:
        raise _fail("right_not_current", f"查封（{row.document_number}）已终止，不能续封", right_id=row.id)
    new_end = _date(term_end, "续封期限止")
    d = dict(row.details or {})
    if new_end is None or (d.get("term_end") and new_end <= date.fromisoformat(d["term_end"])):
        raise _fail("invalid_request", f"续封期限止应晚于原查封期限止（{d.get('term_end')}），实为{term_end}")
    d["renewals"] = [*d.get("renewals", []), {"document_number": document_number, "case_number": case,
                                              "at": now.isoformat(), "previous_term_end": d.get("term_end"),
                                              "term_end": new_end.isoformat()}]
    d["term_end"] = new_end.isoformat()
    row.details = d
    session.flush()
    return _right_info(row)


def objection_lapses_on(registered: datetime | date) -> date:
    """The last day the objection's applicant can sue; the objection lapses at the end of it.

    民法典 第220条: it lapses if no suit is filed within 15 days of registration. Periods are
    counted from the next day (第201条), and a period ending on a public holiday or weekend runs to
    the next working day (第203条), so: local registration date + 15 days, moved to the next
    working day of the office calendar if it is not one.
    """
    day = registered.astimezone(SHANGHAI).date() if isinstance(registered, datetime) else registered
    last = day + timedelta(days=OBJECTION_SUIT_DAYS)
    while not calendar.is_workday(last):
        last += timedelta(days=1)
    return last


def register_objection(session: Session, unit_number: str, *, applicant: Holder | Mapping[str, Any]
                       | Sequence[Holder | Mapping[str, Any]], reason: str, case_number: str, now: datetime,
                       details: Mapping[str, Any] | None = None) -> RightInfo:
    """Objection registration 异议登记 (民法典 第220条); `lapses_on` is set by `objection_lapses_on`."""
    now, case = _aware(now), _case(case_number)
    if not str(reason or "").strip():
        raise _fail("invalid_request", "异议登记须写明异议事项（reason）")
    unit = _lock_unit(session, unit_number)
    given = [applicant] if isinstance(applicant, Holder | Mapping) else list(applicant)
    people = holders_of(given, ownership=False)
    lapses = objection_lapses_on(now)
    row = _new_right(session, unit.unit_number, "objection", people, case_number=case, now=now,
                     lapses_on=lapses, details={
                         "applicant": [h.to_data() for h in people], "reason": str(reason).strip(),
                         "suit": None, "lapses_on": lapses.isoformat(), **dict(details or {}),
                     })
    return _right_info(row)


def record_objection_suit(session: Session, objection_id: int, *, court: str, filed_on: date | str,
                          case_number: str, now: datetime, suit_number: str | None = None) -> RightInfo:
    """Record that the applicant sued in time: the objection no longer lapses by itself.

    It stays until cancelled (注销异议登记) on the court's judgment or the applicant's withdrawal.
    A suit filed after `lapses_on` is refused: the objection had already lapsed.
    """
    now, case = _aware(now), _case(case_number)
    row = session.get(RegisterRight, objection_id)
    if row is None or row.kind != "objection":
        raise _fail("right_not_found", f"登记簿中没有编号为{objection_id}的异议登记", right_id=objection_id)
    _lock_unit(session, row.unit_number)
    session.refresh(row)
    if row.status != CURRENT:
        raise _fail("right_not_current", f"异议登记（编号{objection_id}）已终止：{row.end_reason}", right_id=row.id)
    filed = _date(filed_on, "起诉日期")
    if filed is None:
        raise _fail("invalid_request", "须写明起诉日期（filed_on）")
    if row.lapses_on is not None and filed > row.lapses_on:
        raise _fail("suit_too_late", f"起诉日期{filed}晚于异议登记失效前最后一日{row.lapses_on}，异议登记已失效",
                    right_id=row.id)
    d = dict(row.details or {})
    d["suit"] = {"court": court, "filed_on": filed.isoformat(), "suit_number": suit_number, "case_number": case,
                 "recorded_at": now.isoformat()}
    row.details = d
    row.lapses_on = None
    session.flush()
    return _right_info(row)


def lapse_objections(session: Session, as_of: date, *, now: datetime, case_number: str | None = None
                     ) -> list[RightInfo]:
    """End every current objection whose last day to sue is before `as_of` and no suit was recorded.

    Run daily by the worker (case_number None: the register's own bookkeeping) or by a case.
    """
    now = _aware(now)
    rows = list(session.scalars(
        select(RegisterRight).where(RegisterRight.kind == "objection", RegisterRight.status == CURRENT,
                                    RegisterRight.lapses_on.is_not(None), RegisterRight.lapses_on < as_of)
        .order_by(RegisterRight.id).with_for_update()))
    ended = []
    for row in rows:
        reason = f"申请人未在异议登记之日起十五日内起诉，异议登记于{row.lapses_on}届满后失效（民法典第二百二十条）"
        _end(session, row, reason=reason, case_number=_case(case_number, required=False), now=now)
        ended.append(_right_info(row))
    return ended


def cancel_objection(session: Session, right_id: int, *, case_number: str, now: datetime,
                     reason: str = "异议登记注销") -> RightInfo:
    return _end_kind(session, right_id, "objection", reason=reason, case_number=case_number, now=now)


# -- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Office:
    """The registration office that numbers certificates: 浙(2026)杭州市不动产权第0000001号.

    `province` is the province's one-character abbreviation, `name` the city or county as printed
    on the certificate, `code` its administrative division code (numbers are counted per code).
    """

    province: str = "浙"
    name: str = "杭州市"
    code: str = "330100"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Office:
        env = os.environ if environ is None else environ
        return cls(province=env.get("ONEWINDOW_OFFICE_PROVINCE", cls.province),
                   name=env.get("ONEWINDOW_OFFICE_NAME", cls.name),
                   code=env.get("ONEWINDOW_OFFICE_CODE", cls.code))


def certificate_number(office: Office, kind: str, year: int, serial: int) -> str:
    """浙(2026)杭州市不动产权第0000001号 (title) or 浙(2026)杭州市不动产证明第0000001号 (registration)."""
    if kind not in CERTIFICATE_KINDS:
        raise ValueError(f"certificate kind must be title or registration, not {kind!r}")
    return f"{office.province}({year}){office.name}{CERTIFICATE_KINDS[kind]}第{serial:07d}号"


_CERT_RE = re.compile(r"^(?P<province>.+?)[(（](?P<year>\d{4})[)）](?P<office>.*?)"
                      r"(?P<label>不动产权|不动产证明)第(?P<serial>\d+)号$")


def parse_certificate_number(number: str) -> dict[str, Any]:
    """Split a certificate number into province, year, office name, kind and serial (full-width brackets too)."""
    m = _CERT_RE.match(str(number).strip())
    if not m:
        raise ValueError(f"不动产权证书号/不动产登记证明号格式应为“浙(2026)杭州市不动产权第0000001号”，实为{number!r}")
    kind = "title" if m["label"] == "不动产权" else "registration"
    return {"province": m["province"], "year": int(m["year"]), "office_name": m["office"], "kind": kind,
            "serial": int(m["serial"])}


def _counter_name(office: Office, kind: str, year: int) -> str:
    return f"certificate:{office.code}:{kind}:{year}"


def issue_certificate(session: Session, office: Office, kind: str, right_id: int, case_number: str,
                      now: datetime) -> CertificateInfo:
    """Number and record a certificate for a current right.

    kind "title" 不动产权证书 documents an ownership; "registration" 不动产登记证明 a mortgage,
    pre-notice or objection. The serial comes from a gapless counter per office, kind and year
    (Asia/Shanghai year of `now`), drawn in the caller's transaction: concurrent issuers take
    turns on the counter row, and a transaction that rolls back gives its number back, so the
    numbers issued are unique and without gaps. Draw the number late in the step: the counter
    row stays locked until the transaction ends.
    """
    now, case = _aware(now), _case(case_number)
    if kind not in CERTIFICATE_KINDS:
        raise _fail("invalid_request",
                    f"证书种类应为 title（不动产权证书）或 registration（不动产登记证明），实为{kind!r}")
    right = session.get(RegisterRight, right_id)
    if right is None:
        raise _fail("right_not_found", f"登记簿中没有编号为{right_id}的权利", right_id=right_id)
    # the unit lock orders this after any transfer or cancellation in flight, so a certificate is
    # never issued for a right that has just ended (and so escaped the voiding of its certificates)
    _lock_unit(session, right.unit_number)
    session.refresh(right)
    if right.status != CURRENT:
        raise _fail("right_not_current", f"{KIND_LABELS[right.kind]}（编号{right_id}）已终止，不能发证",
                    right_id=right_id)
    if right.kind not in _CERTIFIED_KINDS[kind]:
        proper = next((k for k, kinds in _CERTIFIED_KINDS.items() if right.kind in kinds), None)
        hint = f"，应发{CERTIFICATE_LABELS[proper]}" if proper else "，该登记不发证书"
        raise _fail("wrong_certificate_kind", f"{KIND_LABELS[right.kind]}不发{CERTIFICATE_LABELS[kind]}{hint}",
                    right_id=right_id, kind=kind)
    year = now.astimezone(SHANGHAI).year
    serial = next_counter(session, _counter_name(office, kind, year))
    row = RegisterCertificate(number=certificate_number(office, kind, year, serial), kind=kind,
                              office_code=office.code, province=office.province, office_name=office.name,
                              year=year, serial=serial, right_id=right.id, unit_number=right.unit_number,
                              case_number=case, issued_at=now)
    session.add(row)
    session.flush()
    return _cert_info(row)


def void_certificate(session: Session, number: str, reason: str, case_number: str | None, now: datetime
                     ) -> CertificateInfo:
    """Void a certificate (作废: misprint, lost and replaced, right ended). The number stays used: it
    is never issued again, so the sequence still shows it, voided, with the reason."""
    now = _aware(now)
    if not str(reason or "").strip():
        raise _fail("invalid_request", "作废证书须写明原因")
    row = session.scalar(select(RegisterCertificate).where(RegisterCertificate.number == str(number).strip())
                         .with_for_update())
    if row is None:
        raise _fail("certificate_not_found", f"没有编号为{number}的证书", number=number)
    if row.voided_at is not None:
        when = row.voided_at.astimezone(SHANGHAI)
        raise _fail("certificate_voided", f"证书{number}已于{when:%Y-%m-%d}作废：{row.void_reason}", number=number)
    row.voided_at = now
    row.void_reason = str(reason).strip()
    row.voided_by_case = _case(case_number, required=False)
    session.flush()
    return _cert_info(row)


def get_certificate(session: Session, number: str) -> CertificateInfo | None:
    row = session.scalar(select(RegisterCertificate).where(RegisterCertificate.number == str(number).strip()))
    return _cert_info(row) if row else None


def certificates_for_right(session: Session, right_id: int) -> list[CertificateInfo]:
    rows = session.scalars(select(RegisterCertificate).where(RegisterCertificate.right_id == right_id)
                           .order_by(RegisterCertificate.id))
    return [_cert_info(c) for c in rows]

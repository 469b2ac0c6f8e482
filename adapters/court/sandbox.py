"""The courts in-process: seizures on units, and the orders a court sends the registry (府院联办).

State lives in `sandbox_court_*` tables. `issue_order` is the sandbox's stand-in for a judge:
- a seizure order (查封) records a seizure; when the unit already carries a seizure in force it is
  recorded as a queued seizure (轮候查封), which takes effect by itself when the earlier one is
  released (最高法 查封扣押冻结规定 第26条), its term then counted from that day;
- a release (解封) ends the seizure it names (`released_document_no`); only the court that seized may
  release;
- a renewal (续封) moves the end of a seizure in force to the new `ends_on`.
A seizure of real property may last at most 3 years, and so may each renewal (民诉法解释 第485条);
"3 years from 2026-06-15" ends on 2029-06-15 (民法典 第二百零一条: the first day is not counted).

Every order gets an `order_id` like "FY2026-000001": the number after the dash is one counter for
all orders, taken under a row lock in the order's own transaction, so orders commit in id order
and a poller reading `fetch_orders(after_id)` never skips one committed late. The lock is taken
first, so orders are also applied one at a time (a second seizure of a unit sees the first and queues).

A seizure is in force on a day when starts_on <= day <= ends_on and it has not been released
(today is the Asia/Shanghai date of the injected clock). `check_seizures` also returns the
seizures on the parcel's land-only unit (the first 19 characters + W00000000), which bind every
unit on the parcel.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from sqlalchemy import Column, Date, Integer, String, Table, UniqueConstraint, select
from sqlalchemy.orm import Session

from adapters.court import CourtOrder, Seizure
from adapters.sandbox_seed import add_years, land_only_unit
from adapters.sandbox_store import SANDBOX_METADATA, check_unit, ensure_tables, lock_counter, retry_on_conflict
from domain.clock import Clock
from domain.errors import BusinessError
from storage.db import Database
from storage.models import UtcDateTime

__all__ = ["MAX_SEIZURE_YEARS", "SandboxCourt"]

MAX_SEIZURE_YEARS = 3  # 民诉法解释(2022) 第485条: real property

seizures = Table(
    "sandbox_court_seizures", SANDBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("court", String(200), nullable=False),
    Column("document_no", String(100), nullable=False),
    Column("kind", String(20), nullable=False),  # seizure | queued_seizure | pre_seizure
    Column("unit_number", String(28), nullable=False, index=True),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("order_id", String(20)),  # the order that created it (None: seeded)
    Column("released_on", Date),
    Column("release_document_no", String(100)),
    UniqueConstraint("document_no", "unit_number", name="uq_sandbox_court_seizures_document_unit"),
)

orders = Table(
    "sandbox_court_orders", SANDBOX_METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("order_id", String(20), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # seizure | release | renewal
    Column("court", String(200), nullable=False),
    Column("document_no", String(100), nullable=False),
    Column("unit_number", String(28), nullable=False),
    Column("starts_on", Date),
    Column("ends_on", Date),
    Column("released_document_no", String(100)),
    Column("issued_at", UtcDateTime(), nullable=False),
    UniqueConstraint("kind", "document_no", "unit_number", name="uq_sandbox_court_orders_document"),
)

counters = Table(
    "sandbox_court_counters", SANDBOX_METADATA,
    Column("name", String(100), primary_key=True),
    Column("value", Integer, nullable=False),
)

TABLES = (seizures, orders, counters)
ORDER_ID_RE = re.compile(r"^FY\d{4}-(\d{6,})$")



def _check_term(starts_on: date, ends_on: date, what: str) -> None:
    if ends_on < starts_on:
        raise BusinessError("SEIZURE_TERM_INVALID", f"{what}期限终止日{ends_on}早于起始日{starts_on}",
                            starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat())
    latest = add_years(starts_on, MAX_SEIZURE_YEARS)
    if ends_on > latest:
        raise BusinessError(
            "SEIZURE_TOO_LONG",
            f"{what}不动产的期限不得超过{MAX_SEIZURE_YEARS}年（民诉法解释第四百八十五条）："
            f"自{starts_on}起最迟至{latest}，所请至{ends_on}；期满需要继续查封的，应当办理续封",
            starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat(), latest=latest.isoformat(),
        )


def _seizure(row: Any) -> Seizure:
    return Seizure(court=row.court, document_no=row.document_no, kind=row.kind, unit_number=row.unit_number,
                   starts_on=row.starts_on, ends_on=row.ends_on)


def _order(row: Any) -> CourtOrder:
    return CourtOrder(order_id=row.order_id, kind=row.kind, court=row.court, document_no=row.document_no,
                      unit_number=row.unit_number, starts_on=row.starts_on, ends_on=row.ends_on,
                      released_document_no=row.released_document_no, issued_at=row.issued_at)


class SandboxCourt:
    """The courts' system, in-process and realistic. Implements `CourtSystem`."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        ensure_tables(db)

    def _today(self) -> date:
        return self.clock.local_now().date()

    # ------------------------------------------------------------------------ CourtSystem

    def check_seizures(self, unit_number: str) -> list[Seizure]:
        """Seizures in force today on the unit and on its parcel's land-only unit, earliest first."""
        unit_number = check_unit(unit_number)
        today = self._today()
        targets = {unit_number, land_only_unit(unit_number)}
        with self.db.read() as s:
            rows = s.execute(
                select(seizures)
                .where(seizures.c.unit_number.in_(targets), seizures.c.released_on.is_(None),
                       seizures.c.starts_on <= today, seizures.c.ends_on >= today)
                .order_by(seizures.c.starts_on, seizures.c.id)
            ).all()
        return [_seizure(r) for r in rows]

    def fetch_orders(self, after_id: str | None = None, limit: int = 100) -> list[CourtOrder]:
        """Orders after `after_id` (None: from the first), oldest first, at most `limit` (1–1000)."""
        after = 0
        if after_id:
            m = ORDER_ID_RE.match(after_id)
            if m is None:
                raise BusinessError("ORDER_ID_INVALID", f"法院指令编号“{after_id}”格式不正确（应如 FY2026-000001）",
                                    after_id=after_id)
            after = int(m.group(1))
        limit = max(1, min(int(limit), 1000))
        with self.db.read() as s:
            rows = s.execute(select(orders).where(orders.c.seq > after).order_by(orders.c.seq).limit(limit)).all()
        return [_order(r) for r in rows]

    # ------------------------------------------------------------------------ the judge (sandbox only)

    def issue_order(
        self,
        kind: Literal["seizure", "release", "renewal"],
        court: str,
        document_no: str,
        unit_number: str,
        starts_on: date | None = None,
        ends_on: date | None = None,
        released_document_no: str | None = None,
    ) -> CourtOrder:
        """Issue an order as a court would, and apply it to the court's own seizure records.

        Idempotent per (kind, document number, unit): issuing the same order again returns it.
        Refusals are BusinessErrors: SEIZURE_TOO_LONG, SEIZURE_TERM_INVALID, SEIZURE_UNKNOWN,
        SEIZURE_EXPIRED, SEIZURE_COURT_MISMATCH, RENEWAL_NOT_LATER, ORDER_INVALID.
        """
        unit_number = check_unit(unit_number)
        if kind not in ("seizure", "release", "renewal"):
            raise BusinessError("ORDER_INVALID", f"未知的法院指令类型“{kind}”（应为 seizure、release 或 renewal）")
        if not court.strip() or not document_no.strip():
            raise BusinessError("ORDER_INVALID", "法院指令须写明法院名称和文书编号")
        if kind == "seizure" and (starts_on is None or ends_on is None):
            raise BusinessError("ORDER_INVALID", "查封指令须写明查封期限的起止日期")
        if kind in ("release", "renewal") and not released_document_no:
            raise BusinessError("ORDER_INVALID", "解封或续封指令须写明原查封文号（released_document_no）")
        if kind == "renewal" and ends_on is None:
            raise BusinessError("ORDER_INVALID", "续封指令须写明续封后的终止日期")
        return retry_on_conflict(lambda: self._issue(kind, court, document_no, unit_number, starts_on, ends_on,
                                                      released_document_no))

    def _issue(self, kind: str, court: str, document_no: str, unit_number: str, starts_on: date | None,
               ends_on: date | None, released_document_no: str | None) -> CourtOrder:
        today = self._today()
        with self.db.write() as s:
            last = lock_counter(s, counters, "orders")  # first: orders are applied and numbered one at a time
            existing = s.execute(select(orders).where(
                orders.c.kind == kind, orders.c.document_no == document_no, orders.c.unit_number == unit_number,
            )).first()
            if existing is not None:
                return _order(existing)
            if kind == "seizure":
                assert starts_on is not None and ends_on is not None
                self._seize(s, court, document_no, unit_number, starts_on, ends_on, today)
            elif kind == "release":
                assert released_document_no is not None
                self._release(s, court, document_no, unit_number, released_document_no, today)
            else:
                assert released_document_no is not None and ends_on is not None
                starts_on = self._renew(s, court, unit_number, released_document_no, starts_on, ends_on, today)
            seq = last + 1
            s.execute(counters.update().where(counters.c.name == "orders").values(value=seq))
            now = self.clock.now()
            order_id = f"FY{self.clock.local_now().year}-{seq:06d}"
            values = dict(seq=seq, order_id=order_id, kind=kind, court=court, document_no=document_no,
                          unit_number=unit_number, starts_on=starts_on, ends_on=ends_on,
                          released_document_no=released_document_no, issued_at=now)
            s.execute(orders.insert().values(**values))
            if kind == "seizure":
                s.execute(seizures.update().where(seizures.c.document_no == document_no,
                                                  seizures.c.unit_number == unit_number).values(order_id=order_id))
            values.pop("seq")
            return CourtOrder(**values)

    def _seize(self, s: Session, court: str, document_no: str, unit_number: str, starts_on: date, ends_on: date,
               today: date) -> None:
        _check_term(starts_on, ends_on, "查封")
        if s.execute(select(seizures.c.id).where(seizures.c.document_no == document_no,
                                                 seizures.c.unit_number == unit_number)).first():
            raise BusinessError("SEIZURE_DUPLICATE", f"{document_no}已对该不动产单元实施查封，不能重复查封",
                                document_no=document_no, unit_number=unit_number)
        ahead = s.execute(select(seizures.c.id).where(
            seizures.c.unit_number == unit_number, seizures.c.kind.in_(("seizure", "pre_seizure")),
            seizures.c.released_on.is_(None), seizures.c.ends_on >= today,
        )).first()
        s.execute(seizures.insert().values(
            court=court, document_no=document_no, kind="queued_seizure" if ahead else "seizure",
            unit_number=unit_number, starts_on=starts_on, ends_on=ends_on,
        ))

    def _find(self, s: Session, unit_number: str, document_no: str) -> Any:
        row = s.execute(select(seizures).where(
            seizures.c.document_no == document_no, seizures.c.unit_number == unit_number,
            seizures.c.released_on.is_(None),
        )).first()
        if row is None:
            raise BusinessError("SEIZURE_UNKNOWN", f"该不动产单元{unit_number}上没有文号为{document_no}的有效查封",
                                unit_number=unit_number, document_no=document_no)
        return row

    def _release(self, s: Session, court: str, document_no: str, unit_number: str, released: str,
                 today: date) -> None:
        row = self._find(s, unit_number, released)
        if row.court != court:
            raise BusinessError("SEIZURE_COURT_MISMATCH", f"{released}系{row.court}作出，{court}不能解除该查封",
                                seized_by=row.court, court=court)
        s.execute(seizures.update().where(seizures.c.id == row.id)
                  .values(released_on=today, release_document_no=document_no))
        if row.kind == "queued_seizure":
            return
        still_seized = s.execute(select(seizures.c.id).where(
            seizures.c.unit_number == unit_number, seizures.c.kind.in_(("seizure", "pre_seizure")),
            seizures.c.released_on.is_(None), seizures.c.ends_on >= today,
        )).first()
        if still_seized:
            return
        queued = s.execute(select(seizures).where(
            seizures.c.unit_number == unit_number, seizures.c.kind == "queued_seizure",
            seizures.c.released_on.is_(None), seizures.c.ends_on >= today,
        ).order_by(seizures.c.id).limit(1)).first()
        if queued is not None:  # 轮候查封 takes effect now; its term runs from today
            length = queued.ends_on - queued.starts_on
            new_end = min(today + length, add_years(today, MAX_SEIZURE_YEARS))
            s.execute(seizures.update().where(seizures.c.id == queued.id)
                      .values(kind="seizure", starts_on=today, ends_on=new_end))

    def _renew(self, s: Session, court: str, unit_number: str, renewed: str, starts_on: date | None, ends_on: date,
               today: date) -> date:
        row = self._find(s, unit_number, renewed)
        if row.ends_on < today:
            raise BusinessError("SEIZURE_EXPIRED", f"查封{renewed}已于{row.ends_on}期满失效，不能续封，须重新查封",
                                document_no=renewed, ended_on=row.ends_on.isoformat())
        if row.court != court:
            raise BusinessError("SEIZURE_COURT_MISMATCH", f"{renewed}系{row.court}作出，{court}不能续封",
                                seized_by=row.court, court=court)
        if ends_on <= row.ends_on:
            raise BusinessError("RENEWAL_NOT_LATER", f"续封终止日{ends_on}应晚于原查封终止日{row.ends_on}",
                                ends_on=ends_on.isoformat(), current_ends_on=row.ends_on.isoformat())
        base = starts_on or row.ends_on
        _check_term(base, ends_on, "续封")
        s.execute(seizures.update().where(seizures.c.id == row.id).values(ends_on=ends_on))
        return base

    # ------------------------------------------------------------------------ seeding and inspection

    def add_seizure(self, seizure: Seizure) -> bool:
        """Record a seizure registered before the sandbox existed (no order); False if already there."""
        check_unit(seizure.unit_number)
        _check_term(seizure.starts_on, seizure.ends_on, "查封")

        def insert() -> bool:
            with self.db.write() as s:
                if s.execute(select(seizures.c.id).where(seizures.c.document_no == seizure.document_no,
                                                         seizures.c.unit_number == seizure.unit_number)).first():
                    return False
                s.execute(seizures.insert().values(
                    court=seizure.court, document_no=seizure.document_no, kind=seizure.kind,
                    unit_number=seizure.unit_number, starts_on=seizure.starts_on, ends_on=seizure.ends_on,
                ))
                return True
        return retry_on_conflict(insert)

    def history(self, unit_number: str | None = None) -> list[dict[str, Any]]:
        """Every seizure the court has recorded, released and expired ones too (for the demo page)."""
        stmt = select(seizures).order_by(seizures.c.id)
        if unit_number is not None:
            stmt = stmt.where(seizures.c.unit_number == unit_number)
        with self.db.read() as s:
            return [dict(r._mapping) for r in s.execute(stmt)]

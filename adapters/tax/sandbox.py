"""The sandbox tax authority: assesses with the real rate table and keeps its own books.

It stands in for 金税三期 in-process: assessments, payments and the registration results shared
back live in the `sandbox_tax_*` tables (SANDBOX_METADATA), never in the registry's own tables.

Idempotency, the way a retried service call needs it:
- `assess` returns the stored assessment for a repeated idempotency key, and for the same case
  under another key when the figures are the same. A case has at most one live (assessed or paid)
  assessment, enforced by a unique column, so concurrent calls for one case create one.
  The same case with *different* figures (another price, area, party…) is refused with
  TAX_ALREADY_ASSESSED while the live assessment stands: an office corrects figures by
  cancelling the unpaid assessment (`cancel`) and assessing again, which leaves a record of both;
  a paid one needs a refund (契税法 第十二条), not silent replacement.
- `pay` marks the assessment paid with a 20-digit voucher number, once; paying a paid
  assessment returns it unchanged; a cancelled one cannot be paid (TAX_CANCELLED).
- `receive_result` stores a result once per idempotency key.

Assessment numbers are "SH" + the unit's county code (6) + the assessment date (8, Shanghai) + a
4-digit serial per county and day: "SH330106202611230001". Voucher numbers (电子税票号码) are the
county code (6) + the payment date (8) + a 6-digit serial per county and day: 20 digits.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.sandbox_store import SANDBOX_METADATA, ensure_tables
from adapters.tax import TaxAssessment, TaxLine, TransferForTax
from adapters.tax.assess import FEN, RateTable, load_rates, totals
from adapters.tax.assess import assess as assess_lines
from domain.clock import SHANGHAI, Clock
from domain.errors import BusinessError
from storage.db import Database
from storage.models import UtcDateTime

ASSESSMENT = Table(
    "sandbox_tax_assessment",
    SANDBOX_METADATA,
    Column("assessment_no", String(32), primary_key=True),
    Column("case_number", String(64), nullable=False),
    # equals case_number while the assessment is live (assessed or paid), NULL once cancelled:
    # a unique column, so one case never has two live assessments, on either database
    Column("live_case_number", String(64), nullable=True, unique=True),
    Column("status", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("request", JSON, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("total_due_fen", BigInteger, nullable=False),
    Column("total_relief_fen", BigInteger, nullable=False),
    Column("total_payable_fen", BigInteger, nullable=False),
    Column("assessed_at", UtcDateTime(), nullable=False),
    Column("paid_at", UtcDateTime(), nullable=True),
    Column("voucher_no", String(20), nullable=True, unique=True),
    Column("cancelled_at", UtcDateTime(), nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Index("ix_sandbox_tax_assessment_case", "case_number"),
)

# idempotency keys already answered, per operation: the retry gets the first answer back
REQUEST = Table(
    "sandbox_tax_request",
    SANDBOX_METADATA,
    Column("operation", String(16), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("case_number", String(64), nullable=False),
    Column("assessment_no", String(32), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
)

RESULT = Table(
    "sandbox_tax_result",
    SANDBOX_METADATA,
    Column("idempotency_key", String(255), primary_key=True),
    Column("case_number", String(64), nullable=False),
    Column("assessment_no", String(32), nullable=True),
    Column("result", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_sandbox_tax_result_case", "case_number"),
)

COUNTER = Table(
    "sandbox_tax_counter",
    SANDBOX_METADATA,
    Column("prefix", String(32), primary_key=True),
    Column("last", Integer, nullable=False),
)

TAX_TABLES = [ASSESSMENT, REQUEST, RESULT, COUNTER]

_ATTEMPTS = 5  # a unique-key race on PostgreSQL (two first calls at once) is retried, then seen as a repeat

T = TypeVar("T")


@dataclass(frozen=True)
class Charges:
    """What the sandbox holds for one case: proof that a retried call charged once."""

    assessments: int  # every assessment ever made for the case, cancelled ones included
    live: int  # assessed or paid: never more than 1
    payments: int  # paid assessments (each is paid at most once)
    paid_total: Decimal


def fingerprint(request: TransferForTax) -> str:
    """The same figures give the same fingerprint (1000000 and 1000000.00 alike)."""

    def canonical(value: Any) -> Any:
        if isinstance(value, Decimal):
            return format(value.normalize(), "f")
        if isinstance(value, date | datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items()}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value

    text = json.dumps(canonical(request.model_dump(mode="python")), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)


class SandboxTax:
    """The tax authority in-process (implements adapters.tax.TaxAuthority)."""

    def __init__(self, db: Database, clock: Clock | None = None, rates: RateTable | str | Path | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        self.rates = rates if isinstance(rates, RateTable) else load_rates(rates)
        ensure_tables(db)

    # ------------------------------------------------------------------------ the protocol

    def assess(self, request: TransferForTax, idempotency_key: str) -> TaxAssessment:
        fp = fingerprint(request)
        return self._retrying(lambda s: self._assess(s, request, idempotency_key, fp))

    def get(self, assessment_no: str) -> TaxAssessment:
        with self.db.read() as s:
            row = s.execute(select(ASSESSMENT).where(ASSESSMENT.c.assessment_no == assessment_no)).mappings().first()
        if row is None:
            raise _unknown(assessment_no)
        return _to_model(row)

    def pay(self, assessment_no: str, idempotency_key: str) -> TaxAssessment:
        return self._retrying(lambda s: self._pay(s, assessment_no, idempotency_key))

    def receive_result(self, case_number: str, result: dict, idempotency_key: str) -> None:
        def record(s: Session) -> None:
            seen = s.execute(select(RESULT.c.case_number).where(RESULT.c.idempotency_key == idempotency_key)).first()
            if seen is not None:
                return
            live = s.execute(select(ASSESSMENT.c.assessment_no).where(
                ASSESSMENT.c.live_case_number == case_number)).scalar()
            s.execute(RESULT.insert().values(
                idempotency_key=idempotency_key, case_number=case_number, assessment_no=live,
                result=json.loads(json.dumps(result, default=str, ensure_ascii=False)),
                received_at=self.clock.now(),
            ))

        self._retrying(record)

    # ------------------------------------------------------------------------ beyond the protocol

    def cancel(self, assessment_no: str, reason: str, idempotency_key: str) -> TaxAssessment:
        """Cancel an unpaid assessment (作废), so the case can be assessed again with corrected figures."""

        def run(s: Session) -> TaxAssessment:
            row = self._row(s, assessment_no, lock=True)
            if row["status"] == "paid":
                raise BusinessError(
                    "TAX_ALREADY_PAID",
                    f"核税记录 {assessment_no} 已缴款（税票号码 {row['voucher_no']}），不能作废；请办理退税。",
                    assessment_no=assessment_no, voucher_no=row["voucher_no"],
                )
            if row["status"] == "assessed":
                s.execute(update(ASSESSMENT).where(ASSESSMENT.c.assessment_no == assessment_no).values(
                    status="cancelled", live_case_number=None, cancelled_at=self.clock.now(), cancel_reason=reason))
            self._remember(s, "cancel", idempotency_key, row["case_number"], assessment_no, None)
            return _to_model(self._row(s, assessment_no))

        return self._retrying(run)

    def charges_for(self, case_number: str) -> Charges:
        with self.db.read() as s:
            rows = s.execute(select(ASSESSMENT.c.status, ASSESSMENT.c.voucher_no, ASSESSMENT.c.total_payable_fen)
                             .where(ASSESSMENT.c.case_number == case_number)).all()
        paid = [r for r in rows if r.voucher_no is not None]
        return Charges(
            assessments=len(rows),
            live=sum(1 for r in rows if r.status != "cancelled"),
            payments=len(paid),
            paid_total=_yuan(sum(r.total_payable_fen for r in paid)),
        )

    def results_for(self, case_number: str) -> list[dict]:
        """The registration results shared back for a case, in arrival order."""
        with self.db.read() as s:
            rows = s.execute(select(RESULT.c.result).where(RESULT.c.case_number == case_number)
                             .order_by(RESULT.c.received_at)).all()
        return [r.result for r in rows]

    # ------------------------------------------------------------------------ inside

    def _retrying(self, work: Callable[[Session], T]) -> T:
        for attempt in range(_ATTEMPTS):
            try:
                with self.db.write() as s:
                    return work(s)
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _assess(self, s: Session, request: TransferForTax, key: str, fp: str) -> TaxAssessment:
        seen = s.execute(select(REQUEST).where(REQUEST.c.operation == "assess",
                                               REQUEST.c.idempotency_key == key)).mappings().first()
        if seen is not None:
            if seen["case_number"] != request.case_number:
                raise BusinessError(
                    "TAX_IDEMPOTENCY_CONFLICT",
                    f"幂等键 {key} 已用于案件 {seen['case_number']}，不能再用于案件 {request.case_number}。",
                    idempotency_key=key, case_number=seen["case_number"],
                )
            row = self._row(s, seen["assessment_no"])
            if seen["fingerprint"] == fp and row["status"] != "cancelled":
                return _to_model(row)  # a retry: the first answer, as it stands now
            # other figures under the same key go on to the case check below, which refuses them
            # while the assessment is live; after a cancellation the key gets the new assessment

        live = s.execute(select(ASSESSMENT).where(ASSESSMENT.c.live_case_number == request.case_number)
                         ).mappings().first()
        if live is not None:
            if live["fingerprint"] != fp:
                todo = ("该记录已缴款，如需更正请先办理退税" if live["status"] == "paid"
                        else "如需更正，请先作废该核税记录后重新核税")
                raise BusinessError(
                    "TAX_ALREADY_ASSESSED",
                    f"案件 {request.case_number} 已有核税记录 {live['assessment_no']}，申报数据与本次不同；{todo}。",
                    case_number=request.case_number, assessment_no=live["assessment_no"], status=live["status"],
                )
            self._remember(s, "assess", key, request.case_number, live["assessment_no"], fp)
            return _to_model(live)

        now = self.clock.now()
        today = now.astimezone(SHANGHAI).date()
        lines = assess_lines(request, self.rates, fee_date=today)
        due, relief, payable = totals(lines)
        region = request.unit_number[:6]
        number = f"SH{region}{today:%Y%m%d}{self._next(s, f'A{region}{today:%Y%m%d}'):04d}"
        s.execute(ASSESSMENT.insert().values(
            assessment_no=number, case_number=request.case_number, live_case_number=request.case_number,
            status="assessed", fingerprint=fp, request=request.model_dump(mode="json"),
            lines=[line.model_dump(mode="json") for line in lines],
            total_due_fen=_fen(due), total_relief_fen=_fen(relief), total_payable_fen=_fen(payable),
            assessed_at=now,
        ))
        self._remember(s, "assess", key, request.case_number, number, fp)
        return _to_model(self._row(s, number))

    def _pay(self, s: Session, assessment_no: str, key: str) -> TaxAssessment:
        seen = s.execute(select(REQUEST).where(REQUEST.c.operation == "pay",
                                               REQUEST.c.idempotency_key == key)).mappings().first()
        if seen is not None and seen["assessment_no"] != assessment_no:
            raise BusinessError(
                "TAX_IDEMPOTENCY_CONFLICT",
                f"幂等键 {key} 已用于缴纳 {seen['assessment_no']}，不能再用于 {assessment_no}。",
                idempotency_key=key, assessment_no=seen["assessment_no"],
            )
        row = self._row(s, assessment_no, lock=True)
        if row["status"] == "cancelled":
            raise BusinessError(
                "TAX_CANCELLED", f"核税记录 {assessment_no} 已作废，不能缴款；请按案件重新核税。",
                assessment_no=assessment_no,
            )
        if row["status"] == "assessed":
            now = self.clock.now()
            today = now.astimezone(SHANGHAI).date()
            region = row["assessment_no"][2:8]
            voucher = f"{region}{today:%Y%m%d}{self._next(s, f'V{region}{today:%Y%m%d}'):06d}"
            s.execute(update(ASSESSMENT).where(ASSESSMENT.c.assessment_no == assessment_no,
                                               ASSESSMENT.c.status == "assessed")
                      .values(status="paid", paid_at=now, voucher_no=voucher))
        self._remember(s, "pay", key, row["case_number"], assessment_no, None)
        return _to_model(self._row(s, assessment_no))

    def _row(self, s: Session, assessment_no: str, *, lock: bool = False) -> Any:
        query = select(ASSESSMENT).where(ASSESSMENT.c.assessment_no == assessment_no)
        if lock and not self.db.is_sqlite:  # SQLite's write transaction already holds the lock
            query = query.with_for_update()
        row = s.execute(query).mappings().first()
        if row is None:
            raise _unknown(assessment_no)
        return row

    def _remember(self, s: Session, operation: str, key: str, case_number: str, assessment_no: str | None,
                  fp: str | None) -> None:
        """Record which answer a key got (a later call with the key gets the same one)."""
        where = (REQUEST.c.operation == operation) & (REQUEST.c.idempotency_key == key)
        if s.execute(select(func.count()).select_from(REQUEST).where(where)).scalar():
            s.execute(update(REQUEST).where(where).values(assessment_no=assessment_no, fingerprint=fp))
        else:
            s.execute(REQUEST.insert().values(operation=operation, idempotency_key=key, case_number=case_number,
                                              assessment_no=assessment_no, fingerprint=fp, at=self.clock.now()))

    def _next(self, s: Session, prefix: str) -> int:
        """The next serial for a prefix; the UPDATE row-locks the counter until commit."""
        done = s.execute(update(COUNTER).where(COUNTER.c.prefix == prefix).values(last=COUNTER.c.last + 1))
        if done.rowcount == 0:
            s.execute(COUNTER.insert().values(prefix=prefix, last=1))  # a race here: IntegrityError, retried
            return 1
        return int(s.execute(select(COUNTER.c.last).where(COUNTER.c.prefix == prefix)).scalar_one())


def _unknown(assessment_no: str) -> BusinessError:
    return BusinessError(
        "TAX_UNKNOWN", f"没有编号为 {assessment_no} 的核税记录，请核对核税编号。", assessment_no=assessment_no,
    )


def _to_model(row: Any) -> TaxAssessment:
    lines = [TaxLine.model_validate(line) for line in row["lines"]]
    return TaxAssessment(
        assessment_no=row["assessment_no"],
        case_number=row["case_number"],
        status=row["status"],
        lines=lines,
        total_due=_yuan(row["total_due_fen"]),
        total_relief=_yuan(row["total_relief_fen"]),
        total_payable=_yuan(row["total_payable_fen"]),
        assessed_at=row["assessed_at"].astimezone(SHANGHAI),
        paid_at=row["paid_at"].astimezone(SHANGHAI) if row["paid_at"] else None,
        voucher_no=row["voucher_no"],
    )

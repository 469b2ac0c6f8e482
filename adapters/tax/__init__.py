"""The tax authority (税务, 金税三期): assesses a transfer, collects, and issues the voucher.

The registry may not register a transfer before its deed tax is paid (契税法 第十一条), so the
transfer process assesses through this interface and waits for `paid`.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import Field

from adapters.common import Model, Party


class TransferForTax(Model):
    """What the registry sends the tax authority to assess a second-hand transfer."""

    case_number: str  # assessments are idempotent per case
    unit_number: str = Field(min_length=28, max_length=28)
    price: Decimal = Field(gt=0)  # 成交价, yuan
    area: Decimal = Field(gt=0)  # 建筑面积, m²
    residential: bool = True
    ordinary_housing: bool = True  # 普通住房 (matters for VAT on the gain in tier-1 cities before 2024-12-01)
    contract_date: date  # the date the tax obligation arose; selects the dated rate regime
    buyer: Party
    buyer_homes_before: int = Field(ge=0)  # homes the buyer's household owned before this purchase
    seller: Party
    seller_acquired_on: date
    seller_original_price: Decimal | None = None  # None when the seller cannot prove it
    seller_only_home: bool = False  # the seller household's only home (满五唯一 with ≥5 years)
    extra_certificates: int = Field(default=0, ge=0)  # certificates beyond the first (工本费 10 元 each)


class TaxLine(Model):
    item: str  # 征收项目: 契税, 增值税, 城市维护建设税, 教育费附加, 地方教育附加, 个人所得税, 不动产登记费, 证书工本费
    payer: Literal["buyer", "seller"]
    base: Decimal  # 计税依据
    rate: Decimal  # 税率 (0.01 = 1 %); fees: the unit amount
    due: Decimal  # 应纳
    relief: Decimal  # 减免
    payable: Decimal  # 实缴 = due − relief
    basis: str  # the rule applied, e.g. "财税〔2016〕23号 首套 ≤90㎡"


class TaxAssessment(Model):
    assessment_no: str
    case_number: str
    status: Literal["assessed", "paid", "cancelled"]
    lines: list[TaxLine]
    total_due: Decimal
    total_relief: Decimal
    total_payable: Decimal
    assessed_at: datetime
    paid_at: datetime | None = None
    voucher_no: str | None = None  # 完税凭证号 / 税票号码, once paid


class TaxAuthority(Protocol):
    def assess(self, request: TransferForTax, idempotency_key: str) -> TaxAssessment:
        """Assess once per case: the same case (or key) gets the same assessment back."""

    def get(self, assessment_no: str) -> TaxAssessment:
        """The assessment as it stands now (paid or not). Unknown number: BusinessError TAX_UNKNOWN."""

    def pay(self, assessment_no: str, idempotency_key: str) -> TaxAssessment:
        """Record the applicant's payment (the sandbox's stand-in for the bank/tax window)."""

    def receive_result(self, case_number: str, result: dict, idempotency_key: str) -> None:
        """The registration result shared back to tax after registration (信息共享)."""

"""Assess a second-hand transfer against the dated rate table (rates.json): a pure function.

`assess(request, rates)` returns the line items the tax authority's 核税 result lists: deed tax on
the buyer; VAT, its three surcharges and personal income tax on the seller; stamp duty when the
table sets a rate; the registration fee and extra-certificate charges.

How a line reads (the way 金税三期 shows it): `due` is the tax at the statutory rate, `relief` what a
preferential rule takes off, `payable = due − relief`. A reduced deed-tax rate is therefore the
general rate (3 %) with the difference as relief, and an exemption (VAT held ≥ 2 years, PIT 满五唯一)
is the computed tax with all of it as relief. Every amount is rounded to the fen (ROUND_HALF_UP) on
its line; totals are sums of lines.

Which rules apply is decided by dates: the tax regime by `request.contract_date` (the day the tax
obligation arose), the registration fee by `fee_date` (the day it is charged, defaulting to the
contract date). Holding periods are whole years by anniversary (acquired 2022-03-15: two years on
2024-03-15; acquired on 29 February: the anniversary in a common year is 1 March).

The VAT-exclusive rule (财税〔2016〕43号): deed tax is levied on the price without the VAT the seller
pays, and the seller's taxable income for PIT excludes it too; with VAT exempt nothing is taken off.
The table's `base_excludes_vat` / `income_excludes_vat` switch this.

Scope: an individual (natural person) selling; an organisation seller pays enterprise taxes instead.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.tax import TaxLine, TransferForTax
from domain.errors import BusinessError

DEFAULT_RATES_PATH = Path(__file__).with_name("rates.json")
FEN = Decimal("0.01")
ZERO = Decimal("0")


# ---------------------------------------------------------------------------- the table


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_from: date
    effective_to: date | None = None  # inclusive; None: still in force
    basis: str = Field(min_length=1)
    note: str = ""

    @model_validator(mode="after")
    def _dates_in_order(self) -> _Entry:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError(f"effective_to {self.effective_to} is before effective_from {self.effective_from}")
        return self

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


class AreaRates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_or_below: Decimal  # area ≤ threshold
    above: Decimal


class DeedTaxRegime(_Entry):
    general_rate: Decimal
    general_basis: str
    area_threshold: Decimal
    only_home: AreaRates  # the family's only home after this purchase
    second_home: AreaRates  # 第二套改善性住房
    second_home_excluded_regions: dict[str, str] = {}  # unit-number prefix → name: second homes pay the general rate
    base_excludes_vat: bool = True
    base_basis: str = ""


class VatRegime(_Entry):
    levy_rate: Decimal  # 征收率; tax = amount ÷ (1 + rate) × rate
    exempt_after_years: int
    ordinary_only_regions: dict[str, str] = {}  # there only ordinary housing is exempt; non-ordinary pays on the gain
    non_residential_basis: str


class SurchargeRate(_Entry):
    item: str
    rate: Decimal


class DeemedRates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ordinary: Decimal
    non_ordinary: Decimal
    non_residential: Decimal


class IncomeTaxRegime(_Entry):
    gain_rate: Decimal
    deemed_rates: DeemedRates  # share of the income when the original price is unknown
    deemed_basis: str
    exempt_after_years: int
    exempt_basis: str
    income_excludes_vat: bool = True
    income_basis: str = ""


class StampDutyRate(_Entry):
    residential_rate: Decimal = ZERO
    non_residential_rate: Decimal = ZERO


class RegistrationFee(_Entry):
    residential: Decimal
    non_residential: Decimal
    extra_certificate: Decimal


E = TypeVar("E", bound=_Entry)


class RateTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str = ""
    deed_tax: list[DeedTaxRegime]
    vat: list[VatRegime]
    surcharges: list[SurchargeRate]
    income_tax: list[IncomeTaxRegime]
    stamp_duty: list[StampDutyRate]
    registration_fee: list[RegistrationFee]

    @model_validator(mode="after")
    def _no_overlaps(self) -> RateTable:
        groups: dict[str, list[_Entry]] = {
            "deed_tax": list(self.deed_tax), "vat": list(self.vat), "income_tax": list(self.income_tax),
            "stamp_duty": list(self.stamp_duty), "registration_fee": list(self.registration_fee),
        }
        for s in self.surcharges:
            groups.setdefault(f"surcharges/{s.item}", []).append(s)
        for name, entries in groups.items():
            ordered = sorted(entries, key=lambda e: e.effective_from)
            for a, b in zip(ordered, ordered[1:], strict=False):
                if a.effective_to is None or a.effective_to >= b.effective_from:
                    raise ValueError(
                        f"{name}: the entry from {a.effective_from} ({a.basis}) overlaps the one from "
                        f"{b.effective_from} ({b.basis})"
                    )
        return self

    def starts(self) -> date:
        return min(e.effective_from for e in self.deed_tax)


def load_rates(path: str | Path | None = None) -> RateTable:
    """Read and check a rate table (default: rates.json beside this module)."""
    source = Path(path) if path is not None else DEFAULT_RATES_PATH
    return RateTable.model_validate(json.loads(source.read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------- helpers


def fen(amount: Decimal) -> Decimal:
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def pct(rate: Decimal) -> str:
    """0.015 → '1.5%'."""
    return f"{format((rate * 100).normalize(), 'f')}%"


def yuan(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def full_years(start: date, end: date) -> int:
    """Whole years from start to end by anniversary (not days ÷ 365)."""
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return years


def region_of(unit_number: str, regions: dict[str, str]) -> str | None:
    """The name of the region whose code starts the unit number, if any."""
    for prefix, name in regions.items():
        if unit_number.startswith(prefix):
            return name
    return None


def _pick(entries: list[E], day: date, kind: str) -> E:
    for entry in entries:
        if entry.covers(day):
            return entry
    raise BusinessError(
        "TAX_NO_REGIME",
        f"税率表没有 {day.isoformat()} 适用的{kind}规定，无法核税；请核对合同日期，或由税务机关人工核定。",
        kind=kind, on=day.isoformat(),
    )


def _line(item: str, payer: str, base: Decimal, rate: Decimal, due: Decimal, payable: Decimal,
          basis: str) -> TaxLine:
    due, payable = fen(due), fen(payable)
    return TaxLine(item=item, payer=payer, base=fen(base), rate=rate, due=due, relief=due - payable,
                   payable=payable, basis=basis)


# ---------------------------------------------------------------------------- the assessment


def assess(request: TransferForTax, rates: RateTable, *, fee_date: date | None = None) -> list[TaxLine]:
    """The line items for one transfer. Raises BusinessError TAX_NO_REGIME / TAX_BAD_REQUEST."""
    on = request.contract_date
    if request.seller_acquired_on > on:
        raise BusinessError(
            "TAX_BAD_REQUEST",
            f"卖方取得日期 {request.seller_acquired_on} 晚于合同日期 {on}，请核对后重新提交。",
            seller_acquired_on=request.seller_acquired_on.isoformat(), contract_date=on.isoformat(),
        )
    deed_regime = _pick(rates.deed_tax, on, "契税")
    vat_regime = _pick(rates.vat, on, "增值税")
    surcharges = [s for s in rates.surcharges if s.covers(on)]
    if not surcharges:
        _pick([], on, "增值税附加")
    pit_regime = _pick(rates.income_tax, on, "个人所得税")
    stamp = _pick(rates.stamp_duty, on, "印花税")
    fee = _pick(rates.registration_fee, fee_date or on, "不动产登记费")

    held = full_years(request.seller_acquired_on, on)
    vat = _vat(request, vat_regime, held)
    vat_surcharges = [
        _line(s.item, "seller", vat.due, s.rate, vat.due * s.rate, vat.payable * s.rate,
              f"{s.basis}（以增值税额为计税依据）")
        for s in surcharges
    ]
    surcharges_paid = sum((line.payable for line in vat_surcharges), ZERO)

    lines = [_deed_tax(request, deed_regime, vat.payable), vat, *vat_surcharges,
             _income_tax(request, pit_regime, held, vat.payable, surcharges_paid)]
    lines += _stamp_duty(request, stamp)
    lines += _fees(request, fee)
    return lines


def _deed_tax(request: TransferForTax, regime: DeedTaxRegime, vat_paid: Decimal) -> TaxLine:
    base = fen(request.price)
    base_note = ""
    if regime.base_excludes_vat and vat_paid > 0:
        base = fen(request.price - vat_paid)
        base_note = f"；计税价格不含增值税（{regime.base_basis}）"
    small = request.area <= regime.area_threshold
    area = f"面积≤{yuan(regime.area_threshold)}㎡" if small else f"面积>{yuan(regime.area_threshold)}㎡"
    general = regime.general_rate
    if not request.residential:
        rate, rule = general, f"{regime.general_basis} 非住房 {pct(general)}"
    elif request.buyer_homes_before == 0:
        rate = regime.only_home.at_or_below if small else regime.only_home.above
        rule = f"{regime.basis} 家庭唯一住房 {area} {pct(rate)}"
    elif request.buyer_homes_before == 1:
        excluded = region_of(request.unit_number, regime.second_home_excluded_regions)
        if excluded:
            rate = general
            rule = f"{regime.basis} 家庭第二套住房 {excluded}不适用减征 {pct(general)}"
        else:
            rate = regime.second_home.at_or_below if small else regime.second_home.above
            rule = f"{regime.basis} 家庭第二套改善性住房 {area} {pct(rate)}"
    else:
        rate = general
        rule = f"{regime.general_basis} 家庭第{request.buyer_homes_before + 1}套住房 {pct(general)}"
    return _line("契税", "buyer", base, general, base * general, base * rate, rule + base_note)


def _vat(request: TransferForTax, regime: VatRegime, held: int) -> TaxLine:
    divisor = 1 + regime.levy_rate
    levy = regime.levy_rate
    gain = None
    if request.seller_original_price is not None:
        gain = max(request.price - request.seller_original_price, ZERO)

    def full(rule: str) -> TaxLine:
        base = fen(request.price / divisor)
        return _line("增值税", "seller", base, levy, base * levy, base * levy,
                     f"{rule} 全额÷{yuan(divisor)}×{pct(levy)}")

    def on_gain(rule: str) -> TaxLine:
        assert gain is not None
        base = fen(gain / divisor)
        return _line("增值税", "seller", base, levy, base * levy, base * levy,
                     f"{rule} 差额（成交价−原价）÷{yuan(divisor)}×{pct(levy)}")

    def exempt(rule: str) -> TaxLine:
        base = fen(request.price / divisor)
        return _line("增值税", "seller", base, levy, base * levy, ZERO, f"{rule} 免征")

    if not request.residential:
        if gain is not None:
            return on_gain(regime.non_residential_basis + " 非住房")
        return full(regime.non_residential_basis + " 非住房 原价不明")
    years = regime.exempt_after_years
    if held < years:
        return full(f"{regime.basis} 个人销售购买不足{years}年的住房")
    city = region_of(request.unit_number, regime.ordinary_only_regions)
    if city is None:
        return exempt(f"{regime.basis} 个人销售购买{years}年以上（含{years}年）的住房")
    if request.ordinary_housing:
        return exempt(f"{regime.basis} {city} 个人销售购买{years}年以上（含{years}年）的普通住房")
    if gain is not None:
        return on_gain(f"{regime.basis} {city} 个人销售购买{years}年以上（含{years}年）的非普通住房")
    return full(f"{regime.basis} {city} 个人销售购买{years}年以上（含{years}年）的非普通住房 原价不明")


def _income_tax(request: TransferForTax, regime: IncomeTaxRegime, held: int, vat_paid: Decimal,
                surcharges_paid: Decimal) -> TaxLine:
    income = request.price - vat_paid if regime.income_excludes_vat else request.price
    income_note = f"；{regime.income_basis}" if regime.income_excludes_vat and vat_paid > 0 else ""
    if request.seller_original_price is not None:
        deductions = request.seller_original_price + surcharges_paid
        if not regime.income_excludes_vat:
            deductions += vat_paid
        base = max(fen(income - deductions), ZERO)
        rate = regime.gain_rate
        rule = f"{regime.basis} {pct(rate)}×（成交价−增值税−原价−附加税费）" + income_note
    else:
        base = fen(income)
        if not request.residential:
            rate, kind = regime.deemed_rates.non_residential, "非住房"
        elif request.ordinary_housing:
            rate, kind = regime.deemed_rates.ordinary, "普通住房"
        else:
            rate, kind = regime.deemed_rates.non_ordinary, "非普通住房"
        rule = f"{regime.deemed_basis} {kind} 原价不明 按转让收入{pct(rate)}" + income_note
    due = base * rate
    exempt = request.residential and request.seller_only_home and held >= regime.exempt_after_years
    if exempt:
        rule = f"{regime.exempt_basis}（持有{held}年，家庭唯一住房）；{rule}"
    return _line("个人所得税", "seller", base, rate, due, ZERO if exempt else due, rule)


def _stamp_duty(request: TransferForTax, stamp: StampDutyRate) -> list[TaxLine]:
    rate = stamp.residential_rate if request.residential else stamp.non_residential_rate
    if rate <= 0:
        return []
    base = fen(request.price)
    return [_line("印花税", payer, base, rate, base * rate, base * rate,
                  f"{stamp.basis} 产权转移书据 {pct(rate)}")
            for payer in ("buyer", "seller")]


def _fees(request: TransferForTax, fee: RegistrationFee) -> list[TaxLine]:
    unit = fee.residential if request.residential else fee.non_residential
    kind = "住宅类" if request.residential else "非住宅类"
    lines = [_line("不动产登记费", "buyer", Decimal(1), unit, unit, unit, f"{fee.basis} {kind} 每件{yuan(unit)}元")]
    if request.extra_certificates:
        count = Decimal(request.extra_certificates)
        price = fee.extra_certificate
        lines.append(_line("证书工本费", "buyer", count, price, count * price, count * price,
                           f"{fee.basis} 第一本证书免费，每增加一本{yuan(price)}元"))
    return lines


def totals(lines: list[TaxLine]) -> tuple[Decimal, Decimal, Decimal]:
    """(total due, total relief, total payable), summed from the lines."""
    return (sum((line.due for line in lines), ZERO), sum((line.relief for line in lines), ZERO),
            sum((line.payable for line in lines), ZERO))

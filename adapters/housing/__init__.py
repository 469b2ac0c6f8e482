"""The housing authority (住房城乡建设/房管): contracts, purchase restriction, policy housing."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from pydantic import Field

from adapters.common import Model, Party


class PresaleContract(Model):
    contract_no: str  # 网签合同编号
    unit_number: str = Field(min_length=28, max_length=28)
    developer: Party
    buyers: list[Party] = Field(min_length=1)
    price: Decimal = Field(gt=0)
    area: Decimal = Field(gt=0)
    presale_permit_no: str  # 预售许可证号
    signed_on: date


class ContractFiling(Model):
    contract_no: str
    filing_no: str  # 备案号
    filed_at: datetime


class SaleContract(Model):
    """An online-signed (网签) second-hand sale contract."""

    contract_no: str
    unit_number: str
    sellers: list[Party]
    buyers: list[Party]
    price: Decimal
    area: Decimal
    signed_on: date
    status: str  # 已网签 | 已备案 | 已注销


class RestrictionCheck(Model):
    allowed: bool
    homes_owned: int  # homes the household already owns in the city
    limit: int | None  # how many the city policy allows (None: no restriction)
    reason: str  # what a reviewer reads, e.g. "本市户籍家庭限购2套，已拥有2套"


class PolicyHousingCheck(Model):
    policy_housing: bool
    kind: str | None = None  # 经济适用住房 | 已购公有住房 | 限价商品住房 | 安置房 …
    listing_allowed: bool = True
    reason: str = ""


class HousingAuthority(Protocol):
    def file_presale_contract(self, contract: PresaleContract, idempotency_key: str) -> ContractFiling:
        """File (备案) a signed pre-sale contract; once per contract number."""

    def check_purchase_restriction(self, buyers: list[Party], unit_number: str) -> RestrictionCheck:
        """May this household buy one more home in the city of this unit?"""

    def check_policy_housing(self, unit_number: str) -> PolicyHousingCheck:
        """Is the unit policy housing, and may it be sold on the market now?"""

    def get_sale_contract(self, contract_no: str) -> SaleContract:
        """An online-signed sale contract. Unknown number: BusinessError CONTRACT_UNKNOWN."""

    def receive_result(self, case_number: str, result: dict, idempotency_key: str) -> None:
        """The registration result shared with housing after registration."""

"""The housing authority in-process: contract filing, purchase restriction, policy housing, 网签 contracts.

It keeps its state in its own `sandbox_housing_*` tables (see adapters/sandbox_store.py), so it
behaves like a department with a database of its own: a filing survives a restart, a retry with
the same idempotency key gets the same filing number back, and two workers filing at once never
get the same number.

Purchase restriction (限购) follows a configurable `CityPolicy`:
- a household is the set of people buying together (the buyers' ID numbers: buyer, spouse, minor
  children); the homes it owns are the homes any member owns in the city of the unit (the first
  4 digits of the unit number);
- a household is local (本市户籍) if any member's household registration is in that city. The
  sandbox's public-security record (`add_resident`) decides; without a record, the first 4
  digits of the ID number (where it was issued) stand in for it;
- a city with no entry in the policy is unrestricted.

The default policy restricts Hangzhou (3301): local households 2 homes, non-local households 1.
That is the rule Hangzhou applied from 2017 until it lifted restrictions on 2024-05-09; it is
kept as the default because a sandbox should show what a refusal looks like. Configure the real
policy of the day with ONEWINDOW_SANDBOX_CITY_POLICY (JSON text, or the path of a JSON file):

    {"cities": {"3301": {"name": "杭州市", "restricted": true, "local_limit": 2, "non_local_limit": 1}}}

`"restricted": false` (or `{}` for no cities at all) lifts the restriction; a limit of null means
"no limit for that kind of household". Local requirements such as social-insurance months for
non-local buyers are not modelled.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON, Column, Date, Integer, Numeric, String, Table, Text, UniqueConstraint, select

from adapters.common import Party
from adapters.housing import (
    ContractFiling,
    PolicyHousingCheck,
    PresaleContract,
    RestrictionCheck,
    SaleContract,
)
from adapters.sandbox_seed import add_years, city_code, parcel_code, valid_unit_number
from adapters.sandbox_store import (
    SANDBOX_METADATA,
    check_unit,
    ensure_tables,
    lock_counter,
    retry_on_conflict,
    set_counter,
)
from domain.clock import Clock
from domain.errors import BusinessError
from storage.db import Database
from storage.models import UtcDateTime

__all__ = ["CITY_NAMES", "CityPolicy", "CityRule", "SandboxHousing", "POLICY_ENV"]

POLICY_ENV = "ONEWINDOW_SANDBOX_CITY_POLICY"

# Zhejiang's prefecture-level cities: names for reasons, one-character short names for filing numbers.
CITY_NAMES: dict[str, tuple[str, str]] = {
    "3301": ("杭州市", "杭"), "3302": ("宁波市", "甬"), "3303": ("温州市", "温"), "3304": ("嘉兴市", "嘉"),
    "3305": ("湖州市", "湖"), "3306": ("绍兴市", "绍"), "3307": ("金华市", "金"), "3308": ("衢州市", "衢"),
    "3309": ("舟山市", "舟"), "3310": ("台州市", "台"), "3311": ("丽水市", "丽"),
}

# ------------------------------------------------------------------------------------ city policy


class CityRule(BaseModel):
    """One city's purchase restriction."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None  # 杭州市; defaults to the built-in name of the city code
    restricted: bool = True
    local_limit: int | None = Field(default=None, ge=0)  # homes a local household may own; None: no limit
    non_local_limit: int | None = Field(default=None, ge=0)  # … a non-local household


class CityPolicy(BaseModel):
    """Purchase restriction per city code (the first 4 digits of a unit number)."""

    model_config = ConfigDict(extra="forbid")

    cities: dict[str, CityRule] = Field(default_factory=dict)

    @field_validator("cities")
    @classmethod
    def _city_codes(cls, value: dict[str, CityRule]) -> dict[str, CityRule]:
        bad = [code for code in value if not re.fullmatch(r"\d{4}", code)]
        if bad:
            raise ValueError(f"city codes are the first 4 digits of a unit number (3301 = 杭州), not {bad}")
        return value

    @classmethod
    def default(cls) -> CityPolicy:
        """Hangzhou restricted (local households 2 homes, non-local 1); every other city unrestricted."""
        return cls(cities={"3301": CityRule(name="杭州市", restricted=True, local_limit=2, non_local_limit=1)})

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> CityPolicy:
        data = json.loads(text) if isinstance(text, str | bytes) else text
        if isinstance(data, dict) and "cities" not in data and all(re.fullmatch(r"\d{4}", k) for k in data):
            data = {"cities": data}  # the bare mapping {"3301": {...}} is accepted too
        return cls.model_validate(data)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> CityPolicy:
        """ONEWINDOW_SANDBOX_CITY_POLICY: JSON text or a JSON file's path; unset means the default."""
        value = (environ if environ is not None else os.environ).get(POLICY_ENV, "").strip()
        if not value:
            return cls.default()
        if value.startswith("{"):
            return cls.from_json(value)
        return cls.from_json(Path(value).read_text(encoding="utf-8"))

    def rule_for(self, city: str) -> CityRule | None:
        return self.cities.get(city)

    def city_name(self, city: str) -> str:
        rule = self.cities.get(city)
        if rule and rule.name:
            return rule.name
        return CITY_NAMES.get(city, (f"城市{city}", ""))[0]


# ------------------------------------------------------------------------------------ tables

filings = Table(
    "sandbox_housing_filings", SANDBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract_no", String(64), nullable=False, unique=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("unit_number", String(28), nullable=False, unique=True),  # one filed pre-sale contract per flat
    Column("filing_no", String(40), nullable=False, unique=True),
    Column("buyer_ids", JSON, nullable=False),  # sorted ID numbers of the buyers
    Column("contract", JSON, nullable=False),
    Column("filed_at", UtcDateTime(), nullable=False),
)

sale_contracts = Table(
    "sandbox_housing_sale_contracts", SANDBOX_METADATA,
    Column("contract_no", String(64), primary_key=True),
    Column("unit_number", String(28), nullable=False, index=True),
    Column("sellers", JSON, nullable=False),
    Column("buyers", JSON, nullable=False),
    Column("price", Numeric(16, 2), nullable=False),
    Column("area", Numeric(12, 2), nullable=False),
    Column("signed_on", Date, nullable=False),
    Column("status", String(20), nullable=False),
)

homes = Table(
    "sandbox_housing_homes", SANDBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit_number", String(28), nullable=False),
    Column("id_number", String(64), nullable=False, index=True),
    Column("city_code", String(4), nullable=False),
    Column("acquired_on", Date),
    UniqueConstraint("unit_number", "id_number", name="uq_sandbox_housing_homes_owner"),
)

residents = Table(  # the public-security household registration (户籍) the housing authority consults
    "sandbox_housing_residents", SANDBOX_METADATA,
    Column("id_number", String(64), primary_key=True),
    Column("city_code", String(4), nullable=False),
)

policy_housing = Table(
    "sandbox_housing_policy_housing", SANDBOX_METADATA,
    Column("unit_number", String(28), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("acquired_on", Date, nullable=False),
    Column("listing_after_years", Integer),  # None: may never be sold on the market
    Column("note", Text, nullable=False, default=""),
)

presale_projects = Table(
    "sandbox_housing_presale_projects", SANDBOX_METADATA,
    Column("permit_no", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("developer", JSON, nullable=False),
    Column("parcel", String(19), nullable=False),
    Column("issued_on", Date, nullable=False),
)

results = Table(
    "sandbox_housing_results", SANDBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("case_number", String(40), nullable=False, index=True),
    Column("result", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

counters = Table(
    "sandbox_housing_counters", SANDBOX_METADATA,
    Column("name", String(100), primary_key=True),
    Column("value", Integer, nullable=False),
)

TABLES = (filings, sale_contracts, homes, residents, policy_housing, presale_projects, results, counters)



def _party(data: dict[str, Any]) -> Party:
    return Party.model_validate(data)


def _ids(parties: Sequence[Party | str]) -> list[str]:
    return sorted({(p if isinstance(p, str) else p.id_number).strip().upper() for p in parties})


def _names(parties: Sequence[Party]) -> str:
    return "、".join(p.name for p in parties)


class SandboxHousing:
    """The housing authority (住建/房管), in-process and realistic. Implements `HousingAuthority`."""

    def __init__(self, db: Database, clock: Clock | None = None, policy: CityPolicy | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        self.policy = policy or CityPolicy.from_env()
        ensure_tables(db)

    def _today(self) -> date:
        return self.clock.local_now().date()

    # ------------------------------------------------------------------------ pre-sale contract filing

    def file_presale_contract(self, contract: PresaleContract, idempotency_key: str) -> ContractFiling:
        """File (备案) a signed pre-sale contract, once per contract number and once per key.

        A flat carries one filed pre-sale contract: another contract for it is refused with
        CONTRACT_CONFLICT (the earlier filing must be cancelled first). When the permit is one the
        sandbox knows, the flat must stand on the permit's parcel (PRESALE_PERMIT_MISMATCH).
        """
        check_unit(contract.unit_number)
        return retry_on_conflict(lambda: self._file(contract, idempotency_key))

    def _file(self, contract: PresaleContract, key: str) -> ContractFiling:
        buyer_ids = _ids(contract.buyers)
        year = self.clock.local_now().year
        city = city_code(contract.unit_number)
        counter = f"filing:{city}:{year}"
        with self.db.write() as s:
            last = lock_counter(s, counters, counter)
            row = s.execute(select(filings).where(filings.c.idempotency_key == key)).first()
            if row is not None:
                if row.contract_no != contract.contract_no:
                    raise BusinessError(
                        "IDEMPOTENCY_KEY_REUSED",
                        f"幂等键“{key}”已用于合同{row.contract_no}的备案，不能再用于合同{contract.contract_no}",
                        idempotency_key=key, contract_no=row.contract_no,
                    )
                return self._filing(row)
            row = s.execute(select(filings).where(filings.c.contract_no == contract.contract_no)).first()
            if row is not None:
                if row.unit_number != contract.unit_number or list(row.buyer_ids) != buyer_ids:
                    raise BusinessError(
                        "CONTRACT_CONFLICT",
                        f"合同编号{contract.contract_no}已就其他房屋或买受人备案（备案号{row.filing_no}），"
                        "请核对合同编号",
                        contract_no=contract.contract_no, filing_no=row.filing_no,
                    )
                return self._filing(row)
            row = s.execute(select(filings).where(filings.c.unit_number == contract.unit_number)).first()
            if row is not None:
                earlier = PresaleContract.model_validate(row.contract)
                who = "同一买受人" if list(row.buyer_ids) == buyer_ids else f"买受人{_names(earlier.buyers)}"
                raise BusinessError(
                    "CONTRACT_CONFLICT",
                    f"该房屋已由{who}签订预售合同{row.contract_no}并备案（备案号{row.filing_no}），"
                    "须先注销原备案，方可备案新合同",
                    unit_number=contract.unit_number, contract_no=row.contract_no, filing_no=row.filing_no,
                )
            project = s.execute(
                select(presale_projects).where(presale_projects.c.permit_no == contract.presale_permit_no)
            ).first()
            if project is not None and project.parcel != parcel_code(contract.unit_number):
                raise BusinessError(
                    "PRESALE_PERMIT_MISMATCH",
                    f"预售许可证{contract.presale_permit_no}（{project.name}）不包含该房屋"
                    f"{contract.unit_number}，请核对预售许可证号或不动产单元号",
                    permit_no=contract.presale_permit_no, unit_number=contract.unit_number,
                )
            now = self.clock.now()
            short = CITY_NAMES.get(city, (None, city))[1]
            filing_no = f"{short}房备{year}-{last + 1:06d}"
            set_counter(s, counters, counter, last + 1)
            s.execute(filings.insert().values(
                contract_no=contract.contract_no, idempotency_key=key, unit_number=contract.unit_number,
                filing_no=filing_no, buyer_ids=buyer_ids, contract=contract.model_dump(mode="json"), filed_at=now,
            ))
            return ContractFiling(contract_no=contract.contract_no, filing_no=filing_no, filed_at=now)

    @staticmethod
    def _filing(row: Any) -> ContractFiling:
        return ContractFiling(contract_no=row.contract_no, filing_no=row.filing_no, filed_at=row.filed_at)

    def get_filing(self, contract_no: str) -> ContractFiling | None:
        """The filing of a pre-sale contract, or None (sandbox helper for the seed and the demo)."""
        with self.db.read() as s:
            row = s.execute(select(filings).where(filings.c.contract_no == contract_no)).first()
        return self._filing(row) if row is not None else None

    # ------------------------------------------------------------------------ purchase restriction

    def check_purchase_restriction(self, buyers: list[Party], unit_number: str) -> RestrictionCheck:
        """May the buying household own one more home in the unit's city? A refusal is a result, not an error."""
        unit_number = check_unit(unit_number)
        if not buyers:
            raise BusinessError("BUYERS_MISSING", "未提供买受人，无法核查限购")
        city = city_code(unit_number)
        name = self.policy.city_name(city)
        ids = _ids(buyers)
        with self.db.read() as s:
            owned = sorted(set(s.execute(
                select(homes.c.unit_number).where(homes.c.id_number.in_(ids), homes.c.city_code == city)
            ).scalars()))
            hukou = {row.id_number: row.city_code for row in s.execute(
                select(residents.c.id_number, residents.c.city_code).where(residents.c.id_number.in_(ids)))}
        n = len(owned)
        rule = self.policy.rule_for(city)
        if rule is None or not rule.restricted:
            return RestrictionCheck(allowed=True, homes_owned=n, limit=None,
                                    reason=f"{name}未实行住房限购，该家庭在本市已有住房{n}套")
        local = any(hukou.get(i, i[:4] if re.fullmatch(r"\d{17}[\dX]", i) else None) == city for i in ids)
        who = "本市户籍家庭" if local else "非本市户籍家庭"
        limit = rule.local_limit if local else rule.non_local_limit
        if limit is None:
            return RestrictionCheck(allowed=True, homes_owned=n, limit=None,
                                    reason=f"{name}对{who}不限购，该家庭在本市已有住房{n}套")
        if unit_number in owned:
            return RestrictionCheck(allowed=True, homes_owned=n, limit=limit,
                                    reason=f"{name}{who}限购{limit}套，已拥有{n}套；该房屋已为本家庭所有，不新增住房套数")
        if n < limit:
            return RestrictionCheck(allowed=True, homes_owned=n, limit=limit,
                                    reason=f"{name}{who}限购{limit}套，已拥有{n}套，可再购{limit - n}套")
        return RestrictionCheck(allowed=False, homes_owned=n, limit=limit,
                                reason=f"{name}{who}限购{limit}套，已拥有{n}套，不得再购买住房")

    # ------------------------------------------------------------------------ policy housing

    def check_policy_housing(self, unit_number: str) -> PolicyHousingCheck:
        """Is the unit policy housing, and has the holding period before market sale (上市) passed?"""
        unit_number = check_unit(unit_number)
        with self.db.read() as s:
            row = s.execute(select(policy_housing).where(policy_housing.c.unit_number == unit_number)).first()
        if row is None:
            return PolicyHousingCheck(policy_housing=False, listing_allowed=True, reason="非政策性住房，可上市交易")
        note = f"；{row.note}" if row.note else ""
        if row.listing_after_years is None:
            return PolicyHousingCheck(policy_housing=True, kind=row.kind, listing_allowed=False,
                                      reason=f"{row.kind}不得上市交易{note}")
        years = row.listing_after_years
        listable_from = add_years(row.acquired_on, years)
        if self._today() >= listable_from:
            held = f"已满{years}年" if years else "无持有年限要求"
            return PolicyHousingCheck(policy_housing=True, kind=row.kind, listing_allowed=True,
                                      reason=f"{row.kind}，{row.acquired_on:%Y-%m-%d}购买，{held}，可上市交易{note}")
        return PolicyHousingCheck(
            policy_housing=True, kind=row.kind, listing_allowed=False,
            reason=f"{row.kind}，{row.acquired_on:%Y-%m-%d}购买，须满{years}年（{listable_from:%Y-%m-%d}起）"
                   f"方可上市交易{note}",
        )

    # ------------------------------------------------------------------------ online-signed sale contracts

    def get_sale_contract(self, contract_no: str) -> SaleContract:
        with self.db.read() as s:
            row = s.execute(select(sale_contracts).where(sale_contracts.c.contract_no == contract_no)).first()
        if row is None:
            raise BusinessError("CONTRACT_UNKNOWN", f"网签合同{contract_no}不存在，请核对合同编号",
                                contract_no=contract_no)
        return SaleContract(
            contract_no=row.contract_no, unit_number=row.unit_number,
            sellers=[_party(p) for p in row.sellers], buyers=[_party(p) for p in row.buyers],
            price=Decimal(row.price), area=Decimal(row.area), signed_on=row.signed_on, status=row.status,
        )

    # ------------------------------------------------------------------------ results shared back

    def receive_result(self, case_number: str, result: dict, idempotency_key: str) -> None:
        """Record the registration result once per key (a repeated key is accepted and ignored)."""
        def record() -> None:
            with self.db.write() as s:
                if s.execute(select(results.c.id).where(results.c.idempotency_key == idempotency_key)).first():
                    return
                s.execute(results.insert().values(idempotency_key=idempotency_key, case_number=case_number,
                                                  result=result, received_at=self.clock.now()))
        retry_on_conflict(record)

    def received(self, case_number: str | None = None) -> list[dict[str, Any]]:
        """The results received, oldest first (for tests and the demo page)."""
        stmt = select(results).order_by(results.c.id)
        if case_number is not None:
            stmt = stmt.where(results.c.case_number == case_number)
        with self.db.read() as s:
            return [{"case_number": r.case_number, "result": r.result, "idempotency_key": r.idempotency_key,
                     "received_at": r.received_at} for r in s.execute(stmt)]

    # ------------------------------------------------------------------------ seeding (sandbox only)

    def _insert_missing(self, table: Table, where: Any, values: dict[str, Any]) -> bool:
        def insert() -> bool:
            with self.db.write() as s:
                if s.execute(select(table).where(where)).first() is not None:
                    return False
                s.execute(table.insert().values(**values))
                return True
        return retry_on_conflict(insert)

    def add_sale_contract(self, contract: SaleContract) -> bool:
        """Record an online-signed contract; False when its number is already there."""
        check_unit(contract.unit_number)
        return self._insert_missing(sale_contracts, sale_contracts.c.contract_no == contract.contract_no, dict(
            contract_no=contract.contract_no, unit_number=contract.unit_number,
            sellers=[p.model_dump(mode="json") for p in contract.sellers],
            buyers=[p.model_dump(mode="json") for p in contract.buyers],
            price=contract.price, area=contract.area, signed_on=contract.signed_on, status=contract.status,
        ))

    def add_household_home(self, owners: Sequence[Party | str], unit_number: str,
                           acquired_on: date | None = None) -> bool:
        """Record that these people (Party or ID number) own this home; True when anything was added."""
        unit_number = check_unit(unit_number)
        added = False
        for id_number in _ids(owners):
            added |= self._insert_missing(
                homes, (homes.c.unit_number == unit_number) & (homes.c.id_number == id_number),
                dict(unit_number=unit_number, id_number=id_number, city_code=city_code(unit_number),
                     acquired_on=acquired_on),
            )
        return added

    def add_resident(self, id_number: str, city: str) -> bool:
        """Record a person's household registration (户籍) city; it overrides what the ID number suggests."""
        if not re.fullmatch(r"\d{4}", city):
            raise ValueError(f"city code is 4 digits (3301 = 杭州), not {city!r}")
        id_number = id_number.strip().upper()
        return self._insert_missing(residents, residents.c.id_number == id_number,
                                    dict(id_number=id_number, city_code=city))

    def add_policy_housing(self, unit_number: str, kind: str, acquired_on: date,
                           listing_after_years: int | None, note: str = "") -> bool:
        """Mark a unit as policy housing; `listing_after_years=None`: never listable (e.g. 公共租赁住房)."""
        unit_number = check_unit(unit_number)
        return self._insert_missing(policy_housing, policy_housing.c.unit_number == unit_number, dict(
            unit_number=unit_number, kind=kind, acquired_on=acquired_on,
            listing_after_years=listing_after_years, note=note,
        ))

    def add_presale_project(self, permit_no: str, name: str, developer: Party, parcel: str,
                            issued_on: date) -> bool:
        """A pre-sale permit (预售许可证) covering the flats on one parcel."""
        if not valid_unit_number(parcel + "W00000000"):
            raise ValueError(f"parcel code is the first 19 characters of a unit number, not {parcel!r}")
        return self._insert_missing(presale_projects, presale_projects.c.permit_no == permit_no, dict(
            permit_no=permit_no, name=name, developer=developer.model_dump(mode="json"), parcel=parcel,
            issued_on=issued_on,
        ))

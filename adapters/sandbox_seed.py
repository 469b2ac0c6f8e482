"""Believable Hangzhou data for the sandbox departments, and the identifier rules it obeys.

`seed_data()` describes the data (units, owners, contracts, policy housing, seizures, a pre-sale
project) without touching a database; `seed_departments(housing, court)` writes it into the
sandboxes and returns the same description, so the register seed (domain/) can record the very
same units, owners and seizures in the register. Everything is fixed data: no randomness, the
same result on every run, and a second run creates nothing.

The identifier helpers at the top are also what the sandboxes validate their input with:
- unit numbers 不动产单元号 (GB/T 37346-2019, 28 characters: 6 county + 3 地籍区 + 3 地籍子区 +
  2 宗地特征码 + 5 宗地顺序号 + 1 定着物特征码 + 8 定着物单元编号; the first 19 are the parcel
  宗地代码, and parcel + "W00000000" is the parcel's land-only unit), checked by domain.unit_number;
- resident ID numbers 居民身份证号码 (GB 11643-1999: 6 region + 8 birth date + 3 sequence, odd for
  men, + an ISO 7064 MOD 11-2 check character);
- unified social credit codes 统一社会信用代码 (GB 32100-2015, for developers).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.common import Party
from adapters.court import Seizure
from adapters.housing import PresaleContract, SaleContract
from domain import unit_number as unit_number_rules
from domain.unit_number import LAND_ONLY_SUFFIX

if TYPE_CHECKING:
    from adapters.court.sandbox import SandboxCourt
    from adapters.housing.sandbox import SandboxHousing

# ------------------------------------------------------------------------------------ identifiers

def valid_unit_number(unit_number: str) -> bool:
    """A well-formed 28-character unit number (domain.unit_number, which names what is wrong, decides)."""
    return isinstance(unit_number, str) and len(unit_number) == 28 and unit_number_rules.is_valid(unit_number)


def parcel_code(unit_number: str) -> str:
    """The 19-character parcel code 宗地代码 a unit stands on."""
    return unit_number[:19]


def land_only_unit(unit_number: str) -> str:
    """The parcel's land-only unit, where seizures and mortgages of the whole parcel are recorded."""
    return unit_number[:19] + LAND_ONLY_SUFFIX


def city_code(unit_number: str) -> str:
    """The prefecture-level city: the first 4 digits of the county code (3301 杭州)."""
    return unit_number[:4]


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a resident ID number."""
    if not re.fullmatch(r"\d{17}", first17):
        raise ValueError(f"need 17 digits, got {first17!r}")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(id_number: str) -> bool:
    """An 18-character resident ID number with a real birth date and the right check character."""
    if not re.fullmatch(r"\d{17}[\dX]", id_number or ""):
        return False
    try:
        date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return False
    return id_check_digit(id_number[:17]) == id_number[17]


def make_id_number(region: str, born: date, sequence: int) -> str:
    """Compose an ID number; `sequence` (1–999) is odd for men and even for women."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + id_check_digit(first17)


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character of a unified social credit code's first 17 characters."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def valid_uscc(code: str) -> bool:
    if len(code or "") != 18 or any(c not in _USCC_CHARS for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def add_years(start: date, years: int) -> date:
    """The same calendar day `years` later; 29 February falls back to the 28th (民法典 第二百零二条)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


# ------------------------------------------------------------------------------------ the data

HANGZHOU_DISTRICTS = {
    "330102": "上城区",
    "330105": "拱墅区",
    "330106": "西湖区",
    "330108": "滨江区",
    "330109": "萧山区",
    "330110": "余杭区",
}


@dataclass(frozen=True)
class SeedUnit:
    """A residential unit with its current owners, as the register should hold it."""

    unit_number: str
    district_code: str
    district: str
    address: str  # 坐落, e.g. 杭州市西湖区文三路398号3幢1单元501室
    building: str  # 幢
    entrance: str | None  # 单元
    room: str  # 室
    floor: int
    area: Decimal  # 建筑面积, m²
    owners: tuple[Party, ...]
    ownership: str  # 单独所有 | 共同共有
    acquired_on: date
    purchase_price: Decimal  # yuan: the seller's original price (for tax on a resale)
    certificate_no: str  # the title certificate (or legacy 房屋所有权证) the owners hold
    use: str = "住宅"

    @property
    def parcel(self) -> str:
        return parcel_code(self.unit_number)


@dataclass(frozen=True)
class SeedPresaleUnit:
    """A flat of the pre-sale project: not yet registered to anyone but the developer's land."""

    unit_number: str
    address: str
    building: str
    entrance: str
    room: str
    floor: int
    area: Decimal


@dataclass(frozen=True)
class SeedPresaleProject:
    permit_no: str  # 预售许可证号
    name: str
    developer: Party
    parcel: str  # 宗地代码
    district_code: str
    issued_on: date
    units: tuple[SeedPresaleUnit, ...]


@dataclass(frozen=True)
class SeedPolicyHousing:
    unit_number: str
    kind: str
    acquired_on: date
    listing_after_years: int | None
    note: str = ""


@dataclass(frozen=True)
class SeedPresaleContract:
    contract: PresaleContract
    filed: bool  # the seed files it with housing; the others wait for a case to file them


@dataclass
class SeedData:
    """What the seed describes (the same on every run) and how many rows this run created."""

    units: list[SeedUnit]
    people: dict[str, Party]  # by name
    households: dict[str, list[Party]]  # a label -> its members
    sale_contracts: list[SaleContract]
    presale_project: SeedPresaleProject
    presale_contracts: list[SeedPresaleContract]
    policy_housing: list[SeedPolicyHousing]
    seizures: list[Seizure]
    created: dict[str, int] = field(default_factory=dict)

    def unit(self, unit_number: str) -> SeedUnit:
        return next(u for u in self.units if u.unit_number == unit_number)


def _person(name: str, region: str, born: date, sequence: int, phone: str) -> Party:
    return Party(name=name, id_number=make_id_number(region, born, sequence), phone=phone)


def _people() -> dict[str, Party]:
    rows = [
        # name, ID region (where the number was issued), birth date, sequence (odd: men), mobile
        ("陈建国", "330106", date(1968, 5, 12), 217, "13805712368"),
        ("沈美华", "330106", date(1970, 9, 3), 126, "13906521547"),
        ("王芳", "330102", date(1985, 3, 17), 42, "15858170936"),
        ("李娜", "330105", date(1989, 12, 1), 384, "18667031275"),
        ("赵磊", "330104", date(1962, 7, 26), 51, "13357168842"),  # 原江干区 (330104) ID
        ("刘强", "330105", date(1979, 1, 8), 193, "13735871629"),
        ("黄敏", "330105", date(1981, 4, 22), 268, "13588046713"),
        ("孙浩", "330108", date(1992, 6, 30), 17, "17757135024"),
        ("吴强", "330108", date(1976, 10, 14), 335, "13067823491"),
        ("刘洋", "340104", date(1987, 11, 20), 159, "18955120764"),  # 合肥蜀山区: not a Hangzhou household
        ("徐丽", "330110", date(1983, 8, 9), 74, "15968135287"),
        ("高峰", "330106", date(1984, 2, 5), 293, "13616520938"),
        ("林晓", "350102", date(1986, 5, 28), 180, "13666639201"),
        ("朱琳", "330109", date(1990, 9, 16), 22, "15157108364"),
        ("周子涵", "330106", date(1995, 2, 14), 88, "18258166730"),  # first-time buyer
        ("郑凯", "330102", date(1991, 3, 3), 211, "13588761204"),
        ("何雨", "330102", date(1993, 7, 19), 64, "13777852916"),
        ("马骁", "330108", date(1988, 12, 24), 375, "15088613527"),
    ]
    return {name: _person(name, region, born, seq, phone) for name, region, born, seq, phone in rows}


def _legacy_certificate(district_short: str, serial: int) -> str:
    return f"杭房权证{district_short}移字第{serial:08d}号"


def _certificate(year: int, serial: int) -> str:
    return f"浙({year})杭州市不动产权第{serial:07d}号"


def _units(p: dict[str, Party]) -> list[SeedUnit]:
    def unit(number: str, street: str, building: str, entrance: str | None, room: str, area: str,
             owners: tuple[str, ...], acquired: date, price: int, certificate: str) -> SeedUnit:
        county = number[:6]
        district = HANGZHOU_DISTRICTS[county]
        address = f"杭州市{district}{street}{building}幢{entrance + '单元' if entrance else ''}{room}室"
        return SeedUnit(
            unit_number=number, district_code=county, district=district, address=address,
            building=building, entrance=entrance, room=room, floor=int(room[:-2]), area=Decimal(area),
            owners=tuple(p[o] for o in owners), ownership="共同共有" if len(owners) > 1 else "单独所有",
            acquired_on=acquired, purchase_price=Decimal(price), certificate_no=certificate,
        )

    return [
        # two flats on one parcel of 文三路 (same 宗地代码 330106004002GB00107)
        unit("330106004002GB00107F00030009", "文三路398号", "3", "1", "501", "89.56",
             ("陈建国", "沈美华"), date(2012, 5, 18), 1_650_000, _legacy_certificate("西", 10283547)),
        unit("330106004002GB00107F00030036", "文三路398号", "3", "2", "1102", "118.20",
             ("王芳",), date(2016, 9, 1), 2_980_000, _certificate(2016, 87215)),
        unit("330106006001GB00215F00120021", "古墩路702号", "12", "1", "602", "102.35",
             ("陈建国", "沈美华"), date(2018, 11, 20), 3_150_000, _certificate(2018, 213764)),
        unit("330102003005GB00042F00020015", "望江东路88号", "2", "1", "803", "136.80",
             ("李娜",), date(2019, 4, 12), 4_860_000, _certificate(2019, 95120)),
        unit("330102002003GB00318F00050008", "秋涛路258号", "5", "2", "402", "76.45",
             ("赵磊",), date(2008, 3, 28), 520_000, _legacy_certificate("上", 3651208)),
        unit("330105001004GB00063F00070012", "湖墅南路186号", "7", "1", "1201", "128.66",
             ("刘强", "黄敏"), date(2017, 6, 6), 3_420_000, _certificate(2017, 160493)),
        unit("330105005002GB00129F00010004", "莫干山路1088号", "1", None, "302", "63.20",
             ("孙浩",), date(2025, 7, 10), 1_930_000, _certificate(2025, 301877)),
        unit("330108002001GB00076F00090031", "江南大道3850号", "9", "2", "1503", "143.92",
             ("吴强",), date(2015, 10, 30), 2_760_000, _legacy_certificate("滨", 20417736)),
        unit("330108003002GB00154F00040017", "滨盛路1766号", "4", "1", "901", "98.70",
             ("刘洋",), date(2021, 3, 15), 3_380_000, _certificate(2021, 52310)),
        unit("330110012003GB00088F00060022", "五常大道181号", "6", "3", "1102", "88.30",
             ("徐丽",), date(2023, 6, 15), 980_000, _certificate(2023, 418205)),
        unit("330110007001GB00231F00020008", "文一西路998号", "2", "1", "702", "112.50",
             ("高峰", "林晓"), date(2020, 8, 21), 3_050_000, _certificate(2020, 276614)),
        unit("330109015002GB00167F00080019", "市心中路1199号", "8", "1", "1001", "95.40",
             ("朱琳",), date(2022, 1, 7), 2_260_000, _certificate(2022, 118352)),
    ]


def _developer() -> Party:
    first17 = "91330108MA2KX7C5" + "3"
    return Party(name="杭州钱望置业有限公司", id_type="统一社会信用代码",
                 id_number=first17 + uscc_check_char(first17), phone="057186921300")


def _presale_project() -> SeedPresaleProject:
    parcel = "330108005003GB00311"
    street = "杭州市滨江区春波路555号钱望云庐"

    def flat(fixture: str, building: str, entrance: str, room: str, area: str) -> SeedPresaleUnit:
        return SeedPresaleUnit(
            unit_number=f"{parcel}F{fixture}", address=f"{street}{building}幢{entrance}单元{room}室",
            building=building, entrance=entrance, room=room, floor=int(room[:-2]), area=Decimal(area),
        )

    return SeedPresaleProject(
        permit_no="杭售许字(2026)第000087号", name="钱望云庐", developer=_developer(), parcel=parcel,
        district_code="330108", issued_on=date(2026, 4, 20),
        units=(
            flat("00020061", "2", "1", "1601", "95.18"),
            flat("00020062", "2", "1", "1602", "128.40"),
            flat("00020069", "2", "2", "1701", "143.66"),
        ),
    )


def _sale_contracts(p: dict[str, Party], units: list[SeedUnit]) -> list[SaleContract]:
    by_number = {u.unit_number: u for u in units}

    def contract(no: str, unit_number: str, buyers: tuple[str, ...], price: int, signed: date) -> SaleContract:
        u = by_number[unit_number]
        return SaleContract(
            contract_no=no, unit_number=unit_number, sellers=list(u.owners), buyers=[p[b] for b in buyers],
            price=Decimal(price), area=u.area, signed_on=signed, status="已网签",
        )

    return [
        # a first-time buyer: nothing stands in the way
        contract("CL3301-2026-001201", "330106004002GB00107F00030036", ("周子涵",), 3_280_000, date(2026, 11, 10)),
        # a seller who has owned his only home for 18 years (满五唯一)
        contract("CL3301-2026-001202", "330102002003GB00318F00050008", ("郑凯", "何雨"), 2_150_000,
                 date(2026, 11, 12)),
        # the buyers already own two homes in Hangzhou: purchase restriction refuses
        contract("CL3301-2026-001203", "330108002001GB00076F00090031", ("陈建国", "沈美华"), 5_860_000,
                 date(2026, 11, 13)),
        # a non-local buyer who already owns one home in Hangzhou: refused; the seller held < 2 years
        contract("CL3301-2026-001204", "330105005002GB00129F00010004", ("刘洋",), 2_050_000, date(2026, 11, 16)),
        # the unit is seized: registration must refuse the transfer
        contract("CL3301-2026-001205", "330102003005GB00042F00020015", ("马骁",), 5_120_000, date(2026, 11, 17)),
        contract("CL3301-2026-001206", "330110007001GB00231F00020008", ("马骁",), 3_600_000, date(2026, 11, 18)),
    ]


def _presale_contracts(p: dict[str, Party], project: SeedPresaleProject) -> list[SeedPresaleContract]:
    def contract(no: str, flat: SeedPresaleUnit, buyers: tuple[str, ...], price: int, signed: date) -> PresaleContract:
        return PresaleContract(
            contract_no=no, unit_number=flat.unit_number, developer=project.developer,
            buyers=[p[b] for b in buyers], price=Decimal(price), area=flat.area,
            presale_permit_no=project.permit_no, signed_on=signed,
        )

    first, second, _ = project.units
    return [
        SeedPresaleContract(contract("YS3301-2026-000451", first, ("郑凯", "何雨"), 4_380_000, date(2026, 10, 26)),
                            filed=True),
        SeedPresaleContract(contract("YS3301-2026-000452", second, ("周子涵",), 5_910_000, date(2026, 11, 19)),
                            filed=False),
    ]


def _policy_housing() -> list[SeedPolicyHousing]:
    return [
        SeedPolicyHousing("330110012003GB00088F00060022", "经济适用住房", date(2023, 6, 15), 5,
                          "上市交易须按规定缴纳土地收益等价款"),
        SeedPolicyHousing("330102002003GB00318F00050008", "已购公有住房", date(2008, 3, 28), 0,
                          "房改房，上市交易须按规定补缴土地出让金"),
    ]


def _seizures() -> list[Seizure]:
    return [
        Seizure(court="杭州市上城区人民法院", document_no="(2026)浙0102执保1234号", kind="seizure",
                unit_number="330102003005GB00042F00020015", starts_on=date(2026, 6, 15), ends_on=date(2029, 6, 14)),
        Seizure(court="杭州市拱墅区人民法院", document_no="(2025)浙0105执2187号", kind="seizure",
                unit_number="330105001004GB00063F00070012", starts_on=date(2025, 9, 1), ends_on=date(2028, 8, 31)),
        Seizure(court="杭州市中级人民法院", document_no="(2026)浙01执保356号", kind="queued_seizure",
                unit_number="330105001004GB00063F00070012", starts_on=date(2026, 7, 8), ends_on=date(2029, 7, 7)),
    ]


def seed_data() -> SeedData:
    """The whole data set, without touching any database."""
    people = _people()
    units = _units(people)
    project = _presale_project()
    return SeedData(
        units=units,
        people=people,
        households={
            "陈建国家庭（杭州户籍，已有两套）": [people["陈建国"], people["沈美华"]],
            "周子涵（杭州户籍，首套）": [people["周子涵"]],
            "刘洋（非杭州户籍，已有一套）": [people["刘洋"]],
            "郑凯家庭（杭州户籍）": [people["郑凯"], people["何雨"]],
        },
        sale_contracts=_sale_contracts(people, units),
        presale_project=project,
        presale_contracts=_presale_contracts(people, project),
        policy_housing=_policy_housing(),
        seizures=_seizures(),
    )


def seed_departments(housing: SandboxHousing, court: SandboxCourt) -> SeedData:
    """Fill the housing and court sandboxes; idempotent. Returns the data and what this run created."""
    data = seed_data()
    created = {"homes": 0, "sale_contracts": 0, "presale_projects": 0, "presale_filings": 0,
               "policy_housing": 0, "seizures": 0}
    for u in data.units:
        created["homes"] += housing.add_household_home(list(u.owners), u.unit_number, u.acquired_on)
    for c in data.sale_contracts:
        created["sale_contracts"] += housing.add_sale_contract(c)
    project = data.presale_project
    created["presale_projects"] += housing.add_presale_project(
        project.permit_no, project.name, project.developer, project.parcel, project.issued_on)
    for pc in data.presale_contracts:
        if pc.filed and housing.get_filing(pc.contract.contract_no) is None:
            housing.file_presale_contract(pc.contract, f"seed:presale:{pc.contract.contract_no}")
            created["presale_filings"] += 1
    for ph in data.policy_housing:
        created["policy_housing"] += housing.add_policy_housing(
            ph.unit_number, ph.kind, ph.acquired_on, ph.listing_after_years, ph.note)
    for s in data.seizures:
        created["seizures"] += court.add_seizure(s)
    data.created = created
    return data


__all__ = [
    "HANGZHOU_DISTRICTS", "LAND_ONLY_SUFFIX", "SeedData", "SeedPolicyHousing",
    "SeedPresaleContract", "SeedPresaleProject", "SeedPresaleUnit", "SeedUnit", "add_years", "city_code",
    "id_check_digit", "land_only_unit", "make_id_number", "parcel_code", "seed_data", "seed_departments",
    "uscc_check_char", "valid_id_number", "valid_unit_number", "valid_uscc",
]

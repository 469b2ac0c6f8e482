"""The sandbox departments (housing, court, notify) and the demo seed, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.common import Party
from adapters.court import Seizure
from adapters.court import sandbox as court_sandbox
from adapters.court.sandbox import SandboxCourt
from adapters.housing import PresaleContract, SaleContract
from adapters.housing import sandbox as housing_sandbox
from adapters.housing.sandbox import CityPolicy, CityRule, SandboxHousing
from adapters.notify import Notification
from adapters.notify import sandbox as notify_sandbox
from adapters.notify.sandbox import SandboxNotifier
from adapters.sandbox_seed import (
    add_years,
    id_check_digit,
    land_only_unit,
    make_id_number,
    seed_data,
    seed_departments,
    valid_id_number,
    valid_unit_number,
    valid_uscc,
)
from adapters.sandbox_store import ensure_tables
from domain.clock import SHANGHAI, FrozenClock
from domain.errors import BusinessError
from storage.db import Database

# units on one parcel of 西湖区 (宗地 330106004002GB00107) and one elsewhere
FLAT_A = "330106004002GB00107F00030009"
FLAT_B = "330106004002GB00107F00030036"
FLAT_C = "330106006001GB00215F00120021"
FLAT_D = "330108002001GB00076F00090031"
NINGBO_FLAT = "330203001001GB00012F00010001"

WEST_LAKE_COURT = "杭州市西湖区人民法院"


def person(name: str, region: str, born: date, sequence: int) -> Party:
    return Party(name=name, id_number=make_id_number(region, born, sequence))


CHEN = person("陈建国", "330106", date(1968, 5, 12), 217)
SHEN = person("沈美华", "330106", date(1970, 9, 3), 126)
ZHOU = person("周子涵", "330106", date(1995, 2, 14), 88)
LIU = person("刘洋", "340104", date(1987, 11, 20), 159)


@pytest.fixture(autouse=True)
def clean_sandbox(db: Database) -> None:
    """The conftest empties only the registry's tables between PostgreSQL tests; empty ours too."""
    ensure_tables(db)
    with db.write() as s:
        for table in (*housing_sandbox.TABLES, *court_sandbox.TABLES, *notify_sandbox.TABLES):
            s.execute(table.delete())


@pytest.fixture
def housing(db: Database, clock: FrozenClock) -> SandboxHousing:
    return SandboxHousing(db, clock, CityPolicy.default())


@pytest.fixture
def court(db: Database, clock: FrozenClock) -> SandboxCourt:
    return SandboxCourt(db, clock)


@pytest.fixture
def notifier(db: Database, clock: FrozenClock) -> SandboxNotifier:
    return SandboxNotifier(db, clock)


# ---------------------------------------------------------------------------- identifiers


def test_identifier_rules() -> None:
    # the worked examples of GB 11643-1999
    assert valid_id_number("11010519491231002X")
    assert valid_id_number("440524188001010014")
    assert id_check_digit("11010519491231002") == "X"
    assert not valid_id_number("110105194912310021")  # wrong check digit
    assert not valid_id_number("110105194902300027")  # 30 February
    assert valid_unit_number("320684413219GB00029F00010002")  # a real Haimen unit
    assert valid_unit_number(land_only_unit(FLAT_A)) and land_only_unit(FLAT_A) == "330106004002GB00107W00000000"
    assert not valid_unit_number("330106004002GB00107F0003000")  # 27 characters
    assert not valid_unit_number("330106004002XB00107F00030009")  # no such parcel ownership code
    assert valid_uscc("91350100M000100Y43")  # a published example code
    assert add_years(date(2024, 2, 29), 3) == date(2027, 2, 28)


# ---------------------------------------------------------------------------- purchase restriction


def test_household_with_two_homes_is_refused_and_first_time_buyer_allowed(housing: SandboxHousing) -> None:
    housing.add_household_home([CHEN, SHEN], FLAT_A, date(2012, 5, 18))
    housing.add_household_home([CHEN.id_number, SHEN.id_number], FLAT_C, date(2018, 11, 20))
    housing.add_household_home([CHEN], NINGBO_FLAT)  # a home in Ningbo does not count in Hangzhou

    refused = housing.check_purchase_restriction([CHEN, SHEN], FLAT_D)
    assert not refused.allowed
    assert (refused.homes_owned, refused.limit) == (2, 2)
    assert refused.reason == "杭州市本市户籍家庭限购2套，已拥有2套，不得再购买住房"
    # the wife alone is the same household's homes: she co-owns both
    assert not housing.check_purchase_restriction([SHEN], FLAT_D).allowed

    first = housing.check_purchase_restriction([ZHOU], FLAT_D)
    assert first.allowed and first.homes_owned == 0 and first.limit == 2
    assert first.reason == "杭州市本市户籍家庭限购2套，已拥有0套，可再购2套"

    # buying a home the household already owns (e.g. a co-owner's share) adds no home
    assert housing.check_purchase_restriction([CHEN], FLAT_A).allowed


def test_non_local_household_and_residence_records(housing: SandboxHousing) -> None:
    housing.add_household_home([LIU], FLAT_B)
    refused = housing.check_purchase_restriction([LIU], FLAT_D)
    assert not refused.allowed and refused.limit == 1
    assert refused.reason == "杭州市非本市户籍家庭限购1套，已拥有1套，不得再购买住房"
    # once his household registration moved to Hangzhou, the local limit applies
    housing.add_resident(LIU.id_number, "3301")
    assert housing.check_purchase_restriction([LIU], FLAT_D).allowed
    # and a Hangzhou-born person registered elsewhere is non-local
    housing.add_resident(ZHOU.id_number, "3201")
    assert housing.check_purchase_restriction([ZHOU], FLAT_D).reason.startswith("杭州市非本市户籍家庭限购1套")


def test_city_policy_configuration(db: Database, clock: FrozenClock, tmp_path) -> None:
    assert CityPolicy.from_env({}) == CityPolicy.default()
    lifted = CityPolicy.from_env({"ONEWINDOW_SANDBOX_CITY_POLICY": '{"cities": {"3301": {"restricted": false}}}'})
    assert lifted.rule_for("3301") == CityRule(restricted=False)
    path = tmp_path / "policy.json"
    path.write_text('{"3302": {"name": "宁波市", "local_limit": 3, "non_local_limit": 1}}', encoding="utf-8")
    ningbo = CityPolicy.from_env({"ONEWINDOW_SANDBOX_CITY_POLICY": str(path)})
    assert ningbo.rule_for("3302") == CityRule(name="宁波市", local_limit=3, non_local_limit=1)
    with pytest.raises(ValueError):
        CityPolicy.from_json('{"cities": {"330106": {}}}')

    housing = SandboxHousing(db, clock, ningbo)
    housing.add_household_home([CHEN, SHEN], FLAT_A)
    housing.add_household_home([CHEN, SHEN], FLAT_C)
    free = housing.check_purchase_restriction([CHEN, SHEN], FLAT_D)  # Hangzhou has no entry: unrestricted
    assert free.allowed and free.limit is None and free.homes_owned == 2
    assert free.reason == "杭州市未实行住房限购，该家庭在本市已有住房2套"
    assert SandboxHousing(db, clock, lifted).check_purchase_restriction([CHEN], FLAT_D).allowed


# ---------------------------------------------------------------------------- policy housing


def test_policy_housing_listable_only_after_the_holding_period(housing: SandboxHousing, clock: FrozenClock) -> None:
    housing.add_policy_housing(FLAT_B, "经济适用住房", date(2023, 6, 15), 5, "上市交易须按规定缴纳土地收益等价款")
    housing.add_policy_housing(FLAT_C, "公共租赁住房", date(2020, 1, 1), None)

    early = housing.check_policy_housing(FLAT_B)
    assert early.policy_housing and early.kind == "经济适用住房" and not early.listing_allowed
    assert "须满5年（2028-06-15起）方可上市交易" in early.reason

    clock.set(datetime(2028, 6, 14, 23, 59, tzinfo=SHANGHAI))
    assert not housing.check_policy_housing(FLAT_B).listing_allowed
    clock.set(datetime(2028, 6, 15, 0, 1, tzinfo=SHANGHAI))
    late = housing.check_policy_housing(FLAT_B)
    assert late.listing_allowed and "已满5年，可上市交易" in late.reason

    never = housing.check_policy_housing(FLAT_C)
    assert never.policy_housing and not never.listing_allowed and never.reason == "公共租赁住房不得上市交易"
    plain = housing.check_policy_housing(FLAT_D)
    assert not plain.policy_housing and plain.listing_allowed and plain.kind is None


# ---------------------------------------------------------------------------- pre-sale contract filing

DEVELOPER = Party(name="杭州钱望置业有限公司", id_type="统一社会信用代码", id_number="91330108MA2KX7C533")
PRESALE_FLAT = "330108005003GB00311F00020061"
PRESALE_FLAT_2 = "330108005003GB00311F00020062"
PERMIT = "杭售许字(2026)第000087号"


def presale(contract_no: str, unit: str, buyers: list[Party], permit: str = PERMIT) -> PresaleContract:
    return PresaleContract(contract_no=contract_no, unit_number=unit, developer=DEVELOPER, buyers=buyers,
                           price=Decimal("4380000"), area=Decimal("95.18"), presale_permit_no=permit,
                           signed_on=date(2026, 10, 26))


def test_presale_filing_is_idempotent_and_conflicts_are_refused(housing: SandboxHousing) -> None:
    housing.add_presale_project(PERMIT, "钱望云庐", DEVELOPER, "330108005003GB00311", date(2026, 4, 20))
    contract = presale("YS3301-2026-000451", PRESALE_FLAT, [ZHOU])

    filing = housing.file_presale_contract(contract, "case-1:file:housing")
    assert filing.contract_no == "YS3301-2026-000451"
    assert filing.filing_no == "杭房备2026-000001"
    assert housing.file_presale_contract(contract, "case-1:file:housing") == filing  # retry, same key
    assert housing.file_presale_contract(contract, "case-1:file:housing:again") == filing  # same contract
    assert housing.get_filing(contract.contract_no) == filing

    with pytest.raises(BusinessError) as err:  # another buyer's contract on the same flat
        housing.file_presale_contract(presale("YS3301-2026-000460", PRESALE_FLAT, [CHEN, SHEN]), "case-2:file")
    assert err.value.code == "CONTRACT_CONFLICT"
    assert "买受人周子涵" in err.value.message and filing.filing_no in err.value.message
    with pytest.raises(BusinessError) as err:  # the same contract number for another flat
        housing.file_presale_contract(presale("YS3301-2026-000451", PRESALE_FLAT_2, [ZHOU]), "case-3:file")
    assert err.value.code == "CONTRACT_CONFLICT"
    with pytest.raises(BusinessError) as err:  # a key reused for a different contract
        housing.file_presale_contract(presale("YS3301-2026-000452", PRESALE_FLAT_2, [ZHOU]), "case-1:file:housing")
    assert err.value.code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(BusinessError) as err:  # the permit does not cover a flat on another parcel
        housing.file_presale_contract(presale("YS3301-2026-000453", FLAT_D, [ZHOU]), "case-4:file")
    assert err.value.code == "PRESALE_PERMIT_MISMATCH"

    second = housing.file_presale_contract(presale("YS3301-2026-000452", PRESALE_FLAT_2, [LIU]), "case-5:file")
    assert second.filing_no == "杭房备2026-000002"  # refusals used no number


def test_concurrent_filings_get_distinct_numbers_and_one_wins_per_contract(housing: SandboxHousing) -> None:
    flats = [f"330108005003GB00311F000201{i:02d}" for i in range(3)]
    got: list[str] = []
    errors: list[BaseException] = []

    def file(i: int) -> None:
        try:
            unit = flats[i % 3]  # four threads per contract
            got.append(housing.file_presale_contract(presale(f"YS-C{i % 3}", unit, [ZHOU]), f"key-{i}").filing_no)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=file, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(set(got)) == ["杭房备2026-000001", "杭房备2026-000002", "杭房备2026-000003"]


# ---------------------------------------------------------------------------- sale contracts and results


def test_sale_contract_lookup(housing: SandboxHousing) -> None:
    contract = SaleContract(contract_no="CL3301-2026-001201", unit_number=FLAT_B, sellers=[LIU], buyers=[ZHOU],
                            price=Decimal("3280000.00"), area=Decimal("118.20"), signed_on=date(2026, 11, 10),
                            status="已网签")
    assert housing.add_sale_contract(contract)
    assert not housing.add_sale_contract(contract)
    assert housing.get_sale_contract("CL3301-2026-001201") == contract
    with pytest.raises(BusinessError) as err:
        housing.get_sale_contract("CL3301-2026-999999")
    assert err.value.code == "CONTRACT_UNKNOWN" and "CL3301-2026-999999" in err.value.message


def test_results_recorded_once_per_key(housing: SandboxHousing) -> None:
    housing.receive_result("2026-000123", {"certificate_no": "浙(2026)杭州市不动产权第0000001号"}, "k1")
    housing.receive_result("2026-000123", {"certificate_no": "浙(2026)杭州市不动产权第0000001号"}, "k1")
    housing.receive_result("2026-000124", {"certificate_no": "浙(2026)杭州市不动产权第0000002号"}, "k2")
    assert [r["idempotency_key"] for r in housing.received()] == ["k1", "k2"]
    assert housing.received("2026-000123")[0]["result"]["certificate_no"].endswith("0000001号")


def test_invalid_unit_number_is_a_clear_business_error(housing: SandboxHousing, court: SandboxCourt) -> None:
    with pytest.raises(BusinessError) as err:
        housing.check_policy_housing("3301")
    assert err.value.code == "UNIT_NUMBER_INVALID" and "不动产单元号应为28位，实为4位" in err.value.message
    with pytest.raises(BusinessError) as err:
        court.check_seizures("330106004002GB00000F00030009")
    assert err.value.code == "UNIT_NUMBER_INVALID" and "第15–19位宗地顺序号" in err.value.message
    # the display grouping with spaces is accepted
    assert court.check_seizures("330106 004002 GB00107 F00030009") == []


# ---------------------------------------------------------------------------- court


def test_seizure_binds_the_unit_and_the_parcel(court: SandboxCourt) -> None:
    order = court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执1001号", FLAT_A,
                              date(2026, 11, 1), date(2029, 10, 31))
    assert order.kind == "seizure" and order.order_id.startswith("FY2026-")
    assert [s.document_no for s in court.check_seizures(FLAT_A)] == ["(2026)浙0106执1001号"]
    assert court.check_seizures(FLAT_B) == []  # a flat's seizure does not bind its neighbour

    court.issue_order("seizure", "杭州市中级人民法院", "(2026)浙01执保77号", land_only_unit(FLAT_A),
                      date(2026, 11, 20), date(2027, 11, 19))
    on_b = court.check_seizures(FLAT_B)  # the parcel's seizure binds every flat on it
    assert [(s.document_no, s.unit_number) for s in on_b] == [("(2026)浙01执保77号", "330106004002GB00107W00000000")]
    assert len(court.check_seizures(FLAT_A)) == 2
    assert court.check_seizures(FLAT_C) == []  # another parcel


def test_release_ends_a_seizure_and_the_queued_one_takes_effect(court: SandboxCourt, clock: FrozenClock) -> None:
    court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执1001号", FLAT_A, date(2026, 11, 1),
                      date(2029, 10, 31))
    queued = court.issue_order("seizure", "杭州市上城区人民法院", "(2026)浙0102执2002号", FLAT_A,
                               date(2026, 11, 10), date(2027, 11, 9))
    assert [s.kind for s in court.check_seizures(FLAT_A)] == ["seizure", "queued_seizure"]

    with pytest.raises(BusinessError) as err:
        court.issue_order("release", "杭州市上城区人民法院", "(2026)浙0106执1001号之一", FLAT_A,
                          released_document_no="(2026)浙0106执1001号")
    assert err.value.code == "SEIZURE_COURT_MISMATCH"

    clock.advance(days=7)
    release = court.issue_order("release", WEST_LAKE_COURT, "(2026)浙0106执1001号之一", FLAT_A,
                                released_document_no="(2026)浙0106执1001号")
    assert release.kind == "release" and release.released_document_no == "(2026)浙0106执1001号"
    now_in_force = court.check_seizures(FLAT_A)
    assert [(s.document_no, s.kind) for s in now_in_force] == [(queued.document_no, "seizure")]
    # its term (2026-11-10 to 2027-11-09) now runs from the day it took effect
    assert (now_in_force[0].starts_on, now_in_force[0].ends_on) == (date(2026, 11, 30), date(2027, 11, 29))

    court.issue_order("release", "杭州市上城区人民法院", "(2026)浙0102执2002号之一", FLAT_A,
                      released_document_no="(2026)浙0102执2002号")
    assert court.check_seizures(FLAT_A) == []
    with pytest.raises(BusinessError) as err:
        court.issue_order("release", WEST_LAKE_COURT, "(2026)浙0106执9999号之一", FLAT_A,
                          released_document_no="(2026)浙0106执9999号")
    assert err.value.code == "SEIZURE_UNKNOWN"


def test_renewal_extends_and_expiry_ends_a_seizure(court: SandboxCourt, clock: FrozenClock) -> None:
    court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执1001号", FLAT_A, date(2026, 1, 5),
                      date(2026, 12, 31))
    court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执1002号", FLAT_C, date(2026, 1, 5),
                      date(2026, 12, 31))
    renewal = court.issue_order("renewal", WEST_LAKE_COURT, "(2026)浙0106执1001号之二", FLAT_A,
                                ends_on=date(2029, 12, 31), released_document_no="(2026)浙0106执1001号")
    assert renewal.starts_on == date(2026, 12, 31) and renewal.ends_on == date(2029, 12, 31)
    assert court.check_seizures(FLAT_A)[0].ends_on == date(2029, 12, 31)

    with pytest.raises(BusinessError) as err:  # a renewal is at most 3 years too
        court.issue_order("renewal", WEST_LAKE_COURT, "(2026)浙0106执1001号之三", FLAT_A,
                          ends_on=date(2033, 1, 1), released_document_no="(2026)浙0106执1001号")
    assert err.value.code == "SEIZURE_TOO_LONG"

    clock.set(datetime(2026, 12, 31, 23, 0, tzinfo=SHANGHAI))
    assert len(court.check_seizures(FLAT_C)) == 1  # the last day is still in force
    clock.set(datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI))
    assert court.check_seizures(FLAT_C) == []  # lapsed without renewal (规定 第27条)
    assert len(court.check_seizures(FLAT_A)) == 1  # renewed
    with pytest.raises(BusinessError) as err:
        court.issue_order("renewal", WEST_LAKE_COURT, "(2026)浙0106执1002号之一", FLAT_C,
                          ends_on=date(2028, 1, 1), released_document_no="(2026)浙0106执1002号")
    assert err.value.code == "SEIZURE_EXPIRED"


def test_seizure_longer_than_three_years_is_refused(court: SandboxCourt) -> None:
    court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执1号", FLAT_A, date(2026, 11, 23), date(2029, 11, 23))
    with pytest.raises(BusinessError) as err:
        court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执2号", FLAT_B, date(2026, 11, 23),
                          date(2029, 11, 24))
    assert err.value.code == "SEIZURE_TOO_LONG" and "第四百八十五条" in err.value.message
    assert court.check_seizures(FLAT_B) == []
    assert [o.document_no for o in court.fetch_orders()] == ["(2026)浙0106执1号"]  # no order for a refusal


def test_orders_are_fetched_in_order_after_an_id(court: SandboxCourt, clock: FrozenClock) -> None:
    units = [f"330106004002GB00107F0003{i:04d}" for i in range(1, 6)]
    issued = []
    for i, unit in enumerate(units):
        clock.advance(minutes=1)
        issued.append(court.issue_order("seizure", WEST_LAKE_COURT, f"(2026)浙0106执{100 + i}号", unit,
                                        date(2026, 11, 23), date(2027, 11, 22)))
    again = court.issue_order("seizure", WEST_LAKE_COURT, "(2026)浙0106执100号", units[0],
                              date(2026, 11, 23), date(2027, 11, 22))
    assert again == issued[0]  # the same order issued twice is one order

    ids = [o.order_id for o in issued]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert court.fetch_orders() == issued
    assert court.fetch_orders(after_id=ids[1]) == issued[2:]
    assert court.fetch_orders(after_id=ids[1], limit=2) == issued[2:4]
    assert court.fetch_orders(after_id=ids[-1]) == []
    with pytest.raises(BusinessError):
        court.fetch_orders(after_id="banana")


def test_concurrent_orders_get_gapless_increasing_ids(court: SandboxCourt) -> None:
    errors: list[BaseException] = []

    def issue(i: int) -> None:
        try:
            court.issue_order("seizure", WEST_LAKE_COURT, f"(2026)浙0106执{500 + i}号",
                              f"330106004002GB00107F0009{i:04d}", date(2026, 11, 23), date(2027, 11, 22))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [o.order_id for o in court.fetch_orders()]
    assert ids == [f"FY2026-{n:06d}" for n in range(1, 9)]


# ---------------------------------------------------------------------------- notify


def test_notifier_records_once_per_key_and_checks_addresses(notifier: SandboxNotifier, clock: FrozenClock) -> None:
    sms = Notification(channel="sms", to="138-0571-2368", text="您的不动产登记申请已受理。", case_number="2026-000123")
    notifier.send(sms, "2026-000123:accept:sms")
    clock.advance(minutes=5)
    notifier.send(sms, "2026-000123:accept:sms")  # redelivered after a lost acknowledgement
    notifier.send(Notification(channel="mail", to="杭州市西湖区文三路398号3幢1单元501室", text="不动产权证书已寄出。",
                               case_number="2026-000123"), "2026-000123:mail")
    notifier.send(Notification(channel="mail", to="zhou.zihan@example.com", text="请补充材料。",
                               case_number="2026-000124"), "2026-000124:mail")

    sent = notifier.sent("2026-000123")
    assert [(m.channel, m.to) for m in sent] == [
        ("sms", "13805712368"), ("mail", "杭州市西湖区文三路398号3幢1单元501室")]
    assert sent[0].sent_at == clock.now() - timedelta(minutes=5)
    assert len(notifier.sent()) == 3

    for channel, to in [("sms", "12345678901"), ("sms", "0571-86921300"), ("sms", "1380571236"),
                        ("mail", "not-an-address"), ("mail", "文三路"), ("mail", "someone@localhost")]:
        with pytest.raises(BusinessError) as err:
            notifier.send(Notification(channel=channel, to=to, text="测试"), f"bad:{to}")
        assert err.value.code == "NOTIFY_BAD_ADDRESS", to
    assert len(notifier.sent()) == 3


# ---------------------------------------------------------------------------- the seed


def test_seed_is_valid_idempotent_and_tells_the_story(housing: SandboxHousing, court: SandboxCourt) -> None:
    data = seed_departments(housing, court)
    assert all(data.created.values())
    again = seed_departments(housing, court)
    assert set(again.created.values()) == {0}
    assert again.units == data.units and again.sale_contracts == data.sale_contracts
    assert seed_data().units == data.units  # deterministic

    assert len(data.units) == 12 and len({u.unit_number for u in data.units}) == 12
    units = [u.unit_number for u in data.units] + [u.unit_number for u in data.presale_project.units]
    assert all(valid_unit_number(n) for n in units)
    assert {u.district_code for u in data.units} >= {"330102", "330105", "330106", "330108", "330110"}
    assert all(Decimal(60) <= u.area <= Decimal(160) for u in data.units)
    people = list(data.people.values())
    assert all(valid_id_number(p.id_number) for p in people)
    assert all(int(p.id_number[16]) % 2 == (0 if p.name in {"沈美华", "王芳", "李娜", "黄敏", "徐丽", "林晓", "朱琳",
                                                            "周子涵", "何雨"} else 1) for p in people)
    assert valid_uscc(data.presale_project.developer.id_number)
    assert all(Decimal(2_000_000) <= c.price <= Decimal(6_000_000) for c in data.sale_contracts)
    assert all(housing.get_sale_contract(c.contract_no) == c for c in data.sale_contracts)

    # the household with two homes is refused; the first-time buyer is not
    refused = housing.check_purchase_restriction(data.households["陈建国家庭（杭州户籍，已有两套）"], FLAT_D)
    assert not refused.allowed and refused.homes_owned == 2
    assert housing.check_purchase_restriction([data.people["周子涵"]], FLAT_D).allowed
    # policy housing not yet listable
    assert not housing.check_policy_housing("330110012003GB00088F00060022").listing_allowed
    # one seized unit, one with a queued seizure behind a seizure
    kinds = {u.unit_number: [s.kind for s in court.check_seizures(u.unit_number)] for u in data.units}
    assert kinds["330102003005GB00042F00020015"] == ["seizure"]
    assert kinds["330105001004GB00063F00070012"] == ["seizure", "queued_seizure"]
    assert sum(1 for k in kinds.values() if k) == 2
    # the pre-sale project: one contract filed, the other waiting for a case
    filed, waiting = data.presale_contracts
    assert housing.get_filing(filed.contract.contract_no) is not None
    assert housing.get_filing(waiting.contract.contract_no) is None
    assert housing.file_presale_contract(waiting.contract, "demo").filing_no == "杭房备2026-000002"
    assert isinstance(data.seizures[0], Seizure)

"""The register 登记簿 on SQLite and PostgreSQL: what a registrar sees after each entry."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from domain import register as reg
from domain.clock import SHANGHAI
from domain.errors import BusinessError
from storage.db import Database
from storage.models import RegisterRight
from tests.register_data import (
    CCB,
    COURT,
    COURT2,
    DEVELOPER,
    FLAT,
    FLAT_NEXT_DOOR,
    ICBC,
    LAND,
    LI,
    NOW,
    WANG,
    ZHANG,
    ZHAO,
    add_units,
    owned_flat,
)

OFFICE = reg.Office()


def _mortgage(s, unit=FLAT, bank=ICBC, amount="1200000", case="2026-000010", mode="ordinary"):
    return reg.register_mortgage(s, unit, mortgagee=bank, amount=amount, term_start="2026-11-23",
                                 term_end="2046-11-22", mode=mode, case_number=case, now=NOW)


def _seize(s, doc, court=COURT, unit=FLAT, case="2026-000020", now=NOW):
    return reg.register_seizure(s, unit, court=court, document_number=doc, term_start=now.date(),
                                term_end=now.date() + timedelta(days=3 * 365), case_number=case, now=now)


# -- units and ownership -------------------------------------------------------------------------


def test_unit_is_entered_with_its_parcel_and_refused_twice(db: Database) -> None:
    with db.write() as s:
        add_units(s, FLAT)
    with db.read() as s:
        unit = reg.get_unit(s, "320684 413219 GB00029 F00010002")
        assert unit is not None
        assert (unit.parcel_number, unit.district_code, unit.land_unit) == ("320684413219GB00029", "320684", LAND)
        assert unit.area == Decimal("89.35") and unit.residential and unit.building == "1幢"
        assert reg.get_unit(s, FLAT_NEXT_DOOR) is None
    with pytest.raises(BusinessError) as info, db.write() as s:
        add_units(s, FLAT)
    assert info.value.code == "unit_exists"
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.add_unit(s, "320684413219GB00000F00010002", address="x", use="residential", now=NOW)
    assert info.value.code == "invalid_unit_number" and "第15–19位宗地顺序号" in info.value.message


def test_current_ownership_shows_holders_and_shares(db: Database) -> None:
    with db.write() as s:
        owned_flat(s, [dict(ZHANG, share="2/3"), dict(WANG, share="1/3")])
        reg.register_ownership(s, FLAT_NEXT_DOOR, [dict(LI, share="共同共有"), dict(ZHAO, share="共同共有")],
                               case_number="2026-000003", now=NOW)
    with db.read() as s:
        own = reg.current_ownership(s, FLAT)
        assert own is not None and own.case_number == "2026-000002"
        assert [(h.name, h.share_mode, h.share) for h in own.holders] == [
            ("张伟", "share", Decimal("0.666667")), ("王芳", "share", Decimal("0.333333"))]
        assert [h.share_label for h in own.holders] == ["按份共有 2/3", "按份共有 1/3"]
        joint = reg.current_ownership(s, FLAT_NEXT_DOOR)
        assert joint is not None and [h.share_label for h in joint.holders] == ["共同共有", "共同共有"]
        assert [h.share for h in joint.holders] == [None, None]


@pytest.mark.parametrize(("owners", "fragment"), [
    ([dict(ZHANG, share="1/2"), dict(WANG, share="1/3")], "份额合计应为1"),
    ([ZHANG, WANG], "须全部写明份额（按份共有）或全部为“共同共有”"),
    ([dict(ZHANG, share="1/2"), dict(WANG, share="共同共有")], "须全部写明份额"),
    ([ZHANG, dict(ZHANG, name="张伟2")], "证件号码重复"),
])
def test_unclear_co_ownership_is_refused(db: Database, owners: list[dict], fragment: str) -> None:
    with pytest.raises(BusinessError) as info, db.write() as s:
        owned_flat(s, owners)
    assert info.value.code == "invalid_request" and fragment in info.value.message


def test_a_second_first_registration_is_refused(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.register_ownership(s, FLAT, [LI], case_number="2026-000009", now=NOW)
    assert info.value.code == "ownership_exists"


def test_database_allows_one_current_ownership_per_unit(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
    with pytest.raises(IntegrityError), db.write() as s:
        s.add(RegisterRight(unit_number=FLAT, kind="ownership", status="current", registered_at=NOW,
                            case_number="bypass", details={}))


# -- transfer ------------------------------------------------------------------------------------


def test_transfer_ends_ownership_and_the_mortgage_travels_with_the_mortgagee_listed(db: Database) -> None:
    later = NOW + timedelta(days=30)
    with db.write() as s:
        first = owned_flat(s, [dict(ZHANG, share="共同共有"), dict(WANG, share="共同共有")])
        mortgage = _mortgage(s)
        assert mortgage.details["mortgagor"] == [
            {"name": "张伟", "id_type": "居民身份证", "id_number": ZHANG["id_number"]},
            {"name": "王芳", "id_type": "居民身份证", "id_number": WANG["id_number"]}]
        result = reg.transfer_ownership(s, FLAT, [LI], case_number="2026-000100", now=later,
                                        expected_previous=first.id)
    assert result.previous.id == first.id and result.previous.status == "ended"
    assert result.previous.ended_by_case == "2026-000100" and result.previous.ended_at == later
    assert result.previous.end_reason == "转移登记（买卖）"
    assert result.ownership.holders[0].name == "李娜" and result.ownership.case_number == "2026-000100"
    assert [m.id for m in result.mortgages] == [mortgage.id]
    assert [n["mortgagee"]["name"] for n in result.notify_mortgagees] == ["中国工商银行股份有限公司海门支行"]
    notice = result.notify_mortgagees[0]
    assert notice["mortgage_id"] == mortgage.id and notice["amount"] == "1200000.00"
    assert "民法典第四百零六条" in notice["reason"]
    assert [o["name"] for o in notice["previous_owners"]] == ["张伟", "王芳"]
    with db.read() as s:
        travelled = reg.get_right(s, mortgage.id)
        assert travelled.status == "current"
        assert travelled.details["mortgagor"] == [{"name": "李娜", "id_type": "居民身份证",
                                                   "id_number": LI["id_number"]}]
        change = travelled.details["mortgagor_changes"][0]
        assert change["case_number"] == "2026-000100" and change["ownership_right_id"] == result.ownership.id
        assert reg.current_ownership(s, FLAT).id == result.ownership.id
    data = result.to_data()
    assert data["notify_mortgagees"][0]["mortgagee"]["id_number"] == ICBC["id_number"]


def test_transfer_after_another_case_changed_the_owner_is_refused(db: Database) -> None:
    with db.write() as s:
        first = owned_flat(s)
        reg.transfer_ownership(s, FLAT, [LI], case_number="2026-000100", now=NOW)
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.transfer_ownership(s, FLAT, [ZHAO], case_number="2026-000101", now=NOW, expected_previous=first.id)
    assert info.value.code == "ownership_changed" and "李娜" in info.value.message


def test_transfer_of_a_seized_unit_or_a_unit_on_a_seized_parcel_is_refused(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        reg.register_ownership(s, FLAT_NEXT_DOOR, [LI], case_number="2026-000003", now=NOW)
        _seize(s, "(2026)苏0684执1234号")
        reg.register_ownership(s, LAND, [ZHAO], case_number="2026-000004", now=NOW)
        _seize(s, "(2026)苏06执88号", court=COURT2, unit=LAND, case="2026-000021")
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.transfer_ownership(s, FLAT, [WANG], case_number="2026-000100", now=NOW)
    assert info.value.code == "unit_seized" and "(2026)苏0684执1234号" in info.value.message
    with pytest.raises(BusinessError) as info, db.write() as s:
        _mortgage(s, unit=FLAT_NEXT_DOOR)
    assert info.value.code == "unit_seized" and "所在宗地" in info.value.message
    with db.write() as s:  # a court's own ruling transfers a seized unit
        done = reg.transfer_ownership(s, FLAT, [WANG], reason="法院裁定", court_ordered=True,
                                      case_number="2026-000101", now=NOW)
    assert done.ownership.details["court_ordered"] is True


def test_transfer_to_the_pre_notice_holder_converts_the_pre_notice(db: Database) -> None:
    with db.write() as s:
        owned_flat(s, [DEVELOPER])
        pn = reg.register_pre_notice(s, FLAT, kind="预售商品房买卖预告", holders=[LI], obligors=[DEVELOPER],
                                     case_number="2026-000030", now=NOW)
        result = reg.transfer_ownership(s, FLAT, [LI], case_number="2026-000031", now=NOW)
    assert [p.id for p in result.ended_pre_notices] == [pn.id]
    assert result.ended_pre_notices[0].end_reason == "预告登记转为本登记（转移登记）"


# -- seizures ------------------------------------------------------------------------------------


def test_seizure_then_queued_seizure_then_release_makes_the_queued_one_current(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        first = _seize(s, "(2026)苏0684执1234号", case="2026-000020")
        second = _seize(s, "(2026)苏06执88号", court=COURT2, case="2026-000021")
        third = _seize(s, "(2026)苏0684执1300号", case="2026-000022")
    assert first.queue_position is None and not first.queued and first.kind_label == "查封登记"
    assert (second.queued, second.queue_position, second.kind_label) == (True, 1, "轮候查封")
    assert (third.queued, third.queue_position) == (True, 2)

    release_at = NOW + timedelta(days=100)
    with db.write() as s:
        result = reg.release_seizure(s, document_number="(2026)苏0684执1234号", unit_number=FLAT,
                                     release_document_number="(2026)苏0684执1234号之一", court=COURT,
                                     case_number="2026-000200", now=release_at)
    assert result.released.id == first.id and result.released.status == "ended"
    assert result.released.end_reason == "解除查封（(2026)苏0684执1234号之一）"
    assert result.released.ended_by_case == "2026-000200"
    took = result.took_effect
    assert took is not None and took.id == second.id and not took.queued and took.status == "current"
    assert took.details["took_effect_by_case"] == "2026-000200"
    assert took.details["took_effect_on_release_of"] == first.id
    assert took.details["took_effect_at"] == release_at.isoformat()
    # its term runs from the day it took effect, for the length the court set; the queued term is kept
    assert took.details["term_start"] == "2027-03-03"
    assert took.details["term_as_queued"]["term_start"] == "2026-11-23"
    assert [(q.id, q.queue_position) for q in result.queue] == [(third.id, 1)]
    with db.read() as s:
        current = reg.current_rights(s, FLAT, ["seizure"])
        assert [(r.id, r.queue_position) for r in current] == [(second.id, None), (third.id, 1)]


def test_withdrawing_a_queued_seizure_promotes_nobody(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        first = _seize(s, "A1")
        second = _seize(s, "A2", case="2026-000021")
        third = _seize(s, "A3", case="2026-000022")
    with db.write() as s:
        result = reg.release_seizure(s, right_id=second.id, case_number="2026-000201", now=NOW)
    assert result.took_effect is None and result.released.end_reason == "撤销轮候查封"
    with db.read() as s:
        assert [(r.id, r.queue_position) for r in reg.current_rights(s, FLAT, ["seizure"])] == [
            (first.id, None), (third.id, 1)]


def test_duplicate_seizure_notice_and_unknown_release_are_refused(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        _seize(s, "A1")
    with pytest.raises(BusinessError) as info, db.write() as s:
        _seize(s, "A1")
    assert info.value.code == "duplicate_seizure"
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.release_seizure(s, document_number="NOPE", case_number="2026-000201", now=NOW)
    assert info.value.code == "seizure_not_found"


def test_renewal_extends_the_term_and_is_recorded(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        seizure = _seize(s, "A1")
        renewed = reg.renew_seizure(s, seizure.id, term_end="2032-11-22", document_number="A1之二",
                                    case_number="2026-000300", now=NOW)
    assert renewed.details["term_end"] == "2032-11-22"
    assert renewed.details["renewals"][0]["previous_term_end"] == seizure.details["term_end"]


# -- objections ----------------------------------------------------------------------------------


def test_objection_lapses_after_15_days_unless_a_suit_is_filed(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        reg.register_ownership(s, FLAT_NEXT_DOOR, [LI], case_number="2026-000003", now=NOW)
        lapsing = reg.register_objection(s, FLAT, applicant=WANG, reason="主张为共同共有人", case_number="2026-000040",
                                         now=NOW)
        sued = reg.register_objection(s, FLAT_NEXT_DOOR, applicant=ZHAO, reason="主张房屋为其出资购买",
                                      case_number="2026-000041", now=NOW)
    assert lapsing.lapses_on == date(2026, 12, 8)  # 2026-11-23 + 15 days
    with db.write() as s:
        reg.record_objection_suit(s, sued.id, court=COURT, filed_on="2026-12-01", suit_number="(2026)苏0684民初77号",
                                  case_number="2026-000042", now=NOW + timedelta(days=8))
    with db.write() as s:  # on the last day it still stands
        assert reg.lapse_objections(s, date(2026, 12, 8), now=NOW + timedelta(days=15)) == []
    with db.write() as s:
        ended = reg.lapse_objections(s, date(2026, 12, 9), now=NOW + timedelta(days=16))
    assert [o.id for o in ended] == [lapsing.id]
    assert "十五日内起诉" in (ended[0].end_reason or "") and ended[0].ended_by_case is None
    with db.read() as s:
        assert reg.get_right(s, lapsing.id).status == "ended"
        still = reg.get_right(s, sued.id)
        assert still.status == "current" and still.lapses_on is None
        assert still.details["suit"]["suit_number"] == "(2026)苏0684民初77号"
    with db.write() as s:  # a later run does not end it either
        assert reg.lapse_objections(s, date(2027, 6, 1), now=NOW + timedelta(days=200)) == []


def test_objection_deadline_ending_on_a_holiday_runs_to_the_next_working_day() -> None:
    # 2026-09-16 + 15 days = 2026-10-01, 国庆节: the last day moves to the first working day after the holiday
    assert reg.objection_lapses_on(date(2026, 9, 16)) == date(2026, 10, 8)


def test_suit_after_the_objection_lapsed_is_refused(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        o = reg.register_objection(s, FLAT, applicant=WANG, reason="x", case_number="2026-000040", now=NOW)
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.record_objection_suit(s, o.id, court=COURT, filed_on="2026-12-09", case_number="2026-000042", now=NOW)
    assert info.value.code == "suit_too_late"


# -- history -------------------------------------------------------------------------------------


def test_history_keeps_ended_rights_in_order(db: Database) -> None:
    t = [NOW + timedelta(days=d) for d in range(5)]
    with db.write() as s:
        first = owned_flat(s)
        m = reg.register_mortgage(s, FLAT, mortgagee=ICBC, amount=500000, term_start="2026-11-24",
                                  term_end="2036-11-23", case_number="2026-000010", now=t[1])
        reg.cancel_mortgage(s, m.id, case_number="2026-000011", now=t[2])
        transfer = reg.transfer_ownership(s, FLAT, [LI], case_number="2026-000012", now=t[3])
        m2 = reg.register_mortgage(s, FLAT, mortgagee=CCB, amount="800000", term_start="2026-11-27",
                                   term_end="2056-11-26", mode="maximum_amount", case_number="2026-000013", now=t[4])
    with db.read() as s:
        rows = reg.history(s, FLAT)
        assert [(r.kind, r.status, r.case_number, r.ended_by_case) for r in rows] == [
            ("ownership", "ended", "2026-000002", "2026-000012"),
            ("mortgage", "ended", "2026-000010", "2026-000011"),
            ("ownership", "current", "2026-000012", None),
            ("mortgage", "current", "2026-000013", None),
        ]
        assert [r.id for r in rows] == [first.id, m.id, transfer.ownership.id, m2.id]
        assert rows[1].end_reason == "抵押权注销（主债权消灭）" and rows[1].ended_at == t[2]
        assert rows[3].details["mode_label"] == "最高额抵押" and rows[3].details["amount"] == "800000.00"
        assert s.scalar(select(func.count()).select_from(RegisterRight)) == 4  # nothing deleted
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.cancel_mortgage(s, m.id, case_number="2026-000014", now=t[4])
    assert info.value.code == "right_not_current"


# -- certificates --------------------------------------------------------------------------------


def test_certificate_numbers_per_office_kind_and_year(db: Database) -> None:
    with db.write() as s:
        own = owned_flat(s)
        m = _mortgage(s)
        t1 = reg.issue_certificate(s, OFFICE, "title", own.id, "2026-000002", NOW)
        t2 = reg.issue_certificate(s, OFFICE, "title", own.id, "2026-000002", NOW)
        r1 = reg.issue_certificate(s, OFFICE, "registration", m.id, "2026-000010", NOW)
    assert (t1.number, t2.number) == ("浙(2026)杭州市不动产权第0000001号", "浙(2026)杭州市不动产权第0000002号")
    assert r1.number == "浙(2026)杭州市不动产证明第0000001号"
    assert (t1.kind_label, r1.kind_label) == ("不动产权证书", "不动产登记证明")
    assert reg.parse_certificate_number(t2.number) == {
        "province": "浙", "year": 2026, "office_name": "杭州市", "kind": "title", "serial": 2}
    # the year is Shanghai's: 00:30 on New Year's Day is 2027 there (still 2026 in UTC), and the serial restarts
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI)
    with db.write() as s:
        t3 = reg.issue_certificate(s, OFFICE, "title", own.id, "2027-000001", new_year)
        other = reg.issue_certificate(s, reg.Office("苏", "海门市", "320684"), "title", own.id, "2027-000001",
                                      new_year)
    assert t3.number == "浙(2027)杭州市不动产权第0000001号" and t3.year == 2027
    assert other.number == "苏(2027)海门市不动产权第0000001号"


def test_office_from_environment() -> None:
    office = reg.Office.from_env({"ONEWINDOW_OFFICE_PROVINCE": "苏", "ONEWINDOW_OFFICE_NAME": "海门市"})
    assert (office.province, office.name) == ("苏", "海门市")
    assert reg.Office.from_env({}) == reg.Office("浙", "杭州市", "330100")


def test_voiding_keeps_the_number_used(db: Database) -> None:
    with db.write() as s:
        own = owned_flat(s)
        first = reg.issue_certificate(s, OFFICE, "title", own.id, "2026-000002", NOW)
    with db.write() as s:
        voided = reg.void_certificate(s, first.number, "缮证错误（坐落打印错误）", "2026-000002", NOW)
        second = reg.issue_certificate(s, OFFICE, "title", own.id, "2026-000002", NOW)
    assert voided.voided and voided.void_reason == "缮证错误（坐落打印错误）"
    assert second.serial == 2 and second.number == "浙(2026)杭州市不动产权第0000002号"
    with db.read() as s:
        kept = reg.get_certificate(s, first.number)
        assert kept is not None and kept.voided_at == NOW and kept.voided_by_case == "2026-000002"
        assert [c.serial for c in reg.certificates_for_right(s, own.id)] == [1, 2]
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.void_certificate(s, first.number, "again", None, NOW)
    assert info.value.code == "certificate_voided"


def test_certificate_kind_must_fit_the_right(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        m = _mortgage(s)
        seizure = _seize(s, "A1")
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.issue_certificate(s, OFFICE, "title", m.id, "2026-000010", NOW)
    assert info.value.code == "wrong_certificate_kind" and "应发不动产登记证明" in info.value.message
    with pytest.raises(BusinessError) as info, db.write() as s:
        reg.issue_certificate(s, OFFICE, "registration", seizure.id, "2026-000020", NOW)
    assert info.value.code == "wrong_certificate_kind" and "该登记不发证书" in info.value.message
    with db.read() as s:  # nothing was numbered by the refusals
        assert reg.certificates_for_right(s, m.id) == []


def test_transfer_voids_the_previous_title_certificate(db: Database) -> None:
    with db.write() as s:
        own = owned_flat(s)
        old = reg.issue_certificate(s, OFFICE, "title", own.id, "2026-000002", NOW)
        result = reg.transfer_ownership(s, FLAT, [LI], case_number="2026-000100", now=NOW)
        new = reg.issue_certificate(s, OFFICE, "title", result.ownership.id, "2026-000100", NOW)
    assert result.voided_certificates == (old.number,)
    assert new.serial == 2
    with db.read() as s:
        kept = reg.get_certificate(s, old.number)
        assert kept is not None and kept.voided and kept.voided_by_case == "2026-000100"

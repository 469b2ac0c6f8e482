"""Legal checks at review, each rule on its own, against a real register on both databases."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain import register as reg
from domain import rules
from storage.db import Database
from tests.register_data import (
    COURT,
    COURT2,
    DEVELOPER,
    FLAT,
    FLAT_NEXT_DOOR,
    ICBC,
    LAND,
    LI,
    NOW,
    OTHER_PARCEL_FLAT,
    WANG,
    ZHANG,
    ZHAO,
    add_units,
    owned_flat,
)

SELLER = dict(ZHANG, role="seller")
BUYER = dict(LI, role="buyer")
MORTGAGOR = dict(ZHANG, role="mortgagor")
MORTGAGEE = dict(ICBC, role="mortgagee")


def _check(db: Database, business: str, applicants: list[dict], unit: str = FLAT, **kw) -> rules.Evaluation:
    with db.read() as s:
        result = rules.evaluate(s, business, unit, applicants, **kw)
    json.dumps(result.to_data(), ensure_ascii=False)  # goes into case data as is
    return result


def _codes(result: rules.Evaluation) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in result.findings]


def _seize(s, unit=FLAT, doc="(2026)苏0684执1234号", court=COURT, case="2026-000020"):
    return reg.register_seizure(s, unit, court=court, document_number=doc, term_start="2026-11-23",
                                term_end="2029-11-22", case_number=case, now=NOW)


def test_a_clean_transfer_has_no_findings(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
    result = _check(db, "transfer", [SELLER, BUYER])
    assert result.findings == () and not result.blocked
    assert result.to_data() == {"business": "transfer", "unit_number": FLAT, "blocked": False, "has_warnings": False,
                                "blocks": [], "warnings": [], "notices": [], "codes": [], "findings": []}


def test_seized_unit_cannot_be_transferred_or_mortgaged(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        seizure = _seize(s)
        queued = _seize(s, doc="(2026)苏06执88号", court=COURT2, case="2026-000021")
    transfer = _check(db, "transfer", [SELLER, BUYER])
    assert transfer.blocked and _codes(transfer) == [("seized", "block"), ("seized", "block")]
    first = transfer.findings[0]
    assert first.right_id == seizure.id and not first.on_parcel
    assert first.message == (
        "该不动产单元已被海门市人民法院查封（(2026)苏0684执1234号，查封期限2026-11-23至2029-11-22），"
        "依法不得转让（办理转移登记）（城市房地产管理法第三十八条）")
    assert transfer.findings[1].right_id == queued.id and "轮候查封" in transfer.findings[1].message
    mortgage = _check(db, "mortgage", [MORTGAGOR, MORTGAGEE])
    assert mortgage.blocked and mortgage.findings[0].basis == "民法典第三百九十九条"
    assert "不得设定抵押" in mortgage.findings[0].message
    assert mortgage.to_data()["blocks"][0] == mortgage.findings[0].message


def test_seizure_on_the_parcel_counts_for_every_unit_on_it(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        reg.register_ownership(s, FLAT_NEXT_DOOR, [LI], case_number="2026-000003", now=NOW)
        reg.register_ownership(s, LAND, [DEVELOPER], case_number="2026-000004", now=NOW)
        add_units(s, OTHER_PARCEL_FLAT)
        reg.register_ownership(s, OTHER_PARCEL_FLAT, [ZHANG], case_number="2026-000005", now=NOW)
        land_mortgage = reg.register_mortgage(s, LAND, mortgagee=ICBC, amount="30000000", term_start="2026-11-23",
                                              term_end="2029-11-22", case_number="2026-000006", now=NOW)
        land_seizure = _seize(s, unit=LAND)
    for unit, seller in ((FLAT, SELLER), (FLAT_NEXT_DOOR, dict(LI, role="seller"))):
        result = _check(db, "transfer", [seller, dict(ZHAO, role="buyer")], unit=unit)
        seized = [f for f in result.findings if f.code == "seized"]
        assert [(f.right_id, f.on_parcel, f.unit_number) for f in seized] == [(land_seizure.id, True, LAND)]
        assert seized[0].message.startswith("该不动产单元所在宗地（320684413219GB00029）已被海门市人民法院查封")
        travels = [f for f in result.findings if f.code == "mortgage_travels"]
        assert [(f.right_id, f.on_parcel) for f in travels] == [(land_mortgage.id, True)]
    elsewhere = _check(db, "transfer", [SELLER, BUYER], unit=OTHER_PARCEL_FLAT)
    assert elsewhere.findings == ()


def test_pre_notice_blocks_disposal_without_its_holders_consent(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        pn = reg.register_pre_notice(s, FLAT, kind="其它不动产买卖预告", holders=[WANG], obligors=[ZHANG],
                                     case_number="2026-000030", now=NOW)
    blocked = _check(db, "transfer", [SELLER, BUYER])
    assert _codes(blocked) == [("pre_notice_consent", "block")] and blocked.findings[0].right_id == pn.id
    assert blocked.findings[0].message == (
        "该不动产单元存在其它不动产买卖预告（权利人：王芳），未经预告登记权利人王芳书面同意，"
        "不得办理转移登记（民法典第二百二十一条）")
    assert _check(db, "mortgage", [MORTGAGOR, MORTGAGEE]).blocked
    # consent recorded in the request (ID numbers compare case-insensitively: …002x = …002X)
    consented = _check(db, "transfer", [SELLER, BUYER], consents=[WANG["id_number"].lower()])
    assert _codes(consented) == [("pre_notice_consent", "notice")] and not consented.blocked
    assert "已附预告登记权利人的书面同意" in consented.findings[0].message
    # the buyer is the pre-notice holder: the pre-notice converts, no consent needed
    to_holder = _check(db, "transfer", [SELLER, dict(WANG, role="buyer")])
    assert _codes(to_holder) == [("pre_notice_consent", "notice")]
    assert "预告登记转为本登记" in to_holder.findings[0].message


def test_mortgaged_unit_may_be_transferred_and_the_mortgagee_is_notified(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        m = reg.register_mortgage(s, FLAT, mortgagee=ICBC, amount="1200000", term_start="2026-11-23",
                                  term_end="2046-11-22", case_number="2026-000010", now=NOW)
    result = _check(db, "transfer", [SELLER, BUYER])
    assert not result.blocked and _codes(result) == [("mortgage_travels", "notice")]
    f = result.findings[0]
    assert f.right_id == m.id and f.basis == "民法典第四百零六条"
    assert "抵押权人：中国工商银行股份有限公司海门支行" in f.message and "须通知抵押权人" in f.message
    assert f.detail["mortgagee"][0]["id_number"] == ICBC["id_number"]
    assert result.to_data()["notices"] == [f.message]
    second = _check(db, "mortgage", [MORTGAGOR, MORTGAGEE])
    assert _codes(second) == [("existing_mortgage", "notice")] and not second.blocked


def test_objection_warns(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        o = reg.register_objection(s, FLAT, applicant=WANG, reason="主张为共同共有人", case_number="2026-000040",
                                   now=NOW)
    result = _check(db, "transfer", [SELLER, BUYER])
    assert _codes(result) == [("objection", "warn")] and not result.blocked
    data = result.to_data()
    assert data["has_warnings"] is True and data["findings"][0]["right_id"] == o.id
    assert "申请人如在2026-12-08前未起诉，异议登记失效" in data["warnings"][0]
    assert "自担风险的书面承诺" in data["warnings"][0]


def test_applicant_must_be_the_current_holder(db: Database) -> None:
    with db.write() as s:
        own = owned_flat(s)
    stranger = _check(db, "transfer", [dict(ZHAO, role="seller"), BUYER])
    assert ("applicant_not_holder", "block") in _codes(stranger)
    f = next(f for f in stranger.findings if f.code == "applicant_not_holder")
    assert f.right_id == own.id
    assert f.message.startswith("申请人赵强（330106198812120035）不是该不动产单元现登记的权利人")
    # same name, different ID number: still not the holder
    namesake = _check(db, "mortgage", [dict(ZHANG, id_number="320684198003150099", role="mortgagor"), MORTGAGEE])
    assert "applicant_not_holder" in namesake.codes
    # the buyer alone (no seller among the applicants)
    alone = _check(db, "transfer", [BUYER])
    assert _codes(alone) == [("applicant_not_holder", "block")]
    assert "申请人中没有现登记的权利人" in alone.findings[0].message


def test_every_joint_owner_must_apply_but_a_share_owner_only_warns(db: Database) -> None:
    with db.write() as s:
        owned_flat(s, [dict(ZHANG, share="共同共有"), dict(WANG, share="共同共有")])
        reg.register_ownership(s, FLAT_NEXT_DOOR, [dict(ZHANG, share="1/2"), dict(WANG, share="1/2")],
                               case_number="2026-000003", now=NOW)
    joint = _check(db, "transfer", [SELLER, BUYER])
    assert _codes(joint) == [("holder_not_applying", "block")] and "王芳（共同共有）" in joint.findings[0].message
    both = _check(db, "transfer", [SELLER, dict(WANG, role="seller"), BUYER])
    assert both.findings == ()
    shares = _check(db, "transfer", [SELLER, BUYER], unit=FLAT_NEXT_DOOR)
    assert _codes(shares) == [("holder_not_applying", "warn")] and "王芳（按份共有 1/2）" in shares.findings[0].message


def test_no_current_ownership_blocks_disposal(db: Database) -> None:
    with db.write() as s:
        add_units(s)
    result = _check(db, "transfer", [SELLER, BUYER])
    assert _codes(result) == [("no_current_ownership", "block")]


def test_pre_sale_pre_notice_checks_the_developer_on_the_parcel(db: Database) -> None:
    with db.write() as s:
        add_units(s)
        reg.register_ownership(s, LAND, [DEVELOPER], case_number="2026-000004", now=NOW)
    ok = _check(db, "pre_notice", [dict(DEVELOPER, role="developer"), BUYER])
    assert ok.findings == ()
    wrong = _check(db, "pre_notice", [dict(ZHAO, role="seller"), BUYER])
    assert _codes(wrong) == [("applicant_not_holder", "block"), ("holder_not_applying", "block")]


def test_unknown_or_malformed_unit_is_named(db: Database) -> None:
    malformed = _check(db, "transfer", [SELLER, BUYER], unit="320684413219GB00000F00010002")
    assert _codes(malformed) == [("invalid_unit_number", "block")]
    assert "第15–19位宗地顺序号应为00001–99999，实为00000" in malformed.findings[0].message
    unknown = _check(db, "transfer", [SELLER, BUYER])
    assert _codes(unknown) == [("unit_not_registered", "block")]


def test_a_second_seizure_is_announced_as_queued(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        first = _seize(s)
    result = _check(db, "seizure", [])
    assert _codes(result) == [("seizure_queued", "notice")] and result.findings[0].right_id == first.id
    assert "轮候查封，排第1位" in result.findings[0].message


def test_ended_encumbrances_no_longer_count(db: Database) -> None:
    with db.write() as s:
        owned_flat(s)
        seizure = _seize(s)
        o = reg.register_objection(s, FLAT, applicant=WANG, reason="x", case_number="2026-000040", now=NOW)
        reg.release_seizure(s, right_id=seizure.id, case_number="2026-000041", now=NOW + timedelta(days=1))
        reg.lapse_objections(s, o.lapses_on + timedelta(days=1), now=NOW + timedelta(days=20))
    assert _check(db, "transfer", [SELLER, BUYER]).findings == ()


def test_rules_are_named_with_severity_and_basis() -> None:
    codes = [r.code for r in rules.RULES]
    assert len(codes) == len(set(codes))
    assert {r.code for r in rules.rules_for("transfer")} >= {
        "seized", "pre_notice_consent", "mortgage_travels", "objection", "applicant_not_holder"}
    assert all(r.severity in (rules.BLOCK, rules.WARN, rules.NOTICE) and r.basis and r.title for r in rules.RULES)
    with pytest.raises(ValueError, match="业务类型"):
        rules.evaluate(None, "gift", FLAT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="申请人角色"):
        rules.Applicant.of({"name": "x", "id_number": "1", "role": "witness"})


def test_off_plan_buyer_pledging_the_pre_notice_is_not_blocked(db: Database) -> None:
    """预售商品房: the developer holds the land; the buyer's 买卖预告 is pledged to the bank (抵押权预告)."""
    with db.write() as s:
        add_units(s)
        reg.register_ownership(s, LAND, [DEVELOPER], case_number="2026-000004", now=NOW)
        sale = reg.register_pre_notice(s, FLAT, kind="预售商品房买卖预告", holders=[LI], obligors=[DEVELOPER],
                                       case_number="2026-000030", now=NOW)
    result = _check(db, "pre_notice", [dict(LI, role="mortgagor"), MORTGAGEE])
    assert not result.blocked
    assert _codes(result) == [("pre_notice_consent", "notice")] and result.findings[0].right_id == sale.id
    assert "即本次申请的义务人" in result.findings[0].message
    # someone else pledging the buyer's flat is blocked twice over
    other = _check(db, "pre_notice", [dict(ZHAO, role="mortgagor"), MORTGAGEE])
    assert ("pre_notice_consent", "block") in _codes(other) and ("applicant_not_holder", "block") in _codes(other)

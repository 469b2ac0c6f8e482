"""一窗受理 and 发证: the materials checklists, the one-time notification, 容缺受理, the situations outside
"at most one trip", and delivery by pickup or EMS mail — as functions, and once through the engine."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from domain import materials
from domain.clock import SHANGHAI
from domain.errors import BusinessError
from handlers import acceptance as acceptance_ops
from handlers import delivery
from tests.conftest import CLERK, open_task
from tests.diagrams import definitions

TODAY = "2026-11-23"  # a Monday; the engine fixture's clock starts on it too
BUSINESSES = ["presale_notice", "secondhand_transfer", "mortgage", "transfer_with_mortgage",
              "mortgage_cancellation", "seizure", "release"]
TRANSFER = "secondhand_transfer"


def ctx(case_number: str = "2026-000042") -> SimpleNamespace:
    return SimpleNamespace(case_number=case_number, now=lambda: datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI))


def applicant_codes(business: str, facts: dict | None = None) -> list[str]:
    return [i.code for i in materials.checklist(business).required(facts) if not i.shared]


def codes(entries: list[dict]) -> list[str]:
    return [e["code"] for e in entries]


# ------------------------------------------------------------------------------------ checklists

@pytest.mark.parametrize("business", BUSINESSES)
def test_every_checklist_loads_with_sources_and_reasons(business):
    cl = materials.checklist(business)
    assert cl.business == business and cl.name and cl.basis
    assert len({i.code for i in cl.items}) == len(cl.items)
    for item in cl.items:
        assert item.source == "applicant" or item.department in materials.DEPARTMENTS
        assert item.why and item.basis and isinstance(item.essential, bool)
    assert set(BUSINESSES) <= set(materials.businesses())


def test_interfaces_business_codes_all_have_a_checklist():
    table = (Path(__file__).parent.parent / "processes" / "INTERFACES.md").read_text(encoding="utf-8")
    for business in BUSINESSES:
        assert f"| {business} |" in table
        assert (materials.MATERIALS_DIR / f"{business}.json").is_file()


def test_transfer_with_mortgage_is_table_2_and_table_3_without_duplicates():
    combined = materials.checklist("transfer_with_mortgage")
    transfer, mortgage = materials.checklist(TRANSFER), materials.checklist("mortgage")
    assert {i.code for i in combined.items} == {i.code for i in transfer.items} | {i.code for i in mortgage.items}
    required = combined.required({"agent": True})
    names = [i.name for i in required]
    assert len(names) == len(set(names))  # one application form, one title certificate, one power of attorney
    assert names.count("不动产登记申请书") == 1 and names.count("不动产权属证书") == 1
    assert {"loan_contract", "mortgage_contract", "sale_contract", "tax_voucher"} <= {i.code for i in required}


def test_the_published_sources_the_applicant_never_brings():
    transfer = materials.checklist(TRANSFER)
    assert transfer.item("identity").source == "shared:public_security"
    assert transfer.item("sale_contract").source == "shared:housing"
    assert transfer.item("tax_voucher").source == "shared:tax"
    assert materials.checklist("presale_notice").item("presale_contract").source == "shared:housing"
    assert materials.checklist("mortgage_cancellation").item("mortgage_register_record").source == "shared:registry"
    seizure = materials.checklist("seizure")
    assert {i.code: i.source for i in seizure.required({})} == {
        "assistance_notice": "shared:court", "ruling": "shared:court", "officer_ids": "shared:court"}


GOOD_ITEM = {"code": "application_form", "name": "不动产登记申请书", "source": "applicant", "essential": True,
             "why": "法定要件", "basis": "表2 第1项"}


@pytest.mark.parametrize("bad, words", [
    ({"source": "police"}, ["item 2 ('power_of_attorney')", "source 'police'", "shared:<department>"]),
    ({"source": "shared:mars"}, ["item 2 ('power_of_attorney')", "'shared:mars'"]),
    ({"essential": "yes"}, ["item 2 ('power_of_attorney')", "essential should be true or false"]),
    ({"condition": "agent == 1"}, ["item 2 ('power_of_attorney')", "condition 'agent == 1'"]),
    ({"code": "application_form"}, ["item 2 ('application_form')", "appears twice"]),
    ({"code": "PowerOfAttorney"}, ["item 2 ('PowerOfAttorney')", "snake_case"]),
    ({"why": ""}, ["item 2 ('power_of_attorney')", "why should be non-empty"]),
    ({"name": "Power of attorney"}, ["item 2 ('power_of_attorney')", "Chinese name"]),
    ({"whyy": "x"}, ["item 2 ('power_of_attorney')", "unknown field(s) whyy"]),
], ids=["bad-source", "unknown-department", "essential", "condition", "duplicate", "code", "why", "name", "typo"])
def test_a_malformed_checklist_names_the_file_and_the_item(tmp_path, bad, words):
    second = {**GOOD_ITEM, "code": "power_of_attorney", "name": "委托书", "condition": "agent", **bad}
    path = tmp_path / "secondhand_transfer.json"
    path.write_text(json.dumps({"business": "secondhand_transfer", "name": "转移登记", "basis": "表2",
                                "items": [GOOD_ITEM, second]}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(materials.ChecklistError) as err:
        materials.load_checklists(tmp_path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_a_malformed_checklist_file(tmp_path):
    path = tmp_path / "mortgage.json"
    path.write_text('{"business": "mortgage", "items": [', encoding="utf-8")
    with pytest.raises(materials.ChecklistError, match=r"mortgage\.json: not valid JSON"):
        materials.load_checklist(path)
    path.write_text(json.dumps({"business": "seizure", "name": "抵押", "basis": "表3", "items": [GOOD_ITEM]}),
                    encoding="utf-8")
    with pytest.raises(materials.ChecklistError, match=r"business 'seizure' does not match the file name"):
        materials.load_checklist(path)


# ------------------------------------------------------------------------------------ evaluation

def all_facts(business: str, value: bool) -> dict:
    return {f: value for f in materials.checklist(business).condition_facts() if f != "transfer_basis"}


@pytest.mark.parametrize("business", BUSINESSES)
@pytest.mark.parametrize("value", [True, False])
def test_shared_items_are_never_missing_even_when_nothing_is_brought(business, value):
    facts = all_facts(business, value)
    result = materials.evaluate(business, [], [], facts, TODAY)
    shared = {i.code for i in materials.checklist(business).required(facts) if i.shared}
    assert not shared & set(codes(result["missing"]))
    assert set(codes(result["obtained_by_sharing"])) == shared
    assert set(codes(result["missing"])) == set(applicant_codes(business, facts))
    # ticking a shared item changes nothing: it was never asked for
    again = materials.evaluate(business, sorted(shared), [], facts, TODAY)
    assert again["missing"] == result["missing"]
    for item in result["obtained_by_sharing"]:
        assert item["name"] in result["notification"]


def test_every_missing_item_is_told_at_once_with_why():
    facts = {"agent": True, "allocated_land": True, "policy_housing": True, "tax_relief": True}
    result = materials.evaluate(TRANSFER, ["application_form"], [], facts, TODAY, case_number="2026-000042")
    assert result["status"] == "not_accepted"
    assert codes(result["missing"]) == ["power_of_attorney", "title_certificate", "allocated_land_approval",
                                        "tax_relief_proof", "policy_housing_listing"]
    cl = materials.checklist(TRANSFER)
    text = result["notification"]
    assert text.startswith("不动产登记一次性告知书") and "案件编号：2026-000042" in text
    assert "不予受理" in text and "共5项" in text
    for entry in result["missing"]:
        assert entry["why"] == cl.item(entry["code"]).why and entry["why"]
        assert entry["name"] in text and entry["why"] in text
    assert result["missing"][3]["essential"] is False  # the tax-relief proof could have been deferred
    assert "可容缺受理" in text
    # what the office obtains itself is named too, so nobody goes home to fetch it
    assert "申请人身份证明：由公安部门共享获取" in text and "税费缴纳凭证：由税务部门共享获取" in text


def test_complete_materials_are_accepted_in_one_trip():
    result = materials.evaluate(TRANSFER, applicant_codes(TRANSFER), [], {}, TODAY)
    assert result["status"] == "accepted" and result["missing"] == [] and result["deferred"] == []
    assert result["one_trip"] is True and result["not_one_trip_reasons"] == []
    assert "予以受理" in result["notification"] and "属于“最多跑一次”范围" in result["notification"]
    assert codes(result["required"])[0] == "application_form"
    assert set(result["required"][0]) == {"code", "name", "source", "essential"}


def test_deferred_item_with_a_promised_date_then_received():
    facts = {"tax_relief": True, "has_pre_notice": True}
    provided = [c for c in applicant_codes(TRANSFER, facts) if c not in ("tax_relief_proof", "pre_notice_certificate")]
    deferred = [{"code": "tax_relief_proof", "promised_by": "2026-11-30"},
                {"code": "pre_notice_certificate", "promised_by": "2026-12-04"}]
    accepted = materials.evaluate(TRANSFER, provided, deferred, facts, TODAY)
    assert accepted["status"] == "accepted_with_deficiencies" and accepted["missing"] == []
    assert accepted["deferred"] == [
        {"code": "pre_notice_certificate", "name": "不动产登记证明（预告登记）", "promised_by": "2026-12-04"},
        {"code": "tax_relief_proof", "name": "税费优惠申报证明材料", "promised_by": "2026-11-30"}]
    assert "容缺受理" in accepted["notification"] and "请于2026年11月30日前补交" in accepted["notification"]
    assert codes(accepted["not_one_trip_reasons"]) == ["supplement"]

    first = materials.receive_deferred(accepted, ["tax_relief_proof"], "2026-11-27")
    assert first["status"] == "accepted_with_deficiencies" and first["all_received"] is False
    assert codes(first["outstanding"]) == codes(first["deferred"]) == ["pre_notice_certificate"]
    assert accepted["deferred"] != first["deferred"]  # the input is not changed
    done = materials.receive_deferred(first, ["pre_notice_certificate", "tax_relief_proof"], "2026-12-07")
    assert done["status"] == "accepted" and done["all_received"] is True
    assert done["deferred"] == done["outstanding"] == []
    assert [(r["code"], r["received_on"], r["late"]) for r in done["received"]] == [
        ("tax_relief_proof", "2026-11-27", False), ("pre_notice_certificate", "2026-12-07", True)]
    with pytest.raises(BusinessError) as err:
        materials.receive_deferred(done, ["title_certificate"])
    assert err.value.code == "DEFERRED_ITEM_UNKNOWN" and "title_certificate" in err.value.message


def test_an_essential_item_cannot_be_deferred_and_every_problem_is_said_at_once():
    facts = {"tax_relief": True, "agent": True}
    deferred = [{"code": "title_certificate", "promised_by": "2026-11-30"},
                {"code": "tax_relief_proof", "promised_by": "2026-11-20"},
                {"code": "identity", "promised_by": "2026-11-30"}]
    with pytest.raises(BusinessError) as err:
        materials.evaluate(TRANSFER, ["application_form"], deferred, facts, TODAY)
    assert err.value.code == "DEFERRAL_REFUSED"
    message = err.value.message
    assert "“不动产权属证书”是受理的必要材料，不能容缺受理" in message
    assert "“税费优惠申报证明材料”的承诺补交日期2026年11月20日不在今天（2026年11月23日）之后" in message
    assert "“申请人身份证明”由公安部门共享获取，无需申请人提交" in message
    assert len(err.value.detail["problems"]) == 3


@pytest.mark.parametrize("promised", ["2026-11-23", "30/11/2026", None])
def test_a_deferral_needs_a_future_date(promised):
    with pytest.raises(BusinessError) as err:
        materials.evaluate(TRANSFER, ["application_form", "title_certificate"],
                           [{"code": "tax_relief_proof", "promised_by": promised}], {"tax_relief": True}, TODAY)
    assert err.value.code == "DEFERRAL_REFUSED" and "税费优惠申报证明材料" in err.value.message


def test_an_item_not_in_the_checklist_is_named():
    with pytest.raises(BusinessError) as err:
        materials.evaluate(TRANSFER, ["application_form", "hukou_book"], [], {}, TODAY)
    assert err.value.code == "MATERIALS_UNKNOWN" and "hukou_book" in err.value.message
    assert "title_certificate（不动产权属证书）" in err.value.message
    with pytest.raises(BusinessError) as err:
        materials.evaluate("land_swap", [], [], {}, TODAY)
    assert err.value.code == "UNKNOWN_BUSINESS" and "secondhand_transfer" in err.value.message


def test_the_power_of_attorney_is_asked_only_when_an_agent_applies():
    own = materials.evaluate("mortgage", [], [], {}, TODAY)
    assert "power_of_attorney" not in codes(own["required"]) + codes(own["missing"])
    assert "委托书" not in own["notification"]
    for agent in (True, "true", "是"):
        agent_case = materials.evaluate("mortgage", [], [], {"agent": agent}, TODAY)
        assert "power_of_attorney" in codes(agent_case["missing"])
        assert "agent_identity" in codes(agent_case["obtained_by_sharing"])
    for nobody in (False, "false", "否", None):
        assert "power_of_attorney" not in codes(materials.evaluate("mortgage", [], [], {"agent": nobody},
                                                                   TODAY)["required"])


def test_the_transfer_basis_decides_which_document_row_4_asks_for():
    sale = materials.evaluate(TRANSFER, [], [], {}, TODAY)
    assert "sale_contract" in codes(sale["obtained_by_sharing"]) and "inheritance_documents" not in codes(
        sale["required"])
    inherited = materials.evaluate(TRANSFER, [], [], {"transfer_basis": "inheritance"}, TODAY)
    assert "inheritance_documents" in codes(inherited["missing"])
    assert "sale_contract" not in codes(inherited["required"])
    ruling = materials.evaluate(TRANSFER, [], [], {"transfer_basis": "court_ruling"}, TODAY)
    assert "court_judgment" in codes(ruling["obtained_by_sharing"])


def test_a_seizure_through_the_court_link_needs_nothing_on_paper():
    online = materials.evaluate("seizure", [], [], {}, TODAY)
    assert online["status"] == "accepted" and online["one_trip"] is True
    assert codes(online["obtained_by_sharing"]) == ["assistance_notice", "ruling", "officer_ids"]
    in_person = materials.evaluate("seizure", ["assistance_notice_paper"], [], {"court_online": False}, TODAY)
    assert in_person["status"] == "not_accepted"
    assert codes(in_person["missing"]) == ["ruling_paper", "officer_ids_paper"]
    assert in_person["obtained_by_sharing"] == []


@pytest.mark.parametrize("facts, code, text", [
    ({"dispute": True}, "dispute", "不动产权属有争议的"),
    ({"needs_supplement": True}, "supplement", "申请材料不齐全，需要补正材料的"),
    ({"unresolved_violation": True}, "violation", "存在违法行为未处理等情形，不符合登记条件的"),
    ({"unpaid_tax": True}, "unpaid_tax", "申请人未及时缴清相关税费的"),
    ({"policy_housing": True}, "prior_approval",
     "政策性住房上市、划拨土地上不动产转让等需完成前置审核审批或需补交土地出让金的"),
    ({"land_premium": True}, "prior_approval",
     "政策性住房上市、划拨土地上不动产转让等需完成前置审核审批或需补交土地出让金的"),
    ({"needs_notice": True}, "legal_procedure", "依法需要履行实地查看、调查、公告等法定程序的"),
    ({"needs_inspection": True}, "legal_procedure", "依法需要履行实地查看、调查、公告等法定程序的"),
    ({"collect_in_person": True}, "collect_in_person",
     "现场申请符合登记发证条件，但申请人自愿选择到不动产登记机构现场领取证书证明的"),
])
def test_not_one_trip_situations_say_which_applies(facts, code, text):
    provided = applicant_codes(TRANSFER, facts)
    result = materials.evaluate(TRANSFER, provided, [], facts, TODAY)
    assert result["status"] == "accepted"
    assert result["one_trip"] is False
    assert result["not_one_trip_reasons"] == [{"code": code, "text": text}]
    assert text in result["notification"] and "不属于“最多跑一次”范围" in result["notification"]


def test_missing_materials_put_the_case_outside_one_trip_together_with_the_facts():
    result = materials.evaluate(TRANSFER, [], [], {"dispute": True, "unpaid_tax": True, "needs_notice": False}, TODAY)
    assert codes(result["not_one_trip_reasons"]) == ["dispute", "supplement", "unpaid_tax"]


# ------------------------------------------------------------------------------------ operators

def test_the_operators_are_registered_as_the_interfaces_say(registry):
    evaluate = registry.get("acceptance.evaluate")
    assert [(p.name, p.type, p.required) for p in evaluate.params] == [
        ("business", "str", True), ("provided", "list", True), ("deferred", "list", False), ("facts", "dict", False)]
    receive = registry.get("acceptance.receive_deferred")
    assert [(p.name, p.type, p.required) for p in receive.params] == [
        ("acceptance", "dict", True), ("received", "list", True)]
    arrange = registry.get("delivery.arrange")
    assert [(p.name, p.type, p.required) for p in arrange.params] == [
        ("method", "str", True), ("address", "str", False), ("office", "str", False)]
    assert evaluate.wants_context and receive.wants_context and arrange.wants_context


def test_the_evaluate_operator_uses_the_office_date_and_the_case_number():
    result = acceptance_ops.evaluate(ctx(), "mortgage", ["application_form"])
    assert set(result) == {"status", "business", "required", "obtained_by_sharing", "missing", "deferred",
                           "notification", "one_trip", "not_one_trip_reasons"}
    assert "案件编号：2026-000042" in result["notification"] and "告知日期：2026年11月23日" in result["notification"]
    with pytest.raises(BusinessError, match="2026年11月23日"):
        acceptance_ops.evaluate(ctx(), TRANSFER, ["application_form", "title_certificate"],
                                [{"code": "tax_relief_proof", "promised_by": "2026-11-23"}], {"tax_relief": True})


# ------------------------------------------------------------------------------------ delivery

def test_s10_check_digit_matches_the_upu_example():
    assert delivery.s10_check_digit("47312482") == 9  # RA473124829GB, UPU S10 annex
    assert delivery.valid_tracking_number("RA473124829CN")
    assert not delivery.valid_tracking_number("RA473124828CN")
    assert delivery.s10_check_digit("00000000") == 5  # remainder 0: 11 → 5
    assert delivery.s10_check_digit("00000001") == 4


def test_mail_gets_a_valid_tracking_number_from_the_case_number():
    arranged = delivery.arrange(ctx("2026-000123"), "mail", "杭州市西湖区文三路398号3幢1单元501室")
    assert arranged == {"method": "mail", "tracking_no": "EA260001233CN", "pickup_office": "",
                        "address": "杭州市西湖区文三路398号3幢1单元501室"}
    number = arranged["tracking_no"]
    assert len(number) == 13 and number[:2].isalpha() and number[2:11].isdigit() and number.endswith("CN")
    assert delivery.s10_check_digit(number[2:10]) == int(number[10])
    assert delivery.arrange(ctx("2026-000123"), "邮寄送达", "杭州市西湖区文三路398号")["tracking_no"] == number
    others = {delivery.tracking_number(f"2026-{n:06d}") for n in range(1, 2001)}
    assert len(others) == 2000 and all(delivery.valid_tracking_number(t) for t in others)
    assert delivery.valid_tracking_number(delivery.tracking_number("CL3301-2026-001201"))


def test_pickup_needs_no_address_and_any_office_in_the_city_will_do(monkeypatch):
    assert delivery.arrange(ctx(), "pickup") == {"method": "pickup", "pickup_office": delivery.DEFAULT_OFFICES[0],
                                                 "address": ""}
    assert delivery.arrange(ctx(), "pickup", office="西湖区")["pickup_office"] == "西湖区不动产登记服务点"
    with pytest.raises(BusinessError) as err:
        delivery.arrange(ctx(), "pickup", office="上海市徐汇区")
    assert err.value.code == "DELIVERY_OFFICE_UNKNOWN" and "萧山区不动产登记服务中心" in err.value.message
    monkeypatch.setenv("ONEWINDOW_PICKUP_OFFICES", "宁波市不动产登记服务中心；江北不动产登记办理点")
    assert delivery.arrange(ctx(), "自取", office="江北")["pickup_office"] == "江北不动产登记办理点"


@pytest.mark.parametrize("address", ["", "   ", None])
def test_mail_without_an_address_is_refused(address):
    with pytest.raises(BusinessError) as err:
        delivery.arrange(ctx(), "mail", address)
    assert err.value.code == "DELIVERY_ADDRESS_MISSING" and "收件地址" in err.value.message


def test_mail_to_something_that_is_not_an_address_and_an_unknown_method():
    with pytest.raises(BusinessError) as err:
        delivery.arrange(ctx(), "mail", "someone@example.com")
    assert err.value.code == "DELIVERY_ADDRESS_INVALID"
    with pytest.raises(BusinessError) as err:
        delivery.arrange(ctx(), "courier", "杭州市西湖区文三路398号")
    assert err.value.code == "DELIVERY_METHOD_UNKNOWN"


# ------------------------------------------------------------------------------------ in the engine

def _service(task_id: str, operator: str, result: str, *params: tuple[str, str, str]) -> str:
    ps = "".join(f'<spiffworkflow:parameter id="{i}" type="{t}" value="{v}"/>' for i, t, v in params)
    return (f'<bpmn:serviceTask id="{task_id}"><bpmn:extensionElements>'
            f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="{result}">'
            f'<spiffworkflow:parameters>{ps}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>'
            f'</bpmn:extensionElements></bpmn:serviceTask>')


ERRORS = """
  <bpmn:error id="err_deferral" name="不能容缺" errorCode="DEFERRAL_REFUSED">
    <bpmn:extensionElements><spiffworkflow:variableName>acceptance_error</spiffworkflow:variableName>
    </bpmn:extensionElements>
  </bpmn:error>
"""

WINDOW = "\n".join([
    '<bpmn:startEvent id="start"/>',
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="accept"/>',
    _service("accept", "acceptance.evaluate", "acceptance", ("business", "str", "business"),
             ("provided", "list", "provided"), ("deferred", "list", "deferred"), ("facts", "dict", "facts")),
    '<bpmn:boundaryEvent id="refused" attachedToRef="accept"><bpmn:errorEventDefinition errorRef="err_deferral"/>'
    '</bpmn:boundaryEvent>',
    '<bpmn:sequenceFlow id="f_refused" sourceRef="refused" targetRef="fix_deferral"/>',
    '<bpmn:userTask id="fix_deferral" name="容缺材料不符合条件，重新受理"/>',
    '<bpmn:sequenceFlow id="f_fixed" sourceRef="fix_deferral" targetRef="end_refused"/>',
    '<bpmn:endEvent id="end_refused"/>',
    '<bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="decide"/>',
    '<bpmn:exclusiveGateway id="decide" default="f_tell"/>',
    '<bpmn:sequenceFlow id="f_ok" sourceRef="decide" targetRef="arrange">'
    "<bpmn:conditionExpression>acceptance['status'] == 'accepted'</bpmn:conditionExpression></bpmn:sequenceFlow>",
    '<bpmn:sequenceFlow id="f_owed" sourceRef="decide" targetRef="await_items">'
    "<bpmn:conditionExpression>acceptance['status'] == 'accepted_with_deficiencies'</bpmn:conditionExpression>"
    "</bpmn:sequenceFlow>",
    '<bpmn:sequenceFlow id="f_tell" sourceRef="decide" targetRef="tell_missing"/>',
    '<bpmn:userTask id="tell_missing" name="出具一次性告知书"/>',
    '<bpmn:sequenceFlow id="f_told" sourceRef="tell_missing" targetRef="end_told"/>',
    '<bpmn:endEvent id="end_told"/>',
    '<bpmn:userTask id="await_items" name="容缺材料补交"/>',
    '<bpmn:sequenceFlow id="f3" sourceRef="await_items" targetRef="receive"/>',
    _service("receive", "acceptance.receive_deferred", "acceptance", ("acceptance", "dict", "acceptance"),
             ("received", "list", "received")),
    '<bpmn:sequenceFlow id="f4" sourceRef="receive" targetRef="arrange"/>',
    _service("arrange", "delivery.arrange", "delivery", ("method", "str", "method"),
             ("address", "str", "address")),
    '<bpmn:sequenceFlow id="f5" sourceRef="arrange" targetRef="end"/>',
    '<bpmn:endEvent id="end"/>',
])


def start_window(engine, **data):
    engine.deploy([("window.bpmn", definitions(WINDOW, "window", before=ERRORS))], "designer")
    base = {"business": TRANSFER, "deferred": [], "facts": {}, "method": "mail",
            "address": "杭州市西湖区文三路398号3幢1单元501室", "received": []}
    return engine.start_case("window", {**base, **data}, CLERK)


def test_accepted_with_deficiencies_then_delivered_by_mail_through_the_engine(engine):
    facts = {"tax_relief": True}
    provided = [c for c in applicant_codes(TRANSFER, facts) if c != "tax_relief_proof"]
    case = start_window(engine, provided=provided, facts=facts,
                        deferred=[{"code": "tax_relief_proof", "promised_by": "2026-11-27"}])
    waiting = open_task(engine, case.id, "await_items")
    data = engine.case_data(case.id)
    assert data["acceptance"]["status"] == "accepted_with_deficiencies"
    assert f"案件编号：{case.case_number}" in data["acceptance"]["notification"]
    engine.complete_task(waiting["id"], {"received": ["tax_relief_proof"]}, CLERK)
    assert engine.get_case(case.id)["status"] == "completed", engine.incidents()
    done = engine.case_data(case.id)
    assert done["acceptance"]["status"] == "accepted" and done["acceptance"]["all_received"] is True
    assert done["acceptance"]["received"][0]["received_on"] == TODAY
    assert done["delivery"]["tracking_no"] == delivery.tracking_number(case.case_number)
    assert delivery.valid_tracking_number(done["delivery"]["tracking_no"])


def test_missing_materials_and_a_refused_deferral_are_routed_by_the_diagram(engine):
    missing = start_window(engine, provided=["application_form"])
    open_task(engine, missing.id, "tell_missing")
    told = engine.case_data(missing.id)["acceptance"]
    assert told["status"] == "not_accepted" and codes(told["missing"]) == ["title_certificate"]

    refused = start_window(engine, provided=["application_form"],
                           deferred=[{"code": "title_certificate", "promised_by": "2026-11-30"}])
    open_task(engine, refused.id, "fix_deferral")
    error = engine.case_data(refused.id)["acceptance_error"]
    assert error["code"] == "DEFERRAL_REFUSED" and "不动产权属证书" in error["message"]
    assert engine.incidents() == []
